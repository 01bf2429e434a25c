"""``python tools/bench/gpu_check.py``: the one-shot GPU check (``tools/bench/gpu_check.sh``).

One run on one NVIDIA GPU, inside a fixed deadline, prints ONE JSON object with:

- ``vl_update``: the VL update (``VLFeatureExtractor.extract``: preprocessing, model, pooling) for
  1 x 640x360, 5 x 640x360 and 5 x 1280x720 views on the Qwen2.5-VL-3B architecture with random
  weights, the optimised path and the plain transformers SDPA path side by side (p50/p99, the
  largest feature difference between them), each next to its target and anchors;
- ``expert``: the original system-size action expert ("full" ``PolicyConfig``, 118.7 M
  parameters, float32; its inference plan's tick, as the action node runs it between VL
  messages) eager, captured once into a CUDA graph and replayed, and compiled with
  ``torch.compile(mode="reduce-overhead")`` (CUDA graphs again, fused kernels): p50/p99, each
  variant's largest output difference from eager, target and anchors;
- the peak memory of every part and of the run.

The model is built once, directly on the device in bfloat16 (``profile_cli.random_vl_extractor``),
and shared by the three view sizes (``VLFeatureExtractor.at_image_size``). Timing, the optimised
and plain paths and their comparison are ``profile_cli.py``'s, not a copy.

Why a deadline and parts: a GPU is lent for minutes, once. Every part runs through
``check_report.CheckReport``: a failing part (out of memory, a compiler missing) gets an
``"error"`` field and the others still report; timing loops stop at ``--loop-max-s``; a watchdog
prints what there is at ``--deadline-s`` and ends the process. Exit status 0 when every part
ran, 1 when one has an error (the JSON is printed either way), 2 for a bad command line.

``--arch tiny --device cpu --policy-config tiny`` runs all of it on a CPU in about a minute
(the tests do, and the wrapper's ``--cpu-smoke``) except the CUDA graph capture, which needs
CUDA: on a CPU that variant reports ``"skipped"`` with the reason.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from check_report import EXIT_PART_FAILED, CheckReport, Put, error_text
from asyncvla_core.conventions import DEFAULT_PROMPT, MAX_VIEWS
from asyncvla_policy.expert_runtimes.torch_runtimes import mha_fastpath_off
from profile_cli import (
    _peak_memory_mb,
    _percentiles,
    _time,
    agreement,
    build_policy,
    expert_inputs,
    random_views,
    random_vl_extractor,
    time_vl,
)

SCHEMA = "asyncvla-gpu-check/1"
#: The view configurations, in report order: (views, width, height).
DEFAULT_CONFIGS = ((1, 640, 360), (5, 640, 360), (5, 1280, 720))
#: The issue's targets: the VL update for 5 x 640x360 at p50, the action expert at p99.
VL_TARGET_CONFIG = (5, 640, 360)
VL_TARGET_P50_MS = 50.0
EXPERT_TARGET_P99_MS = 1.0
#: Anchors. The original system (Najongs/Insertion_VLA) as reported: a 381 ms VL update
#: (5 views of 640x360) and a 20-30 ms action expert. The plain transformers path measured earlier
#: on an H100 (random 3B, bfloat16, SDPA), p50.
ORIGINAL_VL_MS = {(5, 640, 360): 381.0}
ORIGINAL_EXPERT_MS = (20.0, 30.0)
PLAIN_H100_P50_MS = {(1, 640, 360): 103.0, (5, 640, 360): 178.0, (5, 1280, 720): 594.0}
#: The expert is built for the 3B model's 2048-d VL tokens whatever VL model is timed.
EXPERT_VL_DIM = 2048
#: Seconds a part needs at least to be started (otherwise it is skipped, with the reason).
VL_PART_NEEDS_S = 20.0
EXPERT_PART_NEEDS_S = 45.0


def config_key(config: tuple[int, int, int]) -> str:
    views, width, height = config
    return f"{views}x{width}x{height}"


def _parse_configs(text: str) -> tuple[tuple[int, int, int], ...]:
    configs = []
    for item in text.split(","):
        try:
            views, width, height = (int(v) for v in item.strip().lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not VIEWSxWIDTHxHEIGHT (e.g. 5x640x360)")
        if not 1 <= views <= MAX_VIEWS or width < 1 or height < 1:
            raise argparse.ArgumentTypeError(f"{item!r}: 1..{MAX_VIEWS} views of a positive size")
        configs.append((views, width, height))
    return tuple(configs)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="3b", choices=["3b", "tiny"],
                        help="random-weight Qwen2.5-VL architecture (tiny: the CPU smoke run)")
    parser.add_argument("--device", default="cuda", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                        help="VL model dtype (auto: bfloat16 on CUDA, float32 on CPU)")
    parser.add_argument("--configs", type=_parse_configs, default=DEFAULT_CONFIGS,
                        help="view configurations, VIEWSxWIDTHxHEIGHT,... (default: "
                             + ",".join(config_key(c) for c in DEFAULT_CONFIGS) + ")")
    parser.add_argument("--iters", type=int, default=20, help="timed VL updates per path")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--expert-iters", type=int, default=300)
    parser.add_argument("--expert-warmup", type=int, default=20)
    parser.add_argument("--policy-config", default="full", choices=["full", "tiny"])
    parser.add_argument("--compile-mode", default="reduce-overhead",
                        choices=["reduce-overhead", "default", "max-autotune"])
    parser.add_argument("--num-feature-tokens", type=int, default=64)
    parser.add_argument("--loop-max-s", type=float, default=20.0,
                        help="stop a timing loop after this many seconds (at least one call)")
    parser.add_argument("--deadline-s", type=float, default=440.0,
                        help="print what there is and exit after this many seconds")
    parser.add_argument("--partial-json", default=None,
                        help="also write the report here after every part (for a wrapper)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--attn-implementation", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--prompt", default=DEFAULT_PROMPT)
    args = parser.parse_args(argv)
    for name in ("iters", "expert_iters", "num_feature_tokens"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0 or args.expert_warmup < 0:
        parser.error("warm-up counts must be >= 0")
    if args.loop_max_s <= 0 or args.deadline_s <= 0:
        parser.error("--loop-max-s and --deadline-s must be > 0")
    return args


# ---------------------------------------------------------------------------- memory
def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


# ---------------------------------------------------------------------------- VL
def _vl_part(args: argparse.Namespace, extractor: Any, config: tuple[int, int, int],
             put: Put) -> None:
    views_n, width, height = config
    put(views=views_n, width=width, height=height, target_p50_ms=_vl_target(config),
        anchors={"plain_h100_p50_ms": PLAIN_H100_P50_MS.get(config),
                 "original_system_ms": ORIGINAL_VL_MS.get(config)})
    if extractor is None:
        raise RuntimeError("no VL model: the build part failed")
    device = extractor.device
    _reset_peak(device)
    sized = extractor.at_image_size((width, height))
    views = random_views(np.random.default_rng(0), views_n, width, height)
    timed: dict[bool, tuple[dict[str, Any], Any]] = {}
    for optimized, name in ((True, "optimized"), (False, "plain")):
        timed.update(time_vl(sized, views, args.prompt, args.warmup, args.iters, paths=(optimized,),
                             max_s=args.loop_max_s))
        stats = dict(timed[optimized][0])
        put(tokens=stats.pop("tokens"), **{name: _drop(stats, "views", "width", "height")})
    opt, plain = timed[True][0], timed[False][0]
    put(speedup_p50=round(plain["p50_ms"] / opt["p50_ms"], 3),
        agreement=agreement(timed[False][1].features, timed[True][1].features),
        peak_memory_mb=_peak_memory_mb(device),
        **_vl_verdict(config, opt["p50_ms"]))


def _drop(stats: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in stats.items() if k not in keys}


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator to 3 significant digits: a ratio far below 1 (a slowed run) keeps
    its precision, where rounding to 2 decimals turned 0.048 into 0.05."""
    return float(f"{numerator / denominator:.3g}")


