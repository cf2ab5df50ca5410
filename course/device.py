"""Where tensors live, chosen in one place.

``auto`` means CUDA when it is available, else CPU. The environment variable
``COURSE_DEVICE`` overrides whatever the caller asked for, so an instructor can force
``cpu`` for a whole grading run.
"""
from __future__ import annotations

import os

import torch

CHOICES = ("auto", "cpu", "cuda")


def get_device(name: str | None = "auto") -> torch.device:
    """Return the device to use.

    Args:
        name: ``"auto"``, ``"cpu"``, ``"cuda"`` (or ``"cuda:1"``), or None for auto.
            ``COURSE_DEVICE`` in the environment wins over this argument.

    Raises:
        ValueError: for an unknown name, or ``cuda`` on a machine without CUDA.
    """
    name = os.environ.get("COURSE_DEVICE") or name or "auto"
    name = name.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {name!r} was requested but this machine has no CUDA GPU; "
                "use --device cpu (or auto), or unset COURSE_DEVICE"
            )
        return torch.device(name)
    raise ValueError(f"unknown device {name!r}: choose one of {', '.join(CHOICES)}")


def grading_mode() -> bool:
    """True while a notebook is being autograded (``course grade`` sets ``COURSE_GRADING=1``)."""
    return os.environ.get("COURSE_GRADING", "") == "1"


def quick_mode() -> bool:
    """True when experiments should shrink: while grading, or when no GPU is present.

    ``COURSE_FULL=1`` forces full-size experiments even on a CPU.
    """
    if os.environ.get("COURSE_FULL", "") == "1":
        return False
    return grading_mode() or not torch.cuda.is_available()


def strict_numerics() -> None:
    """Turn TF32 off so CUDA results can be compared with float64 and CPU results."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
