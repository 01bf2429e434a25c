"""The shipped SROS2 files: well-formed, of the policy 0.2.0 structure, and naming the topics the
nodes really use, so that only the intended enclave may publish each safety-relevant topic.

What is checked here is everything that can be checked without a Fast DDS built with security
(the PyPI wheels have none): the structure of policy.xml as `ros2 security` reads it (a structural
check written from the SROS2 policy format 0.2.0: policy/enclaves/enclave/profiles/profile with
topics/services/actions lists and ALLOW/DENY qualifiers), governance.xml's rules, the topic names
against the nodes' parameter tables, and the launch plan of secure:=true.
"""
from __future__ import annotations

import fnmatch
import xml.etree.ElementTree as ET

import pytest

from asyncvla_bringup import catalog, security

QUALIFIERS = {"ALLOW", "DENY"}
LISTS = {"topics": ("topic", {"publish", "subscribe"}),
         "services": ("service", {"reply", "request"}),
         "actions": ("action", {"call", "execute"})}


def policy_root() -> ET.Element:
    return ET.parse(security.security_dir() / security.POLICY_FILE).getroot()


def check_policy_structure(root: ET.Element) -> list[str]:
    """Problems with the SROS2 policy format 0.2.0 structure ([] when none)."""
    problems = []
    if root.tag != "policy" or root.get("version") != "0.2.0":
        problems.append(f"root {root.tag} version {root.get('version')}: need policy 0.2.0")
    if [c.tag for c in root] != ["enclaves"]:
        problems.append(f"policy children {[c.tag for c in root]}: need exactly <enclaves>")
    for enclave in root.iter("enclave"):
        path = enclave.get("path", "")
        if not path.startswith("/"):
            problems.append(f"enclave path {path!r} must be absolute")
        if not [c for c in enclave if c.tag == "profiles"] or any(
                c.tag != "profiles" for c in enclave):
            problems.append(f"{path}: an enclave holds <profiles> only")
        for profiles in enclave.findall("profiles"):
            if not profiles.findall("profile"):
                problems.append(f"{path}: empty <profiles>")
            for profile in profiles:
                if profile.tag == "metadata":
                    continue
                if profile.tag != "profile" or not profile.get("ns") or not profile.get("node"):
                    problems.append(f"{path}: <{profile.tag}> needs ns and node")
                for rules in profile:
                    if rules.tag not in LISTS:
                        problems.append(f"{path}: unknown rule list <{rules.tag}>")
                        continue
                    child, attrs = LISTS[rules.tag]
                    given = set(rules.attrib)
                    if not given or not given <= attrs or \
                            not {rules.get(a) for a in given} <= QUALIFIERS:
                        problems.append(f"{path}: <{rules.tag} {rules.attrib}> needs "
                                        f"{sorted(attrs)} = ALLOW|DENY")
                    items = list(rules)
                    if not items or any(i.tag != child or not (i.text or "").strip()
                                        for i in items):
                        problems.append(f"{path}: <{rules.tag}> needs non-empty <{child}>s")
    return problems


def rules(root: ET.Element, kind: str) -> dict[str, set[str]]:
    """{enclave: fully qualified topic patterns it may `kind` (publish / subscribe)}."""
    out: dict[str, set[str]] = {}
    for enclave in root.iter("enclave"):
        names = out.setdefault(enclave.get("path"), set())
        for profile in enclave.iter("profile"):
            node = profile.get("node")
            ns = profile.get("ns").rstrip("/")
            for topics in profile.findall("topics"):
                if topics.get(kind) != "ALLOW":
                    continue
                for topic in topics:
                    name = topic.text.strip()
                    if name.startswith("~/"):
                        name = f"{ns}/{node}/{name[2:]}"
                    elif not name.startswith("/") and name != "*":
                        name = f"{ns}/{name}"
                    names.add(name)
    return out


def allowed(patterns: set[str], topic: str) -> bool:
    return any(fnmatch.fnmatchcase(topic, p) for p in patterns)


def action_topics():
    from asyncvla_action_node.action_config import ActionTopics

    return ActionTopics()


def test_policy_is_well_formed_sros2_policy():
    root = policy_root()
    assert check_policy_structure(root) == []
    assert {e.get("path") for e in root.iter("enclave")} == set(security.ALL_ENCLAVES)


