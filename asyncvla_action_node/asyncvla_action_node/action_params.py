"""The action node's parameters and output topic names, as data (ROS-free apart from the
ParamSpec type): the node declares them, the launch catalog and the YAML checks read them, and the
SROS2 policy test compares its topic names with them.
"""
from __future__ import annotations

from asyncvla_action_node.tick_timing import TICK_SOURCES, TRIGGERS
from asyncvla_common.params import ParamSpec
from asyncvla_common.safety_ros import SAFETY_PARAMETERS
from asyncvla_common.shared_params import shared

#: Every parameter of the action node (name, default, description, range); declared in order.
#: Those the executor and the Meca500 driver declare too are `shared_params`'s.
#: The horizon and action dimension come from the checkpoint, not from parameters.
ACTION_NODE_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("checkpoint", "", "Policy checkpoint directory (model.safetensors + config.json)",
              read_only=True),
    ParamSpec("device", "cpu", "torch device for the action expert (cpu, cuda, cuda:0)",
              read_only=True),
    ParamSpec("expert_runtime", "auto", "How the action expert runs (same checkpoint for "
              "all; tolerance = max |diff| vs float32 in normalised units). auto (default): at "
              "start-up, measure the installed runtimes on this checkpoint with expert_threads "
              "and take the fastest within max_runtime_error of float32 (cached in "
              "expert_cache_dir; reported on /diagnostics, 'expert runtime'). Or name one: "
              "torch_float32 (reference), torch_bf16_autocast, torch_bf16_weights, torch_compile, "
              "torchao_int8, ort_float32, ort_int8, openvino_float32, openvino_int8 (int8 "
              "weights, float32 activations), openvino_int8_dynamic (int8 activations too on "
              "VNNI/AMX CPUs). Figures per CPU: tools/bench/bench_expert_cpu.py", read_only=True),
    ParamSpec("max_runtime_error", 1e-2, "auto: the largest difference from float32 a runtime "
              "may have on this checkpoint (max |diff| / action_std over random probe inputs at "
              "the checkpoint's normalisation scale, VL ages 0-0.7 s)", read_only=True,
              min_value=1e-7, max_value=1.0),
    ParamSpec("expert_auto_budget_s", 60.0, "auto: seconds of start-up after which no further "
              "runtime is measured (one already converting finishes); the choice is made among "
              "those measured. A cached choice skips the measuring", read_only=True,
              min_value=0.0, max_value=3600.0),
    ParamSpec("expert_threads", 0, "Intra-op threads of the expert runtime (0 = the library's "
              "default)", read_only=True, min_value=0, max_value=256),
    ParamSpec("expert_cache_dir", "~/.cache/asyncvla/expert", "Keep converted models "
              "(ONNX/OpenVINO) and auto's choice here, keyed by the weights' hash (and, for the "
              "choice, the CPU and library versions), so a restart skips the conversion and the "
              "measuring ('' = convert and measure at every start)", read_only=True),
    ParamSpec("expert_dtype", "", "Replaced by expert_runtime (float32 -> torch_float32, "
              "bfloat16 -> torch_bf16_autocast); any value stops the node with that message",
              read_only=True),
    ParamSpec("action_rate_hz", 10.0, "Action ticks per second", read_only=True,
              min_value=0.5, max_value=200.0),
    ParamSpec("tick_source", "publisher_process", f"Who ticks: {TICK_SOURCES}. "
              "publisher_process (default): a thread of its own on absolute deadlines prepares "
              "each tick publish_lead_ms ahead (the newest finished inference re-timed to the "
              "tick; the expert runs on another thread) and a child process (<node>_publisher) "
              "publishes it at the deadline, away from the node's other Python: the steadiest "
              "period; timing_thread: as publisher_process, but the tick thread publishes "
              "itself; executor_timer: an rclpy timer runs the expert inline at each tick "
              "(fewest threads; the period follows the expert)", read_only=True),
    ParamSpec("publish_lead_ms", 8.0, "publisher_process: how long before its deadline a tick "
              "is prepared and handed to the publisher process (ms; below the period; above the tick "
              "thread's wake-up lateness, tick_late_ms_p99 in diagnostics); a tick "
              "handed over more than half a period late is dropped and counted, never bursted",
              read_only=True, min_value=0.5, max_value=50.0),
    ParamSpec("inference_trigger", "deadline", f"timing_thread, publisher_process: what "
              f"starts the expert {TRIGGERS}: 'deadline' (default) = a tick plans the next run "
              "to end 2 ms before the next tick is prepared, by the longest of the last 20 "
              "inference times (at most one run per tick; its inputs are about one inference "
              "time old when published, not one period); 'tick' = a tick starts it at once (published at the "
              "next tick); 'sensor' = a new force/OCT batch (the expert runs up to "
              "inference_max_rate_hz whatever the tick rate); only when the previous run has "
              "finished", read_only=True),
    ParamSpec("inference_max_rate_hz", 50.0, "timing_thread: expert runs per second at most",
              read_only=True, min_value=0.5, max_value=1000.0),
    ParamSpec("tick_thread_priority", 50, "timing_thread: SCHED_FIFO priority of the tick "
              "thread only (1-99; 0 = normal). Needs CAP_SYS_NICE or an rtprio limit; without "
              "it the thread runs at normal priority and diagnostics say so", read_only=True,
              min_value=0, max_value=99),
    ParamSpec("max_inference_age", 0.2, "timing_thread: oldest inference (s, from the time its "
              "inputs were taken to the tick) a tick may re-time and publish; older -> no "
              "action, ERROR", min_value=0.0),
    ParamSpec("max_vl_age", 1.0, "Oldest VL features (s, camera stamp to tick) the expert may "
              "act on; older -> no action, ERROR", min_value=0.0),
    ParamSpec("sensor_max_age", 0.05, "Max age (s) of the newest sensor sample at a tick",
              min_value=0.0),
    ParamSpec("sensor_max_gap", 0.01, "Largest gap (s) allowed between neighbouring samples "
              "inside the window", read_only=True, min_value=0.0),
    *shared("robot_state_max_age"),
    ParamSpec("expected_model_id", "", "Reject VL features from any other model id ('' = the "
              "checkpoint's vl_model_id, or any)", read_only=True),
    *shared("chunk_blending", "blend_old_weight", "ensemble_decay"),
    ParamSpec("publish_joint_trajectory", False, "Also publish trajectory_msgs/JointTrajectory "
              "(joint_delta policies)", read_only=True),
    *shared("joint_names", "max_future_stamp"),
    ParamSpec("vl_features_topic", "/asyncvla/vl_features", "VLFeatures input (latched)",
              read_only=True),
    ParamSpec("vl_publisher", "", "The node whose VL features are taken ('' = lock onto the "
              "first node seen alone on the topic); set at run time to re-lock after a second "
              "publisher was reported"),
    ParamSpec("sensor_topic", "/sensor/force_oct", "ForceOctBatch input", read_only=True),
    *shared("joint_state_topic", "pose_topic", "action_topic"),
    ParamSpec("trajectory_topic", "/asyncvla/joint_trajectory", "JointTrajectory output",
              read_only=True),
    *shared("diagnostics_period", "log_period"),
) + SAFETY_PARAMETERS

#: Float64 topics under ~/ for rqt_plot.
PLOT_TOPICS = ("vl_age", "inference_time_ms", "vl_reuse_count", "sensor_fill", "chunk_rate_hz")

