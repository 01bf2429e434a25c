"""Views are defined once (asyncvla_core.conventions.LAB_VIEWS); every YAML and default that
lists them must say the same, in the same order (the model's input order)."""
from __future__ import annotations

from pathlib import Path

import yaml

from asyncvla_bridges.bridge_config import CAMERA_BRIDGE_PARAMETERS
from asyncvla_bringup import catalog
from asyncvla_core.conventions import LAB_VIEWS, VIEW_NAMES
from asyncvla_vlm_node.view_topics import view_topics
from asyncvla_vlm_node.vlm_config import VLM_NODE_PARAMETERS

CONFIG = Path(__file__).resolve().parents[1] / "config"


def node_params(file: str, node: str) -> dict:
    """What the node starts with from the package YAML (which lists only overrides)."""
    kind = next(k for k in catalog.NODES.values() if k.node_name == node)
    return catalog.effective_parameters(kind, [CONFIG / file])


def test_bridge_yaml_and_defaults_follow_the_lab_views():
    params = node_params("bridges.yaml", "camera_bridge")
    assert params["views.names"] == list(VIEW_NAMES)
    assert params["views.camera_keys"] == [v.camera_key for v in LAB_VIEWS]
    assert params["views.frame_ids"] == [v.frame_id for v in LAB_VIEWS]
    defaults = {p.name: p.default for p in CAMERA_BRIDGE_PARAMETERS}
    assert defaults["views.names"] == list(VIEW_NAMES)
    assert defaults["views.camera_keys"] == [v.camera_key for v in LAB_VIEWS]


def test_vlm_and_record_yaml_follow_the_lab_views():
    vlm = node_params("vlm_node.yaml", "asyncvla_vlm_node")
    assert vlm["views.names"] == list(VIEW_NAMES)
    prefix = node_params("bridges.yaml", "camera_bridge")["topics.prefix"]
    topics = view_topics(vlm["views.names"], vlm["views.image_topics"],
                         vlm["views.image_transport"] == "compressed")
    assert topics == [v.topic(prefix).lstrip("/") for v in LAB_VIEWS]
    defaults = {p.name: p.default for p in VLM_NODE_PARAMETERS}
    assert defaults["views.names"] == list(VIEW_NAMES)  # the node's defaults, without a YAML
    assert view_topics(defaults["views.names"], defaults["views.image_topics"]) == topics
    assert yaml.safe_load((CONFIG / "record.yaml").read_text())["views"] == list(VIEW_NAMES)
