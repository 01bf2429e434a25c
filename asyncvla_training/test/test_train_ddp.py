"""torchrun, 2 CPU processes (gloo on loopback): stage 1 and stage 2, identical weights on both ranks.

Features come from a middle LM layer (feature_layer=1 of 2), so the top layer's LoRA gets no
gradient: DDP must be told to expect unused parameters.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from asyncvla_policy.checkpoint import read_checkpoint_config  # noqa: E402
from asyncvla_testing.tiny_vlm import ensure_tiny_qwen_vl  # noqa: E402

PACKAGE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

WORKER = textwrap.dedent('''
    import json, os, sys
    import torch
    torch.set_num_threads(1)
    from safetensors.torch import save_file
    from asyncvla_training.train.config import TrainConfig
    from asyncvla_training.train.data_sources import load_run_episodes
    from asyncvla_training.train.distributed import init_distributed
    from asyncvla_training.train.trainer import Trainer

    out, tiny = sys.argv[1], sys.argv[2]
    dist = init_distributed("cpu")
    common = dict(policy_size="tiny", vl_model_path=tiny, image_width=56, image_height=56,
                  num_feature_tokens=4, feature_layer=1, synthetic_episodes=5, synthetic_length=16,
                  val_fraction=0.2,
                  batch_size=3, grad_accum_steps=2, warmup_steps=1, lr=1e-3, sensor_lr=1e-3,
                  eval_every=2, save_every=2, log_every=1, device="cpu", lora_r=4, lora_alpha=8)
    report = {"rank": dist.rank, "world": dist.world_size}
    for stage, steps in ((1, 4), (2, 2)):
        extra = {"init_from": os.path.join(out, "s1", "latest")} if stage == 2 else {}
        cfg = TrainConfig(stage=stage, total_steps=steps, out_dir=os.path.join(out, f"s{stage}"),
                          **common, **extra)
        train, val = load_run_episodes(cfg)
        trainer = Trainer(cfg, train, val, dist=dist, log=lambda line: None)
        report[f"s{stage}_items"] = [[it.episode.name, it.index] for it in trainer.items_for(0)]
        summary = trainer.train()
        report[f"s{stage}_losses"] = [h["loss"] for h in trainer.history]
        report[f"s{stage}_val"] = summary["best_val_loss"]
        state = {k: v.detach().clone().contiguous() for k, v in trainer.policy.state_dict().items()}
        if stage == 2:
            state.update({"lora." + n: p.detach().clone().contiguous()
                          for n, p in trainer.extractor.named_parameters() if "lora_" in n})
        save_file(state, os.path.join(out, f"s{stage}_rank{dist.rank}.safetensors"))
    with open(os.path.join(out, f"report{dist.rank}.json"), "w") as f:
        json.dump(report, f)
    dist.close()
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return ensure_tiny_qwen_vl(tmp_path_factory.getbasetemp() / "tiny_qwen_vl")


def test_torchrun_two_ranks_end_identical(tmp_path: Path, tiny_qwen_dir: str) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        MASTER_ADDR="127.0.0.1",
        GLOO_SOCKET_IFNAME="lo",
        HF_HUB_OFFLINE="1",
        PYTHONPATH=os.pathsep.join([PACKAGE_DIR, os.environ.get("PYTHONPATH", "")]),
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--nnodes",
        "1",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(script),
        str(tmp_path),
        tiny_qwen_dir,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    reports = [json.loads((tmp_path / f"report{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in reports] == [2, 2]
    for stage in ("s1", "s2"):
        # each rank trained on its own shard ...
        seen = [{tuple(x) for x in r[f"{stage}_items"]} for r in reports]
        assert seen[0] and seen[1] and not seen[0] & seen[1]
        # ... and both end with the same weights, which did change, and the same validation loss
        w0 = load_file(str(tmp_path / f"{stage}_rank0.safetensors"))
        w1 = load_file(str(tmp_path / f"{stage}_rank1.safetensors"))
        assert w0.keys() == w1.keys()
        for key in w0:
            assert torch.equal(w0[key], w1[key]), (stage, key)
        assert reports[0][f"{stage}_val"] == pytest.approx(reports[1][f"{stage}_val"])
        # only rank 0 wrote: one log line per step, the checkpoint records the world size
        log = [json.loads(line) for line in (tmp_path / stage / "log.jsonl").read_text().splitlines()]
        steps = [r["step"] for r in log if r["event"] == "train"]
        assert steps == list(range(1, len(steps) + 1))
        state = json.loads((tmp_path / stage / "latest" / "training" / "state.json").read_text())
        assert state["world_size"] == 2 and state["step"] == len(steps)
        _, meta = read_checkpoint_config(tmp_path / stage / "best")
        assert meta["stage"] == int(stage[1])
    assert any("lora." in k and "lora_B" in k for k in load_file(str(tmp_path / "s2_rank0.safetensors")))
    s1_init = load_file(str(tmp_path / "s1" / "latest" / "model.safetensors"))
    s2_final = load_file(str(tmp_path / "s2_rank0.safetensors"))
    assert any(not torch.equal(s1_init[k], s2_final[k]) for k in s1_init)
