# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # DAY 4 — Recurrent networks, Seq2Seq and attention (再帰型ニューラルネットワーク)
#
# Time series (時系列データ) such as speech or text have an order, and each step depends on the
# ones before. A recurrent network keeps a state $z^{t}$ and updates it at every step:
#
# $$u^{t} = W_{(in)} x^{t} + W z^{t-1} + b, \quad z^{t} = f(u^{t}), \quad y^{t} = g(W_{(out)} z^{t} + c)$$
#
# Today: the simple RNN and its backward pass through time (BPTT), why its gradients vanish
# and how LSTM/GRU fix that, bidirectional RNNs, gradient clipping, attention (additive,
# scaled dot-product, multi-head), positional encoding, and an encoder-decoder with attention
# that reads dates written by humans and writes them in ISO form.
#
# Fill in every `# YOUR CODE HERE`; each check compares your code with torch in float64.

# %% tags=["locked:setup"]
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from course import get_device, grading_mode, quick_mode
from course.checks.day4_rnn import (check_attention, check_bidirectional, check_bptt, check_grad_clipping, check_gru_cell,
                                check_lstm_cell, check_multi_head_attention, check_positional_encoding,
                                check_rnn_cell, check_seq2seq)

device = get_device("auto")
QUICK = quick_mode()
print(f"device={device}, quick experiments={QUICK}")

# %%
# include: _uniform

# %% [markdown]
# ## 1. The simple RNN cell (単純RNN)
#
# torch stores $W_{(in)}$ as `weight_ih` $(H, D)$ and $W$ as `weight_hh` $(H, H)$, with two biases,
# and computes with row vectors: $h' = f(x W_{ih}^\top + b_{ih} + h W_{hh}^\top + b_{hh})$.
# The parameters are created for you (same names as `nn.RNNCell`, so the check can copy torch's
# weights in). Write `forward`, then `unroll`, which applies the cell along time.

# %% tags=["solution:rnn_cell"]
# include: RNNCell, unroll

# %% tags=["test:test_rnn_cell:1"]
"""RNNCell matches nn.RNNCell and unroll matches nn.RNN (1 point)."""
check_rnn_cell(RNNCell, unroll)
### BEGIN HIDDEN TESTS
from solutions.day4_rnn.hidden import hidden_rnn_cell
hidden_rnn_cell(RNNCell, unroll)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Backpropagation through time, by hand (BPTT)
#
# The lecture's binary addition: the RNN reads two numbers bit by bit, least significant bit
# first, and outputs the bits of their sum; the carry has to be remembered in the state.
# With sigmoid units and the squared error, the error signal of step $t$ collects what comes
# back from the output *and* from the next step:
#
# $$\delta^{t}_{out} = (y^t - d^t)\odot y^t(1-y^t), \qquad
#   \delta^{t} = \left(\delta^{t+1} W^\top + \delta^{t}_{out} W_{(out)}^\top\right) \odot z^t (1 - z^t)$$
#
# and each weight's gradient sums over time, e.g. $\partial L/\partial W = \sum_t (z^{t-1})^\top \delta^t$.
# Fill in the backward loop without autograd. The check compares every gradient with autograd's.

# %% tags=["solution:bptt"]
# include: rnn_bptt, binary_addition_data

# %% tags=["test:test_bptt:2"]
"""rnn_bptt's hand-written gradients equal autograd's (2 points)."""
check_bptt(rnn_bptt)
### BEGIN HIDDEN TESTS
from solutions.day4_rnn.hidden import hidden_bptt
hidden_bptt(rnn_bptt)
### END HIDDEN TESTS

# %% [markdown]
# ### Experiment: learning to add
#
# Plain SGD with your gradients, 16 hidden units, batches of 32 sums. Every bit of every
# held-out sum should come out right.

# %%
# include: BPTT_STEPS, BPTT_LR, bptt_accuracy, train_binary_addition

