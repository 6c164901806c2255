# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The captured parts of the optimized path (vision tower, LLM, denoising context; the loop: test_compile), each
compiled as one graph (`fullgraph=True`: a graph break fails) on the CPU's inductor and on the NPU code path
(npu-emulated: inductor in place of torchair), against the same functions run eagerly on the same inputs. One model
per device for the module (each part compiles once per shape, about 10 s on 2 cores)."""
import numpy as np
import pytest
import torch

from gr00t_npu_node.backends import get_backend
from gr00t_npu_node.backends.cpu import CpuBackend
from gr00t_npu_node.model.config import BackboneConfig
from gr00t_npu_node.model.gr00t import Gr00tN1d6
from gr00t_npu_node.processing.processor import Gr00tProcessor

PARTS = ("_encode", "_language", "_context")
# (backend, dtype, tolerance): float32 on the CPU's inductor; bfloat16, the NPU path's dtype, where the compiled
# kernels round once where eager rounds per operator (outputs of magnitude up to ~5: a few bfloat16 steps).
DEVICES = {
    "cpu-inductor": (lambda: CpuBackend(pack_weights=False), torch.float32, 1e-4),
    "npu-emulated": (lambda: get_backend("npu-emulated"), torch.bfloat16, 0.1),
}


@pytest.fixture(scope="module", params=list(DEVICES))
def captured(request, tiny_checkpoint):
    make_backend, dtype, tolerance = DEVICES[request.param]
    backbone = BackboneConfig.from_json(tiny_checkpoint / "backbone" / "config.json")
    model = Gr00tN1d6.from_checkpoint(tiny_checkpoint, backbone, make_backend(), dtype)
    model.optimize()
    processor = Gr00tProcessor.from_folders(tiny_checkpoint, tiny_checkpoint / "backbone", "gr1")
    return model, processor, tolerance


def observation(processor, instructions):
    frames = np.full((len(instructions), 1, 256, 256, 3), 100, np.uint8)
    frames[:, :, :128] = 30  # not a flat image
    return {
        "video": {processor.video_keys[0]: frames},
        "state": {g: np.full((len(instructions), 1, d), 0.2, np.float32) for g, d in processor.state_dims.items()},
        "language": {processor.language_key: [[text] for text in instructions]},
    }


def close(ours, eager, tolerance, what):
    assert ours.shape == eager.shape and ours.dtype == eager.dtype, what
    assert torch.isfinite(ours).all(), what
    torch.testing.assert_close(ours.float(), eager.float(), rtol=0, atol=tolerance, msg=what)


def test_each_part_is_a_compiled_graph_that_computes_what_it_computes_eagerly(captured):
    model, processor, tolerance = captured
    eager = {"_encode": model.backbone.model.encode_images, "_language": model.backbone.features,
             "_context": model.action_head.context}
    calls = {}
    compiled = {name: getattr(model, name) for name in PARTS}
    assert all(compiled[name] is not eager[name] for name in PARTS)

    def recording(name):
        def call(*args, **kwargs):
            calls[name] = (args, kwargs)
            return compiled[name](*args, **kwargs)
        return call

    for name in PARTS:
        setattr(model, name, recording(name))
    try:
        model(processor(observation(processor, ["pick the pear"])), torch.randn(model.noise_shape(1)))
    finally:
        for name in PARTS:
            setattr(model, name, compiled[name])
    with torch.inference_mode():
        for name in ("_encode", "_language"):
            args, kwargs = calls[name]
            close(compiled[name](*args, **kwargs), eager[name](*args, **kwargs), tolerance, name)
        args, kwargs = calls["_context"]
        ours, theirs = compiled["_context"](*args, **kwargs), eager["_context"](*args, **kwargs)
    for field in ("state_features", "vl_embeds", "text_mask", "image_mask"):
        close(getattr(ours, field), getattr(theirs, field), tolerance, f"context.{field}")
    assert ours.embodiment_id == theirs.embodiment_id
    for block, (mine, reference) in enumerate(zip(ours.cross_kv, theirs.cross_kv)):
        assert (mine is None) == (reference is None), block
        if mine is not None:
            close(mine[0], reference[0], tolerance, f"cross keys of block {block}")
            close(mine[1], reference[1], tolerance, f"cross values of block {block}")


def test_the_llm_graph_with_left_padded_rows_keeps_them_out_of_the_real_tokens(captured):
    """A batch of two prompts of different lengths: the processor pads the shorter on the left, so the captured LLM
    takes a key mask; each row's real tokens must get the features they get alone."""
    model, processor, tolerance = captured
    instructions = ["pick the pear", "pick the pear from the counter and place it in the plate"]
    batch = processor(observation(processor, instructions))
    assert not bool(batch.attention_mask.all())
    with torch.inference_mode():
        pixels = batch.pixel_values.to(model.dtype)
        model.backbone.model.shape_tables(pixels, batch.input_ids.shape[1])
        tokens = model._encode(pixels)
        ours = model._language(batch.input_ids, batch.attention_mask.bool(), tokens)
        for row, instruction in enumerate(instructions):
            alone = processor(observation(processor, [instruction]))
            model.backbone.model.shape_tables(pixels[row:row + 1], alone.input_ids.shape[1])
            theirs = model.backbone.features(alone.input_ids, None, tokens[row:row + 1])
            real = batch.attention_mask[row].bool()
            close(ours[row, real], theirs[0], tolerance, f"row {row}")
