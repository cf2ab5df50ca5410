"""DAY 4, recurrent networks and attention (再帰型ニューラルネットワーク・Attention): reference solutions.

Single source of truth for the DAY 4 notebook (see solutions/day1_optimization/reference.py
for how `course build` uses it).

References:
    - Goodfellow et al., *Deep Learning*, ch. 10 (RNNs, BPTT, LSTM, GRU, bidirectional, seq2seq,
      gradient clipping).
    - Hochreiter & Schmidhuber 1997 (LSTM); Cho et al. 2014 (GRU, encoder-decoder);
      Bahdanau et al. 2015 (additive attention); Vaswani et al. 2017 (Transformer).
    - torch.nn.RNNCell / LSTMCell / GRUCell / MultiheadAttention and
      F.scaled_dot_product_attention docs, which the exercises reproduce.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def _uniform(*shape, bound: float) -> nn.Parameter:
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


# ----------------------------------------------------------------------------- simple RNN

class RNNCell(nn.Module):
    """One step of the simple RNN (単純RNN), with torch's parameter names:

        h' = f(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh),   f = tanh or relu

    (the lecture's u^t = W_in x^t + W z^{t−1} + b with W_in = weight_ih, W = weight_hh).
    Parameters uniform in ±1/√hidden_size, as torch initialises them.
    Shape: x (N, D), h (N, H) or None (zeros) -> (N, H).
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh"):
        super().__init__()
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        k = hidden_size ** -0.5
        self.weight_ih = _uniform(hidden_size, input_size, bound=k)
        self.weight_hh = _uniform(hidden_size, hidden_size, bound=k)
        self.bias_ih = _uniform(hidden_size, bound=k)
        self.bias_hh = _uniform(hidden_size, bound=k)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        ### BEGIN SOLUTION
        u = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh
        return torch.tanh(u) if self.nonlinearity == "tanh" else torch.relu(u)
        ### END SOLUTION


def unroll(cell: nn.Module, xs: torch.Tensor, h0: torch.Tensor | None = None):
    """Apply ``cell`` along time (展開): h_t = cell(x_t, h_{t−1}).

    Shape: xs (T, N, D), h0 (N, H) or None -> (outputs (T, N, H), h_T (N, H)).
    """
    ### BEGIN SOLUTION
    h, outputs = h0, []
    for x in xs:
        h = cell(x, h)
        outputs.append(h)
    return torch.stack(outputs), h
    ### END SOLUTION


# ----------------------------------------------------------------------------- BPTT by hand

def rnn_bptt(xs: torch.Tensor, ds: torch.Tensor, W_in: torch.Tensor, W: torch.Tensor, W_out: torch.Tensor,
             b: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Forward and hand-written backpropagation through time for the lecture's sigmoid RNN.

    Forward (z^0 = 0):   u^t = x^t W_in + z^{t−1} W + b,   z^t = σ(u^t),
                         y^t = σ(z^t W_out + c),          L = ½ Σ_t Σ (y^t − d^t)²
    Backward:            δ_out^t = (y^t − d^t) ⊙ y^t (1 − y^t)
                         δ^t = (δ^{t+1} Wᵀ + δ_out^t W_outᵀ) ⊙ z^t (1 − z^t),   δ^{T+1} = 0
                         ∂L/∂W_out = Σ_t z^tᵀ δ_out^t,  ∂L/∂c = Σ δ_out^t,
                         ∂L/∂W = Σ_t z^{t−1}ᵀ δ^t,      ∂L/∂W_in = Σ_t x^tᵀ δ^t,  ∂L/∂b = Σ δ^t

    Shape: xs (T, N, D), ds (T, N, O), W_in (D, H), W (H, H), W_out (H, O), b (H,), c (O,)
    -> (L (0-dim), {"W_in", "W", "W_out", "b", "c"}: gradients shaped like the parameters).
    Uses no autograd.
    """
    T, N, _ = xs.shape
    zs = [xs.new_zeros(N, W.shape[0])]  # z^0
    ys = []
    for t in range(T):
        zs.append(torch.sigmoid(xs[t] @ W_in + zs[-1] @ W + b))
        ys.append(torch.sigmoid(zs[-1] @ W_out + c))
    y = torch.stack(ys)
    loss = 0.5 * ((y - ds) ** 2).sum()
    grads = {"W_in": torch.zeros_like(W_in), "W": torch.zeros_like(W), "W_out": torch.zeros_like(W_out),
             "b": torch.zeros_like(b), "c": torch.zeros_like(c)}
    delta_next = xs.new_zeros(N, W.shape[0])  # δ^{T+1}
    for t in reversed(range(T)):
        ### BEGIN SOLUTION
        z, z_prev = zs[t + 1], zs[t]
        delta_out = (y[t] - ds[t]) * y[t] * (1 - y[t])
        delta = (delta_next @ W.T + delta_out @ W_out.T) * z * (1 - z)
        grads["W_out"] += z.T @ delta_out
        grads["c"] += delta_out.sum(0)
        grads["W"] += z_prev.T @ delta
        grads["W_in"] += xs[t].T @ delta
        grads["b"] += delta.sum(0)
        delta_next = delta
        ### END SOLUTION
    return loss, grads


# ----------------------------------------------------------------------------- LSTM and GRU

class LSTMCell(nn.Module):
    """LSTM step with torch's names and gate order i, f, g, o (rows of weight_ih / weight_hh):

        [i, f, g, o] = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh   (split into 4 chunks of H)
        i, f, o = σ(·) (input, forget, output gates: 入力・忘却・出力ゲート), g = tanh(·)
        c' = f ⊙ c + i ⊙ g    (the CEC: the cell carries information additively)
        h' = o ⊙ tanh(c')

    Shape: x (N, D), state (h, c) each (N, H) or None -> (h', c').
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        k = hidden_size ** -0.5
        self.weight_ih = _uniform(4 * hidden_size, input_size, bound=k)
        self.weight_hh = _uniform(4 * hidden_size, hidden_size, bound=k)
        self.bias_ih = _uniform(4 * hidden_size, bound=k)
        self.bias_hh = _uniform(4 * hidden_size, bound=k)

    def forward(self, x: torch.Tensor, state=None):
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        h, c = state
        ### BEGIN SOLUTION
        gates = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c
        ### END SOLUTION


class GRUCell(nn.Module):
    """GRU step with torch's names and gate order r, z, n:

        r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)            reset gate (リセットゲート)
        z = σ(x W_izᵀ + b_iz + h W_hzᵀ + b_hz)            update gate (更新ゲート)
        n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn))   candidate
        h' = (1 − z) ⊙ n + z ⊙ h                          torch's convention: z keeps the old state

    Shape: x (N, D), h (N, H) or None -> (N, H).
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        k = hidden_size ** -0.5
        self.weight_ih = _uniform(3 * hidden_size, input_size, bound=k)
        self.weight_hh = _uniform(3 * hidden_size, hidden_size, bound=k)
        self.bias_ih = _uniform(3 * hidden_size, bound=k)
        self.bias_hh = _uniform(3 * hidden_size, bound=k)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        ### BEGIN SOLUTION
        xr, xz, xn = (x @ self.weight_ih.T + self.bias_ih).chunk(3, dim=1)
        hr, hz, hn = (h @ self.weight_hh.T + self.bias_hh).chunk(3, dim=1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * h
        ### END SOLUTION


class BiLSTM(nn.Module):
    """Bidirectional LSTM (双方向RNN), one layer: ``fwd`` reads x_1 … x_T, ``bwd`` reads
    x_T … x_1, and each step's output is [h_fwd_t ; h_bwd_t].

    Equal to nn.LSTM(input_size, hidden_size, bidirectional=True) after copying its
    ``*_l0`` weights into ``fwd`` and its ``*_l0_reverse`` weights into ``bwd``.
    Shape: xs (T, N, D) -> (T, N, 2H).
    """

    def __init__(self, input_size: int, hidden_size: int, cell=None):
        super().__init__()
        cell = cell or LSTMCell
        self.fwd = cell(input_size, hidden_size)
        self.bwd = cell(input_size, hidden_size)

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        state, fwd_out = None, []
        for x in xs:
            state = self.fwd(x, state)
            fwd_out.append(state[0])
        state, bwd_out = None, []
        for x in xs.flip(0):
            state = self.bwd(x, state)
            bwd_out.append(state[0])
        return torch.cat([torch.stack(fwd_out), torch.stack(bwd_out[::-1])], dim=-1)
        ### END SOLUTION


# ----------------------------------------------------------------------------- gradient clipping

def clip_grad_norm(parameters, max_norm: float) -> torch.Tensor:
    """Gradient clipping (勾配クリッピング) by the global norm, as torch.nn.utils.clip_grad_norm_:

        total = ‖(g_1, …, g_n)‖₂ over all gradients together
        if total > max_norm: every g ← g · max_norm / (total + 1e-6)
    Parameters without a gradient are skipped (total = 0 if none has one); ``parameters`` may be a
    generator, read only once. Returns total (a 0-dim tensor in the gradients' dtype, before clipping).
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    ### BEGIN SOLUTION
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).to(grads[0].dtype) if grads else torch.tensor(0.0)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef)
    return total
    ### END SOLUTION


