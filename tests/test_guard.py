"""The tamper guard (autograder/guard.py), piece by piece, with code that looks to it like a
notebook cell. Whole crafted notebooks are graded in tests/test_grading.py."""
from __future__ import annotations

import builtins
import functools
import io
import linecache
import textwrap

import nbformat
import pytest
import torch
import torch.nn.functional as F

import course.checks.day6_dqn as day6_checks
from autograder import guard as G
from autograder.worker import notebook_findings
from autograder.nbgrader_ext import GUARD_MARK, DisarmGuard

_count = iter(range(10_000))


def cell(src: str, ns: dict | None = None) -> dict:
    """Run ``src`` as IPython would run a notebook cell (its file name and linecache entry)."""
    src = textwrap.dedent(src)
    filename = f"/tmp/ipykernel_4242/{next(_count)}.py"
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    ns = ns if ns is not None else {"__name__": "__main__", "torch": torch, "F": F, "nn": torch.nn}
    exec(compile(src, filename, "exec"), ns)
    return ns


@pytest.fixture
def guard(tmp_path):
    real_import = builtins.__import__
    g = G.Guard(trusted=set(), graded=set(), protected_dirs=[str(G.REPO_ROOT / "solutions"), str(tmp_path)],
                allowed_dir=str(tmp_path / "me"), nonce="abc123")
    yield g
    builtins.__import__ = real_import


HONEST = """
import functools
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
    def forward(self, x):
        return self.fc(x)
class Deeper(Net):
    pass
class Stack(nn.Sequential):
    pass
class Opt(torch.optim.Optimizer):
    pass
class Fn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x
def helper(x):
    return x * 2
def td_targets(r, q):
    return helper(r) + torch.clamp(q, 0)
@torch.no_grad()
def update(a):
    return F.relu(a)
scaled = functools.partial(td_targets, q=torch.zeros(1))
"""


def test_own_code_accepts_what_students_write():
    ns = cell(HONEST)
    for name in ("Net", "Deeper", "Stack", "Opt", "Fn", "td_targets", "update", "scaled"):
        assert G.own_code_problems(name, ns[name]) == [], name


BORROWED = {
    "a torch function": ("dqn_loss = F.smooth_l1_loss", "is torch.nn.functional.smooth_l1_loss"),
    "a torch builtin": ("relu = torch.relu", "not code written in the notebook"),
    "a torch layer object": ("relu = nn.ReLU()", "not code written in the notebook"),
    "a subclass of the torch optimizer": ("class SGD(torch.optim.SGD):\n    pass", "subclasses torch.optim.sgd.SGD"),
    "the reference function": ("from solutions.day6_dqn.reference import td_targets",
                               "solutions.day6_dqn.reference.td_targets"),
    "a subclass of the reference": ("from solutions.day6_dqn import reference as R\nclass QNetwork(R.QNetwork):\n"
                                    "    pass", "subclasses solutions.day6_dqn.reference.QNetwork"),
    "a wrapper around the reference": ("import importlib\nR = importlib.import_module('solutions.day6_dqn.reference')"
                                       "\ndef td_targets(*a):\n    return R.td_targets(*a)",
                                       "uses R from solutions.day6_dqn.reference"),
    "a helper that calls the reference": ("from solutions.day6_dqn import reference as R\ndef _h(*a):\n"
                                          "    return R.td_targets(*a)\ndef td_targets(*a):\n    return _h(*a)",
                                          "_h uses R from solutions.day6_dqn"),
    "a method that calls the reference": ("from solutions.day6_dqn import reference as R\nclass QNetwork(nn.Module):\n"
                                          "    def forward(self, x):\n        return R.QNetwork(4, 2)(x)",
                                          "QNetwork.forward uses R"),
}


@pytest.mark.parametrize("what", list(BORROWED))
def test_own_code_flags_borrowed_answers(what):
    src, words = BORROWED[what]
    ns = cell(src)
    name = [k for k in ns if not k.startswith("_") and k not in ("torch", "F", "nn", "R", "importlib")
            and not k.startswith("__")][-1]
    found = G.own_code_problems(name, ns[name])
    assert found and any(words in f for f in found), found


def test_patched_names_each_replaced_function_and_forgives_torch_wrapping_itself(guard, monkeypatch):
    assert guard.patched() == []
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(builtins, "abs", lambda x: 0)
    monkeypatch.setattr(day6_checks, "check_td_targets", lambda *a, **k: None)
    monkeypatch.setattr(torch.Tensor, "sum", lambda self: 0)
    assert set(guard.patched()) == {"torch.allclose", "builtins.abs", "course.checks.day6_dqn.check_td_targets",
                                    "torch.Tensor.sum", "torch.nn.Parameter.sum"}  # a Parameter is a Tensor
    monkeypatch.undo()
    assert guard.patched() == []
    # torch._dynamo wraps torch.manual_seed with functools.wraps when it is first imported: not tampering
    wrapper = torch._disable_dynamo(torch.manual_seed)
    monkeypatch.setattr(torch, "manual_seed", wrapper)
    assert guard.patched() == []
    # ... but a student's functools.wraps is
    monkeypatch.setattr(torch, "manual_seed", functools.wraps(wrapper.__wrapped__)(lambda *a: None))
    assert guard.patched() == ["torch.manual_seed"]


