"""The inference plan computes ``ActionPolicy``'s function with less arithmetic: the same actions
as the training path for every fusion, a third fewer FLOPs per tick at the original size, and a
VL context that is recomputed exactly when the VL tokens change."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from asyncvla_policy.config import PolicyConfig, tiny_policy_config
from asyncvla_policy.expert_runtimes import build_runtime
from asyncvla_policy.fusions import FUSION_MODES
from asyncvla_policy.inference_plan import InferencePlan, VLContextCache
from asyncvla_policy.policy import ActionPolicy


def scrambled_policy(fusion: str, seed: int = 0, vl_age_input: bool = True) -> ActionPolicy:
    """A tiny policy whose every weight and statistic is random at a scale that makes each
    submodule matter (default initialisation leaves the decoder's residual stream dominated by
    the learned queries, which would hide a wrong memory path)."""
    torch.manual_seed(seed)
    cfg = dataclasses.replace(tiny_policy_config(vl_dim=24, vl_num_tokens=5), fusion=fusion,
                              vl_age_input=vl_age_input)
    policy = ActionPolicy(cfg)
    with torch.no_grad():
        for param in policy.parameters():
            param.normal_(0.0, 0.3)
    rng = np.random.default_rng(seed)
    c, s, a = cfg.sensor.in_channels, cfg.robot_state_dim, cfg.action_dim
    policy.set_normalization(
        sensor_mean=rng.normal(0, 2, c).astype(np.float32),
        sensor_std=rng.uniform(0.5, 3, c).astype(np.float32),
        state_mean=rng.normal(0, 1, s).astype(np.float32),
        state_std=rng.uniform(0.2, 2, s).astype(np.float32),
        action_mean=rng.normal(0, 0.1, a).astype(np.float32),
        action_std=rng.uniform(0.01, 0.1, a).astype(np.float32))
    return policy.eval()


def inputs_for(cfg: PolicyConfig, seed: int, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """VL tokens, window, state and (with the age input) ages in seconds, one per sample."""
    gen = torch.Generator().manual_seed(seed)
    inputs = (torch.randn(batch, cfg.vl_num_tokens, cfg.vl_dim, generator=gen),
              torch.randn(batch, cfg.sensor.window, cfg.sensor.in_channels, generator=gen) * 3,
              torch.randn(batch, cfg.robot_state_dim, generator=gen))
    return inputs + ((torch.rand(batch, generator=gen) * 0.8,) if cfg.vl_age_input else ())


@pytest.mark.parametrize("vl_age_input", [True, False], ids=["with_age", "old_checkpoint"])
@pytest.mark.parametrize("fusion", FUSION_MODES)
def test_plan_computes_the_training_paths_function_for_every_fusion(fusion, vl_age_input):
    policy = scrambled_policy(fusion, vl_age_input=vl_age_input)
    plan = InferencePlan(policy)
    assert plan.takes_age is vl_age_input
    std = policy.action_std
    for seed in range(3):
        vl, window, state, *age = inputs_for(policy.cfg, seed)
        with torch.no_grad():
            expected = policy(vl, window, state, vl_age=age[0] if age else None)  # training path
            got = plan(plan.vl_context(vl), window, state, *age)
        scale = float(((expected - policy.action_mean) / std).abs().max())
        assert scale > 0.3, "inputs too weak to exercise the network"
        diff = float(((got - expected) / std).abs().max())
        assert diff < 1e-4 * max(scale, 1.0), (fusion, diff, scale)
        # Each sample in the batch is its own: swapping the VL contexts swaps the answers
        # wherever the fusion reads VL at all.
        with torch.no_grad():
            swapped = plan(plan.vl_context(vl.flip(0)), window, state, *age)
        assert float((swapped - got).abs().max()) > 1e-3, fusion
        if age:  # and the age reaches the plan: another age, another answer
            with torch.no_grad():
                older = plan(plan.vl_context(vl), window, state, age[0] + 0.3)
            assert float((older - got).abs().max()) > 1e-3, fusion


def test_plan_shares_the_policys_weights_and_leaves_it_untouched():
    policy = scrambled_policy("cross_attention")
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    plan = InferencePlan(policy)
    assert plan.sensor_encoder is policy.sensor_encoder and plan.head is policy.action_expert.head
    vl, window, state, age = inputs_for(policy.cfg, 1)
    with torch.no_grad():
        plan(plan.vl_context(vl), window, state, age)
    for key, value in policy.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_original_size_tick_does_a_third_less_arithmetic():
    torch.manual_seed(0)
    policy = ActionPolicy(PolicyConfig()).eval()
    plan = InferencePlan(policy)
    vl, window, state, age = inputs_for(policy.cfg, 0, batch=1)
    # (the flop counter's module tracker needs autograd on)
    with FlopCounterMode(display=False) as plain:
        expected = policy.infer(vl, window, state, age).detach()
    context = plan.vl_context(vl).detach()
    with FlopCounterMode(display=False) as tick:
        got = plan(context, window, state, age).detach()
    plain_flops, tick_flops = plain.get_total_flops(), tick.get_total_flops()
    assert tick_flops < 0.66 * plain_flops, (tick_flops, plain_flops)
    diff = ((got - expected) / policy.action_std).abs().max()
    assert float(diff) < 1e-4


def test_vl_context_cache_recomputes_exactly_when_the_tokens_change():
    cache = VLContextCache()
    calls = []

    def compute(tokens):
        calls.append(tokens.clone())
        return tokens * 2

    tokens = torch.randn(1, 4, 6)
    first = cache.get(tokens, compute)
    assert cache.get(tokens.clone(), compute) is first and cache.computed == 1
    changed = tokens.clone()
    changed[0, 3, 5] += 1e-6  # one value, one ulp-scale step: a new message
    torch.testing.assert_close(cache.get(changed, compute), changed * 2)
    assert cache.computed == 2
    tokens.mul_(0)  # the caller reusing its buffer must not corrupt the cached key
    assert cache.get(changed.clone(), compute) is not first and cache.computed == 2
    cache.get(torch.randn(1, 5, 6), compute)
    assert cache.computed == 3 and len(calls) == 3


@pytest.mark.parametrize("name", ["torch_float32", "torch_bf16_weights", "openvino_float32"])
def test_runtime_uses_a_new_vl_message_at_once(name, tmp_path):
    policy = scrambled_policy("cross_attention", seed=3)
    runtime = build_runtime(name, policy, threads=1, cache_dir=tmp_path)
    vl, window, state, age = (t[0].numpy() for t in inputs_for(policy.cfg, 4, batch=1))
    other_vl = vl[::-1].copy()
    std = policy.action_std.numpy()
    tolerance = max(runtime.tolerance, 1e-5) * 10
    for step, tokens in enumerate((vl, vl, other_vl, other_vl, vl)):
        out = runtime.predict(tokens, window, state, age + 0.1 * step)
        expected = policy.predict(tokens, window, state, age + 0.1 * step)
        assert float(np.abs((out - expected) / std).max()) <= tolerance, (name, step)
    assert runtime.vl_cache.computed == 3  # vl, other_vl, vl again: once per change (not age)


def test_bf16_plan_keeps_float32_statistics():
    from asyncvla_policy.expert_runtimes.torch_runtimes import bf16_copy

    policy = scrambled_policy("cross_attention")
    plan = bf16_copy(InferencePlan(policy))
    assert plan.dtype == torch.bfloat16 and plan.action_std.dtype == torch.float32
    assert policy.action_expert.head.weight.dtype == torch.float32  # a copy, not the policy


def test_post_norm_decoder_is_refused_not_miscomputed():
    policy = scrambled_policy("concat")
    for layer in policy.action_expert.decoder.layers:
        layer.norm_first = False
    with pytest.raises(ValueError, match="norm_first"):
        InferencePlan(policy)


def test_plan_is_built_on_the_policys_device_and_dtype():
    """Nothing is created on the default device: a policy on "meta" (standing in for CUDA, which
    CI lacks) gives a plan whose every tensor is on "meta", and float64 stays float64."""
    cfg = tiny_policy_config(vl_dim=24, vl_num_tokens=5)
    for device, dtype in (("meta", torch.float32), ("cpu", torch.float64)):
        policy = ActionPolicy(cfg).to(device=device, dtype=dtype).eval()
        plan = InferencePlan(policy)
        tensors = list(plan.parameters()) + list(plan.buffers())
        assert {t.device.type for t in tensors} == {device}
        assert {t.dtype for t in plan.parameters()} == {dtype} and plan.dtype == dtype
