# Source this to use the project workspace in the current shell:  . tools/env.sh
# Activates the venv (ROS 2 prefix), overlays the colcon install space and keeps DDS on loopback.
_asyncvla_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "${VENV:-$_asyncvla_root/.venv}/bin/activate"
export AMENT_PREFIX_PATH="${AMENT_PREFIX_PATH:-$VIRTUAL_ENV}" CMAKE_PREFIX_PATH="${CMAKE_PREFIX_PATH:-$VIRTUAL_ENV}"
if [ -f "$_asyncvla_root/install/setup.bash" ]; then
  # colcon's setup scripts reference unset variables; relax nounset while sourcing them.
  case $- in *u*) _asyncvla_u=1; set +u;; esac
  . "$_asyncvla_root/install/setup.bash"
  [ -n "${_asyncvla_u:-}" ] && set -u
fi
# The asyncvla-* commands: ament_python installs console scripts under lib/<package> (where
# `ros2 run` looks), not bin/, so put that directory on PATH once.
_asyncvla_bin="$_asyncvla_root/install/asyncvla_training/lib/asyncvla_training"
if [ -d "$_asyncvla_bin" ]; then
  case ":$PATH:" in *":$_asyncvla_bin:"*) ;; *) export PATH="$_asyncvla_bin:$PATH";; esac
fi
# Keep every DDS participant on this machine unless the user already chose otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
# Domain ids above 101 can collide with ephemeral ports on Linux: stay in 10..99.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ % 90) + 10 ))}"
unset _asyncvla_root _asyncvla_u _asyncvla_bin
