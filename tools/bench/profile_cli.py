"""``python tools/bench/profile_cli.py``: time VL feature extraction and the action policy separately.

Successor of the original system's ``profile_vlm_speed.py``. Prints exactly one JSON object on stdout (logs go
to stderr) so results can be collected by scripts:

    {"vl": {"p50_ms", "p99_ms", "mean_ms", "tokens", "views", "width", "height",
            "preprocess_p50_ms"},
     "vl_plain": {same, for the plain transformers path}, "vl_speedup_p50",
     "vl_feature_max_abs_diff",
     "action_expert": {"p50_ms", "p99_ms", "mean_ms"}, "action_expert_bf16": {...},
     "action_expert_bf16_speedup_p50", "action_expert_bf16_max_abs_diff",
     "threads", "device", "dtype", "peak_memory_mb", "torch", "transformers", "model",
     "policy_config", "notes"}

The optimised VL path (torch preprocessing on the device, no LM layers past the feature layer)
and the plain transformers path (PIL image processor, every layer) are timed in the same run on
the same inputs, so the ratios are fair; ``--no-compare`` skips the plain path. The action
expert is timed in float32 and with bfloat16 autocast. ``--threads`` pins torch's CPU threads
(the robot PC budget is 2 cores).

Model choices: ``--model-path DIR`` (a real checkpoint, offline), ``--tiny`` (tiny random model
built in a temp dir; seconds on CPU) or ``--random-3b`` (Qwen2.5-VL-3B architecture with random
weights, paired with the tiny tokenizer so nothing is downloaded; token counts for images are
exact, the text part is tokenised by the tiny BPE and so slightly longer than with Qwen's vocab).
VL time is wall clock per ``extract`` call: preprocessing + model + pooling.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np
import torch

from asyncvla_core.conventions import DEFAULT_PROMPT, MAX_VIEWS

#: tools/, for the tiny random model (asyncvla_testing.tiny_vlm) of --tiny and --random-3b.
TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (TOOLS, os.path.join(TOOLS, "bench")):  # tools/bench: run_record
    if _path not in sys.path:
        sys.path.insert(0, _path)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="profile_cli.py", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-path", help="local Qwen2.5-VL directory or cached hub id (offline)")
    source.add_argument("--tiny", action="store_true", help="tiny random model built in a temp dir")
    source.add_argument("--random-3b", action="store_true", help="3B architecture, random weights")
    parser.add_argument("--adapter-path", default=None, help="LoRA adapter directory (with --model-path)")
    parser.add_argument("--views", type=int, default=1, help="camera views per extraction")
    parser.add_argument("--width", type=int, default=640, help="view width after resize")
    parser.add_argument("--height", type=int, default=360, help="view height after resize")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    parser.add_argument("--iters", type=int, default=10, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up iterations")
    parser.add_argument("--policy-config", default="full", choices=["full", "tiny"])
    parser.add_argument("--num-feature-tokens", type=int, default=64)
    parser.add_argument("--feature-layer", type=int, default=-1,
                        help="LM hidden state the features come from (-1 = last)")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the plain transformers path (timed side by side by default)")
    parser.add_argument("--expert-vl-dim", type=int, default=0,
                        help="VL width the action expert is built for (0 = the VL model's; 2048 = "
                             "Qwen2.5-VL-3B, to time the original system expert without the 3B model)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT)
    parser.add_argument("--out", help="also write the JSON object (indented) to this file")
    parser.add_argument(
        "--attn-implementation", default="sdpa", choices=["sdpa", "eager", "flash_attention_2"]
    )
    args = parser.parse_args(argv)
    for name in ("views", "width", "height", "iters", "num_feature_tokens"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    if args.adapter_path and not args.model_path:
        parser.error("--adapter-path needs --model-path")
    return args


def _percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = np.asarray(samples_s) * 1000.0
    return {
        "n": int(ms.size),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
        "mean_ms": round(float(ms.mean()), 3),
    }


def _peak_memory_mb(device: torch.device) -> float:
    """CUDA: max allocated by torch; CPU: peak resident set size of this process."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)  # KiB on Linux
    except ImportError:  # pragma: no cover - non-POSIX
        import psutil

        return round(psutil.Process().memory_info().rss / 2**20, 1)


def _build_extractor(args: argparse.Namespace, workdir: str, notes: list[str]) -> Any:
    from asyncvla_policy.vl_extractor import VLFeatureExtractor
    from asyncvla_testing.tiny_vlm import make_tiny_qwen_vl

    common = {
        "image_size": (args.width, args.height),
        "max_views": max(MAX_VIEWS, args.views),
        "num_feature_tokens": args.num_feature_tokens,
        "feature_layer": args.feature_layer,
    }
    if args.model_path:
        return VLFeatureExtractor.from_pretrained(
            args.model_path, adapter_path=args.adapter_path, device=args.device, dtype=args.dtype,
            attn_implementation=args.attn_implementation, **common,
        )
    if args.tiny:
        notes.append("tiny random Qwen2.5-VL (LM hidden 64): timings show overheads only")
        return VLFeatureExtractor.from_pretrained(
            make_tiny_qwen_vl(f"{workdir}/tiny-qwen2.5-vl"), device=args.device, dtype=args.dtype,
            attn_implementation=args.attn_implementation, **common,
        )
    return random_vl_extractor("3b", workdir, args.device, args.dtype, args.attn_implementation,
                               notes, **common)