def test_audit_notes_reads_of_protected_files_from_student_cells_only(guard, tmp_path):
    ns = {"__name__": "__main__", "g": guard, "secret": str(G.REPO_ROOT / "solutions" / "day6_dqn" / "reference.py"),
          "mine": str(tmp_path / "me" / "notes.txt"), "other": "/etc/hostname", "db": str(tmp_path / "gradebook.db")}
    cell("g.audit('open', (mine, 'r', 0))\ng.audit('open', (other, 'r', 0))", ns)
    assert guard.violations == []
    src = "g.audit('open', (secret, 'r', 0))\ng.audit('open', (db, 'rb', 0))"
    guard.trusted.add(G._digest(src))  # the same code in an instructor's (locked) cell is fine
    cell(src, ns)
    assert guard.violations == []
    cell(src + "\n", ns | {})  # identical source normalises to the same digest: still trusted
    guard.trusted.clear()
    guard._files.clear()
    cell("x = 1\n" + src, ns)
    assert len(guard.violations) == 2 and "reference.py" in guard.violations[0] and "gradebook.db" in guard.violations[1]
    cell("g.audit('import', ('solutions.day3_cnn.reference', None, [], [], []))\n"
         "g.audit('import', ('json.decoder', None, [], [], []))", ns)
    assert guard.violations[-1].startswith("the notebook imported solutions.day3_cnn.reference")


def test_import_of_answer_modules_is_noted_even_when_already_loaded(guard):
    import solutions.day6_dqn.reference  # noqa: F401 (loaded: the audit hook would not see it again)
    assert builtins.__import__ == guard._import
    cell("import json\nimport course.checks")
    assert guard.violations == []
    cell("from solutions.day6_dqn.reference import td_targets")
    assert guard.violations == ["the notebook imported solutions.day6_dqn.reference (line 1 of a notebook cell)"]


def test_transform_stamps_test_cells_and_fails_them_after_tampering(guard, monkeypatch):
    guard._out = io.StringIO()
    test_src = "check_td_targets(td_targets)\n"
    guard.graded.add(G._digest(test_src))
    assert guard.transform(["x = 1\n"]) == ["x = 1\n"] and guard._out.getvalue() == ""
    assert guard.transform([test_src]) == [test_src]
    assert guard._out.getvalue() == G.STAMP.format("abc123") + "\n"
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    (replaced,) = guard.transform([test_src])
    with pytest.raises(AssertionError, match=r"^TAMPERING: the notebook replaced torch.allclose\. This test gets"):
        exec(compile(replaced, "<cell>", "exec"), {})


def _test_cell(grade_id, outputs):
    c = nbformat.v4.new_code_cell("check()", execution_count=2, outputs=outputs)
    c.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": grade_id, "points": 1}
    return c


def test_disarm_removes_the_guard_and_fails_unstamped_test_cells():
    stamp = G.STAMP.format("abc123") + "\n"
    guard_cell = nbformat.v4.new_code_cell("arm()", execution_count=1)
    guard_cell.metadata[GUARD_MARK] = "abc123"
    nb = nbformat.v4.new_notebook(cells=[
        guard_cell,
        _test_cell("stamped", [nbformat.v4.new_output("stream", name="stdout", text=stamp + "✓ passed\n")]),
        _test_cell("only-stamp", [nbformat.v4.new_output("stream", name="stdout", text=stamp)]),
        _test_cell("forged", [nbformat.v4.new_output("stream", name="stdout", text=G.STAMP.format("000") + "\n")]),
        _test_cell("unstamped", []),
    ])
    nb, _ = DisarmGuard().preprocess(nb, {})
    assert [c.metadata["nbgrader"]["grade_id"] for c in nb.cells] == ["stamped", "only-stamp", "forged", "unstamped"]
    assert nb.cells[0].outputs[0]["text"] == "✓ passed\n" and nb.cells[1].outputs == []
    for c in nb.cells[2:]:
        assert c.outputs[-1]["evalue"].startswith("TAMPERING: the grader's guard was switched off"), c.outputs


def test_tampering_summary_lists_each_finding_once():
    err = lambda msg: nbformat.v4.new_output("error", ename="AssertionError", evalue=msg, traceback=[])  # noqa: E731
    nb = nbformat.v4.new_notebook(cells=[
        _test_cell("a", []),
        _test_cell("b", [err("TAMPERING: the notebook replaced torch.allclose. This test gets no credit.")]),
        _test_cell("c", [err("TAMPERING: the notebook replaced torch.allclose; the notebook imported solutions.x "
                             "(line 1 of a notebook cell). This test gets no credit.")]),
    ])
    flags = [f["text"] for f in notebook_findings(nb, 180, "4") if f["kind"] in ("tampering", "guard_failed")]
    assert flags == ["FLAGGED for review: the notebook replaced torch.allclose; the notebook imported "
                     "solutions.x (line 1 of a notebook cell); 2 test(s) got no credit"]
