"""The student-facing library of the course: device, seeding, data, plots, training, checks.

Nothing in here imports ``solutions`` or ``autograder``: students receive ``course/``,
``assignments/`` and ``data/`` only.
"""
from course.device import get_device, quick_mode, grading_mode
from course.seeding import seed_everything

__all__ = ["get_device", "quick_mode", "grading_mode", "seed_everything"]
__version__ = "0.1.0"
