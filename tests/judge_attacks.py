"""A DAY 1 submission that attacks the comparison in its own process (the isolation issue's groups 3
and 4), for the shared grading run of tests/test_grading.py: wrong code in every solution cell, each
cell with one attack that makes the in-kernel comparison pass. With the verdicts computed in the
grader (autograder/judge.py) it scores 0; with the judge switched off (an experiment, not kept) the
same notebook scored 9 of 18."""
from __future__ import annotations

from pathlib import Path

import nbformat

from autograder.build import sample_path

AID = "day1_optimization"

WRONG_SGD = '''
class {name}(torch.optim.Optimizer):
    def __init__(self, params, lr=0.01, momentum=0.0, alpha=0.99, eps=1e-8, betas=(0.9, 0.999)):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha={sign}group["lr"]){liar}
        return loss
'''

# grade_id of the solution cell -> its source: a wrong implementation and one attack
ATTACKS = {
    "sgd": WRONG_SGD.format(name="SGD", sign="+", liar="") + '''
import course.checks.day1_optimization as _c
_c.optimizer_verdict.__code__ = (lambda *args, **kwargs: 0.0).__code__  # same object, any result passes
''',
    "momentum": WRONG_SGD.format(name="Momentum", sign="-", liar="") + '''
import course.checks.day1_optimization as _c
_c.OPT_TOL[torch.float64] = _c.OPT_TOL[torch.float32] = (1e9, 1e9)  # the tolerances, widened
''',
    "nesterov": WRONG_SGD.format(name="Nesterov", sign="-", liar="") + '''
import ctypes as _ct
import sys as _sys


def _local(frame, event, arg):  # inside the comparison, "which steps are wrong" becomes "none"
    if event == "line" and isinstance(frame.f_locals.get("bad"), list):
        frame.f_locals["bad"] = [False] * len(frame.f_locals["bad"])
        _ct.pythonapi.PyFrame_LocalsToFast(_ct.py_object(frame), _ct.c_int(0))
    return _local


_sys.settrace(lambda frame, event, arg: _local if frame.f_code.co_name == "optimizer_verdict" else None)
''',
    "adagrad": '''
class _Liar(torch.Tensor):  # every difference computed from it is zero
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        if getattr(func, "__name__", "") in ("__sub__", "sub") and torch.is_tensor(out):
            return torch.zeros_like(out.as_subclass(torch.Tensor)).as_subclass(cls)
        return out
''' + WRONG_SGD.format(name="AdaGrad", sign="-", liar=(
        '\n                    p.__class__ = vars(__import__("sys").modules["__main__"])["_" + "Liar"]')),
    "rmsprop": '''
import secrets as _secrets
from course.checks.day1_optimization import _make_groups, _set_test_grads, _test_problem
_secrets.randbelow = lambda n: 0  # every "fresh" seed is 0 ...
_table = {}  # ... so torch's answers for seed 0 can be looked up


def _key(first, dtype, hparams):
    return round(float(first), 9), str(dtype), tuple(sorted(hparams.items()))


for _hp, _ov, _steps in ((dict(lr=0.01, alpha=0.9, eps=1e-2), {"lr": 0.005}, 10),
                         (dict(lr=0.003, alpha=0.99, eps=1e-8), {"alpha": 0.5}, 10),
                         (dict(lr=0.01, alpha=0.99, eps=1e-8), {"lr": 0.005}, 100)):
    for _dtype in (torch.float64, torch.float32):
        _starts, _targets = _test_problem(0, _dtype, "cpu")
        _params, _, _groups = _make_groups(_starts, _ov)
        _opt, _traj = torch.optim.RMSprop(_groups, **_hp), []
        for _ in range(_steps):
            _set_test_grads(_params, _targets)
            _opt.step()
            _traj.append([p.detach().clone() for p in _params])
        _table[_key(_starts[0].flatten()[0], _dtype, _hp)] = _traj


class RMSProp(torch.optim.Optimizer):
    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))
        first = self.param_groups[0]["params"][0]
        self._traj, self._t = _table.get(_key(first.flatten()[0], first.dtype, dict(lr=lr, alpha=alpha, eps=eps))), 0

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        moving = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        if self._traj and self._t < len(self._traj):
            for p, v in zip(moving, self._traj[self._t]):
                p.copy_(v)
        self._t += 1
        return loss
''',
    "lr_schedules": '''
import os as _os
for _name in ("test_init_weights.challenge.json", "test_init_weights.obs.pt"):  # the grader must not follow these
    _os.symlink({victim!r}, _os.path.join(_os.environ["COURSE_JUDGE_DIR"], _name))


def inverse_time_decay(lr0, delta):
    return lambda t: lr0 / (1.0 + t)


def power_decay(lr0, delta):
    return lambda t: lr0 / max(t, 1)
''',
    "minibatches": '''
import os as _os
import course.checks.day1_optimization as _c
_os.environ.pop("COURSE_JUDGE_DIR", None)  # no channel: the hidden test judges itself, in here
_c.minibatch_verdict.__code__ = (lambda *args, **kwargs: None).__code__


def minibatches(X, y, batch_size, shuffle=True, generator=None):
    for i in range(0, len(X) - batch_size + 1, batch_size):
        yield X[i:i + batch_size], y[i:i + batch_size]
''',
    "init_weights": '''
def init_weights(model, scheme):  # correct, but graded after the guard is switched off
    std = {"normal": lambda n: 0.01, "xavier": lambda n: (1 / n) ** 0.5, "he": lambda n: (2 / n) ** 0.5}
    if scheme not in std:
        raise ValueError(scheme)
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            torch.nn.init.normal_(m.weight, 0.0, std[scheme](m.weight[0].numel()))
            torch.nn.init.zeros_(m.bias)


get_ipython().input_transformers_post.clear()
''',
}


