# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Real-time chunking: the guided Euler steps against their formulas on a velocity whose Jacobian is known, the model
guided toward a running chunk on upstream's golden checkpoint (every backend's eager path, the packed CPU backward,
the NPU path's differentiable attention), and the policy's contract (frozen steps exact, RTC off unchanged)."""
import golden
import numpy as np
import pytest
import torch

from gr00t_npu_node.backends import Backend, get_backend, npu_emulation
from gr00t_npu_node.guidance import RTC_MODES, ChunkGuidance
from gr00t_npu_node.model import rtc
from gr00t_npu_node.model.rtc import ActionGuidance
from gr00t_npu_node.policy import Gr00tPolicy

FROZEN, OVERLAP, EXECUTED = 3, 8, 8


def test_guidance_weight_is_the_papers_clipped_schedule():
    # (1 - t) / (t r_t^2) = (t^2 + (1 - t)^2) / (t (1 - t)), clipped at beta = 5 (infinite at t = 0).
    weights = [rtc.guidance_weight(t) for t in (0.0, 0.1, 0.25, 0.5, 0.75)]
    assert weights == pytest.approx([5.0, 5.0, 10 / 3, 2.0, 10 / 3])


def linear_guidance(mode, seed=0):
    generator = torch.Generator().manual_seed(seed)
    target = torch.randn(2, 6, 4, generator=generator)
    weights = torch.rand(1, 6, 4, generator=generator)
    frozen = torch.zeros(1, 6, 4, dtype=torch.bool)
    frozen[:, :2, :3] = True
    return ActionGuidance(mode, target, weights, frozen)


@pytest.mark.parametrize("mode", ["guided", "identity"])
def test_guided_steps_pull_the_weighted_error_back_through_the_jacobian(mode):
    """v(x) = x A^T + b has the Jacobian A, so f(x) = x + (1 - t) v(x) has I + (1 - t) A, and the paper's guidance is
    g = e (I + (1 - t) A) with e = (Y - f(x)) W; the identity variant takes g = e."""
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(4, 4, generator=generator), torch.randn(4, generator=generator)
    x, noise = torch.randn(2, 6, 4, generator=generator), torch.randn(2, 6, 4, generator=generator)
    guidance = linear_guidance(mode)
    t, dt = 0.25, 0.25
    v = x @ a.T + b
    e = (guidance.target - (x + (1 - t) * v)) * guidance.weights
    g = e + (1 - t) * e @ a if mode == "guided" else e
    expected = x + dt * (v + rtc.guidance_weight(t) * g)
    with torch.inference_mode():
        ours = rtc.euler_step(lambda y: y @ a.T + b, x, noise, t, dt, guidance)
    torch.testing.assert_close(ours, expected)
    assert not torch.allclose(ours, x + dt * v, atol=1e-3)


def test_prefix_steps_put_the_frozen_steps_on_the_flow_from_the_noise_to_the_target_and_end_on_it():
    generator = torch.Generator().manual_seed(2)
    x, noise = torch.randn(2, 6, 4, generator=generator), torch.randn(2, 6, 4, generator=generator)
    guidance = linear_guidance("prefix")
    seen = []
    t, dt = 0.5, 0.25
    stepped = rtc.euler_step(lambda y: seen.append(y) or torch.ones_like(y), x, noise, t, dt, guidance)
    on_flow = (1 - t) * noise + t * guidance.target
    frozen = guidance.frozen.expand_as(x)
    torch.testing.assert_close(seen[0][frozen], on_flow[frozen])
    assert torch.equal(seen[0][~frozen], x[~frozen])
    torch.testing.assert_close(stepped, seen[0] + dt)
    finished = rtc.finish(stepped, guidance)
    assert torch.equal(finished[frozen], guidance.target[frozen]) and torch.equal(finished[~frozen], stepped[~frozen])


def test_action_guidance_refuses_unknown_modes_and_a_mask_unlike_the_weights():
    guidance = linear_guidance("guided")
    with pytest.raises(ValueError, match="rtc mode 'soft' is not one of guided, identity, prefix"):
        ActionGuidance("soft", guidance.target, guidance.weights, guidance.frozen)
    with pytest.raises(ValueError, match="frozen must be a bool tensor shaped like weights"):
        ActionGuidance("guided", guidance.target, guidance.weights, guidance.frozen.float())


# ---- the model on upstream's golden checkpoint ---------------------------------------------------------------
def soft_mask(horizon=50, width=29, max_dim=128):
    """The paper's weights for FROZEN frozen steps of an OVERLAP-step overlap, on the first `width` dims."""
    steps = torch.from_numpy(ChunkGuidance({}, FROZEN, OVERLAP).weights(horizon)).float()
    return (steps[:, None] * (torch.arange(max_dim) < width)[None].float())[None]