# %%
params, bptt_losses = train_binary_addition(300 if grading_mode() else 1500 if QUICK else BPTT_STEPS)
xs, ds, a, b = binary_addition_data(1000, generator=torch.Generator().manual_seed(99))
print(f"exact sums on 1,000 held-out pairs: {bptt_accuracy(xs, ds, params):.3f}")
plt.figure(figsize=(6, 3)); plt.plot(bptt_losses, alpha=0.6)
plt.xlabel("SGD step"); plt.ylabel("loss per sum"); plt.title("binary addition")
plt.show()

# %% [markdown]
# ## 3. LSTM (長短期記憶)
#
# Backpropagating through $T$ steps multiplies $T$ Jacobians; their product vanishes or
# explodes (勾配消失・勾配爆発). The LSTM keeps a cell $c$, the **CEC** (constant error
# carousel), updated by addition, so errors can flow back unchanged. Gates decide what to
# write (input gate), keep (forget gate) and show (output gate):
#
# $$c' = \sigma(f) \odot c + \sigma(i) \odot \tanh(g), \qquad h' = \sigma(o) \odot \tanh(c')$$
#
# torch stacks the four pre-activations in the order **i, f, g, o**.

# %% tags=["solution:lstm_cell"]
# include: LSTMCell

# %% tags=["test:test_lstm_cell:2"]
"""LSTMCell matches nn.LSTMCell (2 points)."""
check_lstm_cell(LSTMCell)
### BEGIN HIDDEN TESTS
from solutions.day4_rnn.hidden import hidden_lstm_cell
hidden_lstm_cell(LSTMCell)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. GRU
#
# The GRU merges the LSTM's cell and state and uses two gates, reset $r$ and update $z$, so it
# has fewer parameters (3 blocks instead of 4). Mind torch's two conventions: $r$ multiplies
# $(h W_{hn}^\top + b_{hn})$, after the product, and $h' = (1 - z) \odot n + z \odot h$.

# %% tags=["solution:gru_cell"]
# include: GRUCell

# %% tags=["test:test_gru_cell:2"]
"""GRUCell matches nn.GRUCell (2 points)."""
check_gru_cell(GRUCell)
### BEGIN HIDDEN TESTS
from solutions.day4_rnn.hidden import hidden_gru_cell
hidden_gru_cell(GRUCell)
### END HIDDEN TESTS

# %% [markdown]
# ### Experiment: gradient through time, and parameter counts
#
# $\lVert \partial h_{100} / \partial x_t \rVert$ for untrained cells: the simple RNN forgets
# early inputs fastest.

# %%
# include: gradient_through_time

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, cell in (("RNN", RNNCell(8, 32)), ("LSTM", LSTMCell(8, 32)), ("GRU", GRUCell(8, 32))):
    axes[0].semilogy(range(1, 101), gradient_through_time(cell), label=name)
    axes[1].bar(name, sum(p.numel() for p in cell.parameters()))
axes[0].set(xlabel="input step t", ylabel="‖∂h_100/∂x_t‖", title="gradient through time"); axes[0].legend()
axes[1].set(title="parameters (input 8, hidden 32)")
plt.show()

# %% [markdown]
# ## 5. Bidirectional RNN (双方向RNN)
#
# To label a word you may need the words after it too. A bidirectional RNN runs one cell
# forwards and another backwards and concatenates their states at each position. Use your
# `LSTMCell`s `self.fwd` and `self.bwd`; position $t$ of the output is $[h^{fwd}_t ; h^{bwd}_t]$.

# %% tags=["solution:bidirectional"]
# include: BiLSTM

# %% tags=["test:test_bidirectional:2"]
"""BiLSTM matches nn.LSTM(bidirectional=True) (2 points)."""
check_bidirectional(BiLSTM)
### BEGIN HIDDEN TESTS
from solutions.day4_rnn.hidden import hidden_bidirectional
hidden_bidirectional(BiLSTM)
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Gradient clipping (勾配クリッピング)
#
# When the gradients explode, rescale them all together so that their global norm is at most
# the threshold: $g \leftarrow g \cdot \text{max\_norm} / \lVert g \rVert$ if $\lVert g \rVert > \text{max\_norm}$.
# The direction is kept; only the step gets shorter.