def random_vl_extractor(arch: str, workdir: str, device: str, dtype: str, attn_implementation: str,
                        notes: list[str], **settings: Any) -> Any:
    """A ``VLFeatureExtractor`` over a random-weight model of ``arch`` ("3b" or "tiny").

    The model is created directly on ``device`` in ``dtype`` (no CPU copy to move: the 3B model
    would take minutes that way) and paired with the tiny tokenizer, so nothing is downloaded.
    ``settings`` are the extractor's (image_size, max_views, num_feature_tokens, feature_layer).
    """
    from asyncvla_policy.devices import resolve_device, resolve_dtype
    from asyncvla_policy.vl_extractor import VLFeatureExtractor
    from asyncvla_policy.vl_loading import load_processing_components
    from asyncvla_testing.tiny_vlm import build_random_qwen_vl, make_tiny_qwen_vl, random_qwen_vl_config

    dev = resolve_device(device)
    torch_dtype = resolve_dtype(None if dtype == "auto" else dtype, dev)
    tokenizer, image_processor, template = load_processing_components(
        make_tiny_qwen_vl(f"{workdir}/tiny-qwen2.5-vl"))
    notes.append(
        f"random-{arch}: Qwen2.5-VL {arch} architecture with random weights and the tiny tokenizer "
        "(no download); image token counts are exact, text tokens differ slightly from Qwen's vocab"
    )
    model = build_random_qwen_vl(random_qwen_vl_config(arch, tokenizer), dev, torch_dtype,
                                 attn_implementation)
    model.requires_grad_(False)
    return VLFeatureExtractor(
        model, tokenizer, image_processor, template, name_or_path=f"random-qwen2.5-vl-{arch}", **settings
    )


def _time(fn: Any, warmup: int, iters: int, device: torch.device,
          max_s: float | None = None) -> tuple[list[float], Any]:
    """Wall-clock seconds of ``iters`` calls of ``fn`` after ``warmup`` untimed ones (CUDA
    synchronised). ``max_s``: stop timing once that much time has passed (at least one call is
    timed), so a slow configuration cannot overrun a fixed time budget; len(times) says how many."""
    result = None
    for _ in range(warmup):
        result = fn()
    times: list[float] = []
    loop_start = time.perf_counter()
    for _ in range(iters):
        if times and max_s is not None and time.perf_counter() - loop_start >= max_s:
            break
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return times, result


def random_views(rng: np.random.Generator, count: int, width: int, height: int) -> list[np.ndarray]:
    """``count`` random HxWx3 uint8 RGB views (the timing does not depend on the content)."""
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def time_vl(extractor: Any, views: list[np.ndarray], prompt: str, warmup: int, iters: int,
            paths: tuple[bool, ...] = (True, False),
            max_s: float | None = None) -> dict[bool, tuple[dict[str, Any], Any]]:
    """Time ``extractor.extract`` on the given ``paths`` - the optimised path (True) and the
    plain transformers path (False) - on the same inputs: {optimized: (stats, last result)}.

    Stats: n, p50/p99/max/mean ms, ``iters`` timed, tokens, views, width, height, and building
    the inputs alone (resize, tokens, pixel values): ``preprocess`` (the same summary) and its
    ``preprocess_p50_ms``. Leaves the extractor on the optimised path.
    """
    height, width = views[0].shape[:2]
    device = extractor.device
    out: dict[bool, tuple[dict[str, Any], Any]] = {}
    try:
        for optimized in paths:
            extractor.optimized = optimized
            times, result = _time(lambda: extractor.extract(views, prompt), warmup, iters, device,
                                  max_s)
            prep_times, _ = _time(lambda: extractor._build([(views, prompt)]), 1, len(times),
                                  device)
            stats = _percentiles(times)
            preprocess = _percentiles(prep_times)
            stats.update(iters=len(times), tokens=result.token_count, views=len(views),
                         width=int(width), height=int(height),
                         preprocess_p50_ms=preprocess["p50_ms"], preprocess=preprocess)
            out[optimized] = (stats, result)
    finally:
        extractor.optimized = True
    return out


def agreement(reference: Any, other: Any) -> dict[str, Any]:
    """How far ``other`` is from ``reference`` (tensors or arrays of one shape): the largest
    absolute difference, the reference's largest magnitude (the scale it is relative to) and
    the number of elements compared."""
    ref = torch.as_tensor(reference).detach().float().cpu()
    oth = torch.as_tensor(other).detach().float().cpu()
    if ref.shape != oth.shape:
        raise ValueError(f"cannot compare shapes {tuple(ref.shape)} and {tuple(oth.shape)}")
    diff = float((ref - oth).abs().max()) if ref.numel() else 0.0
    scale = float(ref.abs().max()) if ref.numel() else 0.0
    return {"max_abs_diff": diff, "reference_max_abs": scale,
            "relative": diff / scale if scale > 0 else None, "elements": int(ref.numel())}


