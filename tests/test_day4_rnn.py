"""DAY 4: checks pass the reference and correct variants, and catch realistic mutants."""
from __future__ import annotations

import math
import types

import torch
import torch.nn.functional as F
from torch import nn

from solutions.day4_rnn import hidden
from course.checks import attention_seq2seq as att
from course.checks import day4_rnn as day4
from course.checks.day4_rnn import (check_attention, check_bidirectional, check_bptt, check_grad_clipping, check_gru_cell,
                                check_lstm_cell, check_multi_head_attention, check_positional_encoding,
                                check_rnn_cell, check_seq2seq)
from solutions.day4_rnn import experiment as exp
from solutions.day4_rnn import reference as ref
from solutions.day4_rnn import reference_seq2seq as s2s
from tests.mutation import doctored_observations_fail, exercise, exercise_tests, seed_sweep_tests

REFERENCE = types.SimpleNamespace(**(vars(ref) | vars(s2s)))  # both reference files: the exercises and the mutation targets


def _ex(check, hidden_test, names):
    return exercise(check, hidden_test, names, REFERENCE)


EXERCISES = {
    "rnn_cell": _ex(check_rnn_cell, hidden.hidden_rnn_cell, ["RNNCell", "unroll"]),
    "bptt": _ex(check_bptt, hidden.hidden_bptt, ["rnn_bptt"]),
    "lstm_cell": _ex(check_lstm_cell, hidden.hidden_lstm_cell, ["LSTMCell"]),
    "gru_cell": _ex(check_gru_cell, hidden.hidden_gru_cell, ["GRUCell"]),
    "bidirectional": _ex(check_bidirectional, hidden.hidden_bidirectional, ["BiLSTM"]),
    "grad_clipping": _ex(check_grad_clipping, hidden.hidden_grad_clipping, ["clip_grad_norm"]),
    "attention": _ex(check_attention, hidden.hidden_attention, ["scaled_dot_product_attention", "AdditiveAttention"]),
    "multi_head_attention": _ex(check_multi_head_attention, hidden.hidden_multi_head_attention, ["MultiHeadAttention"]),
    "positional_encoding": _ex(check_positional_encoding, hidden.hidden_positional_encoding, ["positional_encoding"]),
    "seq2seq": _ex(check_seq2seq, hidden.hidden_seq2seq, ["Encoder", "AttnDecoder", "greedy_decode"]),
}

