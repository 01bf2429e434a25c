"""TrainConfig JSON round trip and validation; lr schedule; optimiser state as safetensors + JSON."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from asyncvla_training.data.synthetic import make_synthetic_episodes  # noqa: E402
from asyncvla_training.train.config import TrainConfig  # noqa: E402
from asyncvla_training.train.data_sources import dataset_config, load_run_episodes  # noqa: E402
from asyncvla_training.train.sampling import BatchPlan, VLAgeDistribution  # noqa: E402
from asyncvla_training.train.schedule import lr_factor  # noqa: E402
from asyncvla_training.train.state_io import load_optimizer_state, save_optimizer_state  # noqa: E402

torch.set_num_threads(1)


def test_defaults_are_the_seed_values() -> None:
    cfg = TrainConfig()
    assert (cfg.lr, cfg.vl_lr, cfg.sensor_lr) == (1e-4, 1e-5, 5e-4)
    assert cfg.weight_decay == 0.01 and cfg.grad_accum_steps == 8 and cfg.batch_size == 2
    assert cfg.max_grad_norm == 1.0
    # Staleness in milliseconds (the original reused features for 3 steps: an age in steps).
    assert cfg.vl_age_ms == [0.0, 700.0] and cfg.vl_age_source == "range" and cfg.vl_age_input
    assert math.isclose(cfg.lr * cfg.min_lr_ratio, 1e-6)
    assert math.isclose(cfg.warmup_ratio, 0.03)
    assert (cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout) == (16, 32, 0.05)
    assert not cfg.use_bf16("cpu") and cfg.use_bf16("cuda")
    assert not TrainConfig(bf16=False).use_bf16("cuda")


def test_json_round_trip_and_file(tmp_path: Path) -> None:
    cfg = TrainConfig(
        stage=2,
        bags=["a", "b"],
        views=["left"],
        prompt="p",
        policy={"fusion": "gated"},
        adam_betas=(0.8, 0.99),
        bf16=False,
        init_from="ckpt",
        total_steps=50,
        warmup_steps=5,
    )
    again = TrainConfig.from_json(cfg.to_json())
    assert again == cfg
    cfg.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json") == cfg
    assert json.loads((tmp_path / "c.json").read_text())["adam_betas"] == [0.8, 0.99]


@pytest.mark.parametrize(
    "bad",
    [
        {"lerning_rate": 1e-4},
        {"stage": 3},
        {"lr": -1.0},
        {"lr": float("nan")},
        {"reuse": 0},
        {"vl_age_ms": [300, 100]},
        {"vl_age_ms": [-1, 100]},
        {"vl_age_ms": [0, float("inf")]},
        {"vl_age_ms": 300},
        {"vl_age_source": "measured"},
        {"vl_age_input": "yes"},
        {"loss": "l3"},
        {"warmup_steps": 20, "total_steps": 10},
        {"bf16": "yes"},
        {"action_space": "cartesian"},
        {"val_fraction": 1.0},
        {"bags": "one_string"},
        {"lora_dropout": 1.0},
    ],
)
def test_invalid_configs_are_rejected(bad: dict) -> None:
    with pytest.raises(ValueError):
        TrainConfig.from_dict(bad)


def test_overrides_parse_json_values_and_reject_unknown() -> None:
    cfg = TrainConfig().with_overrides(
        ["lr=3e-4", "stage=2", "prompt=go there", "bf16=false", "views=[\"a\",\"b\"]"]
    )
    assert cfg.lr == 3e-4 and cfg.stage == 2 and cfg.prompt == "go there" and cfg.bf16 is False
    assert cfg.views == ["a", "b"]
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig().with_overrides(["nope=1"])
    with pytest.raises(ValueError, match="key=value"):
        TrainConfig().with_overrides(["lr"])


def test_schedule_warmup_then_cosine_to_floor() -> None:
    f = [lr_factor(s, 10, 110, 0.01) for s in range(120)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(f[:9], f[1:10]))  # rising warmup
    assert all(a >= b for a, b in zip(f[10:110], f[11:111]))  # monotone decay
    assert f[60] == pytest.approx(0.01 + 0.99 * 0.5)  # half way through the cosine
    assert f[110] == pytest.approx(0.01) and f[119] == pytest.approx(0.01)
    assert lr_factor(0, 0, 10, 0.0) == pytest.approx(1.0)


def test_optimizer_state_round_trip_without_pickle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    groups = [
        {"params": list(model[0].parameters()), "name": "a", "base_lr": 1e-3, "lr": 1e-3},
        {"params": list(model[1].parameters()), "name": "b", "base_lr": 5e-4, "lr": 5e-4},
    ]
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).square().mean().backward()
        opt.step()

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(torch, "save", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    save_optimizer_state(opt, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["optimizer.json", "optimizer.safetensors"]
    opt2 = torch.optim.AdamW([{**g, "params": g["params"]} for g in groups], weight_decay=0.5)
    load_optimizer_state(opt2, tmp_path)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]  # hyper-parameters restored (weight_decay too)
    for idx, entry in a["state"].items():
        for name, value in entry.items():
            assert torch.equal(value, b["state"][idx][name]), (idx, name)
    with pytest.raises(ValueError, match="parameter groups"):
        load_optimizer_state(torch.optim.AdamW(model.parameters()), tmp_path)


def test_vl_ages_are_drawn_in_milliseconds_reproducibly() -> None:
    ages = VLAgeDistribution(100.0, 700.0)
    drawn = np.concatenate([ages.draw(0, 0, g, 8) for g in range(200)]) / 1e6
    assert drawn.min() >= 100.0 and drawn.max() <= 700.0
    counts, _ = np.histogram(drawn, bins=6, range=(100, 700))
    assert counts.min() > 0.1 * drawn.size  # roughly uniform
    assert np.array_equal(ages.draw(0, 0, 7, 8), ages.draw(0, 0, 7, 8))  # reproducible
    assert not np.array_equal(ages.draw(0, 0, 7, 64), ages.draw(0, 1, 7, 64))  # per rank
    recorded = VLAgeDistribution(0, 0, recorded_ns=np.array([-1, 320_000_000, 410_000_000]))
    assert set(np.concatenate([recorded.draw(1, 0, g, 16) for g in range(5)])) == {
        320_000_000, 410_000_000}  # never the -1 "no features yet"
    assert recorded.describe()["source"] == "recorded"
    with pytest.raises(ValueError, match="no VLFeatures"):
        VLAgeDistribution(0, 0, recorded_ns=np.array([-1]))


def test_reuse_is_a_deprecated_alias_of_an_age_range(caplog) -> None:
    with caplog.at_level("WARNING", logger="asyncvla.train"):
        cfg = TrainConfig(reuse=4)
    assert cfg.vl_age_ms == [0.0, 300.0] and cfg.reuse is None
    assert [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(caplog.records[-1].getMessage().splitlines()) == 1
    assert "reuse" not in {k for k, v in cfg.to_dict().items() if v is not None}


def test_a_stale_frame_set_is_the_one_the_vlm_had_that_long_before() -> None:
    """Synthetic episode: ticks every 100 ms, each tick's frame 30 ms old. An age of 250 ms at
    sample 5 selects the newest set complete 250 ms earlier (sample 2's, ready 30 ms before
    sample 2): the age the node would compute is 330 ms; at the episode start the oldest set."""
    ep = make_synthetic_episodes(1, length=6)[0]
    step = int(ep.step_period * 1e9)
    s, age = ep.stale_frame_set(5, 250_000_000)
    assert s == 2 and age == 3 * step + 30_000_000
    assert ep.stale_frame_set(5, 0) == (5, 30_000_000)  # fresh: the sample's own set
    assert ep.stale_frame_set(0, 500_000_000) == (0, 30_000_000)  # nothing older: the true age
    assert ep.stale_frame_set(5, 10**10)[0] == 0


def test_batch_plan_shards_are_disjoint_and_epochs_reshuffle() -> None:
    plans = [BatchPlan(40, 4, 2, rank, seed=3) for rank in (0, 1)]
    assert plans[0].batches_per_epoch == 5
    epoch0 = [sorted(sum((p.indices(g) for g in range(5)), [])) for p in plans]
    assert not set(epoch0[0]) & set(epoch0[1])
    assert sorted(epoch0[0] + epoch0[1]) == list(range(40))
    assert plans[0].indices(5) != plans[0].indices(0) or plans[0].indices(6) != plans[0].indices(1)
    assert BatchPlan(40, 4, 2, 0, seed=3).indices(7) == plans[0].indices(7)  # pure function of step
    with pytest.raises(ValueError, match="too few"):
        BatchPlan(3, 4, 1, 0, seed=0)


def test_run_episodes_split_by_episode_and_dataset_config_follows_the_run() -> None:
    cfg = TrainConfig(synthetic_episodes=10, synthetic_length=3, val_fraction=0.2, seed=1)
    train, val = load_run_episodes(cfg)
    assert len(val) == 2 and len(train) == 8
    assert not {e.name for e in train} & {e.name for e in val}
    assert [e.name for e in load_run_episodes(cfg)[1]] == [e.name for e in val]  # deterministic
    ds = dataset_config(
        TrainConfig(
            step_period=0.05, action_space="joint_delta", views=["b", "a"], dataset={"aline_length": 512}
        ),
        shapes={"horizon": 4},
    )
    assert ds.alignment.step_period == 0.05 and ds.alignment.action_space == "joint_delta"
    assert ds.alignment.horizon == 4 and ds.views == ("b", "a") and ds.aline_length == 512
    with pytest.raises(ValueError, match="contradicts"):
        dataset_config(TrainConfig(dataset={"alignment": {"step_period": 0.2}}))


def test_old_policy_size_name_is_read_as_full():
    """Configs written before the rename said policy_size "seed"; they still load, as "full"."""
    from asyncvla_training.train.config import TrainConfig

    assert TrainConfig(policy_size="seed").policy_size == "full"
    with pytest.raises(ValueError, match="policy_size"):
        TrainConfig(policy_size="huge")