def run_profile(args: argparse.Namespace) -> dict[str, Any]:
    """Build the models, time them, return the JSON-able result dict."""
    import transformers

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="asyncvla-profile-") as workdir:
        extractor = _build_extractor(args, workdir, notes)
        return _profile(args, extractor, notes, transformers.__version__)


def build_policy(policy_config: str, vl_dim: int, vl_num_tokens: int) -> Any:
    """A random-weight ``ActionPolicy`` in eval mode: "full" (the original system's size, 118.7 M
    parameters with 2048-d VL tokens) or "tiny" (full-shaped inputs, tiny widths)."""
    from asyncvla_policy.config import PolicyConfig, tiny_policy_config
    from asyncvla_policy.policy import ActionPolicy

    if policy_config == "tiny":
        cfg = tiny_policy_config(vl_dim=vl_dim, vl_num_tokens=vl_num_tokens)
    elif policy_config == "full":
        cfg = PolicyConfig(vl_dim=vl_dim, vl_num_tokens=vl_num_tokens)
    else:
        raise ValueError(f"policy config must be full or tiny, got {policy_config!r}")
    return ActionPolicy(cfg).eval()


def expert_inputs(rng: np.random.Generator, cfg: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random VL tokens (K, D) and sensor window (T, C), zero robot state (S,), float32."""
    vl = rng.standard_normal((cfg.vl_num_tokens, cfg.vl_dim)).astype(np.float32)
    window = rng.standard_normal((cfg.sensor.window, cfg.sensor.in_channels)).astype(np.float32)
    return vl, window, np.zeros(cfg.robot_state_dim, dtype=np.float32)


def _profile(args: argparse.Namespace, extractor: Any, notes: list[str], tf_version: str) -> dict[str, Any]:
    device = extractor.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rng = np.random.default_rng(0)
    views = random_views(rng, args.views, args.width, args.height)
    vl = time_vl(extractor, views, args.prompt, args.warmup, args.iters,
                 paths=(True,) if args.no_compare else (True, False))
    vl_stats, vl_result = vl[True]

    k, d = args.num_feature_tokens, args.expert_vl_dim or extractor.feature_dim
    policy = build_policy(args.policy_config, d, k).to(device)
    features, window, state = expert_inputs(rng, policy.cfg)
    if d == extractor.feature_dim:
        features = vl_result.features.numpy()
    expert: dict[str, tuple[dict[str, Any], np.ndarray]] = {}
    for name in ("float32", "bfloat16"):
        policy.set_inference_dtype(name)
        times, out = _time(lambda: policy.predict(features, window, state, 0.4), args.warmup,
                           args.iters, device)
        expert[name] = (_percentiles(times), out)
    policy.set_inference_dtype("float32")

    result: dict[str, Any] = {"vl": vl_stats}
    if False in vl:
        plain_stats, plain_result = vl[False]
        result["vl_plain"] = plain_stats
        result["vl_speedup_p50"] = round(plain_stats["p50_ms"] / vl_stats["p50_ms"], 3)
        result["vl_feature_max_abs_diff"] = agreement(plain_result.features,
                                                      vl_result.features)["max_abs_diff"]
    ae_stats, ae_out = expert["float32"]
    bf16_stats, bf16_out = expert["bfloat16"]
    result.update({
        "action_expert": ae_stats,
        "action_expert_bf16": bf16_stats,
        "action_expert_bf16_speedup_p50": round(ae_stats["p50_ms"] / bf16_stats["p50_ms"], 3),
        "action_expert_bf16_max_abs_diff": agreement(ae_out, bf16_out)["max_abs_diff"],
        "threads": torch.get_num_threads(),
        "device": str(device),
        "dtype": str(extractor.dtype).replace("torch.", ""),
        "peak_memory_mb": _peak_memory_mb(device),
        "torch": torch.__version__,
        "transformers": tf_version,
        "model": {"model_id": extractor.model_id, "adapter_id": extractor.adapter_id, "feature_dim": d,
                  "num_feature_tokens": k},
        "policy_config": args.policy_config,
        "iters": args.iters,
        "warmup": args.warmup,
        "notes": notes,
    })
    return result


def main(argv: list[str] | None = None) -> int:
    from asyncvla_training.cli_errors import CliError, run_cli

    args = _parse_args(argv)

    def body() -> int:
        try:
            result = run_profile(args)
        except ValueError as exc:  # settings the model cannot take (feature layer, image size)
            raise CliError(f"{exc} (change the option)") from exc
        from run_record import run_record

        script = os.path.abspath(__file__)
        record = run_record("vl_profile", [script, *(sys.argv[1:] if argv is None else argv)])
        result = {**record, **result}
        if args.out:
            try:
                with open(args.out, "w") as f:
                    f.write(json.dumps(result, indent=1) + "\n")
            except OSError as exc:
                raise CliError(f"--out {args.out}: {exc.strerror}") from exc
        print(json.dumps(result))
        return 0

    return run_cli("profile_cli.py", body)


if __name__ == "__main__":
    sys.exit(main())
