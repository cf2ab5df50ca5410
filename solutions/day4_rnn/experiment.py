"""DAY 4, recurrent networks and attention (再帰型ニューラルネットワーク・Attention): the reference experiment of `course run day4_rnn`.

What the DAY's notebook trains and plots, at full scale (or ``--quick``): the training loops,
the experiment's configuration, its plots and ``main``. The exercises themselves are in
``reference.py``; the notebook includes what it needs from both files.
"""
from __future__ import annotations

import datetime
import math
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from course import get_device
from course.plotting import save
from solutions.day4_rnn.reference import clip_grad_norm, rnn_bptt
from solutions.day4_rnn.reference_seq2seq import AttnDecoder, BOS, EOS, Encoder, PAD, greedy_decode


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
    f(datetime.date(2000 + i, 1 + i % 12, 1 + i)) for f in DATE_FORMATS for i in range(28))
    + "0123456789" + "".join(MONTHS + DAYS) + "".join(MONTHS).upper() + "".join(MONTHS).lower()))
OUT_VOCAB = ["<pad>", "<bos>", "<eos>"] + list("0123456789-")


def make_dates(n: int, generator: torch.Generator | None = None):
    """``n`` random dates from 1950-01-01 to 2049-12-31 (so two-digit years are unambiguous),
    each written in a random human format, with its ISO form: ("22 Nov 2026", "2026-11-22")."""
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
BPTT_LR = 2.0


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
        losses, norms = exploding_gradients(max_norm, steps=150 if quick else 600)
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
    steps = 20 if quick else 1200  # quick: a smoke run of the whole pipeline, not a trained model
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
