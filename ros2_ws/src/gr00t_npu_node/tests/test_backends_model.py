# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The NPU backend inside the model: its attention for the model's three call patterns, and no float64 anywhere in a
forward of the golden case. (The golden case on every backend against upstream: test_model_golden.)"""
import golden
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from gr00t_npu_node.backends import Backend, get_backend
from gr00t_npu_node.backends.npu_emulation import NpuOpContractError


def rand(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(torch.bfloat16)


def compare_with_reference(q, k, v, **kwargs):
    """NPU backend (emulated kernels) on bfloat16 inputs vs the reference attention on the same values in float32."""
    ours = get_backend("npu-emulated").attention(q, k, v, **kwargs)
    reference = Backend().attention(q.float(), k.float(), v.float(), **kwargs)
    assert ours.shape == reference.shape and ours.dtype == torch.bfloat16
    torch.testing.assert_close(ours.float(), reference, rtol=0, atol=2e-2)


def test_siglip_pattern_pads_head_dim_72_for_the_kernel_and_keeps_its_scale():
    q, k, v = rand(2, 40, 4, 72, seed=1), rand(2, 40, 4, 72, seed=2), rand(2, 40, 4, 72, seed=3)
    compare_with_reference(q, k, v, scale=72**-0.5)
    with pytest.raises(NpuOpContractError, match="head_dim 72"):
        get_backend("npu-emulated").ops.npu_fused_infer_attention_score(q, k, v, num_heads=4, input_layout="BSND")


@pytest.mark.parametrize("padding", [None, "right", "left"])
def test_qwen3_pattern_is_causal_with_grouped_kv_with_and_without_key_padding(padding):
    q, k, v = rand(2, 24, 8, 32, seed=1), rand(2, 24, 4, 32, seed=2), rand(2, 24, 4, 32, seed=3)
    key_mask = None
    if padding is not None:
        key_mask = torch.ones(2, 24, dtype=torch.bool)
        key_mask[1, 17:] = False if padding == "right" else True
        if padding == "left":
            key_mask[1, :7] = False
    compare_with_reference(q, k, v, causal=True, key_mask=key_mask, scale=32**-0.5)


def test_dit_pattern_cross_attends_under_text_and_image_key_masks():
    q, k, v = rand(2, 11, 4, 48, seed=1), rand(2, 23, 4, 48, seed=2), rand(2, 23, 4, 48, seed=3)
    image = torch.zeros(2, 23, dtype=torch.bool)
    image[:, 3:15] = True
    valid = torch.ones(2, 23, dtype=torch.bool)
    valid[1, 19:] = False
    for key_mask in (valid & ~image, valid & image):
        compare_with_reference(q, k, v, key_mask=key_mask, scale=48**-0.5)
    compare_with_reference(q, k, v, scale=48**-0.5)


def test_float32_attention_uses_the_reference_kernel_exactly():
    q, k, v = (rand(1, 9, 4, 24, seed=s).float() for s in (1, 2, 3))
    mask = torch.tensor([[True] * 6 + [False] * 3])
    ours = get_backend("npu-emulated").attention(q, k, v, causal=True, key_mask=mask)
    torch.testing.assert_close(ours, Backend().attention(q, k, v, causal=True, key_mask=mask), rtol=0, atol=0)


class FloatKinds(TorchDispatchMode):
    """Records the dtype of every tensor an operator produces."""

    def __init__(self):
        super().__init__()
        self.dtypes: dict[torch.dtype, set[str]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.dtypes.setdefault(t.dtype, set()).add(str(func))
        return out


def test_no_float64_tensor_is_created_by_a_forward_on_the_npu_path(golden_dir):
    ref = golden.reference(golden_dir, torch.bfloat16)
    inputs, noise = golden.model_inputs(ref), golden.noise(golden_dir)
    optimized = golden.model(golden_dir, get_backend("npu-emulated"), torch.bfloat16, optimized=True)
    plain = golden.model(golden_dir, get_backend("npu-emulated").plain(), torch.bfloat16, optimized=False)
    kinds = FloatKinds()
    # Eager, so that the mode sees every operator of the loop too.
    with torch.compiler.set_stance("force_eager"), kinds:
        optimized(inputs, noise)
        plain(inputs, noise)
    assert torch.bfloat16 in kinds.dtypes and torch.float32 in kinds.dtypes  # the mode saw the forward
    assert torch.float64 not in kinds.dtypes, f"float64 made by {sorted(kinds.dtypes[torch.float64])}"
