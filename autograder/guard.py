"""Tamper guard: runs inside the kernel that executes a submission under `course grade`.

The grader inserts one cell before the student's first cell (``ArmGuard`` in
nbgrader_ext.py) that calls :func:`arm`. From then on:

* **Reading the answers.** An audit hook (PEP 578, cannot be removed) notes every file the
  student's own cells open under ``solutions/``, ``autograder/`` or the grading folder
  (which holds the gradebook with the hidden tests), and every first import of a
  ``solutions``/``autograder`` module from the student's cells.
* **Monkeypatching.** The functions and classes of torch, numpy, math, ``builtins`` and the
  course's check and hidden-test modules are recorded. Before each test cell, an IPython
  input transformer compares them with the record.
* **Borrowed answers.** The hidden tests call :func:`check_own_code` on the objects they
  grade: each must be written in the notebook, not be (or subclass, or call) a torch,
  ``solutions`` or ``autograder`` implementation.

A test cell that runs after any of these gets no credit: its code is replaced by a failing
``assert`` with a message starting ``TAMPERING:``, which `course grade` turns into a
``flagged`` row. The transformer also prints a per-run secret stamp into each test cell, so
a submission that switches the guard off is noticed from outside the kernel.

This stops the tampering a student can do by accident or with a few lines. It is not a
sandbox: code running in the same process can, with enough effort, defeat any check made in
that process. The OS sandbox around the kernel (kernel_sandbox.py) is what keeps the answers,
the gradebook and other submissions out of reach; the guard still names the attempt.
"""
from __future__ import annotations

import builtins
import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import linecache
import os
import re
import sys
import types
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PREFIX = "TAMPERING: "
STAMP = "\u200b[course-guard {}]\u200b"  # zero-width spaces: the stamp is removed before anyone sees it

# Modules whose functions and classes must stay as they were (those loaded at arm time). Every loaded
# module of the course itself (the checks of each DAY included) and of solutions/ is added to these.
PROTECTED = ["builtins", "math", "numpy", "numpy.testing", "torch", "torch.nn", "torch.nn.functional",
             "torch.nn.init", "torch.optim", "torch.optim.lr_scheduler", "torch.testing", "torch.autograd",
             "torch.linalg", "torch.distributions", "torch.utils.data",
             "course.checks", "course.checks.common", "course.device", "course.seeding", "autograder.hidden",
             "autograder.judge",
             "autograder.guard"]
# Classes whose methods must stay as they were.
PROTECTED_CLASSES = ["torch.Tensor", "torch.nn.Module", "torch.optim.Optimizer", "torch.nn.Parameter"]
# Bases a student's class may have: the skeletons' bases and torch's containers.
ALLOWED_BASES = {"builtins.object", "torch.nn.modules.module.Module", "torch.optim.optimizer.Optimizer",
                 "torch.nn.modules.container.Sequential", "torch.nn.modules.container.ModuleList",
                 "torch.nn.modules.container.ModuleDict", "torch.optim.lr_scheduler.LRScheduler",
                 "torch.optim.lr_scheduler._LRScheduler", "torch.autograd.function.Function",
                 "torch.autograd.function._SingleLevelFunction", "torch.autograd.function.FunctionCtx",
                 "torch.autograd.function._HookMixin", "torch._C._FunctionBase", "abc.ABC", "typing.Generic",
                 "typing.NamedTuple", "builtins.tuple", "builtins.dict", "builtins.list", "enum.Enum"}
ANSWER_MODULES = ("solutions", "autograder")
# Names IPython itself swaps in and out of builtins around every cell.
# (ipykernel also binds `input` anew for every cell.)
IPYTHON_BUILTINS = {"exit", "quit", "get_ipython", "display", "__IPYTHON__", "dreload", "_", "__", "___", "input",
                    "raw_input"}
TORCH_DIR = os.path.dirname(importlib.util.find_spec("torch").origin) + os.sep
_CELL_FILE = re.compile(r"(ipykernel_\d+[/\\]\d+\.py$)|(^<ipython-input-)")


def _normal(src: str) -> str:
    return "\n".join(line.rstrip() for line in src.strip().splitlines())


def _digest(src: str) -> str:
    return hashlib.sha256(_normal(src).encode()).hexdigest()


