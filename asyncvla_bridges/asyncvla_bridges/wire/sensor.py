"""The force/OCT sensor's UDP datagrams: parse and validate without copying per value.

Wire format (the lab's force/OCT sensor PC, as in Najongs/Insertion_VLA): ``<I`` count N, then N records of ``<ddf`` (ts s,
send_ts s, force N) followed by one A-line ``<1025f``; record 4120 bytes, datagram exactly
4 + N * 4120 bytes. numpy reads the records in one structured view of the datagram.

A size mismatch drops the whole datagram (its record boundaries cannot be trusted); N = 0 is
dropped as "empty" (a well-formed datagram that carries nothing is still not something a sender
should emit). Non-finite values drop single records, reported by `finite_mask`, so one corrupt
A-line does not cost its neighbours.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .errors import WireError

ALINE_LENGTH = 1025
HEADER = struct.Struct("<I")
RECORD_DTYPE = np.dtype([("ts", "<f8"), ("send_ts", "<f8"), ("force", "<f4"),
                         ("aline", "<f4", (ALINE_LENGTH,))])
RECORD_SIZE = RECORD_DTYPE.itemsize
assert RECORD_SIZE == 4120
MAX_DATAGRAM = 65535  # what one UDP datagram can carry at most (IPv4 payload is 65507)


@dataclass(frozen=True)
class SensorBatch:
    """The records of one datagram as (read-only) views into its bytes."""

    records: np.ndarray   # structured, RECORD_DTYPE, shape (N,)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def ts(self) -> np.ndarray:
        return self.records["ts"]

    @property
    def send_ts(self) -> np.ndarray:
        return self.records["send_ts"]

    @property
    def force(self) -> np.ndarray:
        return self.records["force"]

    @property
    def alines(self) -> np.ndarray:
        return self.records["aline"]


def parse_sensor_datagram(data: bytes) -> SensorBatch:
    """Validate one datagram; raise WireError("size" | "empty") if it must be dropped whole."""
    if len(data) < HEADER.size:
        raise WireError("size", f"datagram of {len(data)} bytes has no record count")
    (count,) = HEADER.unpack_from(data)
    expected = HEADER.size + count * RECORD_SIZE
    if len(data) != expected:
        raise WireError("size", f"datagram of {len(data)} bytes, count {count} needs {expected}")
    if count == 0:
        raise WireError("empty", "datagram with zero records")
    records = np.frombuffer(data, dtype=RECORD_DTYPE, count=count, offset=HEADER.size)
    return SensorBatch(records)


def finite_mask(batch: SensorBatch) -> np.ndarray:
    """True for records whose times, force and whole A-line are finite."""
    recs = batch.records
    return (np.isfinite(recs["ts"]) & np.isfinite(recs["send_ts"]) & np.isfinite(recs["force"])
            & np.isfinite(recs["aline"]).all(axis=1))
