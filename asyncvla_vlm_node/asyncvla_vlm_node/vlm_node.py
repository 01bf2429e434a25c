"""asyncvla_vlm_node: camera views + task prompt -> latched VL features (ROS glue only).

Subscribes to one image topic per view (sensor_msgs/CompressedImage or Image, by parameter),
keeps the newest frame of each, and every `target_period` starts one VL extraction on a worker
thread when every view is present, fresh and close enough in time to the others. Publishes
asyncvla_msgs/VLFeatures on a TRANSIENT_LOCAL depth-1 topic, /diagnostics, and Float64 topics
under ~/ for rqt_plot (compute_time_ms, update_rate_hz). The prompt can change at run time via
the `prompt` parameter or the `~/prompt` topic (std_msgs/String).

Every view has a heartbeat watchdog (`camera_timeout`, on arrival time): while one is silent no
update starts, /diagnostics says which view, and asyncvla_msgs/SafetyStatus (latched,
~/safety_status) lists every view's age, timeout, trips and last outage.
"""
from __future__ import annotations

import hashlib
import sys
import threading
import time

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Float64, String

from asyncvla_common import qos
from asyncvla_common.diagnostics import DiagnosticsPublisher
from asyncvla_common.guard import guarded
from asyncvla_common.image_conversion import ImageConverter
from asyncvla_common.params import ParamSpec, declare_all
from asyncvla_common.report import ERROR, OK, WARN, Report
from asyncvla_common.safety import WatchdogSet
from asyncvla_common.safety_status import fill_status
from asyncvla_common.spin import spin_node
from asyncvla_common.stats import Counters, RateMeter, RollingStats
from asyncvla_common.timeconv import ns_to_stamp, stamp_to_ns
from asyncvla_core.conventions import DEFAULT_PROMPT, VIEW_NAMES
from asyncvla_core.vl_payload import encode_features
from asyncvla_msgs.msg import SafetyStatus, VLFeatures
from asyncvla_vlm_node.frame_store import FrameStore, StoredFrame
from asyncvla_vlm_node.upstream_health import UpstreamHealth
from asyncvla_vlm_node.view_topics import view_topics
from asyncvla_vlm_node.vl_worker import VLWorker



#: Every parameter of the VLM node (name, default, description, range); declared in order.
VLM_NODE_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("policy_checkpoint", "", "Policy checkpoint this node serves: VL parameters left "
              "at their defaults take the checkpoint's values, conflicting ones stop the node "
              "('' = use the parameters as given)", read_only=True),
    ParamSpec("model_path", "Qwen/Qwen2.5-VL-3B-Instruct", "Local model directory or a model id "
              "already in the HF cache (loaded offline)", read_only=True),
    ParamSpec("adapter_path", "", "Optional peft LoRA adapter directory", read_only=True),
    ParamSpec("device", "auto", "auto (cuda if available), cpu, cuda, cuda:N", read_only=True),
    ParamSpec("dtype", "auto", "auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16",
              read_only=True),
    ParamSpec("views", list(VIEW_NAMES), "View names, in the order the model was trained on",
              read_only=True),
    ParamSpec("image_topics", [""], "One image topic per view, or [''] for all: a '' entry is "
              "camera/<view>/image_raw[/compressed] (relative: follows the namespace)",
              read_only=True),
    ParamSpec("image_transport", "compressed", "compressed (sensor_msgs/CompressedImage) or raw "
              "(sensor_msgs/Image)", read_only=True),
    ParamSpec("resize_width", 640, "Width (px) every view is resized to", read_only=True,
              min_value=28, max_value=4096),
    ParamSpec("resize_height", 360, "Height (px) every view is resized to", read_only=True,
              min_value=28, max_value=4096),
    ParamSpec("prompt", DEFAULT_PROMPT, "Task prompt (changeable at run time)"),
    ParamSpec("target_period", 0.3, "Seconds between VL update starts (an update never starts "
              "while one runs)", min_value=0.0),
    ParamSpec("max_frame_age", 0.5, "Skip the update when a view's newest frame is older than "
              "this (s)", min_value=0.0),
    ParamSpec("max_view_skew", 0.2, "Skip the update when views are further apart in time than "
              "this (s)", min_value=0.0),
    ParamSpec("num_feature_tokens", 64, "Tokens the hidden states are pooled to (payload rows)",
              read_only=True, min_value=1, max_value=1024),
    ParamSpec("feature_layer", -1, "LM layer the features come from (-1 last)", read_only=True),
    ParamSpec("payload_dtype", "float16", "float16, bfloat16 or float32", read_only=True),
    ParamSpec("vl_features_topic", "/asyncvla/vl_features", "VLFeatures output (latched)",
              read_only=True),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics", read_only=True,
              min_value=0.05),
    ParamSpec("log_period", 1.0, "Seconds between status log lines", min_value=0.0),
    ParamSpec("camera_timeout", 0.5, "Heartbeat: longest silence (s) of a view's image topic "
              "before updates stop (0 = off)", read_only=True, min_value=0.0),
    ParamSpec("safety_status_topic", "~/safety_status", "asyncvla_msgs/SafetyStatus output "
              "(latched; camera watchdogs)", read_only=True),
    ParamSpec("camera_bridge_node", "camera_bridge", "Node name of the camera bridge whose "
              "/diagnostics explain a silent camera ('' = do not listen)", read_only=True),
)


