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
import torch.nn.functional as F
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


def binary_addition_data(n: int, bits: int = 8, generator: torch.Generator | None = None):
    """The lecture's task: add two numbers below 2^(bits−1), bit by bit from the least significant.

    Returns xs (bits, n, 2) (the two input bits at each step), ds (bits, n, 1) (the sum's bit),
    and the integers a, b. Least significant bit first, so the carry flows forward in time.
    """
    a = torch.randint(0, 2 ** (bits - 1), (n,), generator=generator)
    b = torch.randint(0, 2 ** (bits - 1), (n,), generator=generator)
    shifts = torch.arange(bits)
    to_bits = lambda v: ((v[None, :] >> shifts[:, None]) & 1).double()  # noqa: E731  (bits, n)
    xs = torch.stack([to_bits(a), to_bits(b)], dim=-1)
    ds = to_bits(a + b).unsqueeze(-1)
    return xs, ds, a, b


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

    Parameters without a gradient are skipped. Returns total (0-dim tensor, before clipping).
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


# ----------------------------------------------------------------------------- seq2seq with attention

PAD, BOS, EOS = 0, 1, 2
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
DATE_FORMATS = (
    lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",               # 22 Nov 2026
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",                  # November 22, 2026
    lambda d: f"{d.year}年{d.month}月{d.day}日",                             # 2026年11月22日
    lambda d: f"{d.day:02d}/{d.month:02d}/{d.year % 100:02d}",             # 22/11/26
    lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",                       # 22.11.2026
    lambda d: f"{DAYS[d.weekday()]}, {d.day} {MONTHS[d.month - 1]} {d.year}",  # Sunday, 22 November 2026
    lambda d: f"{MONTHS[d.month - 1][:3].lower()} {d.day:02d} {d.year}",   # nov 22 2026
    lambda d: f"{d.day} {MONTHS[d.month - 1].upper()} {d.year}",           # 22 NOVEMBER 2026
)
IN_VOCAB = ["<pad>", "<bos>", "<eos>"] + sorted(set("".join(
    f(__import__("datetime").date(2000 + i, 1 + i % 12, 1 + i)) for f in DATE_FORMATS for i in range(28))
    + "0123456789" + "".join(MONTHS + DAYS) + "".join(MONTHS).upper() + "".join(MONTHS).lower()))
OUT_VOCAB = ["<pad>", "<bos>", "<eos>"] + list("0123456789-")


def make_dates(n: int, generator: torch.Generator | None = None):
    """``n`` random dates from 1950-01-01 to 2049-12-31 (so two-digit years are unambiguous),
    each written in a random human format, with its ISO form: ("22 Nov 2026", "2026-11-22")."""
    import datetime

    start = datetime.date(1950, 1, 1)
    span = (datetime.date(2049, 12, 31) - start).days + 1
    days = torch.randint(0, span, (n,), generator=generator).tolist()
    fmts = torch.randint(0, len(DATE_FORMATS), (n,), generator=generator).tolist()
    pairs = []
    for d, f in zip(days, fmts):
        date = start + datetime.timedelta(days=d)
        pairs.append((DATE_FORMATS[f](date), date.isoformat()))
    return pairs


def encode(texts: list[str], vocab: list[str], bos: bool = False) -> torch.Tensor:
    """Strings -> (N, max_len + 1 [+1]) token ids: [<bos>] chars <eos> <pad>…"""
    index = {ch: i for i, ch in enumerate(vocab)}
    rows = [([BOS] if bos else []) + [index[ch] for ch in t] + [EOS] for t in texts]
    out = torch.full((len(rows), max(map(len, rows))), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r)
    return out


def decode(ids: torch.Tensor) -> list[str]:
    """(N, T) output ids -> strings, stopping at <eos>."""
    texts = []
    for row in ids.tolist():
        chars = []
        for i in row:
            if i == EOS:
                break
            if i > EOS:
                chars.append(OUT_VOCAB[i])
        texts.append("".join(chars))
    return texts


class Encoder(nn.Module):
    """Embeds the characters and reads them with a bidirectional GRU.

    ``embed`` = nn.Embedding(vocab_size, embed_dim, padding_idx=0); ``rnn`` = nn.GRU(embed_dim,
    hidden, batch_first=True, bidirectional=True). The returned state, the "thought vector"
    (文脈ベクトル) that starts the decoder, is the concatenated final forward and backward
    states.
    Shape: src (N, S) ids -> (outputs (N, S, 2·hidden), state (N, 2·hidden)).
    """

    def __init__(self, vocab_size: int, embed_dim: int = 32, hidden: int = 64):
        super().__init__()
        ### BEGIN SOLUTION
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.rnn = nn.GRU(embed_dim, hidden, batch_first=True, bidirectional=True)
        ### END SOLUTION

    def forward(self, src: torch.Tensor):
        ### BEGIN SOLUTION
        outputs, h = self.rnn(self.embed(src))  # h: (2, N, hidden)
        return outputs, torch.cat([h[0], h[1]], dim=-1)
        ### END SOLUTION