# %% tags=["solution:grad_clipping"]
# include: clip_grad_norm

# %% tags=["test:test_grad_clipping:1"]
"""clip_grad_norm matches torch.nn.utils.clip_grad_norm_ (1 point)."""
check_grad_clipping(clip_grad_norm)
### BEGIN HIDDEN TESTS
from solutions.day4_rnn.hidden import hidden_grad_clipping
hidden_grad_clipping(clip_grad_norm)
### END HIDDEN TESTS

# %% [markdown]
# ### Experiment: exploding gradients, tamed
#
# The *adding problem* (Hochreiter & Schmidhuber): a tanh RNN reads 20 random numbers, two of
# them marked, and must output the sum of the marked two. Its recurrent matrix starts slightly
# larger than norm 1, and plain SGD takes steps of lr 0.1. Without clipping, a few large
# gradients throw the weights so far that the loss becomes `inf`/`nan` within a few dozen
# steps. With your `clip_grad_norm` at 1.0 the same run stays finite and gets below the
# mean-guessing MSE of 1/6.

# %%
# include: adding_problem, exploding_gradients

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for label, max_norm in (("no clipping", None), ("clip at 1.0", 1.0)):
    losses, norms = exploding_gradients(max_norm, steps=100 if grading_mode() else 300 if QUICK else 600)
    blown = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
    print(f"{label}: " + (f"loss is nan from step {blown}" if blown is not None
                          else f"final MSE {sum(losses[-50:]) / 50:.3f}"))
    axes[0].semilogy(losses, label=label); axes[1].semilogy(norms, label=label)
axes[0].set(xlabel="SGD step", ylabel="MSE", title="adding problem"); axes[0].legend()
axes[1].set(xlabel="SGD step", ylabel="gradient norm before clipping")
plt.show()

# %% [markdown]
# ## 7. Attention
#
# Attention works like a dictionary look-up (辞書オブジェクト): a **query** is compared with every
# **key**, and the result is a mix of the **values**, weighted by the softmax of the scores.
#
# - scaled dot-product: $\mathrm{softmax}(q k^\top / \sqrt{d})\, v$. The $1/\sqrt{d}$ keeps
#   the scores' variance at 1, so the softmax does not saturate; masked positions are set to
#   $-\infty$ **before** the softmax;
# - additive (Bahdanau): $\mathrm{score}(q, k_s) = v^\top \tanh(W_q q + W_k k_s)$.

# %% tags=["solution:attention"]
# include: scaled_dot_product_attention, AdditiveAttention

# %% tags=["test:test_attention:2"]
"""Scaled dot-product attention matches torch; additive attention matches its formula (2 points)."""
check_attention(scaled_dot_product_attention, AdditiveAttention)
### BEGIN HIDDEN TESTS
from solutions.day4_rnn.hidden import hidden_attention
hidden_attention(scaled_dot_product_attention, AdditiveAttention)
### END HIDDEN TESTS

# %% [markdown]
# ## 8. Multi-head attention (Transformer)
#
# The Transformer (2017) uses no RNN: attention is all it needs. Multi-head attention projects
# q, k, v, splits the $E$ features into $H$ heads of $d = E/H$, lets each head attend on its
# own, concatenates the heads and projects again. torch keeps the three input projections
# stacked in `in_proj_weight`; the check splits it into your `q_proj`, `k_proj`, `v_proj`.

# %% tags=["solution:multi_head_attention"]
# include: MultiHeadAttention

# %% tags=["test:test_multi_head_attention:2"]
"""MultiHeadAttention matches nn.MultiheadAttention (2 points)."""
check_multi_head_attention(MultiHeadAttention)
### BEGIN HIDDEN TESTS
from solutions.day4_rnn.hidden import hidden_multi_head_attention
hidden_multi_head_attention(MultiHeadAttention)
### END HIDDEN TESTS

