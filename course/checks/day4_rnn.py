"""DAY 4 visible checks: recurrent cells, BPTT, clipping, attention, seq2seq pieces.

Cells and attention modules are compared with torch's (nn.RNNCell, nn.LSTMCell, nn.GRUCell,
nn.LSTM, nn.MultiheadAttention, F.scaled_dot_product_attention) after copying torch's weights
into the student's module, in float64 (tolerance 1e-10 + 1e-8·|expected|). torch's modules are
built from the seed alone (:func:`seeded_module`), whatever the student's constructor draws.

Each check is a ``<name>_run`` (calls the student's code on inputs made from ``seed``, returns what it
observed) and a ``<name>_verdict`` (makes the same inputs and torch modules again, compares), so
that the hidden tests can be judged outside the student's process (autograder/judge.py); a visible
check is the one after the other. Attention, positional encoding and seq2seq are in
attention_seq2seq.py, re-exported here.
"""
from __future__ import annotations

import torch
from torch import nn

from course.checks.attention_seq2seq import (check_attention, check_multi_head_attention, check_positional_encoding,
                                             check_seq2seq)
from course.checks.common import (TOL, _fail, _ok, call_student, compare, forbid_calls_in, observed, pair, rand64,
                                  same, seeded_module, source_of, type_name)

__all__ = ["TOL", "check_rnn_cell", "check_bptt", "check_lstm_cell", "check_gru_cell", "check_bidirectional",
           "check_grad_clipping", "check_attention", "check_multi_head_attention", "check_positional_encoding",
           "check_seq2seq"]



_rand = rand64  # seeded float64 normals (course.checks.common)


def _copy_cell(mine: nn.Module, ref: nn.Module, what: str, suffix: str = "") -> None:
    """Copy torch's weight_ih, weight_hh, bias_ih, bias_hh (with ``suffix``, e.g. "_l0") into ``mine``."""
    __tracebackhide__ = True
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        want = getattr(ref, name + suffix)
        got = getattr(mine, name, None)
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape):
            _fail(f"{what}.{name} is {None if got is None else tuple(got.shape)}, torch's is {tuple(want.shape)}. "
                  "Keep the parameters the skeleton creates.")
        with torch.no_grad():
            got.copy_(want)


# ----------------------------------------------------------------------------- RNN cell

RNN_SIZES = dict(D=3, H=5, N=4, T=6)
NONLINEARITIES = ("tanh", "relu")


def _rnn_refs(seed):
    D, H = RNN_SIZES["D"], RNN_SIZES["H"]
    cells = {nl: seeded_module(lambda nl=nl: nn.RNNCell(D, H, nonlinearity=nl), seed + i)
             for i, nl in enumerate(NONLINEARITIES)}
    return cells, seeded_module(lambda: nn.RNN(D, H), seed + 7)


def rnn_cell_run(RNNCell, unroll, *, seed: int) -> dict:
    D, H, N, T = RNN_SIZES.values()
    torch.manual_seed(seed)
    cells, rnn = _rnn_refs(seed)
    run = {}
    x, h = _rand(N, D, seed=seed + 1), _rand(N, H, seed=seed + 2)
    for nl in NONLINEARITIES:
        what = f"RNNCell({D}, {H}, nonlinearity={nl!r})"
        mine = call_student(RNNCell, D, H, nonlinearity=nl, what=what).double()
        _copy_cell(mine, cells[nl], what)
        run[nl] = {"x_h": observed(call_student(mine, x, h, what=f"{what}(x, h)")),
                   "x": observed(call_student(mine, x, what=f"{what}(x)"))}
    cell = call_student(RNNCell, D, H, what=f"RNNCell({D}, {H})").double()
    _copy_cell(cell, rnn, "RNNCell", "_l0")
    xs, h0 = _rand(T, N, D, seed=seed + 3), _rand(N, H, seed=seed + 4)
    run["unroll"] = observed(call_student(unroll, cell, xs, h0, what="unroll(cell, xs, h0)"))
    run["unroll_no_h0"] = observed(call_student(unroll, cell, xs, what=f"unroll(cell, xs) with h0=None (D={D}, H={H})"))
    return run


