"""Visible checks: compare a student's code with torch and explain what is wrong.

Every check either prints one line starting with ``✓`` or raises :class:`CheckFailed`
(an ``AssertionError``) whose message says where the first difference appeared, how big
it is, the tolerance, and, when the symptom is recognisable, the likely mistake.

The checks compare against torch itself (``torch.optim.Adam``, ``F.batch_norm`` …) or
against formulas stated in the notebook. They never import the reference solutions.

Each DAY's checks are in ``course/checks/<assignment_id>.py``; every public name of every DAY's
module (its ``__all__`` where it has one) is also importable from here (``from course.checks import
check_adam_like``), so a notebook can use either spelling. The DAY modules are found from this folder (course/days.py).
"""
import importlib
import inspect

from course.checks.common import CheckFailed, compare
from course.days import check_modules

__all__ = ["CheckFailed", "compare"]


def _public(module) -> list[str]:
    """A DAY module's ``__all__``, or else its own public functions and its UPPER_CASE constants."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [name for name, value in vars(module).items() if not name.startswith("_") and (
        name.isupper() or inspect.isfunction(value) and value.__module__ == module.__name__)]


for _aid in check_modules():
    _module = importlib.import_module(f"course.checks.{_aid}")
    for _name in _public(_module):
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
del _aid, _module, _name