MUTANTS = [
    ("rnn_cell", "h W_hh not transposed", "RNNCell", [("h @ self.weight_hh.T", "h @ self.weight_hh")], "transposed"),
    ("rnn_cell", "previous state ignored", "RNNCell", [(" + h @ self.weight_hh.T + self.bias_hh", "")], "ignored"),
    ("rnn_cell", "unroll restarts from h0 every step", "unroll", [("h = cell(x, h)", "h = cell(x, h0)")], "outputs"),
    ("bptt", "missing the recurrent term δ^{t+1} Wᵀ", "rnn_bptt",
     [("delta = (delta_next @ W.T + delta_out @ W_out.T)", "delta = (delta_out @ W_out.T)")], "next step"),
    ("bptt", "∂L/∂W with z^t instead of z^{t−1}", "rnn_bptt", [('grads["W"] += z_prev.T @ delta', 'grads["W"] += z.T @ delta')],
     "previous state"),
    ("bptt", "sigmoid derivative taken as z", "rnn_bptt",
     [("delta = (delta_next @ W.T + delta_out @ W_out.T) * z * (1 - z)", "delta = (delta_next @ W.T + delta_out @ W_out.T) * z")],
     "∂L/∂"),
    ("lstm_cell", "input and forget gates swapped", "LSTMCell", [("i, f, g, o = gates.chunk", "f, i, g, o = gates.chunk")],
     "gate order"),
    ("lstm_cell", "h' = o ⊙ c (no tanh)", "LSTMCell", [("h = torch.sigmoid(o) * torch.tanh(c)", "h = torch.sigmoid(o) * c")],
     "tanh"),
    ("gru_cell", "update gate the other way round", "GRUCell", [("return (1 - z) * n + z * h", "return z * n + (1 - z) * h")],
     "torch's convention"),
    ("gru_cell", "reset applied before the matrix product", "GRUCell",
     [("n = torch.tanh(xn + r * hn)",
       "n = torch.tanh(xn + (r * h) @ self.weight_hh[2 * self.hidden_size:].T + self.bias_hh[2 * self.hidden_size:])")],
     "after the matrix product"),
    ("bidirectional", "backward outputs left reversed", "BiLSTM", [("torch.stack(bwd_out[::-1])", "torch.stack(bwd_out)")],
     "flip them back"),
    ("bidirectional", "backward cell reads forwards", "BiLSTM", [("for x in xs.flip(0):", "for x in xs:")],
     "from x_T down"),
    ("grad_clipping", "per-parameter clipping", "clip_grad_norm",
     [("""    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef)""", """    for g in grads:
        g.mul_(torch.clamp(max_norm / (g.norm() + 1e-6), max=1.0))""")], "own norm"),
    ("grad_clipping", "always rescales to max_norm", "clip_grad_norm",
     [("coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)", "coef = max_norm / (total + 1e-6)")], "capped at 1"),
    ("grad_clipping", "returns the norm after clipping", "clip_grad_norm", [("    return total\n", "    return total * coef\n")],
     "before clipping"),
    ("attention", "no 1/√d scaling", "scaled_dot_product_attention",
     [("q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])", "q @ k.transpose(-2, -1)")], "√d"),
    ("attention", "mask applied after the softmax", "scaled_dot_product_attention",
     [("        scores = scores.masked_fill(~mask, float(\"-inf\"))\n    weights = torch.softmax(scores, dim=-1)\n",
       "        pass\n    weights = torch.softmax(scores, dim=-1)\n    if mask is not None:\n        weights = weights * mask\n")],
     "before the softmax"),
    ("attention", "causal mask the wrong way round", "scaled_dot_product_attention", [(".tril()", ".triu()")], "weight exactly 0"),
    ("attention", "additive attention without tanh", "AdditiveAttention",
     [("self.v(torch.tanh(self.W_q(query)[:, None, :] + self.W_k(keys)))", "self.v(self.W_q(query)[:, None, :] + self.W_k(keys))")],
     "tanh"),
    ("multi_head_attention", "heads split without the transpose", "MultiHeadAttention",
     [("t.reshape(N, n, H, E // H).transpose(1, 2)", "t.reshape(N, H, n, E // H)")], "Split E"),
    ("multi_head_attention", "per-head weights returned", "MultiHeadAttention", [("weights.mean(dim=1)", "weights")], "averaged"),
    ("multi_head_attention", "out_proj skipped", "MultiHeadAttention", [("return self.out_proj(out), ", "return out, ")],
     "MultiHeadAttention output"),
    ("positional_encoding", "sin and cos swapped", "positional_encoding",
     [("pe[:, 0::2] = torch.sin(pos * freq)", "pe[:, 0::2] = torch.cos(pos * freq)"),
      ("pe[:, 1::2] = torch.cos(pos * freq[: D // 2])", "pe[:, 1::2] = torch.sin(pos * freq[: D // 2])")], "even dims"),
    ("positional_encoding", "frequency from i instead of 2i", "positional_encoding",
     [("-torch.arange(0, D, 2, dtype=torch.float64) / D", "-torch.arange(0, D // 2 + D % 2, dtype=torch.float64) / D")],
     "share the frequency"),
    # The escape classes of issue 32: optional arguments and edge shapes (h0=None with D ≠ H, a causal
    # mask with S ≠ L, both attention masks at once, a cell class given), a generator of parameters read
    # twice, the 1e-6 of the clipping factor, a float where a 0-dim tensor is promised.
    ("rnn_cell", "unroll: h0=None as zeros of the input width", "unroll",
     [("h, outputs = h0, []", "h, outputs = (xs.new_zeros(xs.shape[1], xs.shape[2]) if h0 is None else h0), []")],
     "h0=None"),
    ("attention", "causal mask built L × L", "scaled_dot_product_attention",
     [("~torch.ones(L, S, dtype=torch.bool, device=q.device).tril()",
       "~torch.ones(L, L, dtype=torch.bool, device=q.device).tril()[:, :S]")], "S ≠ L"),
    ("attention", "causal mask built S × S", "scaled_dot_product_attention", [("L, S = scores.shape[-2:]",
                                                                            "L = S = scores.shape[-1]")], "S ≠ L"),
    ("multi_head_attention", "attn_mask replaces key_padding_mask", "MultiHeadAttention",
     [("allowed = allowed & ~attn_mask", "allowed = ~attn_mask.expand(N, 1, L, S)")], "both apply"),
    ("bidirectional", "BiLSTM ignores its cell argument", "BiLSTM", [("cell = cell or LSTMCell", "cell = LSTMCell")],
     "from `cell`"),
    ("grad_clipping", "parameters looped over twice (a generator is then empty)", "clip_grad_norm",
     [("for g in grads:\n        g.mul_(coef)", "for p in parameters:\n        if p.grad is not None:\n            p.grad.mul_(coef)")],
     "generator"),
    ("grad_clipping", "clipping factor without the 1e-6", "clip_grad_norm",
     [("coef = torch.clamp(max_norm / (total + 1e-6)", "coef = torch.clamp(max_norm / total")], "gradient 0 of"),
    ("grad_clipping", "returns a float", "clip_grad_norm", [("    return total\n", "    return total.item()\n")], "0-dim tensor"),
    ("attention", "causal L, S read from dims 2: (works on 4-D input only)", "scaled_dot_product_attention",
     [("L, S = scores.shape[-2:]", "L, S = scores.shape[2:]")], "3-D inputs"),
    ("attention", "keys transposed by dims (2, −1) (4-D input only)", "scaled_dot_product_attention",
     [("q @ k.transpose(-2, -1) / math.sqrt", "q @ k.transpose(2, -1) / math.sqrt")], "3-D inputs"),
    ("grad_clipping", "the norm's dtype from the second gradient (fails with one)", "clip_grad_norm",
     [(".to(grads[0].dtype)", ".to(grads[1].dtype)")], "clip_grad_norm"),
    ("grad_clipping", "no gradient at all gives a norm of 1", "clip_grad_norm",
     [("if grads else torch.tensor(0.0)", "if grads else torch.tensor(1.0)")], "no gradients is 0"),
    ("lstm_cell", "gates cut into 5 pieces", "LSTMCell", [("gates.chunk(4, dim=1)", "gates.chunk(5, dim=1)")],
     "too many values"),
    ("seq2seq", "greedy decode always feeds <bos>", "greedy_decode", [("        y = logits.argmax(dim=-1)\n        tokens.append(y)",
                                                                       "        tokens.append(logits.argmax(dim=-1))")],
     "feed back"),
    ("seq2seq", "greedy decode keeps the encoder state", "greedy_decode",
     [("logits, h, w = decoder(y, h, enc_outputs, mask)", "logits, _, w = decoder(y, h, enc_outputs, mask)")], "stale state"),
    ("seq2seq", "encoder state from the forward direction only", "Encoder",
     [("torch.cat([h[0], h[1]], dim=-1)", "torch.cat([h[0], h[0]], dim=-1)")], "final backward state"),
    ("seq2seq", "decoder ignores the attention context", "AttnDecoder",
     [("self.out(torch.cat([h, context], dim=-1))", "self.out(torch.cat([h, torch.zeros_like(context)], dim=-1))")],
     "logits"),
]