def running_plan(model, inputs, seed=7):
    """The normalized chunk a call with other noise plans, EXECUTED steps on: what the running chunk asks."""
    planned = model(inputs, torch.randn(model.noise_shape(1), generator=torch.Generator().manual_seed(seed)))
    target = torch.zeros_like(planned)
    target[:, : 16 - EXECUTED] = planned[:, EXECUTED:16]
    return target


def weighted_distance(actions, guidance):
    return float(((guidance.weights * (actions - guidance.target) ** 2).sum() / guidance.weights.sum()).sqrt())


BACKENDS = {
    "reference": (Backend, torch.float32, False),
    "cpu": (lambda: get_backend("cpu"), torch.float32, True),
    "npu-emulated": (lambda: get_backend("npu-emulated"), torch.bfloat16, True),
}


@pytest.fixture(scope="module", params=list(BACKENDS))
def golden_model(request, golden_dir):
    make_backend, dtype, optimized = BACKENDS[request.param]
    model = golden.model(golden_dir, make_backend(), dtype, optimized=optimized)
    return request.param, model, golden.model_inputs(golden.reference(golden_dir, dtype)), golden.noise(golden_dir)


@pytest.mark.parametrize("mode", RTC_MODES)
def test_the_guided_overlap_is_closer_to_the_running_chunk_than_unguided_generation_from_the_same_noise(
    golden_model, mode
):
    _, model, inputs, noise = golden_model
    weights = soft_mask()
    # Eager: the compiled loops are checked against the eager ones in test_compile.
    with torch.compiler.set_stance("force_eager"):
        guidance = ActionGuidance(mode, running_plan(model, inputs), weights, weights == 1)
        unguided = weighted_distance(model(inputs, noise), guidance)
        guided = model(inputs, noise, guidance=guidance)
    frozen = guidance.frozen.expand_as(guided)
    if mode == "prefix":
        # Prefix replacement pulls nothing but the frozen steps, which end on the target (in the model's dtype).
        assert torch.equal(guided[frozen], guidance.target.to(model.dtype).float()[frozen])
        assert weighted_distance(guided, guidance) < unguided
    else:
        # The paper's guidance (and its identity variant) bring the whole overlap in: from 1.75 to 0.24 here.
        assert weighted_distance(guided, guidance) < 0.25 * unguided
        assert (guided - guidance.target)[frozen].abs().max() < 0.1


def test_the_packed_cpu_layers_differentiate_like_the_reference_ones(golden_dir):
    """oneDNN's packed linear kernel has no backward of its own (autograd would return zeros through it)."""
    ref = golden.reference(golden_dir, torch.float32)
    inputs, noise = golden.model_inputs(ref), golden.noise(golden_dir)
    packed = golden.model(golden_dir, get_backend("cpu"), torch.float32, optimized=True)
    reference = golden.model(golden_dir, Backend(), torch.float32, optimized=False)
    assert packed.backend.packed_layers > 0
    weights = soft_mask()
    guidance = ActionGuidance("guided", running_plan(reference, inputs), weights, weights == 1)
    identity = ActionGuidance("identity", guidance.target, weights, guidance.frozen)
    guided = packed(inputs, noise, guidance=guidance)
    torch.testing.assert_close(guided, reference(inputs, noise, guidance=guidance), rtol=0, atol=1e-5)
    assert (guided - reference(inputs, noise, guidance=identity)).abs().max() > 0.1  # the VJP is not the identity


