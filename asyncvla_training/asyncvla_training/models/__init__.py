"""AsyncVLA model library (ROS-free PyTorch).

* ``config``          - PolicyConfig & co., JSON schema version
* ``sensor_encoder``  - SensorEncoder: (B, T, C) force/OCT window -> (B, sensor_dim)
* ``action_expert``   - ActionExpert: fusion + transformer decoder -> (B, H, A)
* ``policy``          - ActionPolicy: encoder + expert + normalisation; ``predict`` for inference
* ``checkpoint``      - save_policy / load_policy (safetensors + JSON, no pickle)
* ``vl_extractor``    - VLFeatureExtractor around Qwen2.5-VL: views + prompt -> (K, D)
* ``lora``            - LoRA on the Qwen2.5-VL language model only

Importing this package does not import transformers/peft; they load when first needed.
"""
from .action_expert import ActionExpert
from .checkpoint import CheckpointError, load_checkpoint_metadata, load_policy, save_policy
from .config import (
    CONFIG_SCHEMA_VERSION,
    ActionExpertConfig,
    PolicyConfig,
    SensorEncoderConfig,
    VLConfig,
    tiny_policy_config,
)
from .fusions import FUSION_MODES, FUSIONS
from .lora import LM_ATTENTION_LORA_TARGET, LM_LORA_TARGET, attach_lora, load_lora_adapter, merge_lora
from .policy import ActionPolicy
from .sensor_encoder import SensorEncoder
from .vl_extractor import VLFeatureExtractor, VLFeatureResult

__all__ = [
    "CONFIG_SCHEMA_VERSION",
    "FUSION_MODES",
    "FUSIONS",
    "LM_ATTENTION_LORA_TARGET",
    "LM_LORA_TARGET",
    "ActionExpert",
    "ActionExpertConfig",
    "ActionPolicy",
    "CheckpointError",
    "PolicyConfig",
    "SensorEncoder",
    "SensorEncoderConfig",
    "VLConfig",
    "VLFeatureExtractor",
    "VLFeatureResult",
    "attach_lora",
    "load_checkpoint_metadata",
    "load_lora_adapter",
    "load_policy",
    "merge_lora",
    "save_policy",
    "tiny_policy_config",
]