def test_clipping_tames_the_exploding_gradient_experiment():
    """The notebook's claim: without clipping the adding-problem RNN blows up (nan/inf) within
    100 steps; clipping the global norm at 1.0 keeps every step finite."""
    unclipped, norms = exp.exploding_gradients(None, steps=100)
    assert not all(math.isfinite(v) for v in unclipped) and max(norms) > 1e6
    clipped, _ = exp.exploding_gradients(1.0, steps=100)
    assert all(math.isfinite(v) for v in clipped) and max(clipped) < 10


def test_bptt_trains_binary_addition_to_100_percent():
    """The lecture's experiment: SGD with the hand-written gradients learns 8-bit addition."""
    g = torch.Generator().manual_seed(0)
    H = 16
    p = {"W_in": torch.randn(2, H, generator=g, dtype=torch.float64), "W": torch.randn(H, H, generator=g, dtype=torch.float64) * 0.5,
         "W_out": torch.randn(H, 1, generator=g, dtype=torch.float64), "b": torch.zeros(H, dtype=torch.float64),
         "c": torch.zeros(1, dtype=torch.float64)}
    for _ in range(exp.BPTT_STEPS):
        xs, ds, _, _ = exp.binary_addition_data(32, generator=g)
        _, grads = ref.rnn_bptt(xs, ds, *p.values())
        for k in p:
            p[k] -= exp.BPTT_LR * grads[k] / 32
    xs, ds, _, _ = exp.binary_addition_data(1000, generator=torch.Generator().manual_seed(99))
    assert exp.bptt_accuracy(xs, ds, p) == 1.0