def test_the_structural_check_catches_broken_policies():
    bad = ET.fromstring('<policy version="0.1.0"><enclaves><enclave path="rel"><profiles>'
                        '<profile ns="/"><topics publish="MAYBE"><topic/></topics>'
                        '<widgets/></profile></profiles></enclave></enclaves></policy>')
    problems = "\n".join(check_policy_structure(bad))
    for needle in ("version 0.1.0", "must be absolute", "needs ns and node", "ALLOW|DENY",
                   "non-empty <topic>", "unknown rule list <widgets>"):
        assert needle in problems, problems


def test_governance_controls_access_on_every_topic():
    root = ET.parse(security.security_dir() / security.GOVERNANCE_FILE).getroot()
    rule = root.find("domain_access_rules/domain_rule")
    assert rule.findtext("allow_unauthenticated_participants") == "false"
    assert rule.findtext("enable_join_access_control") == "true"
    ids = rule.find("domains/id_range")
    assert (int(ids.findtext("min")), int(ids.findtext("max"))) == (0, 232)
    topic_rule = rule.find("topic_access_rules/topic_rule")
    assert topic_rule.findtext("topic_expression") == "*"
    assert topic_rule.findtext("enable_write_access_control") == "true"
    assert topic_rule.findtext("enable_read_access_control") == "true"


def test_action_node_topics_match_the_code_and_only_the_right_enclave_publishes_them():
    t = action_topics()
    root = policy_root()
    pub, sub = rules(root, "publish"), rules(root, "subscribe")
    action = security.ENCLAVES["action"]
    # Every topic the action node subscribes to, and who alone may publish it.
    inputs = {t.vl_features: security.ENCLAVES["vlm"],
              t.sensor: security.ENCLAVES["sensor_bridge"],
              t.joint_state: security.ENCLAVES["robot_bridge"],
              t.pose: security.ENCLAVES["robot_bridge"],
              t.enable: security.OPERATOR_ENCLAVE,
              t.estop: security.OPERATOR_ENCLAVE}
    for topic, owner in inputs.items():
        assert allowed(sub[action], topic), topic
        publishers = {e for e, patterns in pub.items() if allowed(patterns, topic)}
        assert publishers == {owner}, (topic, publishers)
    for topic in (t.action, t.trajectory):
        publishers = {e for e, patterns in pub.items() if allowed(patterns, topic)}
        assert publishers == {action}, (topic, publishers)
    status = "/asyncvla_action_node/" + t.safety_status.removeprefix("~/")
    assert allowed(pub[action], status)
    assert allowed(sub[security.OPERATOR_ENCLAVE], status)
    from asyncvla_action_node.action_config import PLOT_TOPICS

    for name in PLOT_TOPICS:
        assert allowed(pub[action], f"/asyncvla_action_node/{name}"), name


def test_vlm_topics_match_the_code():
    from asyncvla_vlm_node.vlm_config import VLM_NODE_PARAMETERS

    p = {s.name: s.default for s in VLM_NODE_PARAMETERS}
    root = policy_root()
    vlm = security.ENCLAVES["vlm"]
    assert allowed(rules(root, "publish")[vlm], p["topics.vl_features"])
    for view in ("view1", "view5"):  # the default image topics of the VLM and camera bridge
        topic = f"/camera/{view}/image_raw/compressed"
        assert allowed(rules(root, "subscribe")[vlm], topic)
        assert allowed(rules(root, "publish")[security.ENCLAVES["camera_bridge"]], topic)


def test_secure_launch_puts_every_node_in_its_enclave(tmp_path):
    keystore = tmp_path / "keystore"
    (keystore / "enclaves").mkdir(parents=True)
    plan = catalog.plan("action", {"checkpoint": "/data/policy", "secure": "true",
                                   "keystore": str(keystore)})
    assert {n.key for n in plan.nodes} >= {"action", "robot_bridge", "sensor_bridge"}
    for node in plan.nodes:
        i = node.ros_arguments.index("--enclave")
        assert node.ros_arguments[i + 1] == security.ENCLAVES[node.key]
        assert node.env == {"ROS_SECURITY_KEYSTORE": str(keystore),
                            "ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": "Enforce"}
    plain = catalog.plan("action", {"checkpoint": "/data/policy"})
    assert all("--enclave" not in n.ros_arguments and not n.env for n in plain.nodes)
    with pytest.raises(ValueError, match="create_keystore"):
        catalog.plan("action", {"checkpoint": "/data/policy", "secure": "true"})
