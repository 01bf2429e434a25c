"""asyncvla_vlm_node: camera views + task prompt -> latched VL features (ROS glue only).

Subscribes to one image topic per view (sensor_msgs/CompressedImage or Image, by parameter),
keeps the newest frame of each, and every `timing.target_period` starts one VL extraction on a
worker thread when every view is present, fresh and close enough in time to the others. Publishes
asyncvla_msgs/VLFeatures on a TRANSIENT_LOCAL depth-1 topic, /diagnostics, and Float64 topics
under ~/ for rqt_plot (compute_time_ms, update_rate_hz). The prompt can change at run time via
the `prompt` parameter or the `~/prompt` topic (std_msgs/String).

Every view has a heartbeat watchdog (`watchdog.camera_timeout`, on arrival time): while one is
silent no update starts, /diagnostics says which view, and asyncvla_msgs/SafetyStatus (latched,
~/safety_status) lists every view's age, timeout, trips and last outage.

Parameters: vlm_config.VLMNodeConfig (dotted names by concern: model.path, timing.target_period,
views.names, ...), with the policy checkpoint's VL settings where they are left at defaults.
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
from asyncvla_common.params import declare_config
from asyncvla_common.report import ERROR, OK, WARN, Report
from asyncvla_common.safety import WatchdogSet
from asyncvla_common.safety_status import fill_status
from asyncvla_common.spin import spin_node
from asyncvla_common.stats import Counters, RateMeter, RollingStats
from asyncvla_common.timeconv import ns_to_stamp, stamp_to_ns
from asyncvla_core.vl_payload import encode_features
from asyncvla_msgs.msg import SafetyStatus, VLFeatures
from asyncvla_vlm_node.frame_store import FrameStore, StoredFrame
from asyncvla_vlm_node.upstream_health import UpstreamHealth
from asyncvla_vlm_node.vlm_config import VLMNodeConfig, with_checkpoint
from asyncvla_vlm_node.view_topics import view_topics
from asyncvla_vlm_node.vl_worker import VLWorker

#: Parameters changeable at run time -> the attribute that follows them.
RUNTIME_PARAMETERS = {"timing.target_period": "target_period",
                      "freshness.max_frame_age": "max_frame_age",
                      "freshness.max_view_skew": "max_view_skew",
                      "reporting.log_period": "log_period"}


def prompt_id(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


class VLMNode(Node):
    def __init__(self) -> None:
        super().__init__("asyncvla_vlm_node")
        cfg = declare_config(self, VLMNodeConfig)
        contract = None
        if cfg.policy_checkpoint:
            from asyncvla_policy.checkpoint import read_checkpoint_vl  # torch

            contract = read_checkpoint_vl(cfg.policy_checkpoint)
            cfg, notes = with_checkpoint(cfg, contract)
            for note in notes:
                self.get_logger().warning(note)
        cfg.check()
        self.config = cfg
        views = list(cfg.views.names)
        compressed = cfg.views.image_transport == "compressed"
        topics = view_topics(views, list(cfg.views.image_topics), compressed)
        from asyncvla_policy.vl_extractor import VLFeatureExtractor  # torch: slow import

        self.extractor = VLFeatureExtractor.from_pretrained(
            cfg.model.path, adapter_path=cfg.model.adapter_path or None, device=cfg.model.device,
            dtype=None if cfg.model.dtype == "auto" else cfg.model.dtype,
            image_size=(cfg.views.resize_width, cfg.views.resize_height),
            max_views=max(5, len(views)), num_feature_tokens=cfg.features.num_tokens,
            feature_layer=cfg.features.layer)
        if contract is not None:
            mismatch = contract.extractor_mismatch(self.extractor.model_id,
                                                   self.extractor.adapter_id, cfg.model.path)
            if mismatch:
                raise ValueError(mismatch)
        # cv_bridge where it imports and converts correctly (ROS from apt), else the builtin
        # conversion; chosen here so the start-up line below can name it.
        self.image_converter = ImageConverter(warn=self.get_logger().warning)
        self.frames = FrameStore(views, converter=self.image_converter)
        self.payload_dtype = cfg.features.payload_dtype
        self.target_period = cfg.timing.target_period
        self.max_frame_age = cfg.freshness.max_frame_age
        self.max_view_skew = cfg.freshness.max_view_skew
        self.log_period = cfg.reporting.log_period
        self._prompt_lock = threading.Lock()
        self._prompt = cfg.prompt
        self._sequence = 0
        self._last_start = 0.0
        self._last_skip_reason = ""
        self._last_error = ""
        self.counters = Counters()
        self.compute_stats = RollingStats()
        self.update_rate = RateMeter(window=10.0)
        self.watchdogs = WatchdogSet()
        for view in views:
            self.watchdogs.add(view, cfg.watchdog.camera_timeout)
        self._status_key: tuple | None = None

        images = MutuallyExclusiveCallbackGroup()
        for view, topic in zip(views, topics):
            if compressed:
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
        self.upstream = UpstreamHealth(cfg.watchdog.camera_bridge_node)
        if cfg.watchdog.camera_bridge_node:
            self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10,
                                     callback_group=images)
        if self._prompt != self.get_parameter("prompt").value:  # taken from policy_checkpoint
            self.set_parameters([rclpy.parameter.Parameter("prompt", value=self._prompt)])
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.pub = self.create_publisher(VLFeatures, cfg.topics.vl_features, qos.LATCHED)
        self.status_pub = self.create_publisher(SafetyStatus, cfg.topics.safety_status,
                                                qos.LATCHED)
        self.create_timer(cfg.reporting.diagnostics_period, lambda: self._publish_status(True),
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.plot_pubs = {n: self.create_publisher(Float64, f"~/{n}", 10)
                          for n in ("compute_time_ms", "update_rate_hz")}
        self.worker = VLWorker(self._extract, self._on_result, self._on_error)
        self.diagnostics = DiagnosticsPublisher(self, period=cfg.reporting.diagnostics_period)
        self.diagnostics.add("vl updates", self._diag_updates)
        self.diagnostics.add("cameras", self._diag_cameras)
        self.create_timer(0.02, guarded(self, self.counters, "timer", self._on_timer),
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(
            f"VLM node ready: model {self.extractor.model_id} on {self.extractor.device}, "
            f"{cfg.features.num_tokens} tokens from layer {cfg.features.layer} at "
            f"{cfg.views.resize_width}x{cfg.views.resize_height}"
            + (f" (from {cfg.policy_checkpoint})" if contract is not None else "") + ", "
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
            elif param.name in RUNTIME_PARAMETERS:
                setattr(self, RUNTIME_PARAMETERS[param.name], float(param.value))
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
