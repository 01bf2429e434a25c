#!/usr/bin/env bash
# The project's two entry points (see README):
#   ./dev.sh demo [args]   set up the environment if needed, then run the main job on CPU
#   ./dev.sh test [args]   set up the environment if needed, then run the whole test suite
# Anything after the verb goes to the demo script or to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
verb="${1:-}"; shift || true
case "$verb" in
  setup) bash tools/setup_workspace.sh ;;
  demo)
    bash tools/setup_workspace.sh
    . tools/env.sh
    exec python tools/demo.py "$@" ;;
  test)
    bash tools/setup_workspace.sh
    . tools/env.sh
    exec python -m pytest "$@" ;;
  *) echo "usage: ./dev.sh {demo|test|setup} [args...]" >&2; exit 2 ;;
esac
