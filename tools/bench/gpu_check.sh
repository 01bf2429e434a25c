#!/usr/bin/env bash
# One-shot GPU check: on a machine with one NVIDIA GPU, within 8 minutes including model
# construction, print ONE JSON object: the VL update for 1 x 640x360, 5 x 640x360 and
# 5 x 1280x720 views on the Qwen2.5-VL-3B architecture with random weights (optimised and plain
# transformers SDPA paths side by side, feature agreement), the original system-size action expert
# eager vs torch.compile(mode="reduce-overhead") (CUDA graphs), peak memory, and the targets and
# anchors next to each figure. Everything is in tools/bench/gpu_check.py; this wrapper checks
# the machine, bounds the time and guarantees the one JSON object.
#
# Usage:
#   tools/bench/gpu_check.sh                 # the GPU run
#   tools/bench/gpu_check.sh --cpu-smoke     # the same code on a CPU with the tiny model (tests)
#   tools/bench/gpu_check.sh [--cpu-smoke] -- ARGS...   # extra gpu_check options (see --help)
# Environment: PYTHON (default python3; needs torch with CUDA and tools/requirements-ml.txt),
#   GPU_CHECK_LIMIT_S (default 470: wall-clock limit of this whole script, checks included; the
#   8-minute budget less a margin).
# Exit status: 0 every part ran; 1 a part failed (its "error" field says why); 2 the machine
#   cannot run the check (no nvidia-smi, no GPU, torch without CUDA); the JSON is printed always.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
LIMIT_S="${GPU_CHECK_LIMIT_S:-470}"
KILL_AFTER_S=10
MODE=gpu
if [[ "${1:-}" == "--cpu-smoke" ]]; then
  MODE=cpu
  shift
fi
if [[ "${1:-}" == "--" ]]; then
  shift
fi
if ! [[ "$LIMIT_S" =~ ^[0-9]+$ ]] || (( LIMIT_S < 60 )); then
  echo "gpu_check.sh: GPU_CHECK_LIMIT_S must be a whole number of seconds >= 60, got '$LIMIT_S'" >&2
  exit 2
fi

# One JSON object with an error, for when the Python run cannot start or printed nothing.
# $1: the message; $2: a partial report to carry over (optional).
fail_json() {
  "$PYTHON" - "$1" "${2:-}" <<'EOF' 2>/dev/null || printf '{"ok": false, "error": "%s"}\n' "${1//\"/\'}"
import json, os, sys
message, partial = sys.argv[1], sys.argv[2]
report = {}
if partial and os.path.isfile(partial):
    try:
        with open(partial, encoding="utf-8") as handle:
            report = json.load(handle)
    except (OSError, ValueError):
        report = {}
report.update(ok=False, error=message)
print(json.dumps(report))
EOF
}

if [[ "$MODE" == gpu ]]; then
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    fail_json "nvidia-smi not found: this machine has no NVIDIA driver (use --cpu-smoke to test the check on a CPU)"
    exit 2
  fi
  if ! gpus="$(nvidia-smi -L 2>&1)" || [[ "$gpus" != *"GPU 0"* ]]; then
    fail_json "nvidia-smi lists no GPU: ${gpus//$'\n'/ }"
    exit 2
  fi
  echo "gpu_check.sh: ${gpus//$'\n'/; }" >&2
  if ! cuda="$("$PYTHON" -c 'import torch; print(torch.__version__, torch.cuda.is_available())' 2>&1)" \
      || [[ "$cuda" != *" True" ]]; then
    fail_json "torch cannot use the GPU (torch version, cuda available: ${cuda//$'\n'/ }): install a CUDA build of torch (tools/requirements-ml.txt pins the CPU build)"
    exit 2
  fi
  ARGS=(--arch 3b --device cuda --policy-config full)
else
  # Same parts and code on the CPU: tiny model, smaller views (same view counts), few iterations.
  ARGS=(--arch tiny --device cpu --policy-config tiny --configs 1x112x84,5x112x84,5x224x140
        --iters 2 --warmup 1 --expert-iters 3 --expert-warmup 1 --threads 2)
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# What the checks above took comes off the Python run's time. It prints at its own deadline,
# 20 s before `timeout` would stop it; `timeout` (then SIGKILL) is the backstop.
RUN_S=$(( LIMIT_S - SECONDS - KILL_AFTER_S ))
if (( RUN_S < 40 )); then
  fail_json "only $RUN_S s left of GPU_CHECK_LIMIT_S=$LIMIT_S after the machine checks"
  exit 2
fi
rc=0
PYTHONPATH="$ROOT/asyncvla_core:$ROOT/asyncvla_policy:$ROOT/asyncvla_training:$ROOT/tools${PYTHONPATH:+:$PYTHONPATH}" \
  timeout --signal=TERM --kill-after="$KILL_AFTER_S" "$RUN_S" \
  "$PYTHON" "$ROOT/tools/bench/gpu_check.py" "${ARGS[@]}" --deadline-s "$((RUN_S - 20))" \
  --partial-json "$WORK/partial.json" "$@" >"$WORK/out.json" || rc=$?

if [[ -s "$WORK/out.json" ]]; then
  cat "$WORK/out.json"
  (( rc == 0 )) || exit 1  # 124: stopped by `timeout` after printing (its SIGTERM report)
  exit 0
fi
if (( rc == 2 )); then
  exit 2  # a bad option: argparse said which on stderr
fi
fail_json "the check printed no JSON (exit status $rc; 124/137: stopped at the $RUN_S s limit)" "$WORK/partial.json"
exit 1
