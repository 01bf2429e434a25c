"""The VLM node's parameters: one typed config, grouped by concern, readable without ROS.

`VLMNodeConfig` is the one spec: the node declares its leaves as dotted ROS parameters
(``timing.target_period``; `params.declare_config`) and works from the typed config; the launch
catalog and the YAML checker read `VLM_NODE_PARAMETERS` (the same leaves as flat `ParamSpec`)
and `OLD_NAMES` (every flat name of before, with the parameter that replaced it), without
importing rclpy, torch or the node. The reporting group and the safety-status topic are
`asyncvla_common.node_config`'s (every node reports alike).

`policy_checkpoint`: the settings the policy was trained with (`CHECKPOINT_SETTINGS`) are taken
from the checkpoint where they are left at their defaults (`asyncvla_core.vl_contract`), so the
config the node works from is `with_checkpoint`'s, not the declared one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from asyncvla_common import node_config as common
from asyncvla_common.param_spec import (ParamSpec, build_config, config_values, flat_specs,
                                        old_names, param)
from asyncvla_core import freshness
from asyncvla_core.conventions import DEFAULT_PROMPT

#: How the VLM node's images arrive (`views.image_transport`).
IMAGE_TRANSPORTS = ("compressed", "raw")


@dataclass(frozen=True)
class ModelConfig:
    """Which vision-language model runs, and where."""

    path: str = param("Qwen/Qwen2.5-VL-3B-Instruct", "Local model directory or a model id "
                      "already in the HF cache (loaded offline)", read_only=True,
                      was="model_path")
    adapter_path: str = param("", "Optional peft LoRA adapter directory", read_only=True,
                              was="adapter_path")
    device: str = param("auto", "auto (cuda if available), cpu, cuda, cuda:N", read_only=True,
                        was="device")
    dtype: str = param("auto", "auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16",
                       read_only=True, was="dtype")


@dataclass(frozen=True)
class FeaturesConfig:
    """What the published VL features are made of."""

    num_tokens: int = param(64, "Tokens the hidden states are pooled to (payload rows)",
                            read_only=True, min_value=1, max_value=1024,
                            was="num_feature_tokens")
    layer: int = param(-1, "LM layer the features come from (-1 last)", read_only=True,
                       was="feature_layer")
    payload_dtype: str = param("float16", "float16, bfloat16 or float32", read_only=True,
                               was="payload_dtype")


@dataclass(frozen=True)
class ViewsConfig:
    """The camera views, in the model's order, and how their images arrive."""

    names: tuple[str, ...] = common.VIEW_NAMES_SPEC.as_field(was="views")
    image_topics: tuple[str, ...] = param(
        [""], "One image topic per view, or [''] for all: a '' entry is "
        "camera/<view>/image_raw[/compressed] (relative: follows the namespace)",
        read_only=True, was="image_topics")
    image_transport: str = param("compressed", "compressed (sensor_msgs/CompressedImage) or raw "
                                 "(sensor_msgs/Image)", read_only=True, was="image_transport")
    resize_width: int = param(640, "Width (px) every view is resized to", read_only=True,
                              min_value=28, max_value=4096, was="resize_width")
    resize_height: int = param(360, "Height (px) every view is resized to", read_only=True,
                               min_value=28, max_value=4096, was="resize_height")


@dataclass(frozen=True)
class TimingConfig:
    target_period: float = param(0.3, "Seconds between VL update starts (an update never starts "
                                 "while one runs)", min_value=0.0, was="target_period")


@dataclass(frozen=True)
class FreshnessConfig:
    """When the newest frames are too old, or too far apart, to start an update."""

    max_frame_age: float = param(
        freshness.MAX_FRAME_AGE_S, "Skip the update when a view's newest frame is older than "
        "this (s)", min_value=0.0, was="max_frame_age")
    max_view_skew: float = param(
        freshness.MAX_VIEW_SKEW_S, "Skip the update when views are further apart in time than "
        "this (s)", min_value=0.0, was="max_view_skew")


@dataclass(frozen=True)
class WatchdogConfig:
    """The cameras' heartbeats, and whose /diagnostics explain a silent one."""

    camera_timeout: float = param(0.5, "Heartbeat: longest silence (s) of a view's image topic "
                                  "before updates stop (0 = off)", read_only=True,
                                  min_value=0.0, was="camera_timeout")
    camera_bridge_node: str = param("camera_bridge", "Node name of the camera bridge whose "
                                    "/diagnostics explain a silent camera ('' = do not "
                                    "listen)", read_only=True, was="camera_bridge_node")


@dataclass(frozen=True)
class VLMTopics:
    vl_features: str = common.VL_FEATURES_TOPIC.as_field(was="vl_features_topic")
    safety_status: str = common.SAFETY_STATUS_TOPIC.as_field(was="safety_status_topic")


@dataclass(frozen=True)
class VLMNodeConfig:
    """Every parameter of the VLM node."""

    policy_checkpoint: str = param("", "Policy checkpoint this node serves: VL parameters left "
                                   "at their defaults take the checkpoint's values, conflicting "
                                   "ones stop the node ('' = use the parameters as given)",
                                   read_only=True)
    prompt: str = param(DEFAULT_PROMPT, "Task prompt (changeable at run time)")
    model: ModelConfig = field(default_factory=ModelConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    views: ViewsConfig = field(default_factory=ViewsConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    freshness: FreshnessConfig = field(default_factory=FreshnessConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    topics: VLMTopics = field(default_factory=VLMTopics)
    reporting: common.ReportingConfig = field(default_factory=common.ReportingConfig)

    def check(self) -> None:
        """ValueError naming the parameter when a value cannot work."""
        if self.views.image_transport not in IMAGE_TRANSPORTS:
            raise ValueError(f"views.image_transport {self.views.image_transport!r}: expected "
                             f"one of {IMAGE_TRANSPORTS}")


def with_checkpoint(config: VLMNodeConfig, checkpoint_vl) -> tuple[VLMNodeConfig, list[str]]:
    """The config with the settings left at their defaults taken from the policy checkpoint
    (`vl_contract.CheckpointVL`), and notes to log; ValueError names every conflicting one."""
    from asyncvla_core.vl_contract import vlm_settings_from_checkpoint

    values, notes = vlm_settings_from_checkpoint(config_values(config),
                                                 config_values(VLMNodeConfig()), checkpoint_vl)
    return build_config(VLMNodeConfig, values), notes


#: The node's parameters as flat specs (dotted names), in declaration order.
VLM_NODE_PARAMETERS: tuple[ParamSpec, ...] = flat_specs(VLMNodeConfig)
#: Every replaced name -> the parameter that replaced it (the node stops on an old one).
OLD_NAMES: dict[str, str] = old_names(VLMNodeConfig)
