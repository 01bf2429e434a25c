"""Message types for reading bags without ROS: the bag's own definitions first, shipped ones second.

rosbag2 (Iron and later; both mcap and sqlite3) embeds every topic's message definition in the bag,
so a bag is self-describing and is decoded with exactly what was recorded. Older bags (or bags whose
definitions were stripped) carry only type names: then the standard types come from rosbags'
ROS 2 Jazzy store and the project's own ``asyncvla_msgs`` types from the copies of the ``.msg``
files shipped inside this package (``data/msgs``; a test keeps them equal to ``asyncvla_msgs/msg``).
When the bag records a type hash (RIHS01), the definition used is checked against it, so a drifted
definition is an error instead of silently garbled numbers.
"""
from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from rosbags.interfaces import MessageDefinitionFormat
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

from .errors import BagDataError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from rosbags.interfaces import Connection
    from rosbags.typesys.store import Typestore

SHIPPED_PACKAGE = "asyncvla_msgs"
_IDL_SEPARATOR = "=" * 80 + "\n"


def shipped_msg_texts() -> dict[str, str]:
    """{"asyncvla_msgs/msg/<Name>": text of <Name>.msg} from the copies shipped in this package."""
    folder = resources.files("asyncvla_training.data") / "msgs"
    texts = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".msg"):
            texts[f"{SHIPPED_PACKAGE}/msg/{entry.name[:-4]}"] = entry.read_text(encoding="utf-8")
    return dict(sorted(texts.items()))


def shipped_typestore() -> Typestore:
    """Jazzy standard types plus the shipped asyncvla_msgs types (used by the synthetic writer)."""
    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict = {}
    for name, text in shipped_msg_texts().items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def _embedded_types(connection: Connection) -> dict:
    definition = connection.msgdef
    if definition.format == MessageDefinitionFormat.MSG:
        return dict(get_types_from_msg(definition.data, connection.msgtype))
    if definition.format == MessageDefinitionFormat.IDL:
        types: dict = {}
        if definition.data.startswith(f"{_IDL_SEPARATOR}IDL: "):
            for part in definition.data.split(_IDL_SEPARATOR)[1:]:
                _, idl = part.split("\n", 1)
                types.update(get_types_from_idl(idl))
        else:
            types.update(get_types_from_idl(definition.data))
        return types
    return {}


def build_typestore(connections: Iterable[Connection], bag: object) -> tuple[Typestore, dict[str, str]]:
    """A typestore for ``connections`` and, per message type, where its definition came from.

    Sources, later ones winning: rosbags' Jazzy store, the shipped asyncvla_msgs copies, the
    definitions embedded in the bag. Raises BagDataError("definition_mismatch") when a recorded
    RIHS01 type hash disagrees with the definition that would be used.
    """
    connections = list(connections)
    jazzy = get_typestore(Stores.ROS2_JAZZY)
    types: dict = dict(jazzy.fielddefs)
    source = {name: "rosbags ROS2_JAZZY store" for name in types}
    for name, text in shipped_msg_texts().items():
        for sub, fields in get_types_from_msg(text, name).items():
            types[sub] = fields
            source[sub] = "asyncvla_training/data/msgs"
    for connection in connections:
        try:
            embedded = _embedded_types(connection)
        except Exception as exc:  # noqa: BLE001 - any parser failure is a bag problem
            raise BagDataError(f"cannot parse the embedded definition of {connection.msgtype}: {exc}",
                               bag=bag, topic=connection.topic, kind="definition_mismatch") from exc
        for sub, fields in embedded.items():
            types[sub] = fields
            source[sub] = "embedded in bag"
    store = get_typestore(Stores.EMPTY)
    store.register(types)
    for connection in connections:
        digest = connection.digest or ""
        if not digest.startswith("RIHS01_") or connection.msgtype not in store.types:
            continue
        have = store.hash_rihs01(connection.msgtype)
        if have != digest:
            raise BagDataError(
                f"message type {connection.msgtype} was recorded with hash {digest}, but the "
                f"definition available ({source.get(connection.msgtype, '?')}) hashes to {have}: "
                f"the .msg changed since the recording", bag=bag, topic=connection.topic,
                kind="definition_mismatch")
    return store, {name: source.get(name, "?") for name in {c.msgtype for c in connections}}