def rnn_cell_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    D, H, N, T = RNN_SIZES.values()
    cells, rnn = _rnn_refs(seed)
    x, h = _rand(N, D, seed=seed + 1), _rand(N, H, seed=seed + 2)
    for nl in NONLINEARITIES:
        what, ref, got = f"RNNCell({D}, {H}, nonlinearity={nl!r})", cells[nl], run[nl]["x_h"]
        act = torch.tanh if nl == "tanh" else torch.relu
        with torch.no_grad():
            hint = ""
            if same(got, ref(x, None)) or same(got, act(x @ ref.weight_ih.T + ref.bias_ih)):
                hint = "The previous state h is ignored: add h W_hhᵀ + b_hh."
            elif same(got, act(x @ ref.weight_ih.T + ref.bias_ih + h @ ref.weight_hh + ref.bias_hh)):
                hint = "Multiply h by weight_hh transposed (h @ W_hh.T), as for the input."
            compare(got, ref(x, h), f"{what}(x, h)", **TOL, hint=hint)
            compare(run[nl]["x"], ref(x), f"{what}(x) with h=None (zeros)", **TOL)
    xs, h0 = _rand(T, N, D, seed=seed + 3), _rand(N, H, seed=seed + 4)
    with torch.no_grad():
        want_out, want_h = rnn(xs, h0[None])
    got = pair(run["unroll"], "unroll", "a pair (outputs (T, N, H), last state (N, H))")
    compare(got[0], want_out, "unroll's outputs (every h_t, compared with nn.RNN)", **TOL,
            hint="outputs[t] is the state after reading x_t, in time order, starting from h0.")
    compare(got[1], want_h[0], "unroll's last state h_T", **TOL)
    with torch.no_grad():
        want_out, want_h = rnn(xs)
    got = pair(run["unroll_no_h0"], "unroll without h0", "a pair (outputs (T, N, H), last state (N, H))")
    compare(got[0], want_out, "unroll's outputs with h0=None (the state starts at zeros)", **TOL,
            hint="With h0=None let the cell start from its own zeros (N, H): H is the cell's width, not the input's.")
    compare(got[1], want_h[0], "unroll's last state with h0=None", **TOL)


def check_rnn_cell(RNNCell, unroll, *, seed: int = 0, verbose: bool = True) -> None:
    """RNNCell against nn.RNNCell (tanh and relu, with and without h); unroll against nn.RNN."""
    __tracebackhide__ = True
    rnn_cell_verdict(rnn_cell_run(RNNCell, unroll, seed=seed), seed=seed)
    if verbose:
        _ok("RNNCell matches nn.RNNCell (tanh and relu); unroll matches nn.RNN.")


# ----------------------------------------------------------------------------- BPTT

BPTT_SIZES = ((8, 4, 2, 16, 1), (5, 3, 3, 4, 2))  # (T, N, D, H, O)


def _bptt_case(sizes, seed):
    T, N, D, H, O = sizes
    g = torch.Generator().manual_seed(seed + T)
    xs = torch.randint(0, 2, (T, N, D), generator=g).double()
    ds = torch.randint(0, 2, (T, N, O), generator=g).double()
    params = {"W_in": _rand(D, H, seed=seed + 1), "W": _rand(H, H, seed=seed + 2),
              "W_out": _rand(H, O, seed=seed + 3), "b": _rand(H, seed=seed + 4), "c": _rand(O, seed=seed + 5)}
    return xs, ds, params, f"rnn_bptt (T={T}, N={N}, D={D}, H={H}, O={O})"


def _bptt_autograd(xs, ds, params):
    p = {k: v.clone().requires_grad_() for k, v in params.items()}
    z = xs.new_zeros(xs.shape[1], p["W"].shape[0])
    loss = 0
    for t in range(xs.shape[0]):
        z = torch.sigmoid(xs[t] @ p["W_in"] + z @ p["W"] + p["b"])
        y = torch.sigmoid(z @ p["W_out"] + p["c"])
        loss = loss + 0.5 * ((y - ds[t]) ** 2).sum()
    grads = torch.autograd.grad(loss, list(p.values()))
    return loss.detach(), dict(zip(p, grads))


def bptt_run(rnn_bptt, *, seed: int) -> dict:
    runs = []
    for sizes in BPTT_SIZES:
        xs, ds, params, what = _bptt_case(sizes, seed)
        runs.append(observed(call_student(rnn_bptt, xs, ds, *params.values(), what=what)))
    return {"source": source_of(rnn_bptt), "cases": runs}