# ----------------------------------------------------------------------------- attention

def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                                 is_causal: bool = False):
    """Attention as a soft dictionary look-up: each query takes a weighted mix of the values,
    weighted by how well it matches each key.

        A = softmax(q kᵀ / √d + M),   output = A v

    ``mask`` is boolean, True = may attend (torch's convention), broadcast to (…, L, S); masked
    scores are −∞ *before* the softmax, so masked positions get weight exactly 0. ``is_causal``
    masks every key after the query's own position.
    Shape: q (…, L, d), k (…, S, d), v (…, S, d_v) -> (output (…, L, d_v), weights (…, L, S)).
    """
    ### BEGIN SOLUTION
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if is_causal:
        L, S = scores.shape[-2:]
        scores = scores.masked_fill(~torch.ones(L, S, dtype=torch.bool, device=q.device).tril(), float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
    ### END SOLUTION


class AdditiveAttention(nn.Module):
    """Bahdanau's additive attention: score(q, k_s) = vᵀ tanh(W_q q + W_k k_s).

    ``W_q`` = nn.Linear(query_dim, hidden, bias=False), ``W_k`` = nn.Linear(key_dim, hidden,
    bias=False), ``v`` = nn.Linear(hidden, 1, bias=False). Weights are the softmax of the
    scores over s (masked positions, mask False, get weight 0); the context is Σ_s a_s value_s.
    Shape: query (N, Dq), keys (N, S, Dk), values (N, S, Dv), mask (N, S) or None
    -> (context (N, Dv), weights (N, S)).
    """

    def __init__(self, query_dim: int, key_dim: int, hidden: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.W_q = nn.Linear(query_dim, hidden, bias=False)
        self.W_k = nn.Linear(key_dim, hidden, bias=False)
        self.v = nn.Linear(hidden, 1, bias=False)
        ### END SOLUTION

    def forward(self, query, keys, values, mask=None):
        ### BEGIN SOLUTION
        scores = self.v(torch.tanh(self.W_q(query)[:, None, :] + self.W_k(keys))).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return (weights[:, :, None] * values).sum(1), weights
        ### END SOLUTION


class MultiHeadAttention(nn.Module):
    """Multi-head attention, equal to nn.MultiheadAttention(embed_dim, num_heads, batch_first=True).

    ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``: nn.Linear(embed_dim, embed_dim) (torch
    keeps the first three stacked in ``in_proj_weight``). Each head h attends with its own
    d = embed_dim / num_heads slice of the projected q, k, v; the heads' outputs are
    concatenated and go through out_proj. The returned weights are averaged over the heads.
    ``key_padding_mask`` (N, S): True = padding (ignored), torch's convention for this module;
    ``attn_mask`` (L, S) boolean: True = *not* allowed (also torch's convention here).
    Shape: query (N, L, E), key and value (N, S, E) -> (output (N, L, E), weights (N, L, S)).
    """

    def __init__(self, embed_dim: int, num_heads: int):
        super().__init__()
        assert embed_dim % num_heads == 0, "embed_dim must be divisible by num_heads"
        self.embed_dim, self.num_heads = embed_dim, num_heads
        ### BEGIN SOLUTION
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        ### END SOLUTION

    def forward(self, query, key, value, key_padding_mask=None, attn_mask=None):
        N, L, E = query.shape
        S, H = key.shape[1], self.num_heads
        ### BEGIN SOLUTION
        split = lambda t, n: t.reshape(N, n, H, E // H).transpose(1, 2)  # noqa: E731  (N, H, n, d)
        q, k, v = split(self.q_proj(query), L), split(self.k_proj(key), S), split(self.v_proj(value), S)
        allowed = torch.ones(N, 1, L, S, dtype=torch.bool, device=query.device)
        if key_padding_mask is not None:
            allowed = allowed & ~key_padding_mask[:, None, None, :]
        if attn_mask is not None:
            allowed = allowed & ~attn_mask
        out, weights = scaled_dot_product_attention(q, k, v, allowed)
        out = out.transpose(1, 2).reshape(N, L, E)
        return self.out_proj(out), weights.mean(dim=1)
        ### END SOLUTION


def positional_encoding(T: int, D: int) -> torch.Tensor:
    """The Transformer's sinusoidal positional encoding (位置エンコーディング):

        PE[pos, 2i] = sin(pos / 10000^{2i/D}),   PE[pos, 2i+1] = cos(pos / 10000^{2i/D})

    Shape: -> (T, D), float32.
    """
    ### BEGIN SOLUTION
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    freq = 10000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    pe = torch.zeros(T, D, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: D // 2])
    return pe.float()
    ### END SOLUTION
