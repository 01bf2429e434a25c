"""SensorEncoder, ActionExpert (all fusions) and ActionPolicy: shapes, gradients, validation,
normalisation and determinism, on tiny widths with the original system's input/output shapes."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

# Run from a plain checkout: put the package dir first; pytest's importlib mode may have registered
# the ROS package *directory* as a namespace package "asyncvla_training" - drop it for the real one.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from asyncvla_policy.action_expert import ActionExpert  # noqa: E402
from asyncvla_policy.config import PolicyConfig  # noqa: E402
from asyncvla_policy.config import tiny_policy_config  # noqa: E402
from asyncvla_policy.fusions import FUSION_MODES, FUSIONS, Fusion  # noqa: E402
from asyncvla_policy.policy import ActionPolicy  # noqa: E402
from asyncvla_policy.sensor_encoder import SensorEncoder  # noqa: E402

VL_DIM, K, B = 24, 4, 3


def _cfg(fusion: str = "cross_attention", vl_age_input: bool = False) -> PolicyConfig:
    """Without the age input unless asked: these tests are about the other paths, and a policy
    without it is what an old checkpoint builds (the age tests are at the end)."""
    return tiny_policy_config(vl_dim=VL_DIM, vl_num_tokens=K, fusion=fusion,
                              vl_age_input=vl_age_input)


def _inputs(cfg: PolicyConfig, batch: int = B, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    vl = torch.randn(batch, cfg.vl_num_tokens, cfg.vl_dim, generator=g)
    window = torch.randn(batch, cfg.sensor.window, cfg.sensor.in_channels, generator=g)
    state = torch.randn(batch, cfg.robot_state_dim, generator=g)
    return vl, window, state


# ---------------------------------------------------------------- sensor encoder
def test_sensor_encoder_shape() -> None:
    cfg = _cfg()
    enc = SensorEncoder(cfg.sensor)
    _, window, _ = _inputs(cfg)
    assert enc(window).shape == (B, cfg.sensor.sensor_dim)


def test_sensor_encoder_without_transformer() -> None:
    cfg = _cfg()
    cfg.sensor.use_transformer = False
    enc = SensorEncoder(cfg.sensor)
    assert enc.transformer is None
    assert enc(_inputs(cfg)[1]).shape == (B, cfg.sensor.sensor_dim)


def test_sensor_encoder_rejects_wrong_channels_and_nan() -> None:
    cfg = _cfg()
    enc = SensorEncoder(cfg.sensor).eval()
    with pytest.raises(ValueError, match="1025 channels, expected 1026"):
        enc(torch.zeros(1, cfg.sensor.window, 1025))
    with pytest.raises(ValueError, match=r"\(B, T, C\)"):
        enc(torch.zeros(1, 10, cfg.sensor.in_channels))
    window = torch.zeros(1, cfg.sensor.window, cfg.sensor.in_channels)
    window[0, 3, 7] = float("nan")
    window[0, 4, 7] = float("inf")
    with pytest.raises(ValueError, match=r"non-finite values \(1 NaN, 1 inf\)"):
        enc(window)


# ---------------------------------------------------------------- action expert
@pytest.mark.parametrize("fusion", FUSION_MODES)
def test_fusion_shapes_and_gradients(fusion: str) -> None:
    cfg = _cfg(fusion)
    policy = ActionPolicy(cfg).train()
    vl, window, state = _inputs(cfg)
    vl.requires_grad_(True)
    out = policy(vl, window, state)
    assert out.shape == (B, cfg.horizon, cfg.action_dim)
    out.square().mean().backward()
    assert vl.grad is not None and vl.grad.abs().sum() > 0
    expert_grads = [p.grad for p in policy.action_expert.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in expert_grads)
    sensor_grad = policy.sensor_encoder.proj[-1].weight.grad
    if fusion == "none":  # VL-only ablation: sensor encoder unused by design
        assert sensor_grad is None
    else:
        assert sensor_grad is not None and sensor_grad.abs().sum() > 0


@pytest.mark.parametrize("places", [False, True], ids=["old_checkpoint", "token_places"])
def test_cross_attention_is_token_level(places: bool) -> None:
    """Attention sees every token. Without token places it is blind to their order (a marker
    reads the same wherever it sits among the image tokens); with them (new policies) moving a
    token's content to another place changes the output."""
    import dataclasses

    cfg = dataclasses.replace(_cfg("cross_attention"), vl_token_positions=places)
    torch.manual_seed(0)
    expert = ActionExpert(cfg).eval()
    if places:
        with torch.no_grad():
            expert.fusion.places.normal_(0.0, 1.0)
    vl, _, state = _inputs(cfg)
    sensor = torch.randn(B, cfg.sensor_dim)
    base = expert(vl, sensor, state)
    changed = vl.clone()
    changed[:, 1] += 5.0  # alter a single token
    assert not torch.allclose(base, expert(changed, sensor, state))
    moved = expert(vl[:, torch.tensor([1, 0, 3, 2])], sensor, state)
    if places:
        assert not torch.allclose(base, moved, atol=1e-4)
    else:
        torch.testing.assert_close(base, moved, atol=1e-5, rtol=1e-5)