class AttnDecoder(nn.Module):
    """One decoding step with additive attention over the encoder outputs:

        context, a = attention(h, enc_outputs, enc_outputs, src_mask)
        h' = GRUCell([embed(y_prev) ; context], h),   logits = out([h' ; context])

    ``embed`` = nn.Embedding(vocab_size, embed_dim), ``attention`` = AdditiveAttention(hidden,
    enc_dim, hidden), ``cell`` = nn.GRUCell(embed_dim + enc_dim, hidden), ``out`` =
    nn.Linear(hidden + enc_dim, vocab_size). hidden equals enc_dim, so the encoder state
    starts it.
    Shape: y_prev (N,) ids, h (N, hidden), enc_outputs (N, S, enc_dim), src_mask (N, S) True at
    real characters -> (logits (N, vocab_size), h' (N, hidden), weights (N, S)).
    """

    def __init__(self, vocab_size: int, enc_dim: int = 128, embed_dim: int = 32):
        super().__init__()
        hidden = enc_dim
        ### BEGIN SOLUTION
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.attention = AdditiveAttention(hidden, enc_dim, hidden)
        self.cell = nn.GRUCell(embed_dim + enc_dim, hidden)
        self.out = nn.Linear(hidden + enc_dim, vocab_size)
        ### END SOLUTION

    def forward(self, y_prev, h, enc_outputs, src_mask):
        ### BEGIN SOLUTION
        context, weights = self.attention(h, enc_outputs, enc_outputs, src_mask)
        h = self.cell(torch.cat([self.embed(y_prev), context], dim=-1), h)
        return self.out(torch.cat([h, context], dim=-1)), h, weights
        ### END SOLUTION


def greedy_decode(encoder: nn.Module, decoder: nn.Module, src: torch.Tensor, max_len: int):
    """Generate without teacher forcing: start from <bos>, feed back the argmax at every step,
    for exactly ``max_len`` steps (a finished sequence keeps going; ``decode`` cuts at <eos>).

    Shape: src (N, S) -> (tokens (N, max_len) long, attention (N, max_len, S)).
    """
    enc_outputs, h = encoder(src)
    mask = src != PAD
    y = torch.full((src.shape[0],), BOS, dtype=torch.long, device=src.device)
    ### BEGIN SOLUTION
    tokens, attn = [], []
    for _ in range(max_len):
        logits, h, w = decoder(y, h, enc_outputs, mask)
        y = logits.argmax(dim=-1)
        tokens.append(y)
        attn.append(w)
    return torch.stack(tokens, dim=1), torch.stack(attn, dim=1)
    ### END SOLUTION