# ---------------------------------------------------------------- correct, differently written versions

class _RNNCellVariant(ref.RNNCell):
    def forward(self, x, h=None):
        h = torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype) if h is None else h
        u = torch.addmm(self.bias_ih, x, self.weight_ih.t()) + torch.addmm(self.bias_hh, h, self.weight_hh.t())
        return u.tanh() if self.nonlinearity == "tanh" else u.clamp(min=0)


def _unroll_variant(cell, xs, h0=None):
    outs = []
    h = h0
    for t in range(xs.shape[0]):
        h = cell(xs[t], h)
        outs.append(h)
    return torch.stack(outs, 0), outs[-1]


def _bptt_variant(xs, ds, W_in, W, W_out, b, c):
    """Stores every δ first, then sums the gradients with einsum."""
    T, N, _ = xs.shape
    z = [xs.new_zeros(N, W.shape[0])]
    y = []
    for t in range(T):
        z.append(torch.sigmoid(xs[t] @ W_in + z[-1] @ W + b))
        y.append(torch.sigmoid(z[-1] @ W_out + c))
    y, Z = torch.stack(y), torch.stack(z)
    d_out = (y - ds) * y * (1 - y)
    deltas = [None] * T
    nxt = torch.zeros_like(z[0])
    for t in range(T - 1, -1, -1):
        nxt = deltas[t] = (nxt @ W.T + d_out[t] @ W_out.T) * Z[t + 1] * (1 - Z[t + 1])
    D = torch.stack(deltas)
    grads = {"W_in": torch.einsum("tnd,tnh->dh", xs, D), "W": torch.einsum("tnh,tnk->hk", Z[:-1], D),
             "W_out": torch.einsum("tnh,tno->ho", Z[1:], d_out), "b": D.sum((0, 1)), "c": d_out.sum((0, 1))}
    return 0.5 * ((y - ds) ** 2).sum(), grads


class _LSTMVariant(ref.LSTMCell):
    def forward(self, x, state=None):
        h, c = state or (x.new_zeros(x.shape[0], self.hidden_size),) * 2
        H = self.hidden_size
        z = x @ self.weight_ih.T + h @ self.weight_hh.T + self.bias_ih + self.bias_hh
        i, f, o = (torch.sigmoid(z[:, k * H:(k + 1) * H]) for k in (0, 1, 3))
        c = f * c + i * torch.tanh(z[:, 2 * H:3 * H])
        return o * torch.tanh(c), c


class _GRUVariant(ref.GRUCell):
    def forward(self, x, h=None):
        h = x.new_zeros(x.shape[0], self.hidden_size) if h is None else h
        H = self.hidden_size
        gi, gh = nn.functional.linear(x, self.weight_ih, self.bias_ih), nn.functional.linear(h, self.weight_hh, self.bias_hh)
        r = torch.sigmoid(gi[:, :H] + gh[:, :H])
        z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        return n + z * (h - n)


class _BiVariant(ref.BiLSTM):
    def forward(self, xs):
        T = xs.shape[0]
        f, b = [None] * T, [None] * T
        sf = sb = None
        for t in range(T):
            sf = self.fwd(xs[t], sf)
            f[t] = sf[0]
            sb = self.bwd(xs[T - 1 - t], sb)
            b[T - 1 - t] = sb[0]
        return torch.stack([torch.cat(p, -1) for p in zip(f, b)])