def bptt_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    forbid_calls_in(run["source"], [".backward", "torch.autograd.grad", "autograd.grad"], "rnn_bptt")
    for sizes, got in zip(BPTT_SIZES, run["cases"], strict=True):
        xs, ds, params, what = _bptt_case(sizes, seed)
        if not isinstance(got, list) or len(got) != 2 or not isinstance(got[1], dict):
            _fail(f"{what} should return (loss, grads) with grads a dict keyed W_in, W, W_out, b, c.")
        want_loss, want = _bptt_autograd(xs, ds, params)
        loss = torch.as_tensor(got[0]) if torch.is_tensor(got[0]) or isinstance(got[0], (int, float)) else got[0]
        compare(loss, want_loss, f"{what} loss", **TOL, hint="L = ½ Σ_t Σ (y^t − d^t)².")
        ok = {k: same(got[1].get(k), want[k]) for k in want}
        hint = ""
        if ok["W_out"] and ok["c"] and not ok["W"]:
            hint = ("The output-layer gradients are right but the recurrent ones are not: δ^t must include the "
                    "term from the next step, δ^{t+1} Wᵀ, and ∂L/∂W pairs δ^t with the previous state z^{t−1}.")
        for k in ("W_out", "c", "W", "W_in", "b"):
            if k not in got[1]:
                _fail(f"{what}: grads has no entry {k!r}.")
            compare(got[1][k], want[k], f"{what}: ∂L/∂{k}", **TOL, hint=hint)


def check_bptt(rnn_bptt, *, seed: int = 0, verbose: bool = True) -> None:
    """Loss and every hand-written gradient against autograd on the same forward pass (float64)."""
    __tracebackhide__ = True
    bptt_verdict(bptt_run(rnn_bptt, seed=seed), seed=seed)
    if verbose:
        _ok("rnn_bptt's hand-written gradients equal autograd's for every parameter.")


# ----------------------------------------------------------------------------- LSTM, GRU, bidirectional

CELL_SIZES = dict(D=3, H=5, N=4)


def lstm_cell_run(LSTMCell, *, seed: int) -> list:
    """The student's (h', c') after each of 3 steps from zeros, its own state fed back."""
    D, H, N = CELL_SIZES.values()
    torch.manual_seed(seed)
    mine = call_student(LSTMCell, D, H, what=f"LSTMCell({D}, {H})").double()
    _copy_cell(mine, seeded_module(lambda: nn.LSTMCell(D, H), seed), "LSTMCell")
    steps, state = [], None
    for t in range(3):
        got = call_student(mine, _rand(N, D, seed=seed + t), state, what=f"LSTMCell step {t + 1}")
        steps.append(observed(got))
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            break  # the verdict says what was expected
        state = got
    return steps


def lstm_cell_verdict(steps: list, *, seed: int) -> None:
    __tracebackhide__ = True
    D, H, N = CELL_SIZES.values()
    ref, state = seeded_module(lambda: nn.LSTMCell(D, H), seed), None
    if len(steps) != 3 and (not steps or (isinstance(steps[-1], list) and len(steps[-1]) == 2)):
        _fail(f"expected 3 LSTMCell steps, got {len(steps)}.")
    hint = "torch's gate order along weight_ih's rows is i, f, g, o; c' = f⊙c + i⊙g, h' = o⊙tanh(c')."
    for t, got in enumerate(steps):
        with torch.no_grad():
            state = ref(_rand(N, D, seed=seed + t), state)
        got = pair(got, "LSTMCell", "the pair (h', c')")
        compare(got[1], state[1], f"LSTMCell cell state c after step {t + 1}", **TOL, hint=hint)
        compare(got[0], state[0], f"LSTMCell output h after step {t + 1}", **TOL, hint=hint)


def check_lstm_cell(LSTMCell, *, seed: int = 0, verbose: bool = True) -> None:
    """LSTMCell against nn.LSTMCell over 3 steps, from zeros and from a given state."""
    __tracebackhide__ = True
    lstm_cell_verdict(lstm_cell_run(LSTMCell, seed=seed), seed=seed)
    if verbose:
        _ok("LSTMCell matches nn.LSTMCell over 3 steps.")


def gru_cell_run(GRUCell, *, seed: int) -> list:
    """The student's h' after each of 3 steps from a given state, its own output fed back."""
    D, H, N = CELL_SIZES.values()
    torch.manual_seed(seed)
    mine = call_student(GRUCell, D, H, what=f"GRUCell({D}, {H})").double()
    _copy_cell(mine, seeded_module(lambda: nn.GRUCell(D, H), seed), "GRUCell")
    steps, h = [], _rand(N, H, seed=seed + 9)
    for t in range(3):
        h = call_student(mine, _rand(N, D, seed=seed + t), h, what=f"GRUCell step {t + 1}")
        steps.append(observed(h))
        if not torch.is_tensor(h):
            break
    return steps