def test_z_chunk_is_additive_base() -> None:
    cfg = _cfg()
    expert = ActionExpert(cfg).eval()
    vl, _, state = _inputs(cfg)
    sensor = torch.randn(B, cfg.sensor_dim)
    z = torch.randn(B, cfg.horizon, cfg.action_dim)
    torch.testing.assert_close(expert(vl, sensor, state, z), expert(vl, sensor, state) + z)
    with pytest.raises(ValueError, match="z_chunk must have shape"):
        expert(vl, sensor, state, z[:, :2])


def test_expert_rejects_wrong_vl_shape() -> None:
    cfg = _cfg()
    expert = ActionExpert(cfg)
    with pytest.raises(ValueError, match=r"vl_tokens must have shape \(B, K, D\)"):
        expert(torch.zeros(1, K + 1, VL_DIM), torch.zeros(1, cfg.sensor_dim), torch.zeros(1, cfg.robot_state_dim))
    with pytest.raises(ValueError, match="robot_state must have shape"):
        expert(torch.zeros(1, K, VL_DIM), torch.zeros(1, cfg.sensor_dim), torch.zeros(1, 5))


# ---------------------------------------------------------------- policy
def test_eval_is_deterministic_and_batch_independent() -> None:
    cfg = _cfg()
    torch.manual_seed(0)
    policy = ActionPolicy(cfg).eval()
    vl, window, state = _inputs(cfg)
    a = policy(vl, window, state)
    b = policy(vl, window, state)
    assert torch.equal(a, b)
    single = policy.predict(vl[1].numpy(), window[1].numpy(), state[1].numpy())
    assert single.shape == (cfg.horizon, cfg.action_dim) and single.dtype == np.float32
    np.testing.assert_allclose(single, a[1].detach().numpy(), atol=1e-5)
    assert np.array_equal(single, policy.predict(vl[1], window[1], state[1]))


def test_train_mode_uses_dropout_and_predict_restores_mode() -> None:
    cfg = _cfg()
    policy = ActionPolicy(cfg).train()
    vl, window, state = _inputs(cfg)
    assert not torch.equal(policy(vl, window, state), policy(vl, window, state))
    first = policy.predict(vl[0], window[0], state[0])
    assert policy.training  # restored
    assert np.array_equal(first, policy.predict(vl[0], window[0], state[0]))


