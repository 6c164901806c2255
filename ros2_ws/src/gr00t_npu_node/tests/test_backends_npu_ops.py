# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The emulated torch_npu operators against their documented contracts: values against plain formulas, layouts,
sparse modes, sequence lengths, the W8A16 product's quantization modes (per tensor, channel, group) and dtype rules,
and the inputs the real kernels reject."""
import math

import pytest
import torch
import torch.nn.functional as F

from gr00t_npu_node.backends import npu_emulation as npu
from gr00t_npu_node.backends.base import Backend
from gr00t_npu_node.backends.npu_emulation import NpuOpContractError


def bf16(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(torch.bfloat16)


def reference_attention(q, k, v, allowed=None, scale=None):
    """BNSD float32 softmax attention with a boolean [B|1, 1|N, Sq, Sk] 'may attend' mask; grouped K/V by repetition."""
    group = q.shape[1] // k.shape[1]
    k, v = k.float().repeat_interleave(group, 1), v.float().repeat_interleave(group, 1)
    scores = q.float() @ k.transpose(-1, -2) * (scale if scale is not None else q.shape[-1] ** -0.5)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, -1) @ v


def close_bf16(actual, expected):
    # One bfloat16 rounding of outputs of magnitude <= ~3.
    torch.testing.assert_close(actual.float(), expected.float(), rtol=0, atol=2e-2)


def test_attention_layouts_agree_and_match_softmax_attention_with_grouped_kv():
    q, k, v = bf16(2, 8, 12, 32, seed=1), bf16(2, 2, 12, 32, seed=2), bf16(2, 2, 12, 32, seed=3)
    expected = reference_attention(q, k, v, scale=0.2)
    kwargs = dict(num_heads=8, num_key_value_heads=2, scale=0.2)
    bnsd, lse = npu.npu_fused_infer_attention_score(q, k, v, input_layout="BNSD", **kwargs)
    bsnd = npu.npu_fused_infer_attention_score(
        *(t.transpose(1, 2).contiguous() for t in (q, k, v)), input_layout="BSND", **kwargs
    )[0]
    bsh = npu.npu_fused_infer_attention_score(
        *(t.transpose(1, 2).flatten(2).contiguous() for t in (q, k, v)), input_layout="BSH", **kwargs
    )[0]
    close_bf16(bnsd, expected)
    close_bf16(bsnd.transpose(1, 2), expected)
    close_bf16(bsh.view(2, 12, 8, 32).transpose(1, 2), expected)
    assert lse.shape == (1,) and lse.item() == 0.0


def test_softmax_lse_is_the_log_sum_exp_of_the_scaled_scores():
    q, k, v = bf16(1, 2, 5, 16, seed=1), bf16(1, 2, 7, 16, seed=2), bf16(1, 2, 7, 16, seed=3)
    _, lse = npu.npu_fused_infer_attention_score(
        q, k, v, num_heads=2, scale=0.25, input_layout="BNSD", softmax_lse_flag=True
    )
    expected = torch.logsumexp(q.float() @ k.float().transpose(-1, -2) * 0.25, -1, keepdim=True)
    torch.testing.assert_close(lse, expected)


def test_sparse_mode_2_is_causal_from_the_top_left_and_3_from_the_bottom_right():
    q, k, v = bf16(1, 2, 6, 16, seed=1), bf16(1, 2, 9, 16, seed=2), bf16(1, 2, 9, 16, seed=3)
    rows, cols = torch.arange(6)[:, None], torch.arange(9)[None, :]
    compressed = npu.compressed_causal_mask()
    for mode, allowed in ((2, cols <= rows), (3, cols <= rows + 3)):
        out = npu.npu_fused_infer_attention_score(
            q, k, v, atten_mask=compressed, num_heads=2, scale=0.25, input_layout="BNSD", sparse_mode=mode
        )[0]
        close_bf16(out, reference_attention(q, k, v, allowed[None, None], scale=0.25))


def test_sparse_mode_0_applies_the_given_mask_within_the_pre_next_tokens_band():
    q, k, v = bf16(2, 2, 6, 16, seed=1), bf16(2, 2, 6, 16, seed=2), bf16(2, 2, 6, 16, seed=3)
    masked = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(4)) < 0.3
    masked[..., 0] = False  # every row keeps a key
    rows, cols = torch.arange(6)[:, None], torch.arange(6)[None, :]
    band = (cols >= rows - 2) & (cols <= rows + 1)
    out = npu.npu_fused_infer_attention_score(
        q, k, v, atten_mask=masked, num_heads=2, scale=0.25, input_layout="BNSD", pre_tokens=2, next_tokens=1
    )[0]
    close_bf16(out, reference_attention(q, k, v, ~masked & band, scale=0.25))
    unbanded = npu.npu_fused_infer_attention_score(
        q, k, v, atten_mask=masked, num_heads=2, scale=0.25, input_layout="BNSD"
    )[0]
    close_bf16(unbanded, reference_attention(q, k, v, ~masked, scale=0.25))


def test_actual_seq_lengths_limit_keys_and_zero_the_rows_past_the_query_length():
    q, k, v = bf16(2, 2, 5, 16, seed=1), bf16(2, 2, 8, 16, seed=2), bf16(2, 2, 8, 16, seed=3)
    out = npu.npu_fused_infer_attention_score(
        q, k, v, num_heads=2, scale=0.25, input_layout="BNSD", actual_seq_lengths=[5, 3], actual_seq_lengths_kv=[8, 4]
    )[0]
    keys = torch.arange(8)[None, :] < torch.tensor([8, 4])[:, None]
    expected = reference_attention(q, k, v, keys[:, None, None, :], scale=0.25)
    close_bf16(out[0], expected[0])
    close_bf16(out[1, :, :3], expected[1, :, :3])
    assert out[1, :, 3:].abs().max() == 0
    single = npu.npu_fused_infer_attention_score(
        q, k, v, num_heads=2, scale=0.25, input_layout="BNSD", actual_seq_lengths_kv=[4]
    )[0]
    close_bf16(single[0], reference_attention(q[:1], k[:1, :, :4], v[:1, :, :4], scale=0.25)[0])


def test_single_query_takes_a_per_batch_key_mask_and_ignores_sparse_mode():
    q, k, v = bf16(2, 4, 1, 16, seed=1), bf16(2, 4, 7, 16, seed=2), bf16(2, 4, 7, 16, seed=3)
    masked = torch.tensor([[False] * 7, [False, True, True, False, False, True, False]])
    out = npu.npu_fused_infer_attention_score(
        q, k, v, atten_mask=masked, num_heads=4, scale=0.25, input_layout="BNSD", sparse_mode=3
    )[0]
    close_bf16(out, reference_attention(q, k, v, ~masked[:, None, None, :], scale=0.25))


def test_rows_without_any_key_are_nan_unless_row_invalid_correction_is_on():
    q, k, v = bf16(1, 1, 3, 16, seed=1), bf16(1, 1, 3, 16, seed=2), bf16(1, 1, 3, 16, seed=3)
    masked = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    masked[..., 1, :] = True
    plain = npu.npu_fused_infer_attention_score(q, k, v, atten_mask=masked, num_heads=1, input_layout="BNSD")[0]
    corrected = npu.npu_fused_infer_attention_score(
        q, k, v, atten_mask=masked, num_heads=1, input_layout="BNSD", inner_precise=2
    )[0]
    assert torch.isnan(plain[0, 0, 1]).all() and torch.isfinite(plain[0, 0, [0, 2]]).all()
    assert corrected[0, 0, 1].abs().max() == 0 and torch.equal(corrected[0, 0, [0, 2]], plain[0, 0, [0, 2]])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: {**a, "query": a["query"].transpose(1, 2).contiguous().transpose(1, 2)}, "query is not contiguous"),
        (lambda a: {**a, **{n: a[n].float() for n in ("query", "key", "value")}},
         "dtype torch.float32 is not supported"),
        (lambda a: {**a, **{n: a[n][..., :24].contiguous() for n in ("query", "key", "value")}},
         "head_dim 24 must be a multiple of 16"),
        (lambda a: {**a, "num_key_value_heads": 3}, "not a multiple of num_key_value_heads 3"),
        (lambda a: {**a, "num_heads": 2, "num_key_value_heads": 2}, "query has 4 heads in its N axis"),
        (lambda a: {**a, "input_layout": "TND"}, "input_layout 'TND' is not emulated"),
        (lambda a: {**a, "sparse_mode": 4}, "sparse_mode 4 is not emulated"),
        (lambda a: {**a, "sparse_mode": 2}, "sparse_mode 2 needs the compressed 2048x2048 atten_mask"),
        (lambda a: {**a, "sparse_mode": 2, "atten_mask": torch.ones(6, 6, dtype=torch.bool).triu(1)},
         "needs an atten_mask of shape"),
        (lambda a: {**a, "sparse_mode": 3, "atten_mask": ~npu.compressed_causal_mask()},
         "lower-triangular compressed mask"),
        (lambda a: {**a, "atten_mask": torch.zeros(2, 1, 1, 6, dtype=torch.bool).expand(2, 1, 6, 6)},
         "atten_mask is not contiguous"),
        (lambda a: {**a, "atten_mask": torch.zeros(2, 1, 1, 6, dtype=torch.bool)}, "is not one of"),
        (lambda a: {**a, "atten_mask": torch.zeros(2, 1, 6, 6)}, "atten_mask dtype torch.float32"),
        (lambda a: {**a, "actual_seq_lengths_kv": [7, 6]}, "must lie within the sequence length 6"),
        (lambda a: {**a, "key": a["key"][:, :, :5].contiguous()}, "differ in shape"),
    ],
)
def test_inputs_the_kernel_rejects_are_rejected(change, message):
    arguments = {
        "query": bf16(2, 4, 6, 32, seed=1), "key": bf16(2, 2, 6, 32, seed=2), "value": bf16(2, 2, 6, 32, seed=3),
        "num_heads": 4, "num_key_value_heads": 2, "input_layout": "BNSD",
    }
    with pytest.raises(NpuOpContractError, match=message):
        npu.npu_fused_infer_attention_score(**change(arguments))


def test_aligned_up_mask_shapes_are_accepted():
    q, k, v = bf16(1, 2, 6, 16, seed=1), bf16(1, 2, 10, 16, seed=2), bf16(1, 2, 10, 16, seed=3)
    masked = torch.zeros(16, 16, dtype=torch.bool)
    masked[:, 7:] = True
    out = npu.npu_fused_infer_attention_score(
        q, k, v, atten_mask=masked, num_heads=2, scale=0.25, input_layout="BNSD"
    )[0]
    close_bf16(out, reference_attention(q, k, v, ~masked[:6, :10][None, None], scale=0.25))


def test_the_inference_attention_refuses_to_be_differentiated():
    q = bf16(1, 2, 6, 16, seed=1)
    with pytest.raises(NpuOpContractError, match="has no backward.*use npu_fusion_attention"):
        torch.func.vjp(lambda x: npu.npu_fused_infer_attention_score(x, x, x, num_heads=2, input_layout="BNSD")[0], q)


# ---- npu_fusion_attention ---------------------------------------------------------------------------------------
def fusion_attention(q, k, v, layout, **kwargs):
    """BNSD tensors through npu_fusion_attention in `layout`, the output back in BNSD."""
    heads = q.shape[1]
    to = {
        "BNSD": lambda t: t,
        "BSND": lambda t: t.transpose(1, 2).contiguous(),
        "BSH": lambda t: t.transpose(1, 2).flatten(2).contiguous(),
        "SBH": lambda t: t.permute(2, 0, 1, 3).flatten(2).contiguous(),
    }[layout]
    out = npu.npu_fusion_attention(to(q), to(k), to(v), heads, layout, **kwargs)
    back = {
        "BNSD": lambda t: t,
        "BSND": lambda t: t.transpose(1, 2),
        "BSH": lambda t: t.view(t.shape[0], t.shape[1], heads, -1).transpose(1, 2),
        "SBH": lambda t: t.view(t.shape[0], t.shape[1], heads, -1).permute(1, 2, 0, 3),
    }[layout]
    return back(out[0]), out


@pytest.mark.parametrize("layout", ["BNSD", "BSND", "BSH", "SBH"])
def test_fusion_attention_layouts_match_softmax_attention_with_grouped_kv(layout):
    q, k, v = bf16(2, 8, 12, 32, seed=1), bf16(2, 2, 10, 32, seed=2), bf16(2, 2, 10, 32, seed=3)
    out, (_, softmax_max, softmax_sum, softmax_out, *ints) = fusion_attention(q, k, v, layout, scale=0.2)
    close_bf16(out, reference_attention(q, k, v, scale=0.2))
    scores = reference_attention_scores(q, k, 0.2)
    assert softmax_max.shape == softmax_sum.shape == (2, 8, 12, 8) and softmax_max.dtype == torch.float32
    torch.testing.assert_close(softmax_max[..., 0], scores.amax(-1))
    torch.testing.assert_close(softmax_sum[..., 3], torch.exp(scores - scores.amax(-1, keepdim=True)).sum(-1))
    assert softmax_out.numel() == 0 and ints == [0, 0, 0]


def reference_attention_scores(q, k, scale):
    group = q.shape[1] // k.shape[1]
    return q.float() @ k.float().repeat_interleave(group, 1).transpose(-1, -2) * scale


def test_fusion_attention_masks_and_float32_and_its_gradient_is_the_reference_attentions():
    q, k, v = (torch.randn(2, 4, 6, 16, generator=torch.Generator().manual_seed(s)) for s in (1, 2, 3))
    masked = torch.zeros(2, 1, 6, 9 - 3, dtype=torch.bool)
    masked[1, ..., 4:] = True  # the second sample's last two keys are padding
    for mask, allowed in ((masked, ~masked), (masked[0, 0], ~masked[0, 0][None, None])):
        def ours(q, k, v):
            return npu.npu_fusion_attention(q, k, v, 4, "BNSD", atten_mask=mask, scale=0.25)[0]

        def theirs(q, k, v):
            return reference_attention(q, k, v, allowed, scale=0.25)

        out, pull_back = torch.func.vjp(ours, q, k, v)
        expected, expected_pull_back = torch.func.vjp(theirs, q, k, v)
        torch.testing.assert_close(out, expected)
        cotangent = torch.randn(out.shape, generator=torch.Generator().manual_seed(4))
        for grad, expected_grad in zip(pull_back(cotangent), expected_pull_back(cotangent)):
            torch.testing.assert_close(grad, expected_grad)
    causal = npu.npu_fusion_attention(q, k, v, 4, "BNSD", atten_mask=npu.compressed_causal_mask(), sparse_mode=2)[0]
    rows, cols = torch.arange(6)[:, None], torch.arange(6)[None, :]
    torch.testing.assert_close(causal, reference_attention(q, k, v, (cols <= rows)[None, None], scale=1.0))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: {**a, "input_layout": "TND"}, "input_layout 'TND' is not emulated"),
        (lambda a: {**a, "padding_mask": torch.zeros(2, 6, dtype=torch.bool)}, "padding_mask is not supported"),
        (lambda a: {**a, "pse": torch.zeros(2, 4, 6, 6)}, "pse, prefix and actual_seq_qlen/kvlen are not emulated"),
        (lambda a: {**a, "keep_prob": 0.9}, "dropout is not emulated"),
        (lambda a: {**a, **{n: a[n].double() for n in ("query", "key", "value")}},
         "dtype torch.float64 is not supported"),
        (lambda a: {**a, **{n: a[n][..., :24].contiguous() for n in ("query", "key", "value")}},
         "head_dim 24 must be a multiple of 16"),
        (lambda a: {**a, "head_num": 3}, "query has 4 heads in its N axis"),
        (lambda a: {**a, "key": bf16(2, 3, 6, 32, seed=2), "value": bf16(2, 3, 6, 32, seed=3)},
         "3 heads, which does not divide"),
        (lambda a: {**a, "sparse_mode": 4}, "sparse_mode 4 is not emulated"),
        (lambda a: {**a, "atten_mask": torch.zeros(2, 6, 6, dtype=torch.bool)}, "is not one of"),
        (lambda a: {**a, "atten_mask": torch.zeros(6, 6)}, "atten_mask dtype torch.float32"),
    ],
)
def test_fusion_attention_rejects_what_the_kernel_rejects(change, message):
    arguments = {
        "query": bf16(2, 4, 6, 32, seed=1), "key": bf16(2, 2, 6, 32, seed=2), "value": bf16(2, 2, 6, 32, seed=3),
        "head_num": 4, "input_layout": "BNSD",
    }
    with pytest.raises(NpuOpContractError, match=message):
        npu.npu_fusion_attention(**change(arguments))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rotary_half_mode_is_the_reference_rotary(dtype):
    x = torch.randn(2, 7, 3, 16).to(dtype)
    angles = torch.randn(1, 7, 1, 8).repeat(1, 1, 1, 2)
    cos, sin = angles.cos().to(dtype), angles.sin().to(dtype)
    expected = Backend().rotary(x.float(), cos.float(), sin.float())
    tolerance = 1e-6 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(npu.npu_rotary_mul(x, cos, sin).float(), expected, rtol=0, atol=tolerance)


def test_rotary_interleave_mode_rotates_neighbouring_pairs():
    x = torch.randn(1, 3, 2, 8)
    r1, r2 = torch.rand(1, 3, 1, 8), torch.rand(1, 3, 1, 8)
    pairs = x.view(1, 3, 2, 4, 2)
    rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), -1).view(1, 3, 2, 8)
    torch.testing.assert_close(npu.npu_rotary_mul(x, r1, r2, rotary_mode="interleave"), r1 * x + r2 * rotated)


@pytest.mark.parametrize(
    "x, r, message",
    [
        (torch.randn(3, 4, 8), torch.randn(3, 4, 8), "must be 4-D"),
        (torch.randn(1, 3, 2, 8), torch.randn(1, 3, 2, 8).double(), "share one dtype"),
        (torch.randn(1, 3, 2, 8), torch.randn(1, 4, 1, 8), "does not broadcast"),
        (torch.randn(1, 3, 2, 7), torch.randn(1, 3, 1, 7), "must be even"),
    ],
)
def test_rotary_rejects_what_the_kernel_rejects(x, r, message):
    with pytest.raises(NpuOpContractError, match=message):
        npu.npu_rotary_mul(x, r, r)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-6), (torch.bfloat16, 2e-2)])
def test_rms_norm_returns_the_normalized_input_and_float32_rstd(dtype, tolerance):
    x = (torch.randn(2, 5, 3, 16) * 3).to(dtype)
    gamma = torch.rand(16).to(dtype) + 0.5
    y, rstd = npu.npu_rms_norm(x, gamma, epsilon=1e-6)
    expected = Backend().rms_norm(x.float(), gamma.float(), 1e-6)
    torch.testing.assert_close(y.float(), expected, rtol=0, atol=tolerance * 3)
    assert y.dtype == dtype and rstd.dtype == torch.float32 and rstd.shape == (2, 5, 3, 1)
    torch.testing.assert_close(rstd, torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6))
    _, rstd_2d = npu.npu_rms_norm(x, torch.ones(3, 16, dtype=dtype))
    assert rstd_2d.shape == (2, 5, 1, 1)


def test_add_rms_norm_returns_the_sum_as_the_new_residual():
    x1, x2 = torch.randn(2, 9, 32), torch.randn(2, 9, 32)
    gamma = torch.rand(32) + 0.5
    y, rstd, total = npu.npu_add_rms_norm(x1, x2, gamma, epsilon=1e-6)
    expected_y, expected_total = Backend().add_rms_norm(x1, x2, gamma, 1e-6)
    torch.testing.assert_close(total, expected_total, rtol=0, atol=0)
    torch.testing.assert_close(y, expected_y)
    assert rstd.shape == (2, 9, 1) and rstd.dtype == torch.float32


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: npu.npu_rms_norm(torch.randn(8), torch.ones(8)), "2 to 8 dimensions"),
        (lambda: npu.npu_rms_norm(torch.randn(2, 8), torch.ones(8, dtype=torch.bfloat16)), "gamma dtype"),
        (lambda: npu.npu_rms_norm(torch.randn(2, 8), torch.ones(4)), "trailing dimensions"),
        (lambda: npu.npu_rms_norm(torch.randn(2, 8).double(), torch.ones(8).double()),
         "is not float16/bfloat16/float32"),
        (lambda: npu.npu_add_rms_norm(torch.randn(2, 8), torch.randn(2, 9), torch.ones(8)), "must match"),
    ],
)
def test_norms_reject_what_the_kernels_reject(call, message):
    with pytest.raises(NpuOpContractError, match=message):
        call()


def test_compressed_causal_mask_masks_exactly_the_future():
    mask = npu.compressed_causal_mask()
    assert mask.shape == (2048, 2048) and mask.dtype == torch.bool
    assert int(mask.sum()) == 2048 * 2047 // 2 and not mask.diagonal().any() and mask[0, 1] and not mask[1, 0]


def test_reference_helper_matches_torch_sdpa():
    # Guards the test's own reference: grouped SDPA in float32 on the same inputs.
    q, k, v = bf16(1, 4, 5, 16, seed=1), bf16(1, 2, 7, 16, seed=2), bf16(1, 2, 7, 16, seed=3)
    sdpa = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), enable_gqa=True, scale=1 / math.sqrt(16))
    torch.testing.assert_close(reference_attention(q, k, v), sdpa)


# ---- npu_weight_quant_batchmatmul (W8A16) ---------------------------------------------------------------------
def int8(*shape, seed=0):
    return torch.randint(-127, 128, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.int8)


def w8a16_reference(x, weight_kn, scale, offset=None, bias=None, group=0):
    """x @ ((weight + offset) * scale) + bias in float64, the scale and offset expanded over k by group."""
    k, n = weight_kn.shape
    scale = scale.double().reshape(-1, n if scale.numel() > 1 else 1)
    offset = torch.zeros_like(scale) if offset is None else offset.double().reshape(scale.shape)
    if group:
        scale, offset = (t.repeat_interleave(group, 0)[:k] for t in (scale, offset))
    y = x.double() @ ((weight_kn.double() + offset) * scale)
    return y if bias is None else y + bias.double().reshape(n)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(
    "mode, scale_shape, group",
    [("tensor", (1,), 0), ("tensor", (1, 1), 0), ("channel", (48,), 0), ("channel", (1, 48), 0), ("group", (3, 48), 32),
     ("group", (2, 48), 64)],
)
def test_w8a16_computes_the_dequantized_product_in_every_quantization_mode(dtype, mode, scale_shape, group):
    x = bf16(5, 96, seed=1).to(dtype)
    weight_nk = int8(48, 96, seed=2)
    scale = (torch.rand(scale_shape, generator=torch.Generator().manual_seed(3)) * 0.02 + 0.001).to(dtype)
    offset = torch.randint(-4, 5, scale_shape, generator=torch.Generator().manual_seed(4)).to(dtype)
    bias = torch.randn(48).to(npu.W8A16_BIAS_DTYPE[dtype])
    # The (k, n) weight as the transpose of the [n, k] layout (the recommended per-channel form), and contiguous.
    for weight in (weight_nk.t(), weight_nk.t().contiguous()):
        out = npu.npu_weight_quant_batchmatmul(
            x, weight, scale, antiquant_offset=offset, bias=bias, antiquant_group_size=group
        )
        assert out.dtype == dtype and out.shape == (5, 48)
        expected = w8a16_reference(x, weight, scale, offset, bias, group)
        # One rounding to the activations' dtype (8 significant bits for bfloat16).
        torch.testing.assert_close(out.double(), expected, rtol=2**-8, atol=1e-3)


def test_w8a16_without_offset_or_bias_is_the_scaled_integer_product():
    x, weight = bf16(3, 64, seed=1), int8(64, 16, seed=2)
    scale = torch.full((16,), 0.5, dtype=torch.bfloat16)
    out = npu.npu_weight_quant_batchmatmul(x, weight, scale)
    torch.testing.assert_close(out.double(), (x.double() @ weight.double()) * 0.5, rtol=2**-8, atol=1e-3)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: {**a, "x": a["x"].float()}, "x dtype torch.float32 is not supported"),
        (lambda a: {**a, "weight": a["weight"].to(torch.int32)}, "weight dtype torch.int32 is not emulated"),
        (lambda a: {**a, "x": a["x"][None]}, "must be 2-D"),
        (lambda a: {**a, "x": a["x"][:, :64].contiguous()}, "differ in k"),
        (lambda a: {**a, "x": a["x"][:0]}, "empty tensors are not supported"),
        (lambda a: {**a, "weight": a["weight"][:, ::2]}, "weight is neither contiguous nor the transpose"),
        (lambda a: {**a, "antiquant_scale": a["antiquant_scale"].float()}, "must equal x's torch.bfloat16"),
        (lambda a: {**a, "antiquant_scale": a["antiquant_scale"][:40]}, r"\(1,\) or \(1, 1\) per tensor"),
        (lambda a: {**a, "antiquant_group_size": 48}, "must be a multiple of 32"),
        (lambda a: {**a, "antiquant_group_size": 96}, r"in \[32, k - 1 = 95\]"),
        (lambda a: {**a, "antiquant_group_size": 32},
         r"per-group antiquant_scale must be \(ceil\(k / group\) = 3, n = 48\)"),
        (lambda a: {**a, "antiquant_offset": a["antiquant_scale"][None]}, "antiquant_offset .* must match"),
        (lambda a: {**a, "bias": torch.zeros(48, dtype=torch.bfloat16)},
         "for torch.bfloat16 x the bias must be torch.float32"),
        (lambda a: {**a, "bias": torch.zeros(47)}, r"bias must be a contiguous \(n,\) or \(1, n\)"),
        (lambda a: {**a, "quant_scale": torch.ones(48)}, "output quantization .* is not emulated"),
        (lambda a: {**a, "inner_precise": 2}, "inner_precise 2"),
    ],
)
def test_w8a16_rejects_what_the_kernel_rejects(change, message):
    arguments = {"x": bf16(4, 96, seed=1), "weight": int8(48, 96, seed=2).t(),
                 "antiquant_scale": torch.full((48,), 0.01, dtype=torch.bfloat16)}
    with pytest.raises(NpuOpContractError, match=message):
        npu.npu_weight_quant_batchmatmul(**change(arguments))


def test_w8a16_rejects_k_or_n_beyond_the_kernels_range():
    x = torch.zeros(1, 65536, dtype=torch.bfloat16)
    with pytest.raises(NpuOpContractError, match=r"k, n must lie in \[1, 65535\]"):
        npu.npu_weight_quant_batchmatmul(
            x, torch.zeros(65536, 1, dtype=torch.int8), torch.ones(1, dtype=torch.bfloat16)
        )


def test_w8a16_refuses_to_be_differentiated_as_the_kernel_has_no_backward():
    x = bf16(3, 64, seed=1).requires_grad_(True)
    with pytest.raises(NpuOpContractError, match="has no backward"):
        npu.npu_weight_quant_batchmatmul(x, int8(64, 16, seed=2), torch.full((16,), 0.5, dtype=torch.bfloat16))