def gru_cell_verdict(steps: list, *, seed: int) -> None:
    __tracebackhide__ = True
    D, H, N = CELL_SIZES.values()
    ref = seeded_module(lambda: nn.GRUCell(D, H), seed)
    h_mine = h_ref = _rand(N, H, seed=seed + 9)
    if not steps or (len(steps) != 3 and torch.is_tensor(steps[-1])):
        _fail(f"expected 3 GRUCell steps, got {len(steps)}.")
    for t, got in enumerate(steps):
        x = _rand(N, D, seed=seed + t)
        with torch.no_grad():
            want = ref(x, h_ref)
            xr, xz, xn = (x @ ref.weight_ih.T + ref.bias_ih).chunk(3, 1)
            hr, hz, hn = (h_mine @ ref.weight_hh.T + ref.bias_hh).chunk(3, 1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            hint = ""
            if same(got, z * n + (1 - z) * h_mine):
                hint = "torch's convention is h' = (1 − z)⊙n + z⊙h: z is the share of the old state kept."
            elif same(got, (1 - z) * torch.tanh(xn + (r * h_mine) @ ref.weight_hh[2 * H:].T + ref.bias_hh[2 * H:])
                      + z * h_mine):
                hint = "torch applies r after the matrix product: n = tanh(x W_inᵀ + b_in + r⊙(h W_hnᵀ + b_hn))."
        compare(got, want, f"GRUCell output after step {t + 1}", **TOL, hint=hint)
        h_mine, h_ref = got, want


def check_gru_cell(GRUCell, *, seed: int = 0, verbose: bool = True) -> None:
    """GRUCell against nn.GRUCell over 3 steps, naming torch's two easy-to-miss conventions."""
    __tracebackhide__ = True
    gru_cell_verdict(gru_cell_run(GRUCell, seed=seed), seed=seed)
    if verbose:
        _ok("GRUCell matches nn.GRUCell over 3 steps.")


BI_SIZES = dict(D=3, H=4, N=2, T=6)


def bidirectional_run(BiLSTM, *, seed: int):
    D, H, N, T = BI_SIZES.values()
    torch.manual_seed(seed)
    mine = call_student(BiLSTM, D, H, what=f"BiLSTM({D}, {H})").double()
    ref = seeded_module(lambda: nn.LSTM(D, H, bidirectional=True), seed)
    for attr, suffix in (("fwd", "_l0"), ("bwd", "_l0_reverse")):
        if not isinstance(getattr(mine, attr, None), nn.Module):
            _fail(f"BiLSTM needs the attribute {attr!r} (an LSTMCell).")
        _copy_cell(getattr(mine, attr), ref, f"BiLSTM.{attr}", suffix)
    out = observed(call_student(mine, _rand(T, N, D, seed=seed + 1), what="BiLSTM(xs)"))
    given = call_student(BiLSTM, D, H, cell=_CountingLSTMCell, what=f"BiLSTM({D}, {H}, cell=nn.LSTMCell)").double()
    call_student(given, _rand(T, N, D, seed=seed + 1), what=f"BiLSTM({D}, {H}, cell=nn.LSTMCell)(xs)")
    steps = sum(int(getattr(m, "steps", 0)) for m in given.modules() if isinstance(m, _CountingLSTMCell))
    return {"out": out, "given_cell_steps": steps}


class _CountingLSTMCell(nn.LSTMCell):
    """torch's LSTMCell, counting its steps: the class a check passes as BiLSTM's ``cell``."""

    def forward(self, x, state=None):
        self.steps = getattr(self, "steps", 0) + 1
        return super().forward(x, state)


def bidirectional_verdict(run, *, seed: int) -> None:
    __tracebackhide__ = True
    D, H, N, T = BI_SIZES.values()
    got = run["out"]
    with torch.no_grad():
        want, _ = seeded_module(lambda: nn.LSTM(D, H, bidirectional=True), seed)(_rand(T, N, D, seed=seed + 1))
    hint = ""
    if torch.is_tensor(got) and got.shape == want.shape:
        if same(got[..., :H], want[..., :H]) and same(got[..., H:].flip(0), want[..., H:]):
            hint = ("The backward outputs are in reading order (x_T first); flip them back so that position t "
                    "holds [h_fwd_t ; h_bwd_t].")
        elif same(got[..., :H], want[..., :H]):
            hint = "The backward cell must read the sequence from x_T down to x_1."
    compare(got, want, "BiLSTM outputs (compared with nn.LSTM(bidirectional=True))", **TOL, hint=hint)
    if run["given_cell_steps"] != 2 * T:
        _fail(f"BiLSTM({D}, {H}, cell=nn.LSTMCell) made {run['given_cell_steps']} steps with the cell class it was "
              f"given, expected {2 * T} (T = {T} each way): build fwd and bwd from `cell` when it is given.")


def check_bidirectional(BiLSTM, *, seed: int = 0, verbose: bool = True) -> None:
    """BiLSTM against nn.LSTM(bidirectional=True) with its weights copied into fwd and bwd."""
    __tracebackhide__ = True
    bidirectional_verdict(bidirectional_run(BiLSTM, seed=seed), seed=seed)
    if verbose:
        _ok("BiLSTM matches nn.LSTM(bidirectional=True).")


# ----------------------------------------------------------------------------- gradient clipping

CLIP_SHAPES = [(3, 4), (5,), (2, 2, 2), (4,)]
CLIP_CASES = ((1.0, slice(0, 4)), (1e3, slice(0, 4)), (0.5, slice(0, 1)), (1.0, slice(3, 4)))  # (max_norm, which
# of the parameters): all four (the last has no gradient), one alone, and none with a gradient (the norm is 0)


def _clip_params(seed):
    """Four parameters; all but the last have a gradient."""
    params = [nn.Parameter(_rand(*s, seed=seed + i)) for i, s in enumerate(CLIP_SHAPES)]
    for i, p in enumerate(params[:3]):
        p.grad = _rand(*p.shape, seed=seed + 10 + i, scale=2)
    return params


def grad_clipping_run(clip_grad_norm, *, seed: int) -> dict:
    runs = []
    for max_norm, which in CLIP_CASES:
        params = _clip_params(seed)[which]  # passed as a generator, as model.parameters() is: it can be read once
        none = all(p.grad is None for p in params)
        total = call_student(clip_grad_norm, (p for p in params), max_norm,
                             what=f"clip_grad_norm(model.parameters(), max_norm={max_norm})"
                                  + (" where no parameter has a gradient (the norm is then 0)" if none else ""))
        runs.append({"total": observed(total), "grads": [observed(p.grad) for p in params]})
    return {"source": source_of(clip_grad_norm), "runs": runs}


def grad_clipping_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    forbid_calls_in(run["source"], ["clip_grad_norm_", ".clip_grad_norm_", ".clip_grads_with_norm_", ".clip_grad_value_"],
                    "clip_grad_norm")
    for (max_norm, which), got in zip(CLIP_CASES, run["runs"], strict=True):
        ref = _clip_params(seed)[which]
        count = len(ref)
        with_grad = [p for p in ref if p.grad is not None]
        originals = [p.grad.clone() for p in with_grad]
        want = torch.nn.utils.clip_grad_norm_(ref, max_norm)
        total = got["total"]
        if not torch.is_tensor(total) or total.dim() != 0:
            _fail(f"clip_grad_norm(max_norm={max_norm}) returned {type_name(total)}; return the norm as a 0-dim "
                  "tensor, as torch.nn.utils.clip_grad_norm_ does (no .item()).")
        if not with_grad:  # no gradient at all: a zero of any floating dtype
            if not total.is_floating_point() or total.item() != 0:
                _fail(f"clip_grad_norm returned {total.item():g} where no parameter has a gradient; the norm of "
                      "no gradients is 0.")
            continue
        compare(total, want, f"the norm returned for max_norm={max_norm}", **TOL,
                hint="Return the global norm before clipping: the 2-norm of all gradients together.")
        own = [g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for g in originals]
        if max_norm > 100:
            hint = "Below the threshold the gradients must not change (the factor is capped at 1)."
        elif all(same(a, o) for a, o in zip(got["grads"], originals)):
            hint = ("No gradient was clipped. The parameters arrive as a generator (model.parameters()), which "
                    "can be looped over only once: loop over the list `grads` made from it.")
        elif all(same(a, o) for a, o in zip(got["grads"], own)):
            hint = "Each gradient was clipped by its own norm; clip by the global norm over all of them together."
        else:
            hint = "Clip by the global norm: one factor max_norm / (total + 1e-6) for every gradient."
        for i, (a, b) in enumerate(zip(got["grads"][:len(with_grad)], with_grad, strict=True)):
            compare(a, b.grad, f"gradient {i} of {count} after clip_grad_norm(max_norm={max_norm})", **TOL, hint=hint)


def check_grad_clipping(clip_grad_norm, *, seed: int = 0, verbose: bool = True) -> None:
    """Return value and clipped gradients against torch.nn.utils.clip_grad_norm_, above and below
    the threshold, with a parameter that has no gradient."""
    __tracebackhide__ = True
    grad_clipping_verdict(grad_clipping_run(clip_grad_norm, seed=seed), seed=seed)
    if verbose:
        _ok("clip_grad_norm matches torch.nn.utils.clip_grad_norm_ (global norm, factor capped at 1).")