def test_the_npu_path_differentiates_through_npu_fusion_attention_only(golden_dir, monkeypatch):
    """The inference kernel has no backward (its emulation refuses to be differentiated): the guided pass's DiT
    attention goes to npu_fusion_attention, everything else stays on npu_fused_infer_attention_score."""
    calls = {"npu_fusion_attention": 0, "npu_fused_infer_attention_score": 0}
    for name in calls:
        def counted(*args, _op=getattr(npu_emulation, name), _name=name, **kwargs):
            calls[_name] += 1
            return _op(*args, **kwargs)

        monkeypatch.setattr(npu_emulation, name, counted)
    ref = golden.reference(golden_dir, torch.bfloat16)
    inputs, noise = golden.model_inputs(ref), golden.noise(golden_dir)
    model = golden.model(golden_dir, get_backend("npu-emulated"), torch.bfloat16, optimized=True)
    weights = soft_mask()
    with torch.compiler.set_stance("force_eager"):
        guidance = ActionGuidance("guided", running_plan(model, inputs), weights, weights == 1)
        unguided_calls = dict(calls)
        model(inputs, noise, guidance=guidance)
    config = model.config
    backbone_layers = config.backbone.vision.num_hidden_layers + config.select_layer
    dit_calls = config.dit_num_layers * config.num_inference_timesteps
    assert unguided_calls == {"npu_fusion_attention": 0, "npu_fused_infer_attention_score": backbone_layers + dit_calls}
    assert calls == {
        "npu_fusion_attention": dit_calls, "npu_fused_infer_attention_score": 2 * backbone_layers + dit_calls
    }


# ---- the policy ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def golden_policy(golden_dir):
    return Gr00tPolicy.from_pretrained(
        golden_dir / "checkpoint", tokenizer_path=golden_dir / "backbone", dtype="float32"
    )


def running_chunk(policy, observation, mode, groups=None):
    """A plausible running chunk's plan for the new chunk's steps (a chunk of other noise, EXECUTED steps on, held
    at its last point), as the node computes it."""
    noise = torch.randn(policy.model.noise_shape(1), generator=torch.Generator().manual_seed(3))
    planned = policy.get_action(observation, noise=noise)
    target = {
        g: np.concatenate([a[0, EXECUTED:], np.repeat(a[0, -1:], EXECUTED, axis=0)]).astype(np.float64)
        for g, a in planned.items() if groups is None or g in groups
    }
    return ChunkGuidance(target, frozen_steps=FROZEN, overlap_steps=OVERLAP, mode=mode)


@pytest.mark.parametrize("mode", RTC_MODES)
def test_the_frozen_steps_are_the_running_chunks_exactly_and_rtc_off_still_reproduces_upstream(
    golden_policy, golden_dir, mode
):
    observation = golden.observation(golden_dir, golden_policy.processor)
    noise = golden.noise(golden_dir)
    guidance = running_chunk(golden_policy, observation, mode)
    actions = golden_policy.get_action(observation, noise=noise, guidance=guidance)
    for group, target in guidance.target.items():
        np.testing.assert_array_equal(actions[group][0, :FROZEN], target[:FROZEN].astype(np.float32), err_msg=group)
    # Only the frozen steps are set (the golden statistics pin the waist to 0, so an arm shows it).
    assert not np.array_equal(actions["left_arm"][0, FROZEN], guidance.target["left_arm"][FROZEN].astype(np.float32))
    # No state is left behind by a guided call (static noise buffer, compiled loops): the golden case still holds.
    reference = golden.reference(golden_dir, torch.float32)
    unguided = golden_policy.get_action(observation, noise=noise)
    for group in golden.GROUPS:
        np.testing.assert_allclose(unguided[group], reference[f"action.{group}"], atol=1e-4, rtol=0, err_msg=group)


def model_guidances(policy, monkeypatch) -> list:
    """The guidance of every call of the policy's model from now on (None for an unguided one)."""
    seen = []
    forward = policy.model.forward

    def spy(inputs, noise, text_bucket=None, guidance=None):
        seen.append(guidance)
        return forward(inputs, noise, text_bucket, guidance=guidance)

    monkeypatch.setattr(policy.model, "forward", spy)
    return seen