def _clip_variant(parameters, max_norm):
    ps = [p for p in parameters if p.grad is not None]
    if not ps:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in ps]))
    if total > max_norm:
        for p in ps:
            p.grad = p.grad * (max_norm / (total + 1e-6))
    return total


def _sdpa_variant(q, k, v, mask=None, is_causal=False):
    scores = torch.einsum("...ld,...sd->...ls", q / math.sqrt(q.shape[-1]), k)
    allowed = torch.ones(scores.shape[-2:], dtype=torch.bool)
    if is_causal:
        allowed = torch.arange(scores.shape[-1])[None, :] <= torch.arange(scores.shape[-2])[:, None]
    if mask is not None:
        allowed = allowed & mask
    w = torch.where(allowed, scores, torch.tensor(-math.inf, dtype=scores.dtype)).softmax(-1)
    return torch.einsum("...ls,...sd->...ld", w, v), w


class _MHAVariant(ref.MultiHeadAttention):
    def forward(self, query, key, value, key_padding_mask=None, attn_mask=None):
        N, L, E = query.shape
        H, d = self.num_heads, E // self.num_heads
        q, k, v = self.q_proj(query), self.k_proj(key), self.v_proj(value)
        outs, ws = [], []
        for h in range(H):
            s = slice(h * d, (h + 1) * d)
            m = torch.ones(N, L, key.shape[1], dtype=torch.bool)
            if key_padding_mask is not None:
                m = m & ~key_padding_mask[:, None, :]
            if attn_mask is not None:
                m = m & ~attn_mask
            o, w = _sdpa_variant(q[..., s], k[..., s], v[..., s], m)
            outs.append(o)
            ws.append(w)
        return self.out_proj(torch.cat(outs, -1)), sum(ws) / H


def _pe_variant(T, D):
    pe = torch.empty(T, D)
    for pos in range(T):
        for j in range(D):
            angle = pos / 10000 ** (2 * (j // 2) / D)
            pe[pos, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return pe


def _pe_tutorial_float32(T, D):
    """The PyTorch tutorial's formula, all in float32 (exp of a scaled log): its angles carry float32
    rounding, which the check's tolerance must allow for every T, D and seed."""
    position = torch.arange(T).unsqueeze(1).float()
    div_term = torch.exp(torch.arange(0, D, 2).float() * (-math.log(10000.0) / D))
    pe = torch.zeros(T, D)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term[: D // 2])
    return pe


def _greedy_variant(encoder, decoder, src, max_len):
    enc_outputs, h = encoder(src)
    y = torch.full((src.shape[0],), s2s.BOS, dtype=torch.long)
    tokens = torch.zeros(src.shape[0], max_len, dtype=torch.long)
    attn = torch.zeros(src.shape[0], max_len, src.shape[1], dtype=enc_outputs.dtype)
    for t in range(max_len):
        logits, h, w = decoder(y, h, enc_outputs, src != s2s.PAD)
        y = tokens[:, t] = logits.max(-1).indices
        attn[:, t] = w
    return tokens, attn


class _RNNCellOwn(nn.Module):
    """Its own module, biases declared first, F.linear."""

    def __init__(self, input_size, hidden_size, nonlinearity="tanh"):
        super().__init__()
        k = hidden_size ** -0.5
        self.bias_hh, self.bias_ih = (nn.Parameter(torch.empty(hidden_size).uniform_(-k, k)) for _ in range(2))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-k, k))
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-k, k))
        self.hidden_size, self.act = hidden_size, torch.tanh if nonlinearity == "tanh" else torch.relu

    def forward(self, x, h=None):
        if h is None:
            h = torch.zeros(len(x), self.hidden_size, dtype=x.dtype, device=x.device)
        return self.act(F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh))


def _unroll_preallocated(cell, xs, h0=None):
    h = cell(xs[0], h0)
    out = xs.new_empty(len(xs), *h.shape)
    out[0] = h
    for t in range(1, len(xs)):
        h = out[t] = cell(xs[t], h)
    return out, h