def _vl_target(config: tuple[int, int, int]) -> float | None:
    return VL_TARGET_P50_MS if config == VL_TARGET_CONFIG else None


def _vl_verdict(config: tuple[int, int, int], p50_ms: float) -> dict[str, Any]:
    """Target met or not, and each anchor divided by the optimised p50 (x times faster)."""
    target = _vl_target(config)
    ratios = {}
    for name, anchor in (("plain_h100_over_optimized", PLAIN_H100_P50_MS.get(config)),
                         ("original_system_over_optimized", ORIGINAL_VL_MS.get(config))):
        if anchor is not None:
            ratios[name] = ratio(anchor, p50_ms)
    return {"meets_target": None if target is None else p50_ms <= target, "ratios": ratios}


# ---------------------------------------------------------------------------- expert
def expert_graph(policy: Any, inputs: list[torch.Tensor]) -> tuple[Any, list[torch.Tensor], str]:
    """The callable timed and compiled, its inputs, and its name: the ``ActionPolicy``'s
    inference plan's tick (``plan_tick``), what the action node runs at every tick, with the VL
    context computed once from the VL tokens as the node does per VL message. It has no
    data-dependent checks inside, so it compiles to one graph and a CUDA graph can capture it."""
    from asyncvla_policy.inference_plan import InferencePlan

    plan = InferencePlan(policy)
    with torch.no_grad():
        context = plan.vl_context(inputs[0])
    age = [torch.full((inputs[0].shape[0],), 0.4, device=inputs[0].device)] if plan.takes_age else []
    return plan, [context, *inputs[1:], *age], "plan_tick"


