"""DAY 4, seq2seq with attention (系列変換・Attention): reference solutions.

The encoder-decoder that the notebook trains on dates; it lives apart from reference.py only to
keep each file short, and `# include:` finds its definitions the same way.

References: Cho et al. 2014 (encoder-decoder); Bahdanau et al. 2015 (additive attention).
"""
from __future__ import annotations

import torch
from torch import nn

from solutions.day4_rnn.reference import AdditiveAttention

PAD, BOS, EOS = 0, 1, 2


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
"""SGD steps (batch 32) for the binary-addition RNN."""
"""Learning rate for the mean gradient over the batch."""
