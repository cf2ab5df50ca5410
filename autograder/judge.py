"""The judge: a hidden test's points are decided outside the student's process.

A judged hidden test (``solutions/<day>/hidden.py`` lists them in ``JUDGED``, keyed by the test
cell's grade_id) has three parts, given as a :class:`Judged`:

- ``challenge()``: the inputs, chosen by the judge (seeds, hyper-parameters), as JSON-able data;
- ``scenario(challenge, *objects)``: runs in the kernel. It calls the student's code on those inputs
  and returns what it observed: plain tensors, numbers, strings, in lists and dicts;
- ``verdict(observations, challenge)``: runs in the grader. It recomputes what torch gives on the same
  inputs and raises AssertionError (a teaching message) where the observations differ.

Under nbgrader (``nbgrader_ext.CrashTolerantExecute``, so `course grade` and ``nbgrader autograde`` by
hand), a :class:`Channel` is a folder shared with the kernel (bound into its sandbox). Just before a
judged test cell runs, the grader writes the challenge there; the cell's hidden part runs the scenario
and saves the observations with ``torch.save``; after the cell, the grader loads them with
``weights_only=True`` (plain tensors and containers only: a tensor subclass or any other object is
refused) and runs the verdict. The cell passes only if it raised nothing in the kernel *and* the
verdict passed; the grader appends the verdict to the cell's outputs.

So the seed, the expected values and the tolerances that decide are never in the student's process:
patching, tracing, frame reading or seed pinning there cannot change a verdict. Without a channel (the
test suite, or a kernel whose channel was removed) :func:`hidden_test` runs all three parts in-process,
through the same serialisation; in a graded kernel that earns nothing, as the grader then finds no
observations.
"""
from __future__ import annotations

import importlib
import importlib.util
import io
import json
import os
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from autograder.guard import check_own_code
from autograder.hidden import REPEATS, fresh_seeds, hidden_case
from autograder.kernel_sandbox import JUDGE_CHANNEL as CHANNEL  # the channel folder's environment variable
from autograder.kernel_sandbox import kernel_owner

MAX_OBSERVATIONS = 64 * 2**20  # bytes; more is refused


@dataclass(frozen=True)
class Judged:
    description: str  # what is tested, for messages: "Adam (2 settings)"
    challenge: Callable[[], dict]
    scenario: Callable[..., object]
    verdict: Callable[[object, dict], None]


def per_seed(description: str, run, verdict, repeats: int = REPEATS, seed: int | None = None,
             **settings) -> Judged:
    """The usual judged test: ``run(*objects, seed=s, **settings)`` in the kernel (the ``_run`` half of a
    visible check) and ``verdict(observed, seed=s, **settings)`` in the grader (its ``_verdict`` half), for
    each of ``repeats`` fresh seeds; the settings travel in the challenge. ``seed`` fixes the seed instead
    (run once), for a check whose verdict must not depend on one: a training run."""

    def challenge():
        return {"seed": fresh_seeds(repeats) if seed is None else [seed], "settings": settings}

    def scenario(ch, *objects):
        return [run(*objects, seed=seed, **ch["settings"]) for seed in ch["seed"]]

    def judge(runs, ch):
        if not isinstance(runs, list) or len(runs) != len(ch["seed"]):
            raise AssertionError(f"expected observations for {len(ch['seed'])} seed(s).")
        for seed, observations in zip(ch["seed"], runs):
            try:
                verdict(observations, seed=seed, **ch["settings"])
            except AssertionError as e:
                raise AssertionError(f"seed {seed}: {e}") from None

    return Judged(description, challenge, scenario, judge)


def in_turn(description: str, *parts: Judged) -> Judged:
    """One test cell judged in several parts, one after the other, each with its own challenge and
    verdict (SimpleCNN: its shapes on fresh seeds, then a training run on a fixed one)."""

    def challenge():
        chosen = [part.challenge() for part in parts]
        return {"seed": [s for c in chosen for s in c.get("seed", [])], "parts": chosen}

    def scenario(ch, *objects):
        return [part.scenario(c, *objects) for part, c in zip(parts, ch["parts"], strict=True)]

    def judge(observations, ch):
        if not isinstance(observations, list) or len(observations) != len(parts):
            raise AssertionError(f"expected observations for {len(parts)} parts.")
        for part, c, observed in zip(parts, ch["parts"], observations):
            try:
                part.verdict(observed, c)
            except AssertionError as e:
                raise AssertionError(f"{part.description}: {e}") from None

    return Judged(description, challenge, scenario, judge)


def cell_function(judged: dict[str, Judged], test_id: str):
    """The function that test cell ``test_id`` calls with the student's objects (``hidden_<name>``)."""
    def run(*objects):
        hidden_test(test_id, judged[test_id], *objects)
    run.__name__ = "hidden_" + test_id.removeprefix("test_")
    return run


# ----------------------------------------------------------------------------- in the kernel