def _graph_breaks() -> int | None:
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # pragma: no cover - torch without dynamo
        return None
    return int(sum(counters["graph_break"].values()))


def _compiled_step(graph: Any, inputs: list[torch.Tensor], mode: str) -> Callable[[], torch.Tensor]:
    """``torch.compile(graph, mode)``; with "reduce-overhead" on a GPU the compiled graph is
    replayed as CUDA graphs (cudagraph trees). Compiles at the first call."""
    compiled = torch.compile(graph, mode=mode)

    def step() -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()  # each call a new inference step
        return compiled(*inputs)

    return step


def _cuda_graph_step(graph: Any, inputs: list[torch.Tensor], mode: str) -> Callable[[], torch.Tensor]:
    """``graph`` captured once into a ``torch.cuda.CUDAGraph`` on its static inputs and replayed
    (no compiler needed). The capture pattern of PyTorch's CUDA graphs docs: warm up on a side
    stream, capture, replay; the output tensor is the graph's static output."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            graph(*inputs)
    torch.cuda.current_stream().wait_stream(side)
    captured = torch.cuda.CUDAGraph()
    with torch.cuda.graph(captured):
        static_out = graph(*inputs)

    def step() -> torch.Tensor:
        captured.replay()
        return static_out

    return step


#: The fast variants of the expert, in run order: name -> how to build its step.
EXPERT_VARIANTS = {"cuda_graph": _cuda_graph_step, "compiled": _compiled_step}


def _variant_skip(name: str, device: torch.device, graph_name: str) -> str | None:
    """Why a variant cannot run here (None: it can)."""
    if name == "cuda_graph" and device.type != "cuda":
        return "CUDA graphs need a CUDA device"
    if name == "cuda_graph" and graph_name == "forward":
        return "forward's finiteness checks synchronise with the host, which a capture cannot hold"
    return None


def _time_variant(name: str, graph: Any, inputs: list[torch.Tensor], reference: torch.Tensor,
                  args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Build the variant's step (compile or capture, timed as setup_s), time it, compare its
    output with the eager ``reference``."""
    with mha_fastpath_off():
        start = time.perf_counter()
        step = EXPERT_VARIANTS[name](graph, inputs, args.compile_mode)
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        setup_s = time.perf_counter() - start
        times, out = _time(step, max(args.expert_warmup, 3), args.expert_iters, device,
                           args.loop_max_s)
        out = out.clone()
    result = {**_percentiles(times), "iters": len(times), "setup_s": round(setup_s, 1),
              "agreement": agreement(reference, out)}
    if name == "compiled":
        result.update(mode=args.compile_mode, graph_breaks=_graph_breaks(),
                      cuda_graphs=device.type == "cuda" and args.compile_mode == "reduce-overhead")
    return result


def _expert_part(args: argparse.Namespace, device: torch.device, put: Put) -> None:
    put(policy_config=args.policy_config, dtype="float32", target_p99_ms=EXPERT_TARGET_P99_MS,
        anchors={"original_system_ms": list(ORIGINAL_EXPERT_MS)})
    _reset_peak(device)
    policy = build_policy(args.policy_config, EXPERT_VL_DIM, args.num_feature_tokens).to(device)
    put(params_m=round(sum(p.numel() for p in policy.parameters()) / 1e6, 1))
    inputs = [torch.from_numpy(a).to(device)[None]
              for a in expert_inputs(np.random.default_rng(1), policy.cfg)]
    graph, inputs, graph_name = expert_graph(policy, inputs)
    put(callable=graph_name)
    with torch.no_grad():
        times, eager_out = _time(lambda: graph(*inputs), args.expert_warmup, args.expert_iters,
                                 device, args.loop_max_s)
        eager_out = eager_out.clone()
        timed = {"eager": {**_percentiles(times), "iters": len(times)}}
        put(eager=timed["eager"])
        for name in EXPERT_VARIANTS:
            reason = _variant_skip(name, device, graph_name)
            if reason is not None:
                put(**{name: {"skipped": reason}})
                continue
            try:
                timed[name] = _time_variant(name, graph, inputs, eager_out, args, device)
                put(**{name: timed[name]})
            except Exception as exc:  # noqa: BLE001 - one variant failing leaves the others
                put(**{name: {"error": error_text(exc)}})
    best = min(timed, key=lambda n: timed[n]["p99_ms"])
    put(best=best, meets_target=timed[best]["p99_ms"] <= EXPERT_TARGET_P99_MS,
        peak_memory_mb=_peak_memory_mb(device),
        ratios={f"eager_p99_over_{n}": ratio(timed["eager"]["p99_ms"], timed[n]["p99_ms"])
                for n in timed if n != "eager"}
        | {"original_system_over_best_p50": [round(ms / timed[best]["p50_ms"], 1)
                                             for ms in ORIGINAL_EXPERT_MS]})