def test_normalisation_round_trip_to_physical_units() -> None:
    cfg = _cfg()
    torch.manual_seed(0)
    policy = ActionPolicy(cfg).eval()
    vl, window, state = _inputs(cfg)
    before = policy(vl, window, state)
    action_mean = torch.arange(cfg.action_dim, dtype=torch.float32) * 10
    action_std = torch.full((cfg.action_dim,), 3.0)
    policy.set_normalization(action_mean=action_mean, action_std=action_std)
    torch.testing.assert_close(policy(vl, window, state), before * 3.0 + action_mean)
    # State/sensor statistics are applied to the inputs: shifting both leaves outputs unchanged.
    policy.set_normalization(state_mean=np.full(cfg.robot_state_dim, 2.0), sensor_mean=torch.full((1026,), -1.0))
    torch.testing.assert_close(policy(vl, window + -1.0, state + 2.0), before * 3.0 + action_mean)
    stats = policy.normalization_dict()
    assert set(stats) == {f"{n}_{s}" for n in ("state", "sensor", "action") for s in ("mean", "std")}
    np.testing.assert_array_equal(stats["action_std"], np.full(7, 3.0, dtype=np.float32))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"action_std": np.zeros(7)}, "action_std must be > 0"),
        ({"state_mean": np.zeros(5)}, r"state_mean must have shape \(13,\)"),
        ({"sensor_std": np.full(1026, np.nan)}, "sensor_std contains non-finite"),
    ],
)
def test_set_normalization_validates(kwargs: dict, message: str) -> None:
    policy = ActionPolicy(_cfg())
    with pytest.raises(ValueError, match=message):
        policy.set_normalization(action_mean=np.ones(7), **kwargs)
    assert torch.equal(policy.action_mean, torch.zeros(7))  # nothing applied on error


@pytest.mark.parametrize(
    "which, value, message",
    [
        ("vl", np.zeros((K, VL_DIM + 1)), r"vl_tokens must have shape \(K, D\)"),
        ("window", np.zeros((65, 1025)), r"sensor_window must have shape \(T, C\)"),
        ("window", np.full((65, 1026), np.nan), "sensor_window contains non-finite"),
        ("state", np.zeros(5), r"robot_state must have shape \(S,\)"),
        ("state", np.array([0.0] * 12 + [np.inf]), "robot_state contains non-finite"),
        ("vl", np.full((K, VL_DIM), np.nan), "vl_tokens contains non-finite"),
    ],
)
def test_predict_validates_inputs(which: str, value: np.ndarray, message: str) -> None:
    cfg = _cfg()
    policy = ActionPolicy(cfg).eval()
    vl, window, state = (t[0].numpy() for t in _inputs(cfg))
    args = {"vl": vl, "window": window, "state": state}
    args[which] = value
    with pytest.raises(ValueError, match=message):
        policy.predict(args["vl"], args["window"], args["state"])


def test_forward_rejects_nan_sensor_window() -> None:
    cfg = _cfg()
    policy = ActionPolicy(cfg).eval()
    vl, window, state = _inputs(cfg)
    window[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="sensor window contains non-finite"):
        policy(vl, window, state)


def test_bfloat16_inference_is_close_to_float32_and_opt_in() -> None:
    torch.manual_seed(3)
    cfg = tiny_policy_config(vl_dim=32, vl_num_tokens=4, vl_age_input=False)
    policy = ActionPolicy(cfg).eval()
    rng = np.random.default_rng(3)
    vl = rng.standard_normal((4, 32)).astype(np.float32)
    window = rng.standard_normal((cfg.sensor.window, cfg.sensor.in_channels)).astype(np.float32)
    state = rng.standard_normal(cfg.robot_state_dim).astype(np.float32)
    exact = policy.predict(vl, window, state)
    policy.set_inference_dtype("bfloat16")
    fast = policy.predict(vl, window, state)
    assert fast.dtype == np.float32 and fast.shape == exact.shape
    assert not np.array_equal(fast, exact)  # it really ran in bfloat16
    assert float(np.abs(fast - exact).max()) < 0.05
    assert all(p.dtype == torch.float32 for p in policy.parameters())  # weights untouched
    policy.set_inference_dtype("float32")
    np.testing.assert_array_equal(policy.predict(vl, window, state), exact)
    with pytest.raises(ValueError, match="inference dtype"):
        policy.set_inference_dtype("int8")


def test_fusion_table_names_its_classes():
    assert FUSION_MODES == ("concat", "cross_attention", "flat_tokens", "gated", "none")
    for name, cls in FUSIONS.items():
        assert issubclass(cls, Fusion) and cls.name == name
    assert [n for n, c in FUSIONS.items() if not c.uses_sensor] == ["none"]


