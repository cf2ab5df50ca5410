"""DAY 4 visible checks: recurrent cells, BPTT, clipping, attention, seq2seq pieces.

Cells and attention modules are compared with torch's (nn.RNNCell, nn.LSTMCell, nn.GRUCell,
nn.LSTM, nn.MultiheadAttention, F.scaled_dot_product_attention) after copying torch's weights
into the student's module, in float64 (tolerance 1e-10 + 1e-8·|expected|).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from course.checks.common import _fail, _ok, call_student, compare, forbid_calls, rand64

TOL = dict(atol=1e-10, rtol=1e-8)


_rand = rand64  # seeded float64 normals (course.checks.common)


def _same(a, b) -> bool:
    return torch.is_tensor(a) and a.shape == b.shape and torch.allclose(a.detach(), b, rtol=1e-6, atol=1e-9)


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

def check_rnn_cell(RNNCell, unroll, *, seed: int = 0, verbose: bool = True) -> None:
    """RNNCell against nn.RNNCell (tanh and relu, with and without h); unroll against nn.RNN."""
    __tracebackhide__ = True
    torch.manual_seed(seed)
    D, H, N, T = 3, 5, 4, 6
    for nl in ("tanh", "relu"):
        what = f"RNNCell({D}, {H}, nonlinearity={nl!r})"
        mine = call_student(RNNCell, D, H, nonlinearity=nl, what=what).double()
        ref = nn.RNNCell(D, H, nonlinearity=nl).double()
        _copy_cell(mine, ref, what)
        x, h = _rand(N, D, seed=seed + 1), _rand(N, H, seed=seed + 2)
        got = call_student(mine, x, h, what=f"{what}(x, h)")
        hint = ""
        act = torch.tanh if nl == "tanh" else torch.relu
        if _same(got, ref(x, None)) or _same(got, act(x @ ref.weight_ih.T + ref.bias_ih)):
            hint = "The previous state h is ignored: add h W_hhᵀ + b_hh."
        elif _same(got, act(x @ ref.weight_ih.T + ref.bias_ih + h @ ref.weight_hh + ref.bias_hh)):
            hint = "Multiply h by weight_hh transposed (h @ W_hh.T), as for the input."
        compare(got, ref(x, h), f"{what}(x, h)", **TOL, hint=hint)
        compare(call_student(mine, x, what=f"{what}(x)"), ref(x), f"{what}(x) with h=None (zeros)", **TOL)
    cell = call_student(RNNCell, D, H, what=f"RNNCell({D}, {H})").double()
    rnn = nn.RNN(D, H).double()
    _copy_cell(cell, rnn, "RNNCell", "_l0")
    xs, h0 = _rand(T, N, D, seed=seed + 3), _rand(N, H, seed=seed + 4)
    got = call_student(unroll, cell, xs, h0, what="unroll(cell, xs, h0)")
    want_out, want_h = rnn(xs, h0[None])
    if not isinstance(got, tuple) or len(got) != 2:
        _fail("unroll should return a pair (outputs (T, N, H), last state (N, H)).")
    compare(got[0], want_out, "unroll's outputs (every h_t, compared with nn.RNN)", **TOL,
            hint="outputs[t] is the state after reading x_t, in time order, starting from h0.")
    compare(got[1], want_h[0], "unroll's last state h_T", **TOL)
    if verbose:
        _ok("RNNCell matches nn.RNNCell (tanh and relu); unroll matches nn.RNN.")


# ----------------------------------------------------------------------------- BPTT

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


def check_bptt(rnn_bptt, *, seed: int = 0, verbose: bool = True) -> None:
    """Loss and every hand-written gradient against autograd on the same forward pass (float64)."""
    __tracebackhide__ = True
    forbid_calls(rnn_bptt, [".backward", "torch.autograd.grad", "autograd.grad"], "rnn_bptt")
    for T, N, D, H, O in ((8, 4, 2, 16, 1), (5, 3, 3, 4, 2)):
        g = torch.Generator().manual_seed(seed + T)
        xs = torch.randint(0, 2, (T, N, D), generator=g).double()
        ds = torch.randint(0, 2, (T, N, O), generator=g).double()
        params = {"W_in": _rand(D, H, seed=seed + 1), "W": _rand(H, H, seed=seed + 2),
                  "W_out": _rand(H, O, seed=seed + 3), "b": _rand(H, seed=seed + 4), "c": _rand(O, seed=seed + 5)}
        what = f"rnn_bptt (T={T}, N={N}, D={D}, H={H}, O={O})"
        got = call_student(rnn_bptt, xs, ds, *params.values(), what=what)
        if not isinstance(got, tuple) or len(got) != 2 or not isinstance(got[1], dict):
            _fail(f"{what} should return (loss, grads) with grads a dict keyed W_in, W, W_out, b, c.")
        want_loss, want = _bptt_autograd(xs, ds, params)
        compare(torch.as_tensor(got[0]), want_loss, f"{what} loss", **TOL, hint="L = ½ Σ_t Σ (y^t − d^t)².")
        ok = {k: _same(got[1].get(k), want[k]) for k in want}
        hint = ""
        if ok["W_out"] and ok["c"] and not ok["W"]:
            hint = ("The output-layer gradients are right but the recurrent ones are not: δ^t must include the "
                    "term from the next step, δ^{t+1} Wᵀ, and ∂L/∂W pairs δ^t with the previous state z^{t−1}.")
        for k in ("W_out", "c", "W", "W_in", "b"):
            if k not in got[1]:
                _fail(f"{what}: grads has no entry {k!r}.")
            compare(got[1][k], want[k], f"{what}: ∂L/∂{k}", **TOL, hint=hint)
    if verbose:
        _ok("rnn_bptt's hand-written gradients equal autograd's for every parameter.")


# ----------------------------------------------------------------------------- LSTM, GRU, bidirectional

def check_lstm_cell(LSTMCell, *, seed: int = 0, verbose: bool = True) -> None:
    """LSTMCell against nn.LSTMCell over 3 steps, from zeros and from a given state."""
    __tracebackhide__ = True
    torch.manual_seed(seed)
    D, H, N = 3, 4, 5
    mine = call_student(LSTMCell, D, H, what=f"LSTMCell({D}, {H})").double()
    ref = nn.LSTMCell(D, H).double()
    _copy_cell(mine, ref, "LSTMCell")
    s_mine = s_ref = None
    for t in range(3):
        x = _rand(N, D, seed=seed + t)
        got = call_student(mine, x, s_mine, what=f"LSTMCell step {t + 1}")
        s_ref = ref(x, s_ref)
        if not isinstance(got, tuple) or len(got) != 2:
            _fail("LSTMCell should return the pair (h', c').")
        hint = "torch's gate order along weight_ih's rows is i, f, g, o; c' = f⊙c + i⊙g, h' = o⊙tanh(c')."
        compare(got[1], s_ref[1], f"LSTMCell cell state c after step {t + 1}", **TOL, hint=hint)
        compare(got[0], s_ref[0], f"LSTMCell output h after step {t + 1}", **TOL, hint=hint)
        s_mine = got
    if verbose:
        _ok("LSTMCell matches nn.LSTMCell over 3 steps.")


def check_gru_cell(GRUCell, *, seed: int = 0, verbose: bool = True) -> None:
    """GRUCell against nn.GRUCell over 3 steps, naming torch's two easy-to-miss conventions."""
    __tracebackhide__ = True
    torch.manual_seed(seed)
    D, H, N = 3, 4, 5
    mine = call_student(GRUCell, D, H, what=f"GRUCell({D}, {H})").double()
    ref = nn.GRUCell(D, H).double()
    _copy_cell(mine, ref, "GRUCell")
    h_mine = h_ref = _rand(N, H, seed=seed + 9)
    for t in range(3):
        x = _rand(N, D, seed=seed + t)
        got = call_student(mine, x, h_mine, what=f"GRUCell step {t + 1}")
        want = ref(x, h_ref)
        xr, xz, xn = (x @ ref.weight_ih.T + ref.bias_ih).chunk(3, 1)
        hr, hz, hn = (h_mine.detach() @ ref.weight_hh.T + ref.bias_hh).chunk(3, 1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        hint = ""
        if _same(got, z * n + (1 - z) * h_mine):
            hint = "torch's convention is h' = (1 − z)⊙n + z⊙h: z is the share of the old state kept."
        elif _same(got, (1 - z) * torch.tanh(xn + (r * h_mine) @ ref.weight_hh[2 * H:].T + ref.bias_hh[2 * H:])
                   + z * h_mine):
            hint = "torch applies r after the matrix product: n = tanh(x W_inᵀ + b_in + r⊙(h W_hnᵀ + b_hn))."
        compare(got, want, f"GRUCell output after step {t + 1}", **TOL, hint=hint)
        h_mine, h_ref = got, want
    if verbose:
        _ok("GRUCell matches nn.GRUCell over 3 steps.")


def check_bidirectional(BiLSTM, *, seed: int = 0, verbose: bool = True) -> None:
    """BiLSTM against nn.LSTM(bidirectional=True) with its weights copied into fwd and bwd."""
    __tracebackhide__ = True
    torch.manual_seed(seed)
    D, H, N, T = 3, 4, 2, 6
    mine = call_student(BiLSTM, D, H, what=f"BiLSTM({D}, {H})").double()
    ref = nn.LSTM(D, H, bidirectional=True).double()
    for attr, suffix in (("fwd", "_l0"), ("bwd", "_l0_reverse")):
        if not isinstance(getattr(mine, attr, None), nn.Module):
            _fail(f"BiLSTM needs the attribute {attr!r} (an LSTMCell).")
        _copy_cell(getattr(mine, attr), ref, f"BiLSTM.{attr}", suffix)
    xs = _rand(T, N, D, seed=seed + 1)
    got = call_student(mine, xs, what="BiLSTM(xs)")
    want, _ = ref(xs)
    hint = ""
    if torch.is_tensor(got) and got.shape == want.shape:
        if _same(got[..., :H], want[..., :H]) and _same(got[..., H:].flip(0), want[..., H:]):
            hint = ("The backward outputs are in reading order (x_T first); flip them back so that position t "
                    "holds [h_fwd_t ; h_bwd_t].")
        elif _same(got[..., :H], want[..., :H]):
            hint = "The backward cell must read the sequence from x_T down to x_1."
    compare(got, want, "BiLSTM outputs (compared with nn.LSTM(bidirectional=True))", **TOL, hint=hint)
    if verbose:
        _ok("BiLSTM matches nn.LSTM(bidirectional=True).")


# ----------------------------------------------------------------------------- gradient clipping

def check_grad_clipping(clip_grad_norm, *, seed: int = 0, verbose: bool = True) -> None:
    """Return value and clipped gradients against torch.nn.utils.clip_grad_norm_, above and below
    the threshold, with a parameter that has no gradient."""
    __tracebackhide__ = True
    forbid_calls(clip_grad_norm, ["clip_grad_norm_", ".clip_grad_norm_", ".clip_grads_with_norm_", ".clip_grad_value_"], "clip_grad_norm")
    for max_norm in (1.0, 1e3):
        mine = [nn.Parameter(_rand(*s, seed=seed + i)) for i, s in enumerate([(3, 4), (5,), (2, 2, 2), (4,)])]
        ref = [nn.Parameter(p.detach().clone()) for p in mine]
        for i, (a, b) in enumerate(zip(mine, ref)):
            if i != 3:  # the last parameter has no gradient
                a.grad = _rand(*a.shape, seed=seed + 10 + i, scale=2)
                b.grad = a.grad.clone()
        originals = [b.grad.clone() for b in ref[:3]]
        total = call_student(clip_grad_norm, mine, max_norm, what=f"clip_grad_norm(params, max_norm={max_norm})")
        want = torch.nn.utils.clip_grad_norm_(ref, max_norm)
        compare(torch.as_tensor(total, dtype=want.dtype), want, f"the norm returned for max_norm={max_norm}", **TOL,
                hint="Return the global norm before clipping: the 2-norm of all gradients together.")
        own = [g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for g in originals]
        if max_norm > 100:
            hint = "Below the threshold the gradients must not change (the factor is capped at 1)."
        elif all(_same(a.grad, o) for a, o in zip(mine[:3], own)):
            hint = "Each gradient was clipped by its own norm; clip by the global norm over all of them together."
        else:
            hint = "Clip by the global norm: one factor max_norm / (total + 1e-6) for every gradient."
        for i, (a, b) in enumerate(zip(mine[:3], ref[:3])):
            compare(a.grad, b.grad, f"gradient {i} after clip_grad_norm(max_norm={max_norm})", **TOL, hint=hint)
    if verbose:
        _ok("clip_grad_norm matches torch.nn.utils.clip_grad_norm_ (global norm, factor capped at 1).")


# ----------------------------------------------------------------------------- attention

def check_attention(scaled_dot_product_attention, AdditiveAttention, *, seed: int = 0, verbose: bool = True) -> None:
    """scaled_dot_product_attention against F.scaled_dot_product_attention with no mask, a
    boolean mask and is_causal, masked weights exactly 0; AdditiveAttention against its formula."""
    __tracebackhide__ = True
    sdpa = scaled_dot_product_attention
    forbid_calls(sdpa, ["F.scaled_dot_product_attention", ".scaled_dot_product_attention", "nn.MultiheadAttention"],
                 "scaled_dot_product_attention")
    q, k, v = _rand(2, 3, 5, 8, seed=seed), _rand(2, 3, 7, 8, seed=seed + 1), _rand(2, 3, 7, 4, seed=seed + 2)
    mask = torch.rand(2, 1, 5, 7, generator=torch.Generator().manual_seed(seed)) > 0.3
    mask[..., 0] = True  # every query may attend somewhere
    for kwargs, desc in (({}, "no mask"), ({"mask": mask}, "a boolean mask"), ({"is_causal": True}, "is_causal=True")):
        kk, vv = (k[:, :, :5], v[:, :, :5]) if "is_causal" in kwargs else (k, v)
        what = f"scaled_dot_product_attention with {desc}"
        got = call_student(sdpa, q, kk, vv, **kwargs, what=what)
        if not isinstance(got, tuple) or len(got) != 2:
            _fail(f"{what} should return (output, weights).")
        out, w = got
        ref_mask = kwargs.get("mask")
        want = F.scaled_dot_product_attention(q, kk, vv, attn_mask=ref_mask, is_causal=kwargs.get("is_causal", False))
        scores = q @ kk.transpose(-2, -1)
        allowed = torch.ones_like(scores, dtype=torch.bool)
        if ref_mask is not None:
            allowed = allowed & ref_mask
        if kwargs.get("is_causal"):
            allowed = allowed & torch.ones(5, 5, dtype=torch.bool).tril()
        hint = ""
        if _same(w, torch.softmax(scores.masked_fill(~allowed, -math.inf), -1)):
            hint = "Divide the scores by √d before the softmax (d = the last dim of q)."
        elif torch.is_tensor(w) and w.shape == scores.shape and (w.detach()[~allowed] == 0).all() and \
                not torch.allclose(w.detach().sum(-1), torch.ones((), dtype=w.dtype)):
            hint = "Mask before the softmax (scores → −∞), so that the remaining weights still sum to 1."
        elif torch.is_tensor(w) and w.shape == scores.shape and not (w.detach()[~allowed] == 0).all():
            hint = "Masked positions must get weight exactly 0: True in the mask means 'may attend'; causal " \
                   "means key j ≤ query i."
        compare(w, torch.softmax(scores.masked_fill(~allowed, -math.inf) / math.sqrt(8), -1),
                f"{what}: attention weights", **TOL, hint=hint)
        compare(out, want, f"{what}: output", **TOL, hint=hint)
    # additive attention against its formula, with the student's own parameters
    Dq, Dk, Dv, Hd, N, S = 6, 5, 3, 7, 4, 9
    att = call_student(AdditiveAttention, Dq, Dk, Hd, what=f"AdditiveAttention({Dq}, {Dk}, {Hd})").double()
    shapes = {n: tuple(p.shape) for n, p in att.named_parameters()}
    want_shapes = {"W_q.weight": (Hd, Dq), "W_k.weight": (Hd, Dk), "v.weight": (1, Hd)}
    if shapes != want_shapes:
        _fail(f"AdditiveAttention has parameters {shapes}; expected {want_shapes} (three nn.Linear without bias).")
    with torch.no_grad():
        for p in att.parameters():
            p.copy_(_rand(*p.shape, seed=seed + p.numel()))
    query, keys, values = _rand(N, Dq, seed=seed + 3), _rand(N, S, Dk, seed=seed + 4), _rand(N, S, Dv, seed=seed + 5)
    m = torch.rand(N, S, generator=torch.Generator().manual_seed(seed + 6)) > 0.4
    m[:, 0] = True
    for mm in (None, m):
        got = call_student(att, query, keys, values, mm, what="AdditiveAttention(query, keys, values, mask)")
        scores = (torch.tanh((query @ att.W_q.weight.T)[:, None, :] + keys @ att.W_k.weight.T)
                  @ att.v.weight.T).squeeze(-1)
        if mm is not None:
            scores = scores.masked_fill(~mm, -math.inf)
        w = torch.softmax(scores, -1)
        desc = "with a mask" if mm is not None else "without a mask"
        compare(got[1], w.detach(), f"AdditiveAttention weights {desc}", **TOL,
                hint="score_s = vᵀ tanh(W_q q + W_k k_s); softmax over s; masked scores −∞ first.")
        compare(got[0], (w[:, :, None] * values).sum(1).detach(), f"AdditiveAttention context {desc}", **TOL,
                hint="The context is Σ_s a_s value_s.")
    if verbose:
        _ok("scaled_dot_product_attention matches F.scaled_dot_product_attention (masks included); "
            "AdditiveAttention matches vᵀ tanh(W_q q + W_k k).")


def check_multi_head_attention(MultiHeadAttention, *, seed: int = 0, verbose: bool = True) -> None:
    """Against nn.MultiheadAttention(batch_first=True) with its in_proj split into q/k/v."""
    __tracebackhide__ = True
    torch.manual_seed(seed)
    E, Hn, N, L, S = 12, 3, 2, 4, 6
    mine = call_student(MultiHeadAttention, E, Hn, what=f"MultiHeadAttention({E}, {Hn})").double()
    ref = nn.MultiheadAttention(E, Hn, batch_first=True).double()
    with torch.no_grad():
        ref.in_proj_bias.copy_(_rand(3 * E, seed=seed + 1, scale=0.1))
        for proj, w, b in zip(("q_proj", "k_proj", "v_proj"), ref.in_proj_weight.chunk(3), ref.in_proj_bias.chunk(3)):
            lin = getattr(mine, proj, None)
            if not isinstance(lin, nn.Linear) or tuple(lin.weight.shape) != (E, E):
                _fail(f"MultiHeadAttention needs {proj} = nn.Linear({E}, {E}).")
            lin.weight.copy_(w), lin.bias.copy_(b)
        if not isinstance(getattr(mine, "out_proj", None), nn.Linear):
            _fail(f"MultiHeadAttention needs out_proj = nn.Linear({E}, {E}).")
        mine.out_proj.weight.copy_(ref.out_proj.weight), mine.out_proj.bias.copy_(ref.out_proj.bias)
    q, k, v = _rand(N, L, E, seed=seed + 2), _rand(N, S, E, seed=seed + 3), _rand(N, S, E, seed=seed + 4)
    pad = torch.zeros(N, S, dtype=torch.bool)
    pad[0, -2:] = True
    causal = torch.ones(L, S, dtype=torch.bool).triu(1)
    for kwargs, desc in (({}, "no mask"), ({"key_padding_mask": pad}, "key_padding_mask"),
                         ({"attn_mask": causal}, "attn_mask")):
        got = call_student(mine, q, k, v, **kwargs, what=f"MultiHeadAttention forward ({desc})")
        want_out, want_w = ref(q, k, v, **kwargs, need_weights=True, average_attn_weights=True)
        hint = ("Split E into (heads, d) and move heads before the sequence dim: "
                "reshape(N, L, H, d).transpose(1, 2); merge back the same way before out_proj.")
        if torch.is_tensor(got[1]) and got[1].dim() == 4:
            _fail(f"MultiHeadAttention returned weights of shape {tuple(got[1].shape)}; return them averaged over "
                  f"the heads: (N, L, S) = {tuple(want_w.shape)}.")
        compare(got[1], want_w, f"MultiHeadAttention weights ({desc})", **TOL, hint=hint)
        compare(got[0], want_out, f"MultiHeadAttention output ({desc})", **TOL, hint=hint)
    if verbose:
        _ok("MultiHeadAttention matches nn.MultiheadAttention (outputs and head-averaged weights, with masks).")


# Positional encoding tolerance: 1e-6 + 1e-6·(pos·ω), about 17 float32 ulps per radian, 3x the worst
# correct float32 implementation measured (the PyTorch tutorial's exp/log form, 1/10000^x and torch.pow).
PE_ATOL, PE_PER_RADIAN = 1e-6, 1e-6


def check_positional_encoding(positional_encoding, *, seed: int = 0, verbose: bool = True) -> None:
    """Against the formula, for even and odd D."""
    __tracebackhide__ = True
    g = torch.Generator().manual_seed(seed)
    for T, D in ((50, 16), (7, 5), (int(torch.randint(1, 80, (1,), generator=g)), 2 * int(torch.randint(1, 40, (1,),
                                                                                                          generator=g)))):
        got = call_student(positional_encoding, T, D, what=f"positional_encoding({T}, {D})")
        pos = torch.arange(T, dtype=torch.float64)[:, None]
        i = torch.arange(D, dtype=torch.float64)[None, :]
        angle = pos / 10000 ** ((i - i % 2) / D)
        want = torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle))
        hint = ""
        if torch.is_tensor(got) and got.shape == want.shape:
            if torch.allclose(got.double(), torch.where(i % 2 == 0, torch.cos(angle), torch.sin(angle)), atol=1e-5):
                hint = "sin goes on the even dims (0, 2, …) and cos on the odd ones."
            else:
                hint = "Dims 2i and 2i+1 share the frequency 1/10000^{2i/D}."
        if torch.is_tensor(got) and got.dtype != torch.float32:
            _fail(f"positional_encoding({T}, {D}) has dtype {got.dtype}; return float32.")
        # float32 rounds the angle pos·ω itself: a correct float32 formula is off by up to about 6 ulp·angle
        # (measured for T, D < 80 and three ways of computing ω), so the bound grows with the angle.
        compare(got.double() if torch.is_tensor(got) else got, want, f"positional_encoding({T}, {D})",
                atol=PE_ATOL + PE_PER_RADIAN * angle.expand_as(want), rtol=0.0, hint=hint,
                tol_text=f"{PE_ATOL:g} + {PE_PER_RADIAN:g}·angle, float32 rounding of pos·ω")
    if verbose:
        _ok("positional_encoding matches sin/cos at 1/10000^{2i/D}.")


