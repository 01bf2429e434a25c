"""Chunk CRCs for mcap files written by rosbags (which leaves them 0, "not present").

MCAP (https://mcap.dev/spec) gives every Chunk record a CRC-32 of its uncompressed records;
``ros2 bag record`` (the mcap C++ writer) fills it in, rosbags' writer writes 0. Readers check
the CRC only when it is non-zero (rosbags does: "Chunk checksum mismatch"), so a recording written
by rosbags can have bytes damaged inside a chunk and still be read. ``add_chunk_crcs`` fills in
the CRCs of an mcap file after rosbags closed it; ``chunk_crcs`` reads them back (tests, audits).

Layout of a Chunk record (opcode 0x06), after opcode (1 byte) and record length (uint64):
message_start_time u64, message_end_time u64, uncompressed_size u64, uncompressed_crc u32,
compression (u32 length + bytes), records length u64, records.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

MAGIC = b"\x89MCAP0\r\n"
OP_CHUNK = 0x06
OP_FOOTER = 0x02
_CRC_OFFSET = 24  # inside the Chunk record's content


def _chunks(data: bytes | bytearray):
    """(content offset, compression, records) of every Chunk record in the data section."""
    if data[:8] != MAGIC:
        raise ValueError("not an mcap file (bad magic)")
    pos = 8
    while pos + 9 <= len(data):
        op = data[pos]
        (length,) = struct.unpack_from("<Q", data, pos + 1)
        start = pos + 9
        if op == OP_FOOTER:
            return
        if op == OP_CHUNK:
            (name_len,) = struct.unpack_from("<I", data, start + 28)
            compression = bytes(data[start + 32:start + 32 + name_len]).decode()
            records_at = start + 32 + name_len
            (records_len,) = struct.unpack_from("<Q", data, records_at)
            yield start, compression, bytes(data[records_at + 8:records_at + 8 + records_len])
        pos = start + length


def add_chunk_crcs(path: str | Path) -> int:
    """Write the CRC-32 of every uncompressed chunk that has none; returns how many were written.

    Compressed chunks are left as they are (their CRC covers the decompressed bytes; rosbags'
    writer compresses only when asked, which the project's writers never do).
    """
    path = Path(path)
    data = bytearray(path.read_bytes())
    written = 0
    for start, compression, records in list(_chunks(data)):
        if compression or struct.unpack_from("<I", data, start + _CRC_OFFSET)[0]:
            continue
        struct.pack_into("<I", data, start + _CRC_OFFSET, zlib.crc32(records))
        written += 1
    if written:
        tmp = path.with_name(f".{path.name}.crc.tmp")
        tmp.write_bytes(bytes(data))
        tmp.replace(path)
    return written


def chunk_crcs(path: str | Path) -> list[int]:
    """The stored uncompressed CRC of every chunk (0 = not present)."""
    data = Path(path).read_bytes()
    return [struct.unpack_from("<I", data, start + _CRC_OFFSET)[0] for start, _, _ in _chunks(data)]
