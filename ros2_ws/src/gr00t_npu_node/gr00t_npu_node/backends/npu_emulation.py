# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""CPU implementations of the five `torch_npu` fused operators the NPU backend calls, written from their documented
contracts (Ascend op-plugin API reference; for the W8A16 matrix product, aclnnWeightQuantBatchMatmulV2 on Atlas
A2/A3), so that the NPU code path runs and is checked where no NPU exists.

The functions have the real operators' names and keyword arguments, and raise `NpuOpContractError` for the inputs the
documentation rules out (non-contiguous inference-attention inputs, float32 inference attention, head_dim not a
multiple of 16, a `sparse_mode` 2/3 mask other than the compressed 2048x2048 one, a bfloat16 W8A16 product with a
bfloat16 bias, a group size that is not a multiple of 32, ...), so a call the NPU would reject fails here too. They
compute in float32 and round once to the input dtype. Checks that depend on tensor values (not shapes) are skipped
while tracing, so the emulated ops compile into one graph like the real ones.

`npu_fusion_attention` (the training attention, whose documented backward `npu_fusion_attention_grad` torch_npu
registers with autograd) is emulated with differentiable torch operations, so autograd and torch.func differentiate
through it as through the real one; `npu_fused_infer_attention_score` has no backward on the device, and its
emulation is only ever called where nothing differentiates it.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

INT_MAX = 2147483647
COMPRESSED_MASK_SIZE = 2048
ATTENTION_DTYPES = (torch.float16, torch.bfloat16)
FUSION_ATTENTION_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
NORM_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
MASK_DTYPES = (torch.bool, torch.int8, torch.uint8)
LAYOUTS = ("BSH", "BSND", "BNSD")
# npu_weight_quant_batchmatmul: activations, and the bias dtype each activation dtype takes (Atlas A2/A3).
W8A16_DTYPES = (torch.float16, torch.bfloat16)
W8A16_BIAS_DTYPE = {torch.float16: torch.float16, torch.bfloat16: torch.float32}
W8A16_MAX_KN = 65535
W8A16_GROUP_MULTIPLE = 32


class NpuOpContractError(RuntimeError):
    """The inputs break the documented contract of the NPU operator (the real kernel would reject them)."""


def compressed_causal_mask(device: torch.device | str = "cpu") -> torch.Tensor:
    """The 2048x2048 mask `sparse_mode` 2 and 3 require: True (masked out) strictly above the diagonal."""
    return torch.ones(COMPRESSED_MASK_SIZE, COMPRESSED_MASK_SIZE, dtype=torch.bool, device=device).triu(1)


def _require(condition: bool, op: str, message: str) -> None:
    if not condition:
        raise NpuOpContractError(f"{op}: {message}")


def _per_batch(lengths: Optional[Sequence[int]], batch: int, full: int, op: str, name: str) -> list[int]:
    """Documented reading of actual_seq_lengths(_kv): one value for every batch, or the first `batch` values."""
    if lengths is None:
        return [full] * batch
    lengths = [int(n) for n in lengths]
    _require(len(lengths) == 1 or len(lengths) >= batch, op, f"{name} has {len(lengths)} values for batch {batch}")
    lengths = lengths * batch if len(lengths) == 1 else lengths[:batch]
    _require(all(0 <= n <= full for n in lengths), op, f"{name} {lengths} must lie within the sequence length {full}")
    return lengths


def _to_bnsd(t: torch.Tensor, layout: str, heads: int, op: str, name: str) -> torch.Tensor:
    if layout == "BSH":
        _require(t.dim() == 3, op, f"{name} must be 3-D for input_layout BSH, got {tuple(t.shape)}")
        _require(t.shape[-1] % heads == 0, op, f"{name} hidden {t.shape[-1]} is not a multiple of {heads} heads")
        return t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2)
    _require(t.dim() == 4, op, f"{name} must be 4-D for input_layout {layout}, got {tuple(t.shape)}")
    bnsd = t.transpose(1, 2) if layout == "BSND" else t
    _require(bnsd.shape[1] == heads, op, f"{name} has {bnsd.shape[1]} heads in its N axis, the arguments say {heads}")
    return bnsd


