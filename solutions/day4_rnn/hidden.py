"""Hidden tests of DAY 4: the visible checks again with fresh seeds."""
from __future__ import annotations

from autograder.hidden import run_hidden as _run
from course.checks.day4_rnn import (check_attention, check_bidirectional, check_bptt, check_grad_clipping, check_gru_cell,
                                check_lstm_cell, check_multi_head_attention, check_positional_encoding,
                                check_rnn_cell, check_seq2seq)

# The bug planted in the bundled "buggy" sample: attention scores not scaled by 1/√d.
SAMPLE_BUG = {
    "cell": "attention",
    "replace": [("    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])\n",
                 "    scores = q @ k.transpose(-2, -1)\n")],
}


def hidden_rnn_cell(RNNCell, unroll):
    _run("RNNCell and unroll", check_rnn_cell, RNNCell, unroll)


def hidden_bptt(rnn_bptt):
    _run("rnn_bptt", check_bptt, rnn_bptt)


def hidden_lstm_cell(LSTMCell):
    _run("LSTMCell", check_lstm_cell, LSTMCell)


def hidden_gru_cell(GRUCell):
    _run("GRUCell", check_gru_cell, GRUCell)


def hidden_bidirectional(BiLSTM):
    _run("BiLSTM", check_bidirectional, BiLSTM)


def hidden_grad_clipping(clip_grad_norm):
    _run("clip_grad_norm", check_grad_clipping, clip_grad_norm)


def hidden_attention(scaled_dot_product_attention, AdditiveAttention):
    _run("attention", check_attention, scaled_dot_product_attention, AdditiveAttention)


def hidden_multi_head_attention(MultiHeadAttention):
    _run("MultiHeadAttention", check_multi_head_attention, MultiHeadAttention)


def hidden_positional_encoding(positional_encoding):
    _run("positional_encoding", check_positional_encoding, positional_encoding)


def hidden_seq2seq(Encoder, AttnDecoder, greedy_decode):
    _run("Encoder, AttnDecoder, greedy_decode", check_seq2seq, Encoder, AttnDecoder, greedy_decode)
