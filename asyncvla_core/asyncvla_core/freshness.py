"""How old and how far apart the inputs may be: the defaults every reader of them shares (ROS-free).

One fact, one place: the nodes declare these as parameter defaults (``freshness.*``), their cores
fall back to them, and training aligns a recording by the same rules, so a recorded sample the
action node would have refused is not one the policy learns from. A node's parameter overrides
its own value at run time; training's `AlignmentConfig` can be given the same override.
"""
from __future__ import annotations

#: Oldest joint state and EE pose (s, stamp to tick) acted on; also their watchdog's silence.
ROBOT_STATE_MAX_AGE_S = 0.1
#: Oldest newest force/OCT sample (s, stamp to tick) a tick acts on.
SENSOR_MAX_AGE_S = 0.05
#: Largest gap (s) between neighbouring force/OCT samples inside one window (650 Hz: 1.5 ms).
SENSOR_MAX_GAP_S = 0.01
#: Inputs stamped further ahead of the reader's clock (s) are refused at arrival and counted.
MAX_FUTURE_STAMP_S = 0.2
#: Oldest VL features (s, newest camera stamp to tick) the expert may act on.
MAX_VL_AGE_S = 1.0
#: The VLM skips an update when a view's newest frame is older than this (s).
MAX_FRAME_AGE_S = 0.5
#: The VLM skips an update when the views' frames are further apart in time than this (s).
MAX_VIEW_SKEW_S = 0.2