def _name(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


class Guard:
    def __init__(self, trusted: set[str], graded: set[str], protected_dirs: list[str], allowed_dir: str, nonce: str):
        self.trusted, self.graded = trusted, graded  # digests of locked cells / of graded test cells
        self.protected_dirs = [os.path.realpath(d) + os.sep for d in protected_dirs]
        self.allowed_dir = os.path.realpath(allowed_dir) + os.sep
        self.stamp = STAMP.format(nonce)
        self.violations: list[str] = []
        self._files: dict[str, bool] = {}  # cell file -> trusted?
        self._in_hook = False
        self._out = sys.stdout  # the kernel's stream for the running cell
        self._real_import = builtins.__import__
        builtins.__import__ = self._import  # before the snapshot, so replacing it is noticed
        self.snapshot = self._take_snapshot()

    # ---- what is protected -------------------------------------------------------------
    @staticmethod
    def _take_snapshot() -> dict[str, dict[str, object]]:
        snap = {}
        names = [m for m in list(sys.modules) if m in PROTECTED or m.split(".")[0] in ("course",) + ANSWER_MODULES]
        for modname in names:
            mod = sys.modules.get(modname)
            if isinstance(mod, types.ModuleType):
                snap[modname] = {k: v for k, v in vars(mod).items() if (callable(v) or isinstance(v, types.ModuleType))
                                 and not (modname == "builtins" and k in IPYTHON_BUILTINS)}
        for path in PROTECTED_CLASSES:
            modname, _, cls = path.rpartition(".")
            obj = getattr(sys.modules.get(modname), cls, None)
            if isinstance(obj, type):
                snap[path] = _class_dict(obj)
        return snap

    def patched(self) -> list[str]:
        """``module.name`` of every recorded function, class or method that was replaced or deleted."""
        found = []
        for where, names in self.snapshot.items():
            if where in sys.modules:
                current = vars(sys.modules[where])
            else:
                modname, _, cls = where.rpartition(".")
                current = _class_dict(getattr(sys.modules.get(modname), cls, None) or object)
            for k, v in names.items():
                now = current.get(k, _MISSING)
                if now is not v and not _torch_wraps(now, v):
                    found.append(f"{where}.{k}")
        return found

    # ---- who is calling ----------------------------------------------------------------
    def _cell_is_trusted(self, filename: str) -> bool:
        if filename not in self._files:
            self._files[filename] = _digest("".join(linecache.getlines(filename))) in self.trusted
        return self._files[filename]

    def student_frame(self, frame) -> str | None:
        """The first frame, going outwards, that is either course code (None: fine) or a notebook
        cell; returns "cell N" for a cell the student could edit, else None."""
        repo = str(REPO_ROOT) + os.sep
        while frame is not None:
            fn = frame.f_code.co_filename
            if _CELL_FILE.search(fn):
                return None if self._cell_is_trusted(fn) else f"line {frame.f_lineno} of a notebook cell"
            if fn.startswith(repo) and not fn.startswith(repo + ".venv"):
                return None  # the course's own code (checks, data loaders)
            frame = frame.f_back
        return None

    def audit(self, event: str, args) -> None:
        if event not in ("open", "import") or self._in_hook:
            return
        self._in_hook = True
        try:
            if event == "open":
                path = args[0]
                if not isinstance(path, (str, bytes, os.PathLike)):
                    return
                real = os.path.realpath(os.fsdecode(path))
                if real.startswith(self.allowed_dir) or not any(real.startswith(d) for d in self.protected_dirs):
                    return
                what = f"opened {real}"
            else:
                module = args[0]
                if not isinstance(module, str) or module.split(".")[0] not in ANSWER_MODULES:
                    return
                what = f"imported {module}"
            where = self.student_frame(sys._getframe(1))
            if where:
                self.violations.append(f"the notebook {what} ({where})")
        finally:
            self._in_hook = False

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        """builtins.__import__, noting an ``import solutions...``/``autograder...`` in a student's cell
        (the audit hook only sees the first load of a module)."""
        if level == 0 and isinstance(name, str) and name.split(".")[0] in ANSWER_MODULES and not self._in_hook:
            where = self.student_frame(sys._getframe(1))
            if where:
                self.violations.append(f"the notebook imported {name} ({where})")
        return self._real_import(name, globals, locals, fromlist, level)

    # ---- before each test cell ---------------------------------------------------------
    def problems(self) -> list[str]:
        patched = self.patched()
        found = list(dict.fromkeys(self.violations)) + [f"the notebook replaced {p}" for p in patched[:4]]
        if len(patched) > 4:
            found.append(f"the notebook replaced {len(patched) - 4} more functions the tests rely on")
        return found

    def transform(self, lines: list[str]) -> list[str]:
        if _digest("".join(lines)) not in self.graded:
            return lines
        self._out.write(self.stamp + "\n")
        self._out.flush()
        found = self.problems()
        if not found:
            return lines
        return [f"assert False, {PREFIX + '; '.join(found) + '. This test gets no credit.'!r}\n"]


_MISSING = object()


def _class_dict(cls: type) -> dict:
    """The attributes ``cls`` has, own or inherited, as stored (no bound methods made)."""
    merged = {}
    for klass in reversed(cls.__mro__):
        merged.update(vars(klass))
    return merged


def _torch_wraps(now, was) -> bool:
    """torch wrapping its own function (importing torch._dynamo wraps torch.manual_seed)."""
    code = getattr(now, "__code__", None)
    return (getattr(now, "__wrapped__", None) is was and code is not None
            and code.co_filename.startswith(TORCH_DIR))
_GUARD: Guard | None = None


def arm(config_path: str) -> None:
    """Start guarding this kernel. ``config_path`` is a JSON file written by the grader; it is
    deleted here, before any student code runs."""
    global _GUARD
    with open(config_path) as f:
        cfg = json.load(f)
    os.remove(config_path)
    for mod in cfg.get("preload", []):
        importlib.import_module(mod)
    _GUARD = Guard({_digest(s) for s in cfg["trusted"]}, {_digest(s) for s in cfg["graded"]},
                   cfg["protected_dirs"], os.getcwd(), cfg["nonce"])
    sys.addaudithook(_GUARD.audit)
    from IPython import get_ipython
    shell = get_ipython()
    if shell is not None:
        shell.input_transformers_post.append(_GUARD.transform)


def _code_objects(code: types.CodeType):
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _code_objects(c)


def own_code_problems(label: str, obj, _seen=None) -> list[str]:
    """Why ``obj`` (a student's function or class) is not the student's own code; [] if it is."""
    seen = _seen if _seen is not None else set()
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    while isinstance(obj, functools.partial):
        obj = obj.func
    if isinstance(obj, type):
        if not _is_cell_code(obj):
            return [f"{label} is {_name(obj)}, not code written in the notebook"]
        found = []
        for base in obj.__mro__[1:]:
            name = f"{base.__module__}.{base.__qualname__}"
            if _is_cell_code(base):
                found += own_code_problems(base.__name__, base, seen)
            elif name not in ALLOWED_BASES:
                found.append(f"{label} subclasses {name} instead of being written in the notebook")
        for v in vars(obj).values():
            v = getattr(v, "__func__", v)  # staticmethod / classmethod
            if isinstance(v, types.FunctionType):
                found += own_code_problems(f"{label}.{v.__name__}", v, seen)
        return found
    if callable(obj):
        obj = inspect.unwrap(obj)  # through decorators such as @torch.no_grad()
    if isinstance(obj, types.MethodType):
        obj = obj.__func__
    if not isinstance(obj, types.FunctionType):
        if callable(obj) and not _is_cell_code(type(obj)):
            return [f"{label} is {_name(obj)}, not code written in the notebook"]
        return []
    if not _is_cell_code(obj):
        return [f"{label} is {_name(obj)}, not code written in the notebook"]
    found = []
    for code in _code_objects(obj.__code__):
        for n in code.co_names:
            v = obj.__globals__.get(n, _MISSING)
            mod = v.__name__ if isinstance(v, types.ModuleType) else getattr(v, "__module__", None)
            if isinstance(mod, str) and mod.split(".")[0] in ANSWER_MODULES:
                found.append(f"{label} uses {n} from {mod}")
            elif isinstance(v, (types.FunctionType, type)) and _is_cell_code(v):
                found += own_code_problems(n, v, seen)  # a helper the student wrote: look inside too
    return found


def _is_cell_code(obj) -> bool:
    if isinstance(obj, type):
        return obj.__module__ == "__main__"
    code = getattr(obj, "__code__", None)
    return code is not None and bool(_CELL_FILE.search(code.co_filename))


def check_own_code(*objects) -> None:
    """Called by the hidden tests on the objects they grade. Does nothing outside a guarded kernel."""
    if _GUARD is None:
        return
    found = []
    for obj in objects:
        found += own_code_problems(getattr(obj, "__name__", type(obj).__name__), obj)
    if found:
        raise AssertionError(PREFIX + "; ".join(dict.fromkeys(found)) + ". This test gets no credit.")