def _unroll_unbind(cell, xs, h0=None):
    states = []
    for x in torch.unbind(xs, dim=0):
        states.append(cell(x, states[-1] if states else h0))
    return torch.stack(states), states[-1]


class _LSTMSlices(nn.Module):
    """One F.linear per gate, on slices of torch's stacked weights."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        k, H = hidden_size ** -0.5, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size).uniform_(-k, k))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H).uniform_(-k, k))
        self.bias_ih, self.bias_hh = nn.Parameter(torch.zeros(4 * H)), nn.Parameter(torch.zeros(4 * H))
        self.hidden_size = H

    def forward(self, x, state=None):
        H = self.hidden_size
        h, c = (torch.zeros(x.shape[0], H, dtype=x.dtype),) * 2 if state is None else state
        gate = lambda k: (F.linear(x, self.weight_ih[k * H:(k + 1) * H], self.bias_ih[k * H:(k + 1) * H])  # noqa: E731
                          + F.linear(h, self.weight_hh[k * H:(k + 1) * H], self.bias_hh[k * H:(k + 1) * H]))
        c = torch.sigmoid(gate(1)) * c + torch.sigmoid(gate(0)) * torch.tanh(gate(2))
        return torch.sigmoid(gate(3)) * torch.tanh(c), c


class _LSTMSplit(ref.LSTMCell):
    def forward(self, x, state=None):
        if state is None:
            state = (x.new_zeros(x.shape[0], self.hidden_size), x.new_zeros(x.shape[0], self.hidden_size))
        gates = torch.addmm(self.bias_ih + self.bias_hh, x, self.weight_ih.T) + state[0] @ self.weight_hh.T
        i, f, g, o = gates.split(self.hidden_size, dim=-1)
        c = torch.addcmul(f.sigmoid() * state[1], i.sigmoid(), g.tanh())
        return o.sigmoid() * c.tanh(), c


class _GRUSplit(ref.GRUCell):
    def forward(self, x, h=None):
        h = torch.zeros(x.size(0), self.hidden_size, dtype=x.dtype) if h is None else h
        x_r, x_z, x_n = F.linear(x, self.weight_ih, self.bias_ih).split(self.hidden_size, 1)
        h_r, h_z, h_n = F.linear(h, self.weight_hh, self.bias_hh).split(self.hidden_size, 1)
        z = torch.sigmoid(x_z + h_z)
        return torch.lerp(torch.tanh(x_n + torch.sigmoid(x_r + h_r) * h_n), h, z)


class _GRUOwn(nn.Module):
    """Its own module, the hidden-side weights declared first."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        k, H = hidden_size ** -0.5, hidden_size
        self.weight_hh, self.bias_hh = nn.Parameter(torch.rand(3 * H, H) * 2 * k - k), nn.Parameter(torch.zeros(3 * H))
        self.weight_ih, self.bias_ih = nn.Parameter(torch.rand(3 * H, input_size) * 2 * k - k), nn.Parameter(torch.zeros(3 * H))
        self.H = H

    def forward(self, x, h=None):
        if h is None:
            h = x.new_zeros(len(x), self.H)
        gi, gh = x @ self.weight_ih.T + self.bias_ih, h @ self.weight_hh.T + self.bias_hh
        r, z = torch.sigmoid(gi[:, :2 * self.H] + gh[:, :2 * self.H]).chunk(2, 1)
        n = torch.tanh(gi[:, 2 * self.H:] + r * gh[:, 2 * self.H:])
        return (1 - z) * n + z * h


class _BiReversed(nn.Module):
    """Its own module; the cell class under another name; reversed() and a flip of the stacked outputs."""

    def __init__(self, input_size, hidden_size, cell=None):
        super().__init__()
        make = ref.LSTMCell if cell is None else cell
        self.fwd, self.bwd = make(input_size, hidden_size), make(input_size, hidden_size)

    def forward(self, xs):
        def run(cell, seq):
            state, hs = None, []
            for x in seq:
                state = cell(x, state)
                hs.append(state[0])
            return torch.stack(hs)
        return torch.cat([run(self.fwd, xs), run(self.bwd, reversed(xs)).flip(0)], dim=2)


