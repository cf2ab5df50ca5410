"""DAY 4 visible checks, continued: attention, multi-head attention, positional encoding, seq2seq.
Each is a ``_run`` and a ``_verdict`` half, as the DAY's own module in this folder explains; that
module re-exports these."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from course.checks.common import (TOL, _fail, _ok, call_student, compare, forbid_calls_in, observed, pair, rand64,
                                  same, seeded_module, source_of, type_name)

__all__ = ["check_attention", "check_multi_head_attention", "check_positional_encoding", "check_seq2seq"]

_rand = rand64


# ----------------------------------------------------------------------------- attention

SDPA_CASES = (({}, "no mask"), ({"mask": True}, "a boolean mask"),
              ({"is_causal": True, "square": True}, "is_causal=True"), ({"is_causal": True}, "is_causal=True and S ≠ L"),
              ({"mask": True, "is_causal": True}, "a boolean mask and is_causal=True (both apply)"),
              ({"is_causal": True, "flat": True}, "is_causal=True on 3-D inputs (B, L, d)"))
L_SDPA = 5  # queries; the keys are 7, or 5 in the "square" case
ADDITIVE = dict(Dq=6, Dk=5, Dv=3, Hd=7, N=4, S=9)


def _sdpa_inputs(seed):
    q, k, v = _rand(2, 3, 5, 8, seed=seed), _rand(2, 3, 7, 8, seed=seed + 1), _rand(2, 3, 7, 4, seed=seed + 2)
    mask = torch.rand(2, 1, 5, 7, generator=torch.Generator().manual_seed(seed)) > 0.3
    mask[..., 0] = True  # every query may attend somewhere
    return q, k, v, mask


def _sdpa_args(kwargs, k, v, mask):
    """The keys, values and keyword arguments of one case, and the boolean mask of what may be attended."""
    kk, vv = (k[:, :, :L_SDPA], v[:, :, :L_SDPA]) if kwargs.get("square") else (k, v)
    kk, vv = (kk[0], vv[0]) if kwargs.get("flat") else (kk, vv)  # q is cut to q[0] by the caller
    args = {"mask": mask[..., :kk.shape[-2]]} if "mask" in kwargs else {}
    allowed = args["mask"] if "mask" in kwargs else torch.ones(L_SDPA, kk.shape[-2], dtype=torch.bool)
    if kwargs.get("is_causal"):
        args["is_causal"] = True
        allowed = allowed & torch.ones(L_SDPA, kk.shape[-2], dtype=torch.bool).tril()  # key j ≤ query i, as torch
    return kk, vv, args, allowed


def _additive_inputs(seed):
    Dq, Dk, Dv, Hd, N, S = ADDITIVE.values()
    query, keys, values = _rand(N, Dq, seed=seed + 3), _rand(N, S, Dk, seed=seed + 4), _rand(N, S, Dv, seed=seed + 5)
    m = torch.rand(N, S, generator=torch.Generator().manual_seed(seed + 6)) > 0.4
    m[:, 0] = True
    return query, keys, values, m


def attention_run(scaled_dot_product_attention, AdditiveAttention, *, seed: int) -> dict:
    """(output, weights) of the student's sdpa for each case; AdditiveAttention's parameter shapes and,
    with its parameters set from the seed, its (context, weights) without and with a mask."""
    q, k, v, mask = _sdpa_inputs(seed)
    run = {"source": source_of(scaled_dot_product_attention), "sdpa": []}
    for kwargs, desc in SDPA_CASES:
        kk, vv, args, _ = _sdpa_args(kwargs, k, v, mask)
        run["sdpa"].append(observed(call_student(scaled_dot_product_attention, q[0] if "flat" in kwargs else q, kk,
                                                 vv, **args,
                                                 what=f"scaled_dot_product_attention with {desc}")))
    Dq, Dk, Dv, Hd, N, S = ADDITIVE.values()
    att = call_student(AdditiveAttention, Dq, Dk, Hd, what=f"AdditiveAttention({Dq}, {Dk}, {Hd})").double()
    run["shapes"] = {n: list(p.shape) for n, p in att.named_parameters()}
    if run["shapes"] != _additive_shapes():
        return run  # the verdict stops at the shapes
    with torch.no_grad():
        for p in att.parameters():
            p.copy_(_rand(*p.shape, seed=seed + p.numel()))
    query, keys, values, m = _additive_inputs(seed)
    run["additive"] = [observed(call_student(att, query, keys, values, mm, what="AdditiveAttention(query, keys, "
                                             "values, mask)")) for mm in (None, m)]
    return run


def _additive_shapes():
    Dq, Dk, Dv, Hd, N, S = ADDITIVE.values()
    return {"W_q.weight": [Hd, Dq], "W_k.weight": [Hd, Dk], "v.weight": [1, Hd]}


def attention_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    forbid_calls_in(run["source"], ["F.scaled_dot_product_attention", ".scaled_dot_product_attention",
                                    "nn.MultiheadAttention"], "scaled_dot_product_attention")
    q, k, v, mask = _sdpa_inputs(seed)
    for (kwargs, desc), got in zip(SDPA_CASES, run["sdpa"], strict=True):
        kk, vv, args, allowed = _sdpa_args(kwargs, k, v, mask)
        what = f"scaled_dot_product_attention with {desc}"
        out, w = pair(got, what, "(output, weights)")
        qq = q[0] if "flat" in kwargs else q
        want = F.scaled_dot_product_attention(qq, kk, vv, attn_mask=allowed)
        scores = qq @ kk.transpose(-2, -1)
        allowed = allowed.expand_as(scores)
        hint = ""
        if same(w, torch.softmax(scores.masked_fill(~allowed, -math.inf), -1)):
            hint = "Divide the scores by √d before the softmax (d = the last dim of q)."
        elif torch.is_tensor(w) and w.shape == scores.shape and (w[~allowed] == 0).all() and \
                not torch.allclose(w.sum(-1).to(scores.dtype), torch.ones((), dtype=scores.dtype)):
            hint = "Mask before the softmax (scores → −∞), so that the remaining weights still sum to 1."
        elif torch.is_tensor(w) and w.shape == scores.shape and not (w[~allowed] == 0).all():
            hint = "Masked positions must get weight exactly 0: True in the mask means 'may attend'; causal " \
                   "means key j ≤ query i, with an L × S mask (S keys may outnumber the L queries); a mask " \
                   "and is_causal together both apply."
        compare(w, torch.softmax(scores.masked_fill(~allowed, -math.inf) / math.sqrt(8), -1),
                f"{what}: attention weights", **TOL, hint=hint)
        compare(out, want, f"{what}: output", **TOL, hint=hint)
    # additive attention against its formula, with parameters set from the seed
    Dq, Dk, Dv, Hd, N, S = ADDITIVE.values()
    if run["shapes"] != _additive_shapes():
        _fail(f"AdditiveAttention has parameters {run['shapes']}; expected {_additive_shapes()} (three nn.Linear "
              "without bias).")
    W = {n: _rand(*shape, seed=seed + math.prod(shape)) for n, shape in _additive_shapes().items()}
    query, keys, values, m = _additive_inputs(seed)
    for mm, got in zip((None, m), run["additive"], strict=True):
        context, weights = pair(got, "AdditiveAttention", "(context, weights)")
        scores = (torch.tanh((query @ W["W_q.weight"].T)[:, None, :] + keys @ W["W_k.weight"].T)
                  @ W["v.weight"].T).squeeze(-1)
        if mm is not None:
            scores = scores.masked_fill(~mm, -math.inf)
        w = torch.softmax(scores, -1)
        desc = "with a mask" if mm is not None else "without a mask"
        compare(weights, w, f"AdditiveAttention weights {desc}", **TOL,
                hint="score_s = vᵀ tanh(W_q q + W_k k_s); softmax over s; masked scores −∞ first.")
        compare(context, (w[:, :, None] * values).sum(1), f"AdditiveAttention context {desc}", **TOL,
                hint="The context is Σ_s a_s value_s.")


def check_attention(scaled_dot_product_attention, AdditiveAttention, *, seed: int = 0, verbose: bool = True) -> None:
    """scaled_dot_product_attention against F.scaled_dot_product_attention with no mask, a
    boolean mask and is_causal, masked weights exactly 0; AdditiveAttention against its formula."""
    __tracebackhide__ = True
    attention_verdict(attention_run(scaled_dot_product_attention, AdditiveAttention, seed=seed), seed=seed)
    if verbose:
        _ok("scaled_dot_product_attention matches F.scaled_dot_product_attention (masks included); "
            "AdditiveAttention matches vᵀ tanh(W_q q + W_k k).")


MHA = dict(E=12, Hn=3, N=2, L=4, S=6)


def _mha_ref(seed) -> nn.MultiheadAttention:
    E, Hn = MHA["E"], MHA["Hn"]
    ref = seeded_module(lambda: nn.MultiheadAttention(E, Hn, batch_first=True), seed)
    with torch.no_grad():
        ref.in_proj_bias.copy_(_rand(3 * E, seed=seed + 1, scale=0.1))
    return ref


def _mha_cases(seed):
    E, Hn, N, L, S = MHA.values()
    q, k, v = _rand(N, L, E, seed=seed + 2), _rand(N, S, E, seed=seed + 3), _rand(N, S, E, seed=seed + 4)
    pad = torch.zeros(N, S, dtype=torch.bool)
    pad[0, -2:] = True
    pad[1, 1] = True  # a key the causal mask allows, so that both masks matter when both are given
    causal = torch.ones(L, S, dtype=torch.bool).triu(1)
    return (q, k, v), (({}, "no mask"), ({"key_padding_mask": pad}, "key_padding_mask"),
                       ({"attn_mask": causal}, "attn_mask"),
                       ({"key_padding_mask": pad, "attn_mask": causal}, "key_padding_mask and attn_mask, both apply"))


def multi_head_attention_run(MultiHeadAttention, *, seed: int) -> list:
    E, Hn = MHA["E"], MHA["Hn"]
    torch.manual_seed(seed)
    mine = call_student(MultiHeadAttention, E, Hn, what=f"MultiHeadAttention({E}, {Hn})").double()
    ref = _mha_ref(seed)
    with torch.no_grad():
        for proj, w, b in zip(("q_proj", "k_proj", "v_proj"), ref.in_proj_weight.chunk(3), ref.in_proj_bias.chunk(3)):
            lin = getattr(mine, proj, None)
            if not isinstance(lin, nn.Linear) or tuple(lin.weight.shape) != (E, E):
                _fail(f"MultiHeadAttention needs {proj} = nn.Linear({E}, {E}).")
            lin.weight.copy_(w), lin.bias.copy_(b)
        if not isinstance(getattr(mine, "out_proj", None), nn.Linear):
            _fail(f"MultiHeadAttention needs out_proj = nn.Linear({E}, {E}).")
        mine.out_proj.weight.copy_(ref.out_proj.weight), mine.out_proj.bias.copy_(ref.out_proj.bias)
    (q, k, v), cases = _mha_cases(seed)
    return [observed(call_student(mine, q, k, v, **kwargs, what=f"MultiHeadAttention forward ({desc})"))
            for kwargs, desc in cases]


def multi_head_attention_verdict(runs: list, *, seed: int) -> None:
    __tracebackhide__ = True
    ref = _mha_ref(seed)
    (q, k, v), cases = _mha_cases(seed)
    hint = ("Split E into (heads, d) and move heads before the sequence dim: "
            "reshape(N, L, H, d).transpose(1, 2); merge back the same way before out_proj.")
    for (kwargs, desc), got in zip(cases, runs, strict=True):
        out, w = pair(got, f"MultiHeadAttention forward ({desc})", "(output, weights)")
        with torch.no_grad():
            want_out, want_w = ref(q, k, v, **kwargs, need_weights=True, average_attn_weights=True)
        if torch.is_tensor(w) and w.dim() == 4:
            _fail(f"MultiHeadAttention returned weights of shape {tuple(w.shape)}; return them averaged over "
                  f"the heads: (N, L, S) = {tuple(want_w.shape)}.")
        compare(w, want_w, f"MultiHeadAttention weights ({desc})", **TOL, hint=hint)
        compare(out, want_out, f"MultiHeadAttention output ({desc})", **TOL, hint=hint)


def check_multi_head_attention(MultiHeadAttention, *, seed: int = 0, verbose: bool = True) -> None:
    """Against nn.MultiheadAttention(batch_first=True) with its in_proj split into q/k/v."""
    __tracebackhide__ = True
    multi_head_attention_verdict(multi_head_attention_run(MultiHeadAttention, seed=seed), seed=seed)
    if verbose:
        _ok("MultiHeadAttention matches nn.MultiheadAttention (outputs and head-averaged weights, with masks).")


# ----------------------------------------------------------------------------- positional encoding

# Positional encoding tolerance: 1e-6 + 1e-6·(pos·ω), about 17 float32 ulps per radian, 3x the worst
# correct float32 implementation measured (the PyTorch tutorial's exp/log form, 1/10000^x and torch.pow).
PE_ATOL, PE_PER_RADIAN = 1e-6, 1e-6


def _pe_sizes(seed):
    g = torch.Generator().manual_seed(seed)
    return ((50, 16), (7, 5), (int(torch.randint(1, 80, (1,), generator=g)),
                               2 * int(torch.randint(1, 40, (1,), generator=g))))


def positional_encoding_run(positional_encoding, *, seed: int) -> list:
    return [observed(call_student(positional_encoding, T, D, what=f"positional_encoding({T}, {D})"))
            for T, D in _pe_sizes(seed)]


def positional_encoding_verdict(runs: list, *, seed: int) -> None:
    __tracebackhide__ = True
    for (T, D), got in zip(_pe_sizes(seed), runs, strict=True):
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


def check_positional_encoding(positional_encoding, *, seed: int = 0, verbose: bool = True) -> None:
    """Against the formula, for even and odd D."""
    __tracebackhide__ = True
    positional_encoding_verdict(positional_encoding_run(positional_encoding, seed=seed), seed=seed)
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


MAX_LEN = 6


def _decoder_inputs(seed, E: int):
    enc_out, h = _rand(3, 9, E, seed=seed + 1), _rand(3, E, seed=seed + 2)
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[1, 6:] = False
    return enc_out, h, mask


def seq2seq_run(Encoder, AttnDecoder, greedy_decode, *, seed: int, in_vocab: int = 20, out_vocab: int = 14,
                bos: int = 1, pad: int = 0) -> dict:
    """The encoder's outputs and state; one decoder step and the decoder's parameters (the verdict
    applies the stated formula to them); what greedy_decode fed a scripted decoder, and returned."""
    torch.manual_seed(seed)
    enc = call_student(Encoder, in_vocab, what=f"Encoder({in_vocab})").double()
    src = torch.randint(3, in_vocab, (3, 9), generator=torch.Generator().manual_seed(seed))
    encoded = call_student(enc, src, what="Encoder(src)")
    run = {"encoded": observed(encoded)}
    outs = encoded[0] if isinstance(encoded, (tuple, list)) and len(encoded) == 2 else None
    if not torch.is_tensor(outs) or outs.dim() != 3:
        return run  # the verdict says what was expected
    dec = call_student(AttnDecoder, out_vocab, what=f"AttnDecoder({out_vocab})").double()
    enc_out, h, mask = _decoder_inputs(seed, outs.shape[-1])
    run["step"] = observed(call_student(dec, torch.tensor([bos, 5, 7]), h, enc_out, mask, what="AttnDecoder step"))
    run["decoder"] = {k: observed(v) for k, v in dec.state_dict().items()}
    fake = _ScriptedDecoder(out_vocab)
    src = torch.randint(3, in_vocab, (2, 5), generator=torch.Generator().manual_seed(seed + 3))
    src[1, 3:] = pad
    run["decoded"] = observed(call_student(greedy_decode, enc, fake, src, MAX_LEN,
                                           what=f"greedy_decode(encoder, decoder, src, {MAX_LEN})"))
    run["calls"] = [[observed(y), observed(h)] for y, h in fake.calls]
    return run


def _decoder_step(p: dict, y_prev, h, enc_out, mask):
    """AttnDecoder's stated step computed from its parameters ``p`` (its state_dict)."""
    __tracebackhide__ = True
    need = ["attention.W_q.weight", "attention.W_k.weight", "attention.v.weight", "embed.weight", "cell.weight_ih",
            "cell.weight_hh", "cell.bias_ih", "cell.bias_hh", "out.weight", "out.bias"]
    missing = [k for k in need if not torch.is_tensor(p.get(k))]
    if missing:
        _fail(f"AttnDecoder is not built as its docstring says: no parameter {missing[0]} (embed, attention, cell and "
              "out, as stated).")
    scores = (torch.tanh((h @ p["attention.W_q.weight"].T)[:, None] + enc_out @ p["attention.W_k.weight"].T)
              @ p["attention.v.weight"].T).squeeze(-1)
    weights = torch.softmax(scores.masked_fill(~mask, -math.inf), -1)
    ctx = (weights[:, :, None] * enc_out).sum(1)
    cell = nn.GRUCell(p["cell.weight_ih"].shape[1], p["cell.weight_hh"].shape[1]).double()
    cell.load_state_dict({k.removeprefix("cell."): v for k, v in p.items() if k.startswith("cell.")})
    with torch.no_grad():
        h_new = cell(torch.cat([p["embed.weight"][y_prev], ctx], -1), h)
    return F.linear(torch.cat([h_new, ctx], -1), p["out.weight"], p["out.bias"]), h_new, weights