# ----------------------------------------------------------------------------- seq2seq

class _ScriptedDecoder(nn.Module):
    """A fake decoder: the next token is (previous + 1) mod V, skipping pad; records its inputs."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab, self.calls = vocab, []

    def forward(self, y_prev, h, enc_outputs, mask):
        self.calls.append((y_prev.clone(), h.clone()))
        nxt = (y_prev + 1) % self.vocab
        logits = F.one_hot(nxt, self.vocab).double() * 5
        return logits, h + 1, torch.full(enc_outputs.shape[:2], 1.0 / enc_outputs.shape[1], dtype=torch.float64)


def check_seq2seq(Encoder, AttnDecoder, greedy_decode, *, seed: int = 0, in_vocab: int = 20, out_vocab: int = 14,
                  bos: int = 1, pad: int = 0, verbose: bool = True) -> None:
    """Encoder state = final forward and backward GRU states; AttnDecoder against its stated
    formula with its own parameters; greedy_decode feeds back its own argmax for max_len steps."""
    __tracebackhide__ = True
    torch.manual_seed(seed)
    enc = call_student(Encoder, in_vocab, what=f"Encoder({in_vocab})").double()
    src = torch.randint(3, in_vocab, (3, 9), generator=torch.Generator().manual_seed(seed))
    outs, state = call_student(enc, src, what="Encoder(src)")
    Hh = outs.shape[-1] // 2
    if tuple(outs.shape[:2]) != (3, 9) or tuple(state.shape) != (3, 2 * Hh):
        _fail(f"Encoder returned outputs {tuple(outs.shape)} and state {tuple(state.shape)}; expected (N, S, 2H) and "
              "(N, 2H).")
    compare(state, torch.cat([outs[:, -1, :Hh], outs[:, 0, Hh:]], -1), "Encoder state", **TOL,
            hint="The state is [final forward state ; final backward state] = [outputs[:, -1, :H] ; outputs[:, 0, H:]]"
                 " (the backward GRU finishes at position 0).")
    # decoder, against the formula with its own parameters
    dec = call_student(AttnDecoder, out_vocab, what=f"AttnDecoder({out_vocab})").double()
    E = 2 * Hh
    enc_out = _rand(3, 9, E, seed=seed + 1)
    h = _rand(3, E, seed=seed + 2)
    y_prev = torch.tensor([bos, 5, 7])
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[1, 6:] = False
    logits, h2, w = call_student(dec, y_prev, h, enc_out, mask, what="AttnDecoder step")
    a = dec.attention
    scores = (torch.tanh((h @ a.W_q.weight.T)[:, None] + enc_out @ a.W_k.weight.T) @ a.v.weight.T).squeeze(-1)
    ww = torch.softmax(scores.masked_fill(~mask, -math.inf), -1)
    ctx = (ww[:, :, None] * enc_out).sum(1)
    h_want = dec.cell(torch.cat([dec.embed(y_prev), ctx], -1), h)
    compare(w, ww.detach(), "AttnDecoder attention weights", **TOL,
            hint="Attend with the previous state h as the query, over the encoder outputs, masking padding.")
    compare(h2, h_want.detach(), "AttnDecoder new state", **TOL,
            hint="The GRU cell's input is [embed(y_prev) ; context], its state h.")
    compare(logits, dec.out(torch.cat([h_want, ctx], -1)).detach(), "AttnDecoder logits", **TOL,
            hint="logits = out([h' ; context]).")
    # greedy decoding with a scripted decoder
    max_len = 6
    fake = _ScriptedDecoder(out_vocab)
    src = torch.randint(3, in_vocab, (2, 5), generator=torch.Generator().manual_seed(seed + 3))
    src[1, 3:] = pad
    tokens, attn = call_student(greedy_decode, enc, fake, src, max_len, what="greedy_decode(encoder, decoder, src, 6)")
    if len(fake.calls) != max_len:
        _fail(f"greedy_decode called the decoder {len(fake.calls)} times for max_len={max_len}; call it once per "
              "output token.")
    want = torch.stack([(torch.full((2,), bos) + t + 1) % out_vocab for t in range(max_len)], 1)
    if not torch.equal(fake.calls[0][0], torch.full((2,), bos)):
        _fail("greedy_decode must start the decoder from <bos>.")
    for t in range(1, max_len):
        if not torch.equal(fake.calls[t][0], want[:, t - 1]):
            _fail(f"At step {t + 1} greedy_decode fed {fake.calls[t][0].tolist()}; it should feed back its own previous "
                  f"prediction (the argmax), {want[:, t - 1].tolist()}.")
        if not torch.allclose(fake.calls[t][1], fake.calls[0][1] + t):
            _fail(f"At step {t + 1} greedy_decode passed a stale state; pass on the state the decoder returned.")
    compare(tokens, want, "greedy_decode tokens", atol=0, rtol=0)
    if tuple(attn.shape) != (2, max_len, 5):
        _fail(f"greedy_decode's attention has shape {tuple(attn.shape)}, expected (N, max_len, S) = (2, {max_len}, 5).")
    if verbose:
        _ok("Encoder, AttnDecoder and greedy_decode do what their docstrings say.")
