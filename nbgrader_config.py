# nbgrader reads this file when run from the course root (e.g. `nbgrader autograde
# day1_optimization`). The settings themselves live in autograder/nbgrader_ext.py so that
# `course grade` uses exactly the same ones; see docs/ARCHITECTURE.md.
import sys
from pathlib import Path

_root = Path(__file__).resolve().parent
sys.path.insert(0, str(_root))
from autograder.nbgrader_ext import configure  # noqa: E402

c = get_config()  # noqa: F821
configure(c, _root, repo_layout=True)
