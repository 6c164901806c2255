# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The compiled denoising loop behind the model on the tiny checkpoint (npu-emulated: the NPU code path, inductor in
place of torchair): it reads the noise anew at every call, after `warmup` no instruction of the warmed camera size
compiles again, a chunk outlives the graph's output buffer, and the guided loop of real-time chunking (its backward
pass through npu_fusion_attention included) compiles into one graph that no later frozen-step count recompiles.
(About 15 s per compile of the tiny loop on 2 cores; warmup compiles one per text bucket.)"""
import numpy as np
import pytest
import torch

from gr00t_npu_node.backends import Backend
from gr00t_npu_node.guidance import ChunkGuidance
from gr00t_npu_node.model.config import BackboneConfig
from gr00t_npu_node.model.gr00t import TEXT_BUCKETS, Gr00tN1d6
from gr00t_npu_node.policy import Gr00tPolicy

HEIGHT, WIDTH = 224, 320
# Instructions whose prompts fill each text bucket.
INSTRUCTIONS = ["pick the pear", "pick the pear and place it in the plate " * 6, "put the cup on the shelf " * 30]


@pytest.fixture(scope="module")
def compiled(tiny_checkpoint):
    policy = Gr00tPolicy.from_pretrained(tiny_checkpoint, device="npu-emulated", dtype="float32")
    policy.warmup(height=HEIGHT, width=WIDTH)
    return policy


@pytest.fixture(scope="module")
def plain(tiny_checkpoint):
    return Gr00tPolicy.from_pretrained(tiny_checkpoint, device="npu-emulated", dtype="float32", optimize=False)


def observation(policy, instruction):
    frames = {key: np.full((HEIGHT, WIDTH, 3), 90, np.uint8) for key in policy.video_keys}
    return policy.observation(frames, {g: np.full(d, 0.1) for g, d in policy.state_dims.items()}, instruction)


def test_the_instructions_fill_every_text_bucket(compiled):
    """The premise of the next test: the instructions' prompts need each bucket once."""
    lengths = []
    for instruction in INSTRUCTIONS:
        inputs = compiled.processor(observation(compiled, instruction))
        lengths.append(inputs.input_ids.shape[1] - int(inputs.image_mask.sum()))
    assert [next(b for b in TEXT_BUCKETS if b >= n) for n in lengths] == list(TEXT_BUCKETS), lengths


def test_after_warmup_no_instruction_compiles_again_and_each_gives_the_plain_actions(compiled, plain):
    for instruction in INSTRUCTIONS:
        noise = torch.randn(compiled.model.noise_shape(1))
        with torch.compiler.set_stance("fail_on_recompile"):
            ours = compiled.get_action(observation(compiled, instruction), noise=noise)
        reference = plain.get_action(observation(plain, instruction), noise=noise)
        for group in ours:
            np.testing.assert_allclose(ours[group], reference[group], atol=1e-5, err_msg=f"{group}: {instruction}")


def test_the_compiled_loop_reads_the_noise_anew_at_every_call(compiled, plain):
    """The noise buffer is marked static for the graph compiler: the compiled loop must read its contents at every
    call, not bake the first call's values in."""
    first, second = (torch.randn(compiled.model.noise_shape(1)) for _ in range(2))
    chunks = []
    for noise in (first, second):
        ours = compiled.get_action(observation(compiled, INSTRUCTIONS[0]), noise=noise)
        reference = plain.get_action(observation(plain, INSTRUCTIONS[0]), noise=noise)
        for group in ours:
            np.testing.assert_allclose(ours[group], reference[group], atol=1e-5, err_msg=group)
        chunks.append(ours)
    assert any(not np.array_equal(chunks[0][g], chunks[1][g]) for g in chunks[0])


class ReplayingBackend(Backend):
    """The reference operators, with a `compile` whose denoising loop returns its result in one buffer that every
    call overwrites, as a replayed CUDA graph or aclgraph does (the other captured parts run as they are)."""

    def compile(self, fn, *, name):
        if name != "denoise":
            return fn
        output = []

        def replay(*args):
            result = fn(*args)
            if not output:
                output.append(torch.empty_like(result))
            return output[0].copy_(result)

        return replay


def test_a_chunk_outlives_the_graphs_output_buffer_that_the_next_call_overwrites(tiny_checkpoint, plain):
    backbone = BackboneConfig.from_json(tiny_checkpoint / "backbone" / "config.json")
    model = Gr00tN1d6.from_checkpoint(tiny_checkpoint, backbone, ReplayingBackend(), torch.float32)
    model.optimize()
    inputs = plain.processor(plain.example_observation())
    first_noise, second_noise = (torch.randn(model.noise_shape(1)) for _ in range(2))
    first = model(inputs, first_noise)
    second = model(inputs, second_noise)
    torch.testing.assert_close(first, plain.model(inputs, first_noise), rtol=0, atol=1e-5)
    assert not torch.equal(first, second)


def test_the_guided_loop_compiles_into_one_graph_that_later_frozen_steps_reuse_and_gives_the_eager_chunk(
    tiny_checkpoint,
):
    policy = Gr00tPolicy.from_pretrained(tiny_checkpoint, device="npu-emulated")  # bfloat16: npu_fusion_attention
    obs = observation(policy, INSTRUCTIONS[0])
    shape = policy.model.noise_shape(1)
    noise, other = (torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in (1, 2))
    with torch.compiler.set_stance("force_eager"):  # only the guided loop is compiled here
        planned = policy.get_action(obs, noise=other)
        unguided = policy.get_action(obs, noise=noise)
    target = {g: np.concatenate([a[0, 8:], np.repeat(a[0, -1:], 8, axis=0)]) for g, a in planned.items()}
    for frozen, stance in ((3, "default"), (5, "fail_on_recompile")):
        guidance = ChunkGuidance(target, frozen_steps=frozen, overlap_steps=8, mode="guided")
        with torch.compiler.set_stance(stance):
            ours = policy.get_action(obs, noise=noise, guidance=guidance)
        with torch.compiler.set_stance("force_eager"):
            eager = policy.get_action(obs, noise=noise, guidance=guidance)
        for group in ours:
            # bfloat16: the compiled graph rounds where its fused kernels do.
            np.testing.assert_allclose(ours[group], eager[group], rtol=0, atol=0.05, err_msg=group)
            np.testing.assert_array_equal(ours[group][0, :frozen], target[group][:frozen].astype(np.float32))
        assert any(not np.allclose(ours[g][0, frozen:8], unguided[g][0, frozen:8], atol=0.05) for g in ours)