# %% [markdown]
# ## 9. Positional encoding (位置エンコーディング)
#
# Attention ignores order, so the Transformer adds a position signal to each embedding:
# $PE_{pos, 2i} = \sin(pos / 10000^{2i/D})$, $PE_{pos, 2i+1} = \cos(pos / 10000^{2i/D})$.

# %% tags=["solution:positional_encoding"]
# include: positional_encoding

# %% tags=["test:test_positional_encoding:1"]
"""positional_encoding matches the formula (1 point)."""
check_positional_encoding(positional_encoding)
### BEGIN HIDDEN TESTS
from solutions.day4_rnn.hidden import hidden_positional_encoding
hidden_positional_encoding(positional_encoding)
### END HIDDEN TESTS

# %% [markdown]
# ## 10. Seq2Seq with attention: normalising dates
#
# An **encoder** reads "22 Nov 2026", "2026年11月22日" or "22/11/26" character by character;
# a **decoder** writes "2026-11-22". The encoder's final state (the "thought vector",
# 文脈ベクトル) starts the decoder, and at every step the decoder attends over all the
# encoder's outputs. Training feeds the true previous character (teacher forcing);
# `greedy_decode` must feed back its own predictions instead.

# %%
# include: PAD, BOS, EOS, MONTHS, DAYS, DATE_FORMATS, IN_VOCAB, OUT_VOCAB, make_dates, encode, decode

# %% tags=["solution:seq2seq"]
# include: Encoder, AttnDecoder, greedy_decode

# %% tags=["test:test_seq2seq:3"]
"""Encoder, AttnDecoder and greedy_decode do what their docstrings say (3 points)."""
check_seq2seq(Encoder, AttnDecoder, greedy_decode)
### BEGIN HIDDEN TESTS
from solutions.day4_rnn.hidden import hidden_seq2seq
hidden_seq2seq(Encoder, AttnDecoder, greedy_decode)
### END HIDDEN TESTS

# %% [markdown]
# ### Training it
#
# Fresh random dates every step. 1,200 steps reach 100% exact match on 1,000 held-out dates in
# about 2 minutes on a 2-core CPU; graded or quick runs train 200 steps (usually above 90%).

# %%
# include: seq2seq_loss, train_dates, date_accuracy

# %%
steps = 30 if grading_mode() else 200 if QUICK else 1200  # autograding only needs the cell to run
enc, dec, s2s_losses = train_dates(steps, device=device)
test = make_dates(1000, torch.Generator().manual_seed(12345))
print(f"exact match on 1,000 held-out dates after {steps} steps: {date_accuracy(enc, dec, test, device=device):.3f}")
examples = ["22 Nov 2026", "22/11/26", "Sunday, 22 November 2026"]
with torch.no_grad():
    enc.eval(), dec.eval()
    tokens, attn = greedy_decode(enc, dec, encode(examples, IN_VOCAB).to(device), max_len=11)
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for ax, text, a, pred in zip(axes, examples, attn.cpu(), decode(tokens.cpu())):
    ax.imshow(a[:len(pred), :len(text) + 1])
    ax.set_xticks(range(len(text) + 1), list(text) + ["<eos>"], fontsize=7)
    ax.set_yticks(range(len(pred)), list(pred))
    ax.set_title(f"{text} → {pred}", fontsize=9)
plt.show()

# %% [markdown]
# ## Summary (まとめ)
#
# - An RNN reuses $W$ at every step; BPTT sums each weight's gradient over time.
# - Repeated Jacobians make gradients vanish; the LSTM's additive cell (CEC) and gates fix that,
#   and the GRU does it with fewer parameters. Clipping tames exploding gradients.
# - Attention is a soft dictionary look-up; scale by $1/\sqrt{d}$ and mask before the softmax.
# - Seq2Seq: an encoder's states, attended by the decoder at every step, carry the input.