def hidden_test(test_id: str, judged: Judged, *objects) -> None:
    """The hidden part of test cell ``test_id``: the scenario here, the verdict in the grader."""
    check_own_code(*objects)
    where = os.environ.get(CHANNEL)
    if not where:  # no grader listening: judge in-process, through the same serialisation
        challenge = json.loads(json.dumps(judged.challenge()))  # as the kernel would receive it
        observations = load_observations(save_observations(judged.scenario(challenge, *objects)))
        with hidden_case(judged.description, challenge.get("seed")):
            judged.verdict(observations, challenge)
        print(f"\u2713 hidden tests passed for {judged.description}")
        return
    challenge = json.loads((Path(where) / f"{test_id}.challenge.json").read_text())
    with hidden_case(judged.description, "chosen by the grader"):
        observations = judged.scenario(challenge, *objects)
    (Path(where) / f"{test_id}.obs.pt").write_bytes(save_observations(observations))


def save_observations(observations) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(observations, buffer)
    return buffer.getvalue()


def load_observations(data: bytes):
    """Observations as plain data; anything but tensors, numbers, strings and containers is refused."""
    import torch

    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


# ----------------------------------------------------------------------------- in the grader

def lists_judged_tests(assignment: str) -> bool:
    """Whether ``assignment``'s hidden.py lists judged tests, read from its text: importing a DAY whose
    hidden tests all run in the kernel would cost this process torch's import (seconds) for nothing."""
    try:
        spec = importlib.util.find_spec(f"solutions.{assignment}.hidden")
    except (ImportError, ValueError):
        return False
    return bool(spec and spec.origin) and "JUDGED" in Path(spec.origin).read_text(encoding="utf-8")


def warm_up_optimizers() -> None:
    """A ``warm_up`` for a DAY whose verdicts step a torch optimizer: its first use imports most of
    torch._dynamo (1-2 s), which would otherwise delay the first such verdict."""
    import torch

    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


def judged_tests(assignment: str) -> dict[str, Judged]:
    """The judged hidden tests of ``assignment``; its hidden.py's ``warm_up()``, if any, runs first."""
    module = importlib.import_module(f"solutions.{assignment}.hidden")
    if callable(getattr(module, "warm_up", None)):
        module.warm_up()
    return dict(getattr(module, "JUDGED", {}))


class Channel:
    """The grader's end: a fresh folder shared with one kernel, for one notebook.

    The hidden tests are imported (torch with them) in a thread started here, while the kernel starts
    and runs the notebook's first cells; :attr:`tests` waits for it."""

    def __init__(self, assignment: str):
        self.path = Path(tempfile.mkdtemp(prefix="course-judge-"))
        if os.geteuid() == 0:  # the sandboxed kernel writes its observations here
            os.chown(self.path, kernel_owner(), kernel_owner())
        self.challenges: dict[str, dict] = {}
        self._loaded: dict[str, Judged] | BaseException = {}
        self._loader = threading.Thread(target=self._load, args=(assignment,), daemon=True)
        self._loader.start()

    def _load(self, assignment: str) -> None:
        try:
            self._loaded = judged_tests(assignment)
        except BaseException as e:  # raised again by .tests, in the grading thread
            self._loaded = e

    @property
    def tests(self) -> dict[str, Judged]:
        self._loader.join()
        if isinstance(self._loaded, BaseException):
            raise self._loaded
        return self._loaded

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def before(self, test_id: str) -> None:
        """Write the challenge of ``test_id`` just before its cell runs; remove anything left there."""
        challenge = self.tests[test_id].challenge()
        self.challenges[test_id] = challenge
        for name in (f"{test_id}.challenge.json", f"{test_id}.obs.pt"):
            _remove(self.path / name)
        fd = os.open(self.path / f"{test_id}.challenge.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                     0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(challenge, f)

    def after(self, test_id: str) -> str | None:
        """The verdict on what the cell's scenario sent: None when it passed, else why not."""
        judged, challenge = self.tests[test_id], self.challenges.pop(test_id)
        try:
            data = _read_regular(self.path / f"{test_id}.obs.pt")
        except FileNotFoundError:
            return (f"hidden test '{judged.description}' sent the grader no observations (its hidden part did "
                    "not run to the end in this kernel)")
        except OSError as e:
            return f"hidden test '{judged.description}': the observations could not be read ({e})"
        finally:
            _remove(self.path / f"{test_id}.challenge.json")
        try:
            observations = load_observations(data)
        except Exception as e:  # a tensor subclass, an arbitrary object, a damaged file
            return (f"hidden test '{judged.description}': the observations are not plain tensors and numbers "
                    f"({type(e).__name__}); return ordinary torch.Tensor values")
        try:
            with hidden_case(judged.description, challenge.get("seed")):
                judged.verdict(observations, challenge)
        except AssertionError as e:
            return str(e)
        except Exception as e:  # observations of the wrong shape or type
            return f"hidden test '{judged.description}' failed: the observations did not fit ({type(e).__name__}: {e})"
        return None


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        shutil.rmtree(path, ignore_errors=True)


def _read_regular(path: Path) -> bytes:
    """The bytes of a regular file, never through a symbolic link (the kernel controls the folder)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError("not a regular file")
        if info.st_size > MAX_OBSERVATIONS:
            raise OSError(f"{info.st_size / 2**20:.0f} MB, more than the {MAX_OBSERVATIONS // 2**20} MB allowed")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(MAX_OBSERVATIONS + 1)
    finally:
        os.close(fd)