def prompt_id(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


class VLMNode(Node):
    def __init__(self) -> None:
        super().__init__("asyncvla_vlm_node")
        p = declare_all(self, VLM_NODE_PARAMETERS)
        contract = None
        if p["policy_checkpoint"]:
            from asyncvla_core.vl_contract import vlm_settings_from_checkpoint
            from asyncvla_policy.checkpoint import read_checkpoint_vl  # torch

            contract = read_checkpoint_vl(p["policy_checkpoint"])
            p, notes = vlm_settings_from_checkpoint(
                p, {s.name: s.default for s in VLM_NODE_PARAMETERS}, contract)
            for note in notes:
                self.get_logger().warning(note)
        views = list(p["views"])
        if p["image_transport"] not in ("compressed", "raw"):
            raise ValueError("image_transport must be 'compressed' or 'raw'")
        topics = view_topics(views, list(p["image_topics"]), p["image_transport"] == "compressed")
        from asyncvla_policy.vl_extractor import VLFeatureExtractor  # torch: slow import

        self.extractor = VLFeatureExtractor.from_pretrained(
            p["model_path"], adapter_path=p["adapter_path"] or None, device=p["device"],
            dtype=None if p["dtype"] == "auto" else p["dtype"],
            image_size=(p["resize_width"], p["resize_height"]), max_views=max(5, len(views)),
            num_feature_tokens=p["num_feature_tokens"], feature_layer=p["feature_layer"])
        if contract is not None:
            mismatch = contract.extractor_mismatch(self.extractor.model_id,
                                                   self.extractor.adapter_id, p["model_path"])
            if mismatch:
                raise ValueError(mismatch)
        # cv_bridge where it imports and converts correctly (ROS from apt), else the builtin
        # conversion; chosen here so the start-up line below can name it.
        self.image_converter = ImageConverter(warn=self.get_logger().warning)
        self.frames = FrameStore(views, converter=self.image_converter)
        self.payload_dtype = p["payload_dtype"]
        self.target_period = p["target_period"]
        self.max_frame_age, self.max_view_skew = p["max_frame_age"], p["max_view_skew"]
        self.log_period = p["log_period"]
        self._prompt_lock = threading.Lock()
        self._prompt = p["prompt"]
        self._sequence = 0
        self._last_start = 0.0
        self._last_skip_reason = ""
        self._last_error = ""
        self.counters = Counters()
        self.compute_stats = RollingStats()
        self.update_rate = RateMeter(window=10.0)
        self.watchdogs = WatchdogSet()
        for view in views:
            self.watchdogs.add(view, p["camera_timeout"])
        self._status_key: tuple | None = None

        images = MutuallyExclusiveCallbackGroup()
        for view, topic in zip(views, topics):
            if p["image_transport"] == "compressed":
                self.create_subscription(CompressedImage, topic,
                                         guarded(self, self.counters, view,
                                                 self._image_cb(view, True)),
                                         qos.sensor_subscriber(2), callback_group=images)
            else:
                self.create_subscription(Image, topic,
                                         guarded(self, self.counters, view,
                                                 self._image_cb(view, False)),
                                         qos.sensor_subscriber(2), callback_group=images)
        self.create_subscription(String, "~/prompt", self._on_prompt_topic, 10,
                                 callback_group=images)
        self.upstream = UpstreamHealth(p["camera_bridge_node"])
        if p["camera_bridge_node"]:
            self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10,
                                     callback_group=images)
        if self._prompt != self.get_parameter("prompt").value:  # taken from policy_checkpoint
            self.set_parameters([rclpy.parameter.Parameter("prompt", value=self._prompt)])
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.pub = self.create_publisher(VLFeatures, p["vl_features_topic"], qos.LATCHED)
        self.status_pub = self.create_publisher(SafetyStatus, p["safety_status_topic"],
                                                qos.LATCHED)
        self.create_timer(p["diagnostics_period"], lambda: self._publish_status(True),
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.plot_pubs = {n: self.create_publisher(Float64, f"~/{n}", 10)
                          for n in ("compute_time_ms", "update_rate_hz")}
        self.worker = VLWorker(self._extract, self._on_result, self._on_error)
        self.diagnostics = DiagnosticsPublisher(self, period=p["diagnostics_period"])
        self.diagnostics.add("vl updates", self._diag_updates)
        self.diagnostics.add("cameras", self._diag_cameras)
        self.create_timer(0.02, guarded(self, self.counters, "timer", self._on_timer),
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(
            f"VLM node ready: model {self.extractor.model_id} on {self.extractor.device}, "
            f"{p['num_feature_tokens']} tokens from layer {p['feature_layer']} at "
            f"{p['resize_width']}x{p['resize_height']}"
            + (f" (from {p['policy_checkpoint']})" if contract is not None else "") + ", "
            f"views {views} on {topics}, target period {self.target_period:.2f} s, "
            f"image conversion {self.image_converter.backend}"
            + (f" ({self.image_converter.reason})" if self.image_converter.reason else ""))

    # --- inputs -----------------------------------------------------------------------------
    def _image_cb(self, view: str, compressed: bool):
        def callback(msg) -> None:
            stamp = stamp_to_ns(msg.header.stamp)
            if compressed:
                fmt = msg.format.lower()
                encoding = "png" if "png" in fmt else "jpeg"
                frame = StoredFrame(stamp, encoding, bytes(msg.data))
            else:
                frame = StoredFrame(stamp, msg.encoding, bytes(msg.data), msg.width, msg.height,
                                    msg.step)
            self.frames.put(view, frame)
            outage = self.watchdogs.feed(view, time.monotonic())
            if outage is not None:
                self.get_logger().info(f"camera {view} is back after {outage * 1e3:.0f} ms")
        return callback

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        now = time.monotonic()
        for status in msg.status:
            level = status.level[0] if isinstance(status.level, bytes) else int(status.level)
            self.upstream.report(status.name, level, status.message, now)

    def _on_prompt_topic(self, msg: String) -> None:
        if msg.data.strip():
            self.set_parameters([rclpy.parameter.Parameter("prompt", value=msg.data)])

    def _on_set_parameters(self, params) -> SetParametersResult:
        for param in params:
            if param.name == "prompt":
                if not str(param.value).strip():
                    return SetParametersResult(successful=False, reason="prompt must not be empty")
                with self._prompt_lock:
                    self._prompt = str(param.value)
                self.get_logger().info(f"prompt changed to {param.value!r}")
            elif param.name == "target_period":
                self.target_period = float(param.value)
            elif param.name == "max_frame_age":
                self.max_frame_age = float(param.value)
            elif param.name == "max_view_skew":
                self.max_view_skew = float(param.value)
            elif param.name == "log_period":
                self.log_period = float(param.value)
        return SetParametersResult(successful=True)

    # --- the update loop --------------------------------------------------------------------
    def _on_timer(self) -> None:
        if self.worker.busy or time.monotonic() - self._last_start < self.target_period:
            return
        now_ns = self.get_clock().now().nanoseconds
        self._last_start = time.monotonic()  # also paces skip reports to one per period
        silent = self.watchdogs.check(self._last_start)
        if silent:
            reason = ("camera silent: " + self.watchdogs.describe(silent, self._last_start)
                      + self.upstream.explain(self._last_start))
            self._skip(reason, "cameras")
            return
        frame_set = self.frames.collect(now_ns, self.max_frame_age, self.max_view_skew)
        if frame_set.images is None:
            self._skip(frame_set.reason, "vl updates")
            return
        self._last_skip_reason = ""
        self._publish_status()
        with self._prompt_lock:
            prompt = self._prompt
        self.worker.try_submit((frame_set, prompt))

    def _skip(self, reason: str, diagnostic: str) -> None:
        self.counters.inc("updates_skipped")
        if reason.split(":")[0] != self._last_skip_reason.split(":")[0]:
            self.diagnostics.publish_now_if_worse(diagnostic, ERROR if diagnostic == "cameras"
                                                  else WARN)
        self._last_skip_reason = reason
        self._publish_status()
        self.get_logger().warning(f"VL update skipped: {reason}",
                                  throttle_duration_sec=max(self.log_period, 1.0))

    def _publish_status(self, force: bool = False) -> None:
        """Latched camera-watchdog status, on a change of the skip reason or periodically."""
        key = (self._last_skip_reason.split(":")[0],)
        if not force and key == self._status_key:
            return
        self._status_key = key
        counts = self.counters.snapshot()
        msg = fill_status(SafetyStatus(), None, self.watchdogs, time.monotonic(),
                          self.get_clock().now().nanoseconds, not self._last_skip_reason,
                          self._last_skip_reason, counts.get("updates_published", 0),
                          counts.get("updates_skipped", 0))
        self.status_pub.publish(msg)

    def _extract(self, job):
        frame_set, prompt = job
        return self.extractor.extract(frame_set.images, prompt)

    def _on_result(self, job, result) -> None:
        frame_set, prompt = job
        try:
            data, code = encode_features(result.features.numpy(), self.payload_dtype)
        except ValueError as exc:
            self._on_error(job, exc)
            return
        self._sequence += 1
        msg = VLFeatures()
        msg.header.stamp = ns_to_stamp(max(frame_set.stamps_ns))
        msg.header.frame_id = "vlm"
        msg.sequence = self._sequence
        msg.view_names = self.frames.views
        msg.view_stamps = [ns_to_stamp(s) for s in frame_set.stamps_ns]
        msg.prompt, msg.prompt_id = prompt, prompt_id(prompt)
        msg.model_id, msg.adapter_id = self.extractor.model_id, self.extractor.adapter_id
        msg.feature_layer = self.extractor.feature_layer
        msg.compute_time = float(result.compute_time)
        msg.token_count = int(result.token_count)
        msg.num_tokens, msg.feature_dim = result.features.shape
        msg.dtype, msg.data = code, data
        if not rclpy.ok():  # shutting down: the worker finished after the context closed
            return
        try:
            self.pub.publish(msg)
        except Exception as exc:  # noqa: BLE001 - context invalidated between check and publish
            self._on_error(job, exc)
            return
        self.counters.inc("updates_published")
        self.compute_stats.add(result.compute_time)
        self.update_rate.tick(time.monotonic())
        self.plot_pubs["compute_time_ms"].publish(Float64(data=result.compute_time * 1e3))
        self.plot_pubs["update_rate_hz"].publish(
            Float64(data=self.update_rate.rate(time.monotonic())))
        self.get_logger().info(f"[VL Update #{self._sequence}] completed in "
                               f"{result.compute_time * 1e3:.0f} ms ({result.token_count} tokens)",
                               throttle_duration_sec=self.log_period)

    def _on_error(self, job, exc: BaseException) -> None:
        self.counters.inc("update_errors")
        self._last_error = f"{type(exc).__name__}: {exc}"
        self.get_logger().error(f"VL update failed: {self._last_error}",
                                throttle_duration_sec=2.0)

    # --- diagnostics ------------------------------------------------------------------------
    def _diag_updates(self) -> Report:
        counts = self.counters.snapshot()
        values = {"published": counts.get("updates_published", 0),
                  "skipped": counts.get("updates_skipped", 0),
                  "errors": counts.get("update_errors", 0),
                  "rate_hz": self.update_rate.rate(time.monotonic()),
                  "compute_ms_p50": self.compute_stats.percentile(50) * 1e3,
                  "compute_ms_p99": self.compute_stats.percentile(99) * 1e3,
                  "last_error": self._last_error, "prompt_id": prompt_id(self._prompt),
                  "model_id": self.extractor.model_id}
        if self._last_skip_reason:
            return Report(WARN, f"skipping updates: {self._last_skip_reason}", values)
        if counts.get("updates_published", 0) == 0:
            level = ERROR if counts.get("update_errors", 0) else WARN
            return Report(level, "no VL update published yet", values)
        return Report(OK, "publishing VL features", values)

    def _diag_cameras(self) -> Report:
        now_ns = self.get_clock().now().nanoseconds
        stamps = self.frames.newest_stamps()
        values = {f"{v}_received": self.frames.received.get(v, 0) for v in self.frames.views}
        values.update({f"{v}_age_ms": (now_ns - s) / 1e6 for v, s in stamps.items()})
        values.update({f"dropped_{k}": n for k, n in self.frames.dropped.items()})
        values["image_conversion"] = self.image_converter.backend
        values["image_conversion_fallbacks"] = self.image_converter.frame_fallbacks
        now = time.monotonic()
        for dog in self.watchdogs.snapshot(now):
            values[f"{dog.name}_silent_ms"] = round(dog.age(now) * 1e3, 1)
            values[f"{dog.name}_trips"] = dog.trips
            values[f"{dog.name}_last_outage_ms"] = round(dog.last_outage * 1e3, 1)
        missing = [v for v in self.frames.views if v not in stamps]
        if missing:
            return Report(ERROR, f"no frames from {', '.join(missing)}"
                          + self.upstream.explain(now), values)
        silent = self.watchdogs.check(now)
        if silent:
            return Report(ERROR, "camera silent: " + self.watchdogs.describe(silent, now)
                          + self.upstream.explain(now), values)
        return Report(OK, f"{len(stamps)} views", values)

    def destroy_node(self) -> None:
        self.worker.stop()  # let a running extraction finish before the publisher goes away
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return spin_node(VLMNode, "asyncvla_vlm_node", args)


if __name__ == "__main__":
    sys.exit(main())