def test_groups_without_a_target_are_neither_frozen_nor_pulled(golden_policy, golden_dir, monkeypatch):
    observation = golden.observation(golden_dir, golden_policy.processor)
    noise = golden.noise(golden_dir)
    guidance = running_chunk(golden_policy, observation, "prefix", groups=("left_arm",))
    seen = model_guidances(golden_policy, monkeypatch)
    actions = golden_policy.get_action(observation, noise=noise, guidance=guidance)
    columns = golden_policy.processor.action_columns["left_arm"]
    (model_guidance,) = seen
    outside = torch.ones(model_guidance.weights.shape[-1], dtype=torch.bool)
    outside[columns] = False
    assert model_guidance.weights[..., outside].abs().max() == 0 and not model_guidance.frozen[..., outside].any()
    assert model_guidance.frozen[0, :FROZEN, columns].all() and not model_guidance.frozen[0, FROZEN:].any()
    frozen_target = guidance.target["left_arm"][:FROZEN].astype(np.float32)
    np.testing.assert_array_equal(actions["left_arm"][0, :FROZEN], frozen_target)


def test_guided_generation_runs_under_an_outer_inference_mode(golden_policy, golden_dir):
    observation = golden.observation(golden_dir, golden_policy.processor)
    noise = golden.noise(golden_dir)
    guidance = running_chunk(golden_policy, observation, "guided")
    expected = golden_policy.get_action(observation, noise=noise, guidance=guidance)
    with torch.inference_mode():
        actions = golden_policy.get_action(observation, noise=noise, guidance=guidance)
    for group in actions:
        np.testing.assert_array_equal(actions[group], expected[group], err_msg=group)
    assert not any(p.requires_grad for p in golden_policy.model.parameters())


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda t: t.update(left_arm=t["left_arm"][:, :6]), r"left_arm.*shape \[16, 6\]; expected \[16, 7\]"),
        (lambda t: t.update(left_arm=t["left_arm"][:10]), r"left_arm.*shape \[10, 7\]; expected \[16, 7\]"),
        (lambda t: t.update(neck=np.zeros((16, 3))), r"'neck'.*not an action group.*left_arm"),
        (lambda t: t["waist"].__setitem__((4, 1), np.nan), "waist.*NaN"),
    ],
    ids=["width", "horizon", "unknown-group", "nan"],
)
def test_a_malformed_guidance_target_is_refused_naming_the_group(tiny_checkpoint, corrupt, message):
    policy = Gr00tPolicy.from_pretrained(tiny_checkpoint, optimize=False)
    observation = policy.example_observation()
    guidance = running_chunk(policy, observation, "identity")
    corrupt(guidance.target)
    with pytest.raises(ValueError, match=message):
        policy.get_action(observation, guidance=guidance)


def test_the_default_rtc_mode_is_the_devices_on_both_paths(tiny_checkpoint):
    for device in ("cpu", "npu-emulated"):
        expected = get_backend(device).default_rtc_mode
        assert expected in RTC_MODES
        for optimize in (False, True):
            policy = Gr00tPolicy.from_pretrained(tiny_checkpoint, device=device, optimize=optimize)
            assert policy.default_rtc_mode == expected


def test_warmup_runs_the_guided_loop_of_the_mode_with_a_guidance_laid_out_like_the_policys(
    tiny_checkpoint, monkeypatch
):
    """A compiled loop is reused for inputs of the same shapes, dtypes and strides (and mode): the warm-up's inert
    guidance must look like every real one, so that the node's first guided chunk does not compile."""
    policy = Gr00tPolicy.from_pretrained(tiny_checkpoint, optimize=False)
    seen = model_guidances(policy, monkeypatch)
    policy.warmup(rtc_mode="prefix")
    unguided, warm = seen
    assert unguided is None and warm.mode == "prefix" and not warm.weights.any() and not warm.frozen.any()
    observation = policy.example_observation()
    policy.get_action(observation, guidance=running_chunk(policy, observation, "prefix"))
    real = seen[-1]

    def layout(guidance):
        return [(t.shape, t.dtype, t.stride()) for t in (guidance.target, guidance.weights, guidance.frozen)]

    assert layout(real) == layout(warm) and real.weights.any() and real.frozen.any()