def _keys_values_to_bnsd(
    q: torch.Tensor, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, layout: str, kv_heads: int, op: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Key and value as [B, N, S, D], checked to fit the query `q` (already [B, N, S, D]; `query` as given)."""
    k = _to_bnsd(key, layout, kv_heads, op, "key")
    v = _to_bnsd(value, layout, kv_heads, op, "value")
    _require(k.shape[0] == q.shape[0] and k.shape[3] == q.shape[3], op,
             f"key {tuple(key.shape)} does not fit query {tuple(query.shape)}")
    return k, v


def _from_bnsd(t: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "BNSD":
        return t.contiguous()
    bsnd = t.transpose(1, 2).contiguous()
    return bsnd.flatten(2) if layout == "BSH" else bsnd


def _aligned_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _full_mask(mask: torch.Tensor, batch: int, q_len: int, kv_len: int, op: str) -> torch.Tensor:
    """A user mask for Q_S > 1, in one of the documented shapes (S may be rounded up to 16/32 alignment) ->
    [B|1, 1, Sq, Skv]."""
    shape = tuple(mask.shape)
    rows_ok = mask.shape[-2] in {q_len, _aligned_up(q_len, 16), _aligned_up(q_len, 32)}
    cols_ok = mask.shape[-1] in {kv_len, _aligned_up(kv_len, 16), _aligned_up(kv_len, 32)}
    leading_ok = {2: (), 3: ((batch,), (1,)), 4: ((batch, 1), (1, 1))}.get(mask.dim())
    leading = shape[:-2]
    _require(
        rows_ok and cols_ok and leading_ok is not None and (mask.dim() == 2 or leading in leading_ok),
        op,
        f"atten_mask shape {shape} is not one of (Sq, Skv), (B|1, Sq, Skv), (B|1, 1, Sq, Skv) for B={batch}, "
        f"Sq={q_len}, Skv={kv_len}",
    )
    _require(mask.dtype in MASK_DTYPES, op, f"atten_mask dtype {mask.dtype} is not bool/int8/uint8")
    mask = mask[..., :q_len, :kv_len].bool()
    while mask.dim() < 4:
        mask = mask.unsqueeze(0)
    return mask.reshape(mask.shape[0], 1, q_len, kv_len)


def _sparse_allowed(
    atten_mask: Optional[torch.Tensor], sparse_mode: int, pre_tokens: int, next_tokens: int, q_len: int, kv_len: int,
    device: torch.device, op: str,
) -> torch.Tensor:
    """Where a query may attend a key [B|1, N|1, Sq, Skv] under `sparse_mode`, as both attention kernels document it
    for Q_S > 1: 0 the mask (already in 4-D form) within the pre/next-tokens band, 1 the whole mask, 2 causal from
    the top-left corner and 3 from the bottom-right, the last two with the compressed 2048x2048 mask."""
    _require(sparse_mode in (0, 1, 2, 3), op, f"sparse_mode {sparse_mode} is not emulated (0, 1, 2 and 3 are)")
    rows = torch.arange(q_len, device=device)[:, None]
    cols = torch.arange(kv_len, device=device)[None, :]
    if sparse_mode in (2, 3):
        _require(atten_mask is not None, op, f"sparse_mode {sparse_mode} needs the compressed 2048x2048 atten_mask")
        _require(
            tuple(atten_mask.shape[-2:]) == (COMPRESSED_MASK_SIZE,) * 2 and atten_mask.dim() in (2, 3, 4)
            and all(n == 1 for n in atten_mask.shape[:-2]),
            op,
            f"sparse_mode {sparse_mode} needs an atten_mask of shape (2048, 2048), (1, 2048, 2048) or "
            f"(1, 1, 2048, 2048), got {tuple(atten_mask.shape)}",
        )
        if not torch.compiler.is_compiling():
            expected = compressed_causal_mask(atten_mask.device)
            _require(bool(torch.equal(atten_mask.reshape(expected.shape).bool(), expected)), op,
                     f"sparse_mode {sparse_mode} needs the lower-triangular compressed mask (True above the diagonal)")
        offset = 0 if sparse_mode == 2 else kv_len - q_len
        return (cols <= rows + offset)[None, None]
    if atten_mask is None:
        _require(sparse_mode == 0, op, "sparse_mode 1 needs the full atten_mask")
        return torch.ones(1, 1, q_len, kv_len, dtype=torch.bool, device=device)
    allowed = ~atten_mask
    if sparse_mode == 0:
        allowed = allowed & ((cols >= rows - pre_tokens) & (cols <= rows + next_tokens))[None, None]
    return allowed


def _softmax_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(softmax(scale q k^T where allowed, -inf elsewhere) v, the masked scores), BNSD, in float32; grouped K/V
    heads are repeated to the query's."""
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1).float()
    v = v.repeat_interleave(group, dim=1).float()
    scores = torch.matmul(q.float(), k.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v), scores