def _clip_list_first(parameters, max_norm):
    params = list(parameters)  # a generator can be read once: make it a list, then loop as often as needed
    grads = [p.grad for p in params if p.grad is not None]
    total = torch.stack([(g ** 2).sum() for g in grads]).sum().sqrt() if grads else torch.zeros(())
    coef = min(1.0, max_norm / (total.item() + 1e-6))
    for p in params:
        if p.grad is not None:
            p.grad.mul_(coef)
    return total


def _clip_foreach(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros((), dtype=torch.float64)
    total = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0).item())
    return total


def _sdpa_masked_fill(q, k, v, mask=None, is_causal=False):
    L, S = q.shape[-2], k.shape[-2]
    scores = torch.matmul(q, k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    if is_causal:
        scores = scores.masked_fill(torch.ones(L, S, dtype=torch.bool).triu(diagonal=1), float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), float("-inf"))
    weights = F.softmax(scores, dim=-1)
    return torch.matmul(weights, v), weights


class _AdditiveOwnNames(ref.AdditiveAttention):
    def forward(self, query, keys, values, mask=None):
        energy = torch.tanh(self.W_k(keys) + self.W_q(query).unsqueeze(1))
        scores = self.v(energy)[..., 0]
        if mask is not None:
            scores = torch.where(mask, scores, torch.full_like(scores, -math.inf))
        weights = scores.softmax(-1)
        return torch.bmm(weights.unsqueeze(1), values).squeeze(1), weights


