"""The action node's parameters: one typed config, grouped by concern, readable without ROS.

`ActionNodeConfig` is the one spec: the node declares its leaves as dotted ROS parameters
(``timing.action_rate_hz``; `params.declare_config`) and hands the typed config to its core
(`action_loop.ActionLoop`); the launch catalog, the YAML checker and the SROS2 policy test read
`ACTION_NODE_PARAMETERS` (the same leaves as flat `ParamSpec`) and `OLD_NAMES` (every flat name
of before, with the parameter that replaced it). The groups the executor and the Meca500 driver
declare too are `asyncvla_common.node_config`'s. Horizon, action dimension and sensor window
come from the checkpoint, not from parameters.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from asyncvla_action_node.action_core import ActionCoreConfig
from asyncvla_action_node.tick_timing import TICK_SOURCES, TRIGGERS
from asyncvla_common import node_config as common
from asyncvla_common.param_spec import ParamSpec, flat_specs, old_names, param
from asyncvla_core import freshness

@dataclass(frozen=True)
class ExpertConfig:
    """Where and how the action expert runs."""

    device: str = param("cpu", "torch device for the action expert (cpu, cuda, cuda:0)",
                        read_only=True, was="device")
    runtime: str = param(
        "auto", "How the action expert runs (same checkpoint for all; tolerance = max |diff| "
        "vs float32 in normalised units). auto (default): at start-up, measure the installed "
        "runtimes on this checkpoint with expert.threads and take the fastest within "
        "expert.max_runtime_error of float32 (cached in expert.cache_dir; reported on "
        "/diagnostics, 'expert runtime'). Or name one: torch_float32 (reference), "
        "torch_bf16_autocast, torch_bf16_weights, torch_compile, torchao_int8, ort_float32, "
        "ort_int8, openvino_float32, openvino_int8 (int8 weights, float32 activations), "
        "openvino_int8_dynamic (int8 activations too on VNNI/AMX CPUs). Figures per CPU: "
        "tools/bench/bench_expert_cpu.py. It replaced expert_dtype (float32 -> torch_float32, "
        "bfloat16 -> torch_bf16_autocast)", read_only=True, was=("expert_runtime", "expert_dtype"))
    max_runtime_error: float = param(
        1e-2, "auto: the largest difference from float32 a runtime may have on this checkpoint "
        "(max |diff| / action_std over random probe inputs at the checkpoint's normalisation "
        "scale, VL ages 0-0.7 s)", read_only=True, min_value=1e-7, max_value=1.0,
        was="max_runtime_error")
    auto_budget_s: float = param(
        60.0, "auto: seconds of start-up after which no further runtime is measured (one "
        "already converting finishes); the choice is made among those measured. A cached choice "
        "skips the measuring", read_only=True, min_value=0.0, max_value=3600.0,
        was="expert_auto_budget_s")
    threads: int = param(0, "Intra-op threads of the expert runtime (0 = the library's "
                         "default)", read_only=True, min_value=0, max_value=256,
                         was="expert_threads")
    cache_dir: str = param(
        "~/.cache/asyncvla/expert", "Keep converted models (ONNX/OpenVINO) and auto's choice "
        "here, keyed by the weights' hash (and, for the choice, the CPU and library versions), "
        "so a restart skips the conversion and the measuring ('' = convert and measure at "
        "every start)", read_only=True, was="expert_cache_dir")


@dataclass(frozen=True)
class TimingConfig:
    """Who ticks, at what rate, and when the expert runs (TIMING.md)."""

    action_rate_hz: float = param(10.0, "Action ticks per second", read_only=True,
                                  min_value=0.5, max_value=200.0, was="action_rate_hz")
    tick_source: str = param(
        "publisher_process", f"Who publishes a tick: {TICK_SOURCES}. Both tick from a thread of "
        "their own on absolute deadlines (the newest finished inference re-timed to the tick; "
        "the expert runs on another thread). publisher_process (default): the tick is prepared "
        "publish_lead_ms ahead and a child process (<node>_publisher) publishes it at the "
        "deadline, away from the node's other Python: the steadiest period. timing_thread: the "
        "tick thread publishes itself: no child process and the lowest measured latency at "
        "50-100 Hz, for a less steady period (TIMING.md)", read_only=True, was="tick_source")
    publish_lead_ms: float = param(
        8.0, "publisher_process: how long before its deadline a tick is prepared and handed to "
        "the publisher process (ms; below the period; above the tick thread's wake-up "
        "lateness, tick_late_ms_p99 in diagnostics); a tick handed over more than half a period "
        "late is dropped and counted, never bursted", read_only=True, min_value=0.5,
        max_value=50.0, was="publish_lead_ms")
    inference_trigger: str = param(
        "deadline", f"What starts the expert {TRIGGERS}: 'deadline' (default) = a tick plans "
        "the next run to end 2 ms before the next tick is prepared, by the longest of the last "
        "20 inference times (at most one run per tick; its inputs are about one inference time "
        "old when published, not one period); 'tick' = a tick starts it at once (published at "
        "the next tick); 'sensor' = a new force/OCT batch (the expert runs up to "
        "inference_max_rate_hz whatever the tick rate); only when the previous run has "
        "finished", read_only=True, was="inference_trigger")
    inference_max_rate_hz: float = param(50.0, "Expert runs per second at most",
                                         read_only=True, min_value=0.5, max_value=1000.0,
                                         was="inference_max_rate_hz")
    tick_thread_priority: int = param(
        50, "SCHED_FIFO priority of the tick thread only (1-99; 0 = normal; the publisher "
        "process runs one above it). Needs CAP_SYS_NICE or an rtprio limit; without it the "
        "thread runs at normal priority and diagnostics say so", read_only=True, min_value=0,
        max_value=99, was="tick_thread_priority")

    def lead_s(self) -> float:
        """How long before its deadline a tick is prepared (0 when the tick thread publishes)."""
        return self.publish_lead_ms / 1e3 if self.tick_source == "publisher_process" else 0.0

    def check(self) -> None:
        """ValueError naming the parameter when the values cannot work together."""
        if self.tick_source not in TICK_SOURCES:
            raise ValueError(f"timing.tick_source {self.tick_source!r}: expected one of "
                             f"{TICK_SOURCES}")
        if self.lead_s() * self.action_rate_hz >= 1.0:
            raise ValueError(f"timing.publish_lead_ms {self.publish_lead_ms:g} must be below "
                             f"the tick period ({1e3 / self.action_rate_hz:g} ms at "
                             f"timing.action_rate_hz {self.action_rate_hz:g})")


@dataclass(frozen=True)
class FreshnessConfig:
    """How old each input may be when a tick acts on it."""

    max_vl_age: float = param(
        freshness.MAX_VL_AGE_S, "Oldest VL features (s, camera stamp to tick) the expert may act "
        "on; older -> no action, ERROR", min_value=0.0, was="max_vl_age")
    sensor_max_age: float = param(
        freshness.SENSOR_MAX_AGE_S, "Max age (s) of the newest sensor sample at a tick",
        min_value=0.0, was="sensor_max_age")
    sensor_max_gap: float = param(
        freshness.SENSOR_MAX_GAP_S, "Largest gap (s) allowed between neighbouring samples inside "
        "the window", read_only=True, min_value=0.0, was="sensor_max_gap")
    robot_state_max_age: float = common.ROBOT_STATE_MAX_AGE.as_field(was=common.ROBOT_STATE_WAS)
    max_inference_age: float = param(
        ActionCoreConfig.max_inference_age, "Oldest inference (s, from the time its inputs were "
        "taken to the tick) a tick may re-time and publish; older -> no action, ERROR",
        min_value=0.0, was="max_inference_age")
    max_future_stamp: float = common.MAX_FUTURE_STAMP.as_field(was="max_future_stamp")


@dataclass(frozen=True)
class WatchdogConfig:
    """Heartbeats of the inputs whose silence stops output (the robot state's is
    freshness.robot_state_max_age)."""

    vl_timeout: float = param(1.5, "Heartbeat: longest silence (s) of accepted VL features "
                              "before output stops (0 = off)", read_only=True, min_value=0.0,
                              was="vl_timeout")
    sensor_timeout: float = param(0.1, "Heartbeat: longest silence (s) of accepted sensor "
                                  "batches (0 = off)", read_only=True, min_value=0.0,
                                  was="sensor_timeout")


@dataclass(frozen=True)
class VLConfig:
    """Which VL features are taken."""

    expected_model_id: str = param("", "Reject VL features from any other model id ('' = the "
                                   "checkpoint's vl_model_id, or any)", read_only=True,
                                   was="expected_model_id")
    publisher: str = param("", "The node whose VL features are taken ('' = lock onto the "
                           "first node seen alone on the topic); set at run time to re-lock "
                           "after a second publisher was reported", was="vl_publisher")


@dataclass(frozen=True)
class ActionTopics:
    """The node's topics."""

    vl_features: str = common.VL_FEATURES_TOPIC.as_field(was="vl_features_topic")
    sensor: str = param("/sensor/force_oct", "ForceOctBatch input", read_only=True,
                        was="sensor_topic")
    joint_state: str = common.JOINT_STATE_TOPIC.as_field(was="joint_state_topic")
    pose: str = common.POSE_TOPIC.as_field(was="pose_topic")
    action: str = common.ACTION_TOPIC.as_field(was="action_topic")
    trajectory: str = param("/asyncvla/joint_trajectory", "JointTrajectory output (with "
                            "publish_joint_trajectory)", read_only=True, was="trajectory_topic")
    enable: str = common.ENABLE_TOPIC.as_field(was="enable_topic")
    estop: str = common.ESTOP_TOPIC.as_field(was="estop_topic")
    safety_status: str = common.SAFETY_STATUS_TOPIC.as_field(was="safety_status_topic")


