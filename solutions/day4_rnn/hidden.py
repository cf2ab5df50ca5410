"""Hidden tests of DAY 4, judged outside the student's process (autograder/judge.py): the ``_run`` half
of each visible check runs in the kernel with fresh seeds, and its ``_verdict`` half decides in the
grader (torch's modules are rebuilt there from the same seeds). Nothing here imports the reference:
the kernel cannot see it (autograder/kernel_sandbox.py)."""
from __future__ import annotations

from autograder.judge import cell_function, per_seed
from course.checks import attention_seq2seq as att
from course.checks import day4_rnn as day4

# The bug planted in the bundled "buggy" sample: attention scores not scaled by 1/√d.
SAMPLE_BUG = {
    "cell": "attention",
    "replace": [("    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])\n",
                 "    scores = q @ k.transpose(-2, -1)\n")],
}

# Keyed by the test cell's grade_id.
JUDGED = {
    "test_rnn_cell": per_seed("RNNCell and unroll", day4.rnn_cell_run, day4.rnn_cell_verdict),
    "test_bptt": per_seed("rnn_bptt", day4.bptt_run, day4.bptt_verdict),
    "test_lstm_cell": per_seed("LSTMCell", day4.lstm_cell_run, day4.lstm_cell_verdict),
    "test_gru_cell": per_seed("GRUCell", day4.gru_cell_run, day4.gru_cell_verdict),
    "test_bidirectional": per_seed("BiLSTM", day4.bidirectional_run, day4.bidirectional_verdict),
    "test_grad_clipping": per_seed("clip_grad_norm", day4.grad_clipping_run, day4.grad_clipping_verdict),
    "test_attention": per_seed("attention", att.attention_run, att.attention_verdict),
    "test_multi_head_attention": per_seed("MultiHeadAttention", att.multi_head_attention_run,
                                          att.multi_head_attention_verdict),
    "test_positional_encoding": per_seed("positional_encoding", att.positional_encoding_run,
                                         att.positional_encoding_verdict),
    "test_seq2seq": per_seed("Encoder, AttnDecoder, greedy_decode", att.seq2seq_run, att.seq2seq_verdict),
}

hidden_rnn_cell = cell_function(JUDGED, "test_rnn_cell")  # (RNNCell, unroll)
hidden_bptt = cell_function(JUDGED, "test_bptt")
hidden_lstm_cell = cell_function(JUDGED, "test_lstm_cell")
hidden_gru_cell = cell_function(JUDGED, "test_gru_cell")
hidden_bidirectional = cell_function(JUDGED, "test_bidirectional")
hidden_grad_clipping = cell_function(JUDGED, "test_grad_clipping")
hidden_attention = cell_function(JUDGED, "test_attention")  # (scaled_dot_product_attention, AdditiveAttention)
hidden_multi_head_attention = cell_function(JUDGED, "test_multi_head_attention")
hidden_positional_encoding = cell_function(JUDGED, "test_positional_encoding")
hidden_seq2seq = cell_function(JUDGED, "test_seq2seq")  # (Encoder, AttnDecoder, greedy_decode)