class _MHAEinsum(ref.MultiHeadAttention):
    """All heads at once with einsum; one mask of what may not be attended, built with |."""

    def forward(self, query, key, value, key_padding_mask=None, attn_mask=None):
        N, L, E = query.shape
        S, H = key.shape[1], self.num_heads
        q = self.q_proj(query).view(N, L, H, -1)
        k, v = self.k_proj(key).view(N, S, H, -1), self.v_proj(value).view(N, S, H, -1)
        scores = torch.einsum("nlhd,nshd->nhls", q, k) / math.sqrt(E // H)
        blocked = torch.zeros(N, 1, L, S, dtype=torch.bool)
        if key_padding_mask is not None:
            blocked = blocked | key_padding_mask.view(N, 1, 1, S)
        if attn_mask is not None:
            blocked = blocked | attn_mask
        w = scores.masked_fill(blocked, -math.inf).softmax(-1)
        return self.out_proj(torch.einsum("nhls,nshd->nlhd", w, v).reshape(N, L, E)), w.mean(1)


def _pe_outer(T, D):
    angles = torch.outer(torch.arange(T, dtype=torch.float64),
                         10000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D))
    pe = torch.zeros(T, D, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = angles.sin(), angles[:, : D // 2].cos()
    return pe.float()


VARIANTS = [
    ("rnn_cell", {"RNNCell": _RNNCellOwn, "unroll": _unroll_preallocated}),
    ("rnn_cell", {"RNNCell": _RNNCellVariant, "unroll": _unroll_unbind}),
    ("lstm_cell", {"LSTMCell": _LSTMSlices}),
    ("lstm_cell", {"LSTMCell": _LSTMSplit}),
    ("gru_cell", {"GRUCell": _GRUSplit}),
    ("gru_cell", {"GRUCell": _GRUOwn}),
    ("bidirectional", {"BiLSTM": _BiReversed}),
    ("grad_clipping", {"clip_grad_norm": _clip_list_first}),
    ("grad_clipping", {"clip_grad_norm": _clip_foreach}),
    ("attention", {"scaled_dot_product_attention": _sdpa_masked_fill, "AdditiveAttention": _AdditiveOwnNames}),
    ("attention", {"scaled_dot_product_attention": _sdpa_variant, "AdditiveAttention": _AdditiveOwnNames}),
    ("multi_head_attention", {"MultiHeadAttention": _MHAEinsum}),
    ("positional_encoding", {"positional_encoding": _pe_outer}),
    ("rnn_cell", {"RNNCell": _RNNCellVariant, "unroll": _unroll_variant}),
    ("bptt", {"rnn_bptt": _bptt_variant}),
    ("lstm_cell", {"LSTMCell": _LSTMVariant}),
    ("gru_cell", {"GRUCell": _GRUVariant}),
    ("bidirectional", {"BiLSTM": _BiVariant}),
    ("grad_clipping", {"clip_grad_norm": _clip_variant}),
    ("attention", {"scaled_dot_product_attention": _sdpa_variant, "AdditiveAttention": ref.AdditiveAttention}),
    ("multi_head_attention", {"MultiHeadAttention": _MHAVariant}),
    ("positional_encoding", {"positional_encoding": _pe_variant}),
    ("positional_encoding", {"positional_encoding": _pe_tutorial_float32}),
    ("seq2seq", {"Encoder": s2s.Encoder, "AttnDecoder": s2s.AttnDecoder, "greedy_decode": _greedy_variant}),
]


# reference passes, mutants caught (≥ 2 per exercise), variants pass: see tests/mutation.py
globals().update(exercise_tests(REFERENCE, EXERCISES, MUTANTS, VARIANTS))
globals().update(seed_sweep_tests(REFERENCE, EXERCISES, MUTANTS, VARIANTS))


def test_verdicts_decide_on_doctored_observations():
    """The judge's verdicts check everything a pass rests on: the reference's honest observations pass,
    and each one doctored as a hostile kernel could fails (an unroll state off by 1e-6, a missing
    gradient, an LSTM run cut short, a GRU step replaced, the clipped norm halved, a masked weight
    that is not 0, per-head weights, a float64 encoding, a decoder parameter left out, a stale state
    fed to the decoder)."""
    r = REFERENCE
    honest = {  # verdict -> the reference's observations
        day4.rnn_cell_verdict: day4.rnn_cell_run(r.RNNCell, r.unroll, seed=2),
        day4.bptt_verdict: day4.bptt_run(r.rnn_bptt, seed=2),
        day4.lstm_cell_verdict: day4.lstm_cell_run(r.LSTMCell, seed=2),
        day4.gru_cell_verdict: day4.gru_cell_run(r.GRUCell, seed=2),
        day4.grad_clipping_verdict: day4.grad_clipping_run(r.clip_grad_norm, seed=2),
        att.attention_verdict: att.attention_run(r.scaled_dot_product_attention, r.AdditiveAttention, seed=2),
        att.multi_head_attention_verdict: att.multi_head_attention_run(r.MultiHeadAttention, seed=2),
        att.positional_encoding_verdict: att.positional_encoding_run(r.positional_encoding, seed=2),
        att.seq2seq_verdict: att.seq2seq_run(r.Encoder, r.AttnDecoder, r.greedy_decode, seed=2),
    }
    doctored = [  # (verdict, doctor, what the message says)
        (day4.rnn_cell_verdict, lambda o: o["unroll"][1].add_(1e-6), "last state"),
        (day4.bptt_verdict, lambda o: o["cases"][1][1].pop("W"), "no entry 'W'"),
        (day4.lstm_cell_verdict, lambda o: o.pop(), "expected 3 LSTMCell steps"),
        (day4.gru_cell_verdict, lambda o: o.__setitem__(1, o[0]), "step 2"),
        (day4.grad_clipping_verdict, lambda o: o["runs"][0].__setitem__("total", o["runs"][0]["total"] / 2),
         "norm returned"),
        (att.attention_verdict, lambda o: o["sdpa"][1][1].add_(1e-3), "attention weights"),
        (att.multi_head_attention_verdict, lambda o: o[0].__setitem__(1, o[0][1][:, None].expand(2, 3, 4, 6)),
         "averaged over"),
        (att.positional_encoding_verdict, lambda o: o.__setitem__(0, o[0].double()), "return float32"),
        (att.seq2seq_verdict, lambda o: o["decoder"].pop("cell.bias_hh"), "cell.bias_hh"),
        (att.seq2seq_verdict, lambda o: o["calls"][3][1].sub_(1), "stale state"),
    ]
    doctored_observations_fail(honest, doctored, seed=2)