@dataclass(frozen=True)
class ActionNodeConfig:
    """Every parameter of the action node."""

    checkpoint: str = param("", "Policy checkpoint directory (model.safetensors + config.json)",
                            read_only=True)
    publish_joint_trajectory: bool = param(False, "Also publish trajectory_msgs/JointTrajectory "
                                           "(joint_delta policies)", read_only=True)
    joint_names: tuple[str, ...] = common.JOINT_NAMES_SPEC.as_field()
    expert: ExpertConfig = field(default_factory=ExpertConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    freshness: FreshnessConfig = field(default_factory=FreshnessConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    vl: VLConfig = field(default_factory=VLConfig)
    blending: common.BlendingConfig = field(default_factory=common.BlendingConfig)
    topics: ActionTopics = field(default_factory=ActionTopics)
    safety: common.SafetyConfig = field(default_factory=common.SafetyConfig)
    guard: common.ChunkGuardConfig = field(default_factory=common.ChunkGuardConfig)
    reporting: common.ReportingConfig = field(default_factory=common.ReportingConfig)


#: The node's parameters as flat specs (dotted names), in declaration order.
ACTION_NODE_PARAMETERS: tuple[ParamSpec, ...] = flat_specs(ActionNodeConfig)
#: Every replaced name -> the parameter that replaced it (the node stops on an old one).
OLD_NAMES: dict[str, str] = old_names(ActionNodeConfig)

#: Float64 topics under ~/ for rqt_plot.
PLOT_TOPICS = ("vl_age", "inference_time_ms", "vl_reuse_count", "sensor_fill", "chunk_rate_hz")
