"""Errors of the data pipeline: each names the bag (and the topic) it is about."""
from __future__ import annotations

# Kinds of BagDataError (the ``kind`` attribute), so callers and tests can branch without parsing text.
BAG_ERROR_KINDS = (
    "missing_bag",          # the path does not exist
    "missing_metadata",     # a directory without metadata.yaml (e.g. an interrupted recording)
    "unreadable",           # rosbags could not open or parse the storage
    "missing_topic",        # a required topic is not in the bag
    "wrong_type",           # a topic carries another message type than the one required
    "empty_stream",         # a required topic has no (usable) messages
    "definition_mismatch",  # the message definition we deserialise with differs from the recorded one
    "bad_message",          # a message could not be deserialised
    "corrupt",              # damaged storage: checksum mismatch, fewer messages than metadata.yaml
                            # counts, undecodable messages or images
    "no_samples",           # the streams never overlap long enough to give one training sample
    "config",               # the configuration cannot work with this bag
)


class BagDataError(Exception):
    """A recording cannot be turned into episodes; the message says which bag and topic, and why."""

    def __init__(self, message: str, *, bag: object, topic: str | None = None,
                 kind: str = "unreadable") -> None:
        if kind not in BAG_ERROR_KINDS:
            raise ValueError(f"unknown BagDataError kind {kind!r}")
        self.bag = str(bag)
        self.topic = topic
        self.kind = kind
        self.reason = message
        where = f"bag {self.bag}" + (f", topic {topic}" if topic else "")
        super().__init__(f"{where}: {message}")


class SplitError(ValueError):
    """A train/validation split is impossible with the episodes given (e.g. too few)."""


class CacheError(RuntimeError):
    """The VL feature cache cannot answer (a miss in read-only mode, an unusable directory)."""