def attacker(victim: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(sample_path(AID, "blank"), as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in ATTACKS:
            cell.source = ATTACKS[gid].replace("{victim!r}", repr(str(victim)))
    return nb


# ----------------------------------------------------------------------------- DAY 6

DQN_AID = "day6_dqn"

# The first solution cell switches every comparison in the kernel off: each verdict half and compare()
# get the code of a function that passes, the shared tolerance is widened, the "fresh" seeds are pinned,
# and a trace rewrites any local that holds a failure. Then each solution cell makes the reference's
# code wrong in one plain way (a wrapper), so only those switches could earn its points.
DQN_SWITCHES = '''
import secrets as _secrets
import sys as _sys
import course.checks.common as _common
import course.checks.day6_dqn as _d6
import course.checks.dqn_learning_step as _step
import course.checks.dqn_pieces as _pieces

_passes = (lambda *args, **kwargs: None).__code__
for _module in (_d6, _step, _pieces):
    for _name, _fn in vars(_module).items():
        if _name.endswith("_verdict") and callable(_fn):
            _fn.__code__ = _passes
_common.compare.__code__ = (lambda *args, **kwargs: 0.0).__code__
_common._fail.__code__ = _passes
_common.TOL.update(atol=1e9, rtol=1e9)
_secrets.randbelow = lambda n: 0
_sys.settrace(lambda frame, event, arg: None)
'''

DQN_WRONG = {  # grade_id of the solution cell -> what follows the reference's code there
    "replay_buffer": '''
class ReplayBuffer(ReplayBuffer):
    def __len__(self):
        return super().__len__() + 1
''',
    "epsilon_schedule": '''
_linear_epsilon = linear_epsilon
def linear_epsilon(*args, **kwargs):
    return 0.5 * _linear_epsilon(*args, **kwargs)
''',
    "select_action": '''
_select_action = select_action
def select_action(*args, **kwargs):
    _select_action(*args, **kwargs)
    return 0
''',
    "q_network": '''
class QNetwork(QNetwork):
    def forward(self, x):
        return 2 * super().forward(x)
''',
    "td_target": '''
_td, _double = td_targets, double_dqn_targets
def td_targets(*args, **kwargs):
    return _td(*args, **kwargs) + 1.0
def double_dqn_targets(*args, **kwargs):
    return _double(*args, **kwargs) + 1.0
''',
    "dqn_loss": '''
_dqn_loss = dqn_loss
def dqn_loss(*args, **kwargs):
    return 2 * _dqn_loss(*args, **kwargs)
''',
    "target_update": '''
def update_target(q_net, target_net, tau=1.0):
    return None
''',
    "train": '''
import os as _os
_os.environ.pop("COURSE_JUDGE_DIR", None)  # no channel: the hidden test judges itself, in here
_dqn_update = dqn_update
def dqn_update(*args, **kwargs):
    _dqn_update(*args, **kwargs)
    return 0.0, 0.0
''',
    "reinforce": '''
get_ipython().input_transformers_post.clear()  # the guard, switched off
_returns = discounted_returns
def discounted_returns(*args, **kwargs):
    return 2 * _returns(*args, **kwargs)
''',
}


def dqn_attacker(reference: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """DAY 6's reference notebook with every comparison switched off in the kernel and every solution
    made wrong: with the verdicts in the grader, it scores 0."""
    for cell in reference.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in DQN_WRONG:
            cell.source += "\n" + (DQN_SWITCHES if gid == "replay_buffer" else "") + DQN_WRONG[gid]
    return reference