def seq2seq_loss(encoder, decoder, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """Teacher forcing (教師強制): feed the true previous character; cross-entropy per step,
    ignoring padding. tgt (N, T) starts with <bos>."""
    enc_outputs, h = encoder(src)
    mask = src != PAD
    losses = []
    for t in range(tgt.shape[1] - 1):
        logits, h, _ = decoder(tgt[:, t], h, enc_outputs, mask)
        losses.append(F.cross_entropy(logits, tgt[:, t + 1], ignore_index=PAD, reduction="none"))
    return torch.stack(losses, 1).sum() / (tgt[:, 1:] != PAD).sum()


def train_dates(steps: int, *, batch_size: int = 128, lr: float = 3e-3, seed: int = 0, device="cpu",
                progress: bool = True, enc=None, dec=None):
    """Train Encoder + AttnDecoder on fresh random dates every step; returns (encoder, decoder, losses)."""
    import sys

    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    enc = (enc or Encoder(len(IN_VOCAB))).to(device)
    dec = (dec or AttnDecoder(len(OUT_VOCAB))).to(device)
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    losses = []
    for _ in tqdm(range(steps), desc="seq2seq", disable=not progress, file=sys.stdout, leave=False):
        pairs = make_dates(batch_size, gen)
        src = encode([p[0] for p in pairs], IN_VOCAB).to(device)
        tgt = encode([p[1] for p in pairs], OUT_VOCAB, bos=True).to(device)
        loss = seq2seq_loss(enc, dec, src, tgt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return enc, dec, losses


@torch.no_grad()
def date_accuracy(enc, dec, pairs, device="cpu") -> float:
    """Exact-match accuracy of greedy decoding on (human, iso) pairs."""
    enc.eval(), dec.eval()
    src = encode([p[0] for p in pairs], IN_VOCAB).to(device)
    tokens, _ = greedy_decode(enc, dec, src, max_len=11)
    enc.train(), dec.train()
    return sum(p == t[1] for p, t in zip(decode(tokens.cpu()), pairs)) / len(pairs)


# ----------------------------------------------------------------------------- binary addition experiment

BPTT_STEPS = 3000
"""SGD steps (batch 32) for the binary-addition RNN."""
BPTT_LR = 2.0
"""Learning rate for the mean gradient over the batch."""


def bptt_accuracy(xs: torch.Tensor, ds: torch.Tensor, p: dict[str, torch.Tensor]) -> float:
    """Fraction of sums whose every bit is right (prediction = y > 0.5)."""
    z = xs.new_zeros(xs.shape[1], p["W"].shape[0])
    ys = []
    for t in range(xs.shape[0]):
        z = torch.sigmoid(xs[t] @ p["W_in"] + z @ p["W"] + p["b"])
        ys.append(torch.sigmoid(z @ p["W_out"] + p["c"]))
    return ((torch.stack(ys) > 0.5).double() == ds).all(dim=0).all(dim=-1).double().mean().item()


# ----------------------------------------------------------------------------- experiments

def train_binary_addition(steps: int = BPTT_STEPS, hidden: int = 16, seed: int = 0, bptt=None):
    """SGD on 8-bit sums with the hand-written gradients; returns (parameters, loss per step)."""
    bptt = bptt or rnn_bptt
    g = torch.Generator().manual_seed(seed)
    p = {"W_in": torch.randn(2, hidden, generator=g, dtype=torch.float64),
         "W": torch.randn(hidden, hidden, generator=g, dtype=torch.float64) * 0.5,
         "W_out": torch.randn(hidden, 1, generator=g, dtype=torch.float64),
         "b": torch.zeros(hidden, dtype=torch.float64), "c": torch.zeros(1, dtype=torch.float64)}
    losses = []
    for _ in range(steps):
        xs, ds, _, _ = binary_addition_data(32, generator=g)
        loss, grads = bptt(xs, ds, *p.values())
        for k in p:
            p[k] -= BPTT_LR * grads[k] / 32
        losses.append(float(loss) / 32)
    return p, losses


def adding_problem(n: int, T: int, generator: torch.Generator | None = None):
    """The "adding problem": xs (n, T, 2) holds random numbers and a 0/1 marker on two steps;
    the target (n, 1) is the sum of the two marked numbers (mean-guessing scores MSE 1/6)."""
    values = torch.rand(n, T, 1, generator=generator)
    marks = torch.zeros(n, T, 1)
    picked = torch.rand(n, T, generator=generator).argsort(dim=1)[:, :2]
    marks.scatter_(1, picked[..., None], 1.0)
    return torch.cat([values, marks], dim=-1), (values * marks).sum(dim=1)


def exploding_gradients(max_norm: float | None, steps: int = 600, T: int = 20, lr: float = 0.1, seed: int = 0,
                        clip=None):
    """Train a tanh RNN (recurrent weights: orthogonal × 1.2, so ‖W‖ > 1) on the adding problem
    with plain SGD, with or without clipping the global gradient norm at max_norm.
    Returns (loss per step, gradient norm per step before clipping); a loss of nan means the
    weights blew up."""
    clip = clip or clip_grad_norm
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    rnn, head = nn.RNN(2, 64, batch_first=True), nn.Linear(64, 1)
    nn.init.orthogonal_(rnn.weight_hh_l0, gain=1.2)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=lr)
    losses, norms = [], []
    for _ in range(steps):
        x, y = adding_problem(64, T, generator=g)
        loss = F.mse_loss(head(rnn(x)[0][:, -1]), y)
        opt.zero_grad()
        loss.backward()
        if max_norm is None:
            norm = torch.sqrt(sum((q.grad ** 2).sum() for q in params))
        else:
            norm = clip(params, max_norm)
        opt.step()
        losses.append(loss.item())
        norms.append(float(norm))
    return losses, norms


def gradient_through_time(cell: nn.Module, T: int = 100, seed: int = 0) -> list[float]:
    """‖∂ h_T / ∂ x_t‖ for t = 1 … T: how much the last state still depends on each input."""
    torch.manual_seed(seed)
    xs = torch.randn(T, 1, cell.input_size, requires_grad=True)
    state = None
    for x in xs:
        state = cell(x, state)
    h = state[0] if isinstance(state, tuple) else state
    (g,) = torch.autograd.grad(h.sum(), xs)
    return g.norm(dim=(1, 2)).tolist()


def main(device: str = "auto", quick: bool = False) -> dict[str, float]:
    """Binary addition by hand-written BPTT, vanishing gradients, and the date seq2seq; plots;
    metrics on the last line."""
    import sys
    import time
    from pathlib import Path

    import matplotlib.pyplot as plt

    from course import get_device
    from course.plotting import save

    dev = get_device(device)
    out = Path("runs/day4_rnn")
    results: dict[str, float] = {}
    # 1. binary addition
    t0 = time.perf_counter()
    p, losses = train_binary_addition(BPTT_STEPS)
    xs, ds, _, _ = binary_addition_data(1000, generator=torch.Generator().manual_seed(99))
    results["binary_addition"] = bptt_accuracy(xs, ds, p)
    print(f"  binary addition: {results['binary_addition']:.3f} of 1,000 held-out sums exact "
          f"({time.perf_counter() - t0:.1f}s)")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(losses, alpha=0.6)
    ax.set(xlabel="SGD step", ylabel="loss per sum", title="Binary addition, hand-written BPTT")
    print(f"saved {save(fig, out / 'binary_addition.png')}")
    # 2. gradient through time and parameter counts
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, cell in (("RNN (tanh)", nn.RNNCell(8, 32)), ("LSTM", nn.LSTMCell(8, 32)), ("GRU", nn.GRUCell(8, 32))):
        axes[0].semilogy(range(1, 101), gradient_through_time(cell), label=name)
        axes[1].bar(name, sum(q.numel() for q in cell.parameters()))
    axes[0].set(xlabel="input step t (T = 100)", ylabel="‖∂h_T/∂x_t‖", title="Gradient through time")
    axes[0].legend()
    axes[1].set(title="parameters (input 8, hidden 32)")
    print(f"saved {save(fig, out / 'gradient_through_time.png')}")
    # 3. exploding gradients tamed by clipping
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for label, max_norm in (("no clipping", None), ("clip at 1.0", 1.0)):
        losses, norms = exploding_gradients(max_norm, steps=300 if quick else 600)
        finite = [v for v in losses if math.isfinite(v)]
        blown = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
        key = "adding_mse_" + ("clipped" if max_norm else "unclipped")
        results[key] = sum(finite[-50:]) / max(len(finite[-50:]), 1) if blown is None else float("nan")
        print(f"  adding problem, {label}: " + (f"diverged (nan) at step {blown}" if blown is not None
                                                  else f"final MSE {results[key]:.3f} (mean guess 0.167)"))
        axes[0].semilogy(losses, label=label, alpha=0.8)
        axes[1].semilogy(norms, label=label, alpha=0.8)
    axes[0].set(xlabel="SGD step", ylabel="MSE", title="Adding problem, tanh RNN, lr 0.1")
    axes[1].set(xlabel="SGD step", ylabel="global gradient norm (before clipping)", title="Exploding gradients")
    axes[0].legend()
    print(f"saved {save(fig, out / 'gradient_clipping.png')}")
    # 4. seq2seq
    steps = 300 if quick else 1200
    t0 = time.perf_counter()
    enc, dec, losses = train_dates(steps, device=dev)
    test = make_dates(1000, torch.Generator().manual_seed(12345))
    results["dates_exact_match"] = date_accuracy(enc, dec, test, device=dev)
    print(f"  dates: {results['dates_exact_match']:.3f} exact match on 1,000 held-out dates after {steps} steps "
          f"({time.perf_counter() - t0:.1f}s)")
    examples = [("22 Nov 2026", ""), ("22/11/26", ""), ("Sunday, 22 November 2026", "")]
    with torch.no_grad():
        enc.eval(), dec.eval()
        src = encode([e[0] for e in examples], IN_VOCAB).to(dev)
        tokens, attn = greedy_decode(enc, dec, src, max_len=11)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, (text, _), a, pred in zip(axes, examples, attn.cpu(), decode(tokens.cpu())):
        ax.imshow(a[:len(pred), :len(text) + 1], cmap="viridis")
        ax.set_xticks(range(len(text) + 1), list(text) + ["<eos>"], fontsize=7)
        ax.set_yticks(range(len(pred)), list(pred))
        ax.set_title(f"{text} → {pred}", fontsize=9)
    print(f"saved {save(fig, out / 'attention.png')}")
    sys.stdout.flush()
    print("day4_rnn results: " + " ".join(f"{k}={v:.4f}" for k, v in results.items()))
    return results