def npu_fused_infer_attention_score(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    atten_mask: Optional[torch.Tensor] = None,
    actual_seq_lengths: Optional[Sequence[int]] = None,
    actual_seq_lengths_kv: Optional[Sequence[int]] = None,
    num_heads: int = 1,
    scale: float = 1.0,
    pre_tokens: int = INT_MAX,
    next_tokens: int = INT_MAX,
    input_layout: str = "BSH",
    num_key_value_heads: int = 0,
    sparse_mode: int = 0,
    inner_precise: int = 0,
    softmax_lse_flag: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(scale * q k^T, masked where `atten_mask` is True) v, for float16/bfloat16 q/k/v.

    Q_S > 1 (PromptFlashAttention): sparse_mode 0 (the mask as given, inside the pre/next_tokens band), 1 (full
    mask), 2 (causal from the top-left corner) and 3 (causal from the bottom-right corner), the last two with the
    compressed 2048x2048 mask. Q_S == 1 (IncreFlashAttention): sparse_mode is ignored, the mask is [B, (1, (1,)) KV_S].
    Returns (attention_out in the input layout, softmax_lse [B, N, Q_S, 1] float32 or a zero [1] without the flag).
    Rows that the masks empty entirely are left to the kernel's precision mode: zero with inner_precise 2/3 (row-invalid
    correction), NaN otherwise, so callers that could produce them show up in tests.
    """
    op = "npu_fused_infer_attention_score"
    _require(not (torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad)), op,
             "has no backward, and autograd records this call: use npu_fusion_attention where gradients flow")
    _require(input_layout in LAYOUTS, op, f"input_layout {input_layout!r} is not emulated (use one of {LAYOUTS})")
    for name, t in (("query", query), ("key", key), ("value", value)):
        _require(t.is_contiguous(), op, f"{name} is not contiguous (non-contiguous tensors are not supported)")
        _require(t.dtype in ATTENTION_DTYPES, op, f"{name} dtype {t.dtype} is not supported (float16 or bfloat16)")
    _require(key.dtype == query.dtype == value.dtype, op, "query, key and value must share one dtype")
    _require(key.shape == value.shape, op, f"key {tuple(key.shape)} and value {tuple(value.shape)} differ in shape")
    kv_heads = num_key_value_heads or num_heads
    _require(num_heads % kv_heads == 0, op,
             f"num_heads {num_heads} is not a multiple of num_key_value_heads {kv_heads}")
    _require(num_heads // kv_heads <= 64, op, f"num_heads / num_key_value_heads = {num_heads // kv_heads} exceeds 64")
    q = _to_bnsd(query, input_layout, num_heads, op, "query")
    k, v = _keys_values_to_bnsd(q, query, key, value, input_layout, kv_heads, op)
    batch, _, q_len, head_dim = q.shape
    kv_len = k.shape[2]

    allowed = torch.ones(1, 1, q_len, kv_len, dtype=torch.bool, device=q.device)
    if q_len > 1:
        _require(head_dim % 16 == 0, op,
                 f"head_dim {head_dim} must be a multiple of 16 for float16/bfloat16 when Q_S > 1")
        _require(num_heads <= 256 and head_dim <= 512, op, f"N={num_heads} > 256 or D={head_dim} > 512")
        if atten_mask is not None and sparse_mode in (0, 1):
            _require(atten_mask.is_contiguous(), op,
                     "atten_mask is not contiguous (non-contiguous tensors are not supported)")
            atten_mask = _full_mask(atten_mask, batch, q_len, kv_len, op)
        allowed = _sparse_allowed(atten_mask, sparse_mode, pre_tokens, next_tokens, q_len, kv_len, q.device, op)
    elif atten_mask is not None:
        _require(atten_mask.is_contiguous(), op,
                 "atten_mask is not contiguous (non-contiguous tensors are not supported)")
        _require(atten_mask.dtype in MASK_DTYPES, op, f"atten_mask dtype {atten_mask.dtype} is not bool/int8/uint8")
        _require(atten_mask.shape[0] == batch and atten_mask.shape[-1] == kv_len
                 and atten_mask.numel() == batch * kv_len,
                 op, "atten_mask for Q_S = 1 must be (B, KV_S), (B, 1, KV_S) or (B, 1, 1, KV_S), "
                 f"got {tuple(atten_mask.shape)}")
        allowed = ~atten_mask.reshape(batch, 1, 1, kv_len).bool()

    q_lengths = _per_batch(actual_seq_lengths, batch, q_len, op, "actual_seq_lengths")
    kv_lengths = _per_batch(actual_seq_lengths_kv, batch, kv_len, op, "actual_seq_lengths_kv")
    if actual_seq_lengths_kv is not None:
        kv_valid = torch.arange(kv_len, device=q.device)[None, :] < torch.tensor(kv_lengths, device=q.device)[:, None]
        allowed = allowed & kv_valid[:, None, None, :]

    out, scores = _softmax_attention(q, k, v, allowed, scale)
    lse = torch.logsumexp(scores, dim=-1, keepdim=True)
    if inner_precise in (2, 3):
        out = out.masked_fill(~allowed.any(-1, keepdim=True), 0.0)
    if actual_seq_lengths is not None:
        q_valid = torch.arange(q_len, device=q.device)[None, :] < torch.tensor(q_lengths, device=q.device)[:, None]
        out = out.masked_fill(~q_valid[:, None, :, None], 0.0)
    lse_out = lse if softmax_lse_flag else torch.zeros(1, dtype=torch.float32, device=q.device)
    return _from_bnsd(out.to(query.dtype), input_layout), lse_out


def npu_fusion_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    head_num: int,
    input_layout: str,
    pse: Optional[torch.Tensor] = None,
    padding_mask: Optional[torch.Tensor] = None,
    atten_mask: Optional[torch.Tensor] = None,
    scale: float = 1.0,
    keep_prob: float = 1.0,
    pre_tockens: int = INT_MAX,
    next_tockens: int = INT_MAX,
    inner_precise: int = 0,
    prefix: Optional[Sequence[int]] = None,
    actual_seq_qlen: Optional[Sequence[int]] = None,
    actual_seq_kvlen: Optional[Sequence[int]] = None,
    sparse_mode: int = 0,
    gen_mask_parallel: bool = True,
    sync: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int, int, int]:
    """softmax(scale * q k^T, masked where `atten_mask` is True) v, differentiable (the real operator's backward is
    `npu_fusion_attention_grad`). The argument names are torch_npu's, `tockens` spelling included.

    float16/bfloat16/float32 q/k/v in one of BSH, SBH, BSND, BNSD (TND, which needs actual_seq_qlen/kvlen, is not
    emulated); head_num <= 256, key/value heads a divisor of it; head_dim a multiple of 16 up to 512. atten_mask
    bool/uint8 of shape (Sq, Skv) or (B|1, N|1, Sq, Skv); sparse_mode 0-3 as for the inference attention. Returns
    (attention_out in the input layout, softmax_max and softmax_sum [B, N, Sq, 8] float32, an empty softmax_out, and
    the dropout seed, offset and mask length, 0 without dropout). Rows that the mask empties entirely are NaN.
    """
    op = "npu_fusion_attention"
    layouts = ("BSH", "SBH", "BSND", "BNSD")
    _require(input_layout in layouts, op, f"input_layout {input_layout!r} is not emulated (use one of {layouts})")
    _require(padding_mask is None, op, "padding_mask is not supported (mask keys with atten_mask)")
    _require(pse is None and prefix is None and actual_seq_qlen is None and actual_seq_kvlen is None, op,
             "pse, prefix and actual_seq_qlen/kvlen are not emulated")
    _require(keep_prob == 1.0, op, f"keep_prob {keep_prob}: dropout is not emulated (inference keeps every element)")
    for name, t in (("query", query), ("key", key), ("value", value)):
        _require(t.dtype in FUSION_ATTENTION_DTYPES, op,
                 f"{name} dtype {t.dtype} is not supported (float16, bfloat16 or float32)")
    _require(key.dtype == query.dtype == value.dtype, op, "query, key and value must share one dtype")
    _require(key.shape == value.shape, op, f"key {tuple(key.shape)} and value {tuple(value.shape)} differ in shape")
    # SBH is BSH with the first two axes swapped.
    sbh = input_layout == "SBH"
    layout = "BSH" if sbh else input_layout
    query, key, value = (t.transpose(0, 1) if sbh else t for t in (query, key, value))
    q = _to_bnsd(query, layout, head_num, op, "query")
    kv_heads = key.shape[-1] // q.shape[-1] if layout == "BSH" else key.shape[2 if layout == "BSND" else 1]
    _require(kv_heads > 0 and head_num % kv_heads == 0, op,
             f"key/value have {kv_heads} heads, which does not divide head_num {head_num}")
    k, v = _keys_values_to_bnsd(q, query, key, value, layout, kv_heads, op)
    batch, _, q_len, head_dim = q.shape
    kv_len = k.shape[2]
    _require(head_num <= 256, op, f"head_num {head_num} exceeds 256")
    _require(head_dim % 16 == 0 and head_dim <= 512, op, f"head_dim {head_dim} must be a multiple of 16 up to 512")
    if atten_mask is not None and sparse_mode in (0, 1):
        _require(atten_mask.dtype in (torch.bool, torch.uint8), op,
                 f"atten_mask dtype {atten_mask.dtype} is not bool/uint8")
        leading = tuple(atten_mask.shape[:-2])
        _require(
            tuple(atten_mask.shape[-2:]) == (q_len, kv_len)
            and (atten_mask.dim() == 2
                 or (atten_mask.dim() == 4 and leading[0] in (1, batch) and leading[1] in (1, head_num))),
            op,
            f"atten_mask shape {tuple(atten_mask.shape)} is not one of (Sq, Skv), (B|1, N|1, Sq, Skv) for B={batch}, "
            f"N={head_num}, Sq={q_len}, Skv={kv_len}",
        )
        atten_mask = atten_mask.bool() if atten_mask.dim() == 4 else atten_mask.bool()[None, None]
    allowed = _sparse_allowed(atten_mask, sparse_mode, pre_tockens, next_tockens, q_len, kv_len, q.device, op)
    out, scores = _softmax_attention(q, k, v, allowed, scale)
    row_max = scores.amax(dim=-1, keepdim=True)
    row_sum = torch.exp(scores - row_max).sum(dim=-1, keepdim=True)
    out = _from_bnsd(out.to(query.dtype), layout)
    if sbh:
        out = out.transpose(0, 1).contiguous()
    empty = torch.zeros(0, dtype=query.dtype, device=query.device)
    return out, row_max.expand(-1, -1, -1, 8), row_sum.expand(-1, -1, -1, 8), empty, 0, 0, 0


def npu_rotary_mul(x: torch.Tensor, r1: torch.Tensor, r2: torch.Tensor, rotary_mode: str = "half") -> torch.Tensor:
    """`r1 * x + r2 * rotate(x)`: half mode rotates `cat(-x2, x1)` over the last-dim halves, interleave mode pairs
    neighbouring elements. x, r1, r2 are 4-D; r1/r2 broadcast to x (each axis 1 or x's size, last axis D)."""
    op = "npu_rotary_mul"
    _require(rotary_mode in ("half", "interleave"), op, f"rotary_mode {rotary_mode!r} is not 'half' or 'interleave'")
    _require(x.dim() == r1.dim() == r2.dim() == 4, op, "x, r1 and r2 must be 4-D")
    _require(x.dtype in NORM_DTYPES and r1.dtype == x.dtype == r2.dtype, op,
             f"x, r1, r2 must share one dtype of float16/bfloat16/float32, got {x.dtype}, {r1.dtype}, {r2.dtype}")
    d = x.shape[-1]
    _require(d % 2 == 0 and d < 896, op, f"D={d} must be even and below 896")
    for name, r in (("r1", r1), ("r2", r2)):
        _require(r.shape[-1] == d and all(rs in (1, xs) for rs, xs in zip(r.shape, x.shape)), op,
                 f"{name} shape {tuple(r.shape)} does not broadcast to x {tuple(x.shape)}")
    xf = x.float()
    if rotary_mode == "half":
        x1, x2 = xf.chunk(2, dim=-1)
        rotated = torch.cat((-x2, x1), dim=-1)
    else:
        rotated = torch.stack((-xf[..., 1::2], xf[..., ::2]), dim=-1).flatten(-2)
    return (r1.float() * xf + r2.float() * rotated).to(x.dtype)


def _rms_norm(x: torch.Tensor, gamma: torch.Tensor, epsilon: float, op: str) -> tuple[torch.Tensor, torch.Tensor]:
    _require(x.dtype in NORM_DTYPES, op, f"dtype {x.dtype} is not float16/bfloat16/float32")
    _require(gamma.dtype == x.dtype, op, f"gamma dtype {gamma.dtype} must equal the input dtype {x.dtype}")
    g = gamma.dim()
    _require(0 < g <= x.dim() and tuple(x.shape[-g:]) == tuple(gamma.shape), op,
             f"gamma shape {tuple(gamma.shape)} must equal the trailing dimensions of {tuple(x.shape)}")
    dims = tuple(range(x.dim() - g, x.dim()))
    xf = x.float()
    rstd = torch.rsqrt(xf.pow(2).mean(dim=dims, keepdim=True) + epsilon)
    return (xf * rstd * gamma.float()).to(x.dtype), rstd


def npu_rms_norm(x: torch.Tensor, gamma: torch.Tensor, epsilon: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """(x / sqrt(mean(x^2) + eps) * gamma, rstd): the mean over gamma's trailing dimensions; rstd float32 with those
    dimensions kept as 1. x has 2 to 8 dimensions."""
    _require(2 <= x.dim() <= 8, "npu_rms_norm", f"input must have 2 to 8 dimensions, got {x.dim()}")
    return _rms_norm(x, gamma, epsilon, "npu_rms_norm")


def npu_add_rms_norm(
    x1: torch.Tensor, x2: torch.Tensor, gamma: torch.Tensor, epsilon: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rms_norm(x1 + x2) * gamma, rstd, x1 + x2): the sum, in the input dtype, is the new residual stream."""
    op = "npu_add_rms_norm"
    _require(x1.shape == x2.shape and x1.dtype == x2.dtype, op,
             f"x1 {tuple(x1.shape)} {x1.dtype} and x2 {tuple(x2.shape)} {x2.dtype} must match in shape and dtype")
    _require(1 <= x1.dim() <= 8, op, f"inputs must have 1 to 8 dimensions, got {x1.dim()}")
    total = (x1.float() + x2.float()).to(x1.dtype)
    y, rstd = _rms_norm(total, gamma, epsilon, op)
    return y, rstd, total


def _plain_or_transposed(t: torch.Tensor) -> bool:
    """Contiguous, or the transpose of a contiguous 2-D tensor: the only non-contiguous inputs the W8A16 kernel
    takes."""
    return t.is_contiguous() or (t.dim() == 2 and t.t().is_contiguous())


def npu_weight_quant_batchmatmul(
    x: torch.Tensor,
    weight: torch.Tensor,
    antiquant_scale: torch.Tensor,
    antiquant_offset: Optional[torch.Tensor] = None,
    quant_scale: Optional[torch.Tensor] = None,
    quant_offset: Optional[torch.Tensor] = None,
    bias: Optional[torch.Tensor] = None,
    antiquant_group_size: int = 0,
    inner_precise: int = 0,
) -> torch.Tensor:
    """y = x @ ((weight + antiquant_offset) * antiquant_scale) + bias: x float16/bfloat16 (m, k), weight int8 (k, n)
    (either may be the transpose of a contiguous tensor), antiquant_scale/offset in x's dtype, shaped (1,) or (1, 1)
    per tensor, (n,) or (1, n) per channel, (ceil(k / antiquant_group_size), n) per group (group size a multiple of
    32 in [32, k - 1]); bias (n,) or (1, n), float16 for float16 x and float32 for bfloat16 x. The weight is
    dequantized in float32, the product accumulated in float32 and rounded once to x's dtype. Output quantization
    (quant_scale, an int8 result) is not emulated."""
    op = "npu_weight_quant_batchmatmul"
    _require(not (torch.is_grad_enabled() and x.requires_grad), op,
             "has no backward, and autograd records this call: differentiate the dequantized product instead")
    _require(quant_scale is None and quant_offset is None, op,
             "output quantization (quant_scale/quant_offset, an int8 result) is not emulated")
    _require(x.dtype in W8A16_DTYPES, op, f"x dtype {x.dtype} is not supported (float16 or bfloat16)")
    _require(weight.dtype == torch.int8, op, f"weight dtype {weight.dtype} is not emulated (int8; int4 packs are not)")
    _require(x.dim() == 2 and weight.dim() == 2, op,
             f"x {tuple(x.shape)} and weight {tuple(weight.shape)} must be 2-D: (m, k) and (k, n)")
    (m, k), (k_weight, n) = x.shape, weight.shape
    _require(k == k_weight, op, f"x {tuple(x.shape)} and weight {tuple(weight.shape)} differ in k")
    _require(m >= 1 and 1 <= k <= W8A16_MAX_KN and 1 <= n <= W8A16_MAX_KN, op,
             f"m={m}, k={k}, n={n}: empty tensors are not supported and k, n must lie in [1, {W8A16_MAX_KN}]")
    for name, t in (("x", x), ("weight", weight), ("antiquant_scale", antiquant_scale)):
        _require(_plain_or_transposed(t), op, f"{name} is neither contiguous nor the transpose of a contiguous tensor")
    _require(antiquant_scale.dtype == x.dtype, op,
             f"antiquant_scale dtype {antiquant_scale.dtype} must equal x's {x.dtype} (the int64 form is not emulated)")
    if antiquant_group_size:
        _require(antiquant_group_size % W8A16_GROUP_MULTIPLE == 0 and W8A16_GROUP_MULTIPLE <= antiquant_group_size < k,
                 op, f"antiquant_group_size {antiquant_group_size} must be a multiple of 32 in [32, k - 1 = {k - 1}]")
        groups = -(-k // antiquant_group_size)
        _require(tuple(antiquant_scale.shape) == (groups, n), op,
                 f"per-group antiquant_scale must be (ceil(k / group) = {groups}, n = {n}), "
                 f"got {tuple(antiquant_scale.shape)}")
    else:
        _require(tuple(antiquant_scale.shape) in {(1,), (1, 1), (n,), (1, n)}, op,
                 f"antiquant_scale must be (1,) or (1, 1) per tensor, ({n},) or (1, {n}) per channel, "
                 f"got {tuple(antiquant_scale.shape)} (per group needs antiquant_group_size)")
    if antiquant_offset is not None:
        _require(antiquant_offset.dtype == antiquant_scale.dtype and antiquant_offset.shape == antiquant_scale.shape,
                 op, f"antiquant_offset {tuple(antiquant_offset.shape)} {antiquant_offset.dtype} must match "
                 f"antiquant_scale {tuple(antiquant_scale.shape)} {antiquant_scale.dtype}")
    if bias is not None:
        _require(tuple(bias.shape) in {(n,), (1, n)} and bias.is_contiguous(), op,
                 f"bias must be a contiguous (n,) or (1, n) with n = {n}, got {tuple(bias.shape)}")
        _require(bias.dtype == W8A16_BIAS_DTYPE[x.dtype], op,
                 f"bias dtype {bias.dtype}: for {x.dtype} x the bias must be {W8A16_BIAS_DTYPE[x.dtype]}")
    _require(inner_precise in (0, 1), op,
             f"inner_precise {inner_precise} must be 0 (high precision) or 1 (high performance)")

    scale = antiquant_scale.float().reshape(-1, n if antiquant_scale.numel() > 1 else 1)
    offset = torch.zeros_like(scale) if antiquant_offset is None else antiquant_offset.float().reshape(scale.shape)
    if antiquant_group_size:
        # Row i of the weight takes group i // group_size (indexing: inductor miscompiles the broadcast-reshape-slice
        # form of this expansion against a transposed int8 weight, torch 2.13).
        group = torch.arange(k, device=scale.device) // antiquant_group_size
        scale, offset = scale[group], offset[group]
    dequantized = (weight.float() + offset) * scale
    y = x.float() @ dequantized
    if bias is not None:
        y = y + bias.float().reshape(n)
    return y.to(x.dtype)
