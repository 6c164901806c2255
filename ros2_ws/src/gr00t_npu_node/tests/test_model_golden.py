# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The model against upstream's tensors on the golden tiny checkpoint, fed upstream's own preprocessed inputs: every
stage of the plain (reference) model, the optimized entry point's action_pred on every backend (compiled loops
included: about 20 s per compile on 2 cores), and the full-size preset's parameter names and shapes against the
released checkpoint's."""
import json

import golden
import numpy as np
import pytest
import torch

from gr00t_npu_node.backends import Backend, get_backend
from gr00t_npu_node.backends.cpu import CpuBackend
from gr00t_npu_node.model.config import preset
from gr00t_npu_node.model.gr00t import Gr00tN1d6

# float32 must be exact to rounding. bfloat16 differs by upstream's bf16-rounded RoPE frequencies (we keep them
# exact) and, on the fused and compiled paths, by rounding once where the reference rounds per op: of the size of
# upstream's own bf16-vs-fp32 gap (spec: 0.048 on this case).
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 0.08}
BACKENDS = {
    "cpu": CpuBackend,
    # The CPU backend compiles the loop with inductor only while its weights are unpacked.
    "cpu-inductor": lambda: CpuBackend(pack_weights=False),
    "npu-emulated": lambda: get_backend("npu-emulated"),
}


def test_full_size_state_dict_matches_released_checkpoint(shared_data):
    released = json.loads((shared_data / "gr00t-n1.6-3b" / "param_shapes.json").read_text())
    with torch.device("meta"):
        model = Gr00tN1d6(preset("gr00t-n1.6-3b"), Backend())
    ours = {name: list(t.shape) for name, t in model.state_dict().items()}
    assert ours == released["shapes"]
    assert sum(t.numel() for t in model.state_dict().values()) == released["parameters"]


@pytest.fixture(scope="module", params=[torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
def reference_model(request, golden_dir):
    dtype = request.param
    return golden.model(golden_dir, Backend(), dtype, optimized=False), golden.reference(golden_dir, dtype), dtype


@torch.inference_mode()
def test_every_stage_matches_upstream(reference_model, golden_dir):
    model, ref, dtype = reference_model
    inputs = golden.model_inputs(ref)
    pixels = inputs.pixel_values.to(dtype)

    def close(name, ours):
        assert np.abs(ours.float().numpy() - ref[name].astype(np.float32)).max() <= TOLERANCE[dtype], name

    close("vit_last_hidden_state", model.backbone.model.vision_model(pixels))
    close("vit_embeds_projected", model.backbone.model.encode_images(pixels))
    features = model.backbone(inputs.input_ids, inputs.attention_mask, pixels)
    close("backbone_features", features)
    image_mask = (inputs.input_ids == model.config.backbone.image_token_index).numpy()
    np.testing.assert_array_equal(image_mask, ref["image_mask"])
    head = model.action_head
    context = head.context(
        features, inputs.attention_mask, inputs.image_mask, inputs.state.to(dtype), inputs.embodiment_id,
        cache_cross_kv=False,
    )
    close("vl_embeds", context.vl_embeds)
    close("state_features", context.state_features)
    assert head.timestep_buckets() == ref["denoise_timesteps"][:, 0].tolist()
    close("action_pred", model(inputs, golden.noise(golden_dir)))


# One inductor compile of the CPU backend (float32) is enough: npu-emulated compiles bfloat16 as well.
@pytest.mark.parametrize(
    "device, dtype",
    [("cpu", torch.float32), ("cpu", torch.bfloat16), ("cpu-inductor", torch.float32),
     ("npu-emulated", torch.float32), ("npu-emulated", torch.bfloat16)],
    ids=lambda value: str(value).removeprefix("torch."),
)
def test_optimized_entry_point_matches_upstream(golden_dir, device, dtype):
    ref = golden.reference(golden_dir, dtype)
    model = golden.model(golden_dir, BACKENDS[device](), dtype, optimized=True)
    action_pred = model(golden.model_inputs(ref), golden.noise(golden_dir))
    assert action_pred.dtype == torch.float32 and action_pred.device.type == "cpu"
    assert np.abs(action_pred.numpy() - ref["action_pred"]).max() <= TOLERANCE[dtype]


@torch.inference_mode()
def test_one_embodiment_id_for_the_batch_matches_per_sample_ids(reference_model, golden_dir):
    model, ref, dtype = reference_model
    features = torch.from_numpy(ref["backbone_features"]).to(dtype)
    mask = torch.from_numpy(ref["attention_mask"])
    image_mask = torch.from_numpy(ref["image_mask"])
    state = torch.from_numpy(ref["state"]).to(dtype)
    noise = golden.noise(golden_dir)
    head = model.action_head
    per_sample = head.denoise(noise, head.context(features, mask, image_mask, state, torch.tensor([20]), False))
    one_id = head.denoise(noise, head.context(features, mask, image_mask, state, 20, False))
    tol = 1e-5 if dtype == torch.float32 else 0.05
    assert (per_sample.float() - one_id.float()).abs().max() <= tol