# ---------------------------------------------------------------- VL age input
def _aged_policy(fusion: str = "cross_attention") -> ActionPolicy:
    """A policy with the age input whose age modulation is not the identity (it starts at zero)."""
    torch.manual_seed(1)
    policy = ActionPolicy(_cfg(fusion, vl_age_input=True)).eval()
    with torch.no_grad():
        policy.action_expert.age.proj.weight.normal_(0.0, 1.0)
    return policy


@pytest.mark.parametrize("fusion", FUSION_MODES)
def test_the_age_changes_the_action_and_gets_gradients(fusion: str) -> None:
    policy = _aged_policy(fusion)
    vl, window, state = _inputs(policy.cfg)
    fresh = policy(vl, window, state, vl_age=torch.zeros(B))
    stale = policy(vl, window, state, vl_age=torch.full((B,), 0.4))
    assert float((fresh - stale).abs().max()) > 1e-3
    policy.train()
    policy(vl, window, state, vl_age=torch.full((B,), 0.4)).square().mean().backward()
    grad = policy.action_expert.age.proj.weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0


def test_a_new_age_modulation_is_the_identity() -> None:
    """Zero-initialised: before training, the age changes nothing (a policy trained on fresh
    features only stays the same function at every age)."""
    torch.manual_seed(0)
    policy = ActionPolicy(_cfg(vl_age_input=True)).eval()
    vl, window, state = _inputs(policy.cfg)
    torch.testing.assert_close(policy(vl, window, state, vl_age=torch.zeros(B)),
                               policy(vl, window, state, vl_age=torch.full((B,), 0.6)))


def test_ages_are_clipped_to_what_a_node_accepts() -> None:
    """A negative age (within the node's future tolerance) acts as 0; beyond MAX_AGE_S it acts
    as MAX_AGE_S: the network is never asked to extrapolate."""
    from asyncvla_policy.age_conditioning import MAX_AGE_S

    policy = _aged_policy()
    vl, window, state = (t[:1] for t in _inputs(policy.cfg))
    at = lambda a: policy.predict(vl[0], window[0], state[0], vl_age=a)  # noqa: E731
    np.testing.assert_array_equal(at(-0.01), at(0.0))
    np.testing.assert_array_equal(at(MAX_AGE_S + 5.0), at(MAX_AGE_S))
    assert not np.array_equal(at(0.0), at(0.3))


@pytest.mark.parametrize("age, message", [(None, "pass vl_age"), (float("nan"), "vl_age"),
                                          (np.zeros(2), "vl_age")])
def test_predict_needs_a_finite_age_when_the_policy_takes_one(age, message) -> None:
    policy = _aged_policy()
    vl, window, state = (t[0] for t in _inputs(policy.cfg))
    with pytest.raises(ValueError, match=message):
        policy.predict(vl, window, state, vl_age=age)
    with pytest.raises(ValueError, match="pass vl_age"):
        policy(vl[None], window[None], state[None])


def test_a_policy_without_the_age_input_ignores_an_age() -> None:
    """An old checkpoint runs unchanged: the age the node now passes does not reach it."""
    torch.manual_seed(0)
    policy = ActionPolicy(_cfg()).eval()
    assert policy.action_expert.age is None
    vl, window, state = (t[0] for t in _inputs(policy.cfg))
    np.testing.assert_array_equal(policy.predict(vl, window, state),
                                  policy.predict(vl, window, state, vl_age=0.5))


def test_a_config_written_before_the_age_input_loads_without_it() -> None:
    data = _cfg(vl_age_input=True).to_dict()
    assert data["vl_age_input"] is True and data["vl_token_positions"] is True
    assert PolicyConfig.from_dict(data).vl_age_input is True
    del data["vl_age_input"], data["vl_token_positions"]
    old = PolicyConfig.from_dict(data)
    assert old.vl_age_input is False and old.vl_token_positions is False
    assert ActionPolicy(old).action_expert.fusion.places is None
    new = PolicyConfig()
    assert new.vl_age_input is True and new.vl_token_positions is True  # new policies take them
    with pytest.raises(ValueError, match="vl_age_input must be a bool"):
        PolicyConfig.from_dict({**data, "vl_age_input": "yes"})