# ---------------------------------------------------------------------------- run
def _environment(device: torch.device) -> dict[str, Any]:
    import transformers

    env: dict[str, Any] = {"device": str(device), "torch": torch.__version__,
                           "transformers": transformers.__version__,
                           "threads": torch.get_num_threads()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_mb=round(props.total_memory / 2**20),
                   cuda=torch.version.cuda)
    return env


def run_check(args: argparse.Namespace, report: CheckReport) -> None:
    """Build once, then the parts in order of importance (targets first); the report keeps the
    configured order whatever the run order."""
    from asyncvla_policy.devices import resolve_device

    device = resolve_device(args.device)  # ValueError when CUDA is asked for and absent
    report.put(("environment",), **_environment(device))
    built: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="asyncvla-gpu-check-") as workdir:

        def build(put: Put) -> None:
            _reset_peak(device)
            start = time.perf_counter()
            notes: list[str] = []
            built["extractor"] = random_vl_extractor(
                args.arch, workdir, str(device), args.dtype, args.attn_implementation, notes,
                image_size=args.configs[0][1:], max_views=MAX_VIEWS,
                num_feature_tokens=args.num_feature_tokens, feature_layer=-1)
            model = built["extractor"].model
            put(seconds=round(time.perf_counter() - start, 1), arch=args.arch,
                dtype=str(built["extractor"].dtype).replace("torch.", ""),
                params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
                peak_memory_mb=_peak_memory_mb(device), notes=notes)

        report.run_part(("build",), build)
        # The VL target first; the expert last: a failed CUDA graph capture can leave the CUDA
        # context unusable, and by then every VL figure is in.
        for config in sorted(args.configs, key=lambda c: c != VL_TARGET_CONFIG):
            report.run_part(("vl_update", config_key(config)),
                            lambda put, c=config: _vl_part(args, built.get("extractor"), c, put),
                            needs_s=VL_PART_NEEDS_S)
        report.run_part(("expert",), lambda put: _expert_part(args, device, put),
                        needs_s=EXPERT_PART_NEEDS_S)
    report.put(("summary",), **summarise(report.data))


def summarise(data: dict[str, Any]) -> dict[str, Any]:
    """The targets at a glance: met or not (None: not measured), and the run's peak memory."""
    target_key = config_key(VL_TARGET_CONFIG)
    vl = data.get("vl_update", {}).get(target_key, {})
    expert = data.get("expert", {})
    parts = [data.get("build", {}), expert, *data.get("vl_update", {}).values()]
    peaks = [p["peak_memory_mb"] for p in parts if p.get("peak_memory_mb") is not None]
    return {
        "vl_target": f"{target_key} optimised p50 <= {VL_TARGET_P50_MS:g} ms",
        "vl_target_met": vl.get("meets_target"),
        "expert_target": f"p99 <= {EXPERT_TARGET_P99_MS:g} ms",
        "expert_target_met": expert.get("meets_target"),
        "peak_memory_mb": max(peaks, default=None),
    }


def main(argv: list[str] | None = None, stream: Any = None) -> int:
    args = _parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    report = CheckReport({"schema": SCHEMA, "environment": {}}, args.deadline_s, stream=stream,
                         partial_path=args.partial_json)
    report.declare(("build",), ("expert",), *(("vl_update", config_key(c)) for c in args.configs))
    report.start_watchdog()
    try:
        run_check(args, report)
    except Exception as exc:  # noqa: BLE001 - setup failed (no CUDA): still one JSON
        report.put(("environment",), error=error_text(exc))
    finally:
        report.stop_watchdog()
    report.emit()
    return EXIT_PART_FAILED if not report.ok else 0


if __name__ == "__main__":
    sys.exit(main())