def seq2seq_verdict(run: dict, *, seed: int, in_vocab: int = 20, out_vocab: int = 14, bos: int = 1,
                    pad: int = 0) -> None:
    __tracebackhide__ = True
    outs, state = pair(run["encoded"], "Encoder(src)", "(outputs, state)")
    Hh = outs.shape[-1] // 2 if torch.is_tensor(outs) and outs.dim() == 3 else 0
    if not (torch.is_tensor(outs) and torch.is_tensor(state)) or tuple(outs.shape[:2]) != (3, 9) or \
            tuple(state.shape) != (3, 2 * Hh):
        _fail(f"Encoder returned outputs {getattr(outs, 'shape', type_name(outs))} and state "
              f"{getattr(state, 'shape', type_name(state))}; expected (N, S, 2H) and (N, 2H).")
    compare(state, torch.cat([outs[:, -1, :Hh], outs[:, 0, Hh:]], -1), "Encoder state", **TOL,
            hint="The state is [final forward state ; final backward state] = [outputs[:, -1, :H] ; outputs[:, 0, H:]]"
                 " (the backward GRU finishes at position 0).")
    enc_out, h, mask = _decoder_inputs(seed, 2 * Hh)
    step = run["step"]
    if not isinstance(step, list) or len(step) != 3:
        _fail(f"AttnDecoder should return (logits, h', weights); it returned {type_name(step)}.")
    logits_want, h_want, w_want = _decoder_step(run["decoder"], torch.tensor([bos, 5, 7]), h, enc_out, mask)
    logits, h2, w = step
    compare(w, w_want, "AttnDecoder attention weights", **TOL,
            hint="Attend with the previous state h as the query, over the encoder outputs, masking padding.")
    compare(h2, h_want, "AttnDecoder new state", **TOL, hint="The GRU cell's input is [embed(y_prev) ; context], its state h.")
    compare(logits, logits_want, "AttnDecoder logits", **TOL, hint="logits = out([h' ; context]).")
    calls = run["calls"]
    if len(calls) != MAX_LEN:
        _fail(f"greedy_decode called the decoder {len(calls)} times for max_len={MAX_LEN}; call it once per "
              "output token.")
    want = torch.stack([(torch.full((2,), bos) + t + 1) % out_vocab for t in range(MAX_LEN)], 1)
    if not torch.equal(calls[0][0], torch.full((2,), bos)):
        _fail("greedy_decode must start the decoder from <bos>.")
    for t in range(1, MAX_LEN):
        if not torch.equal(calls[t][0], want[:, t - 1]):
            _fail(f"At step {t + 1} greedy_decode fed {calls[t][0].tolist()}; it should feed back its own previous "
                  f"prediction (the argmax), {want[:, t - 1].tolist()}.")
        if not torch.allclose(calls[t][1], calls[0][1] + t):
            _fail(f"At step {t + 1} greedy_decode passed a stale state; pass on the state the decoder returned.")
    tokens, attn = pair(run["decoded"], "greedy_decode", "(tokens, attention)")
    compare(tokens, want, "greedy_decode tokens", atol=0, rtol=0)
    if not torch.is_tensor(attn) or tuple(attn.shape) != (2, MAX_LEN, 5):
        _fail(f"greedy_decode's attention has shape {getattr(attn, 'shape', type_name(attn))}, expected "
              f"(N, max_len, S) = (2, {MAX_LEN}, 5).")


def check_seq2seq(Encoder, AttnDecoder, greedy_decode, *, seed: int = 0, in_vocab: int = 20, out_vocab: int = 14,
                  bos: int = 1, pad: int = 0, verbose: bool = True) -> None:
    """Encoder state = final forward and backward GRU states; AttnDecoder against its stated
    formula with its own parameters; greedy_decode feeds back its own argmax for max_len steps."""
    __tracebackhide__ = True
    settings = dict(in_vocab=in_vocab, out_vocab=out_vocab, bos=bos, pad=pad)
    seq2seq_verdict(seq2seq_run(Encoder, AttnDecoder, greedy_decode, seed=seed, **settings), seed=seed, **settings)
    if verbose:
        _ok("Encoder, AttnDecoder and greedy_decode do what their docstrings say.")
