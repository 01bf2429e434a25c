"""Damaged recordings are refused, not read around: garbage in the middle of an mcap (with and
without chunk CRCs), a damaged JPEG payload, and --skip-errors / skip_errors leaving them out."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from asyncvla_testing.synthetic_bag import SyntheticBagSpec, write_synthetic_bag  # noqa: E402
from asyncvla_training.data import BagDataError, load_bag, load_episodes  # noqa: E402
from asyncvla_training.data import lerobot_export  # noqa: E402
from asyncvla_training.data.mcap_crc import chunk_crcs  # noqa: E402
from asyncvla_training.data.windows import image_problem  # noqa: E402

SPEC = dict(duration=2.0, image_size=(320, 240))


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """One mcap bag with chunk CRCs (the project's writer) and one without (plain rosbags)."""
    root = tmp_path_factory.mktemp("clean")
    return {crc: write_synthetic_bag(root / f"crc_{crc}", "mcap",
                                     SyntheticBagSpec(chunk_crcs=crc, **SPEC)).path
            for crc in (True, False)}


def _copy(bag: Path, dest: Path) -> tuple[Path, Path]:
    shutil.copytree(bag, dest)
    (mcap,) = dest.glob("*.mcap")
    return dest, mcap


def test_chunk_crcs_are_written_and_a_sound_bag_loads(clean) -> None:
    (with_crc,) = clean[True].glob("*.mcap")
    (without,) = clean[False].glob("*.mcap")
    assert len(chunk_crcs(with_crc)) > 2 and all(chunk_crcs(with_crc))
    assert not any(chunk_crcs(without))
    for bag in clean.values():
        episodes, report = load_bag(bag)
        assert report.samples > 5 and len(episodes) == 1


@pytest.mark.parametrize("crc", [True, False])
@pytest.mark.parametrize("how", ["overwrite", "insert"])
def test_garbage_in_the_middle_of_an_mcap_is_refused(clean, tmp_path: Path, crc: bool, how: str) -> None:
    bag, mcap = _copy(clean[crc], tmp_path / "bag")
    data = mcap.read_bytes()
    garbage = np.random.default_rng(7).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    mid = len(data) // 2
    tail = data[mid + len(garbage):] if how == "overwrite" else data[mid:]
    mcap.write_bytes(data[:mid] + garbage + tail)
    with pytest.raises(BagDataError) as info:
        load_bag(bag)
    assert str(bag) in str(info.value)
    if how == "insert":  # shifted offsets: the summary no longer matches, refused at open
        assert info.value.kind in ("corrupt", "unreadable")
    else:
        assert info.value.kind == "corrupt"
        assert "restore the file or re-record it" in str(info.value)
    if crc and how == "overwrite":
        assert "checksum" in str(info.value)


def test_damaged_jpeg_payload_is_counted_and_refused(clean, tmp_path: Path) -> None:
    bag, mcap = _copy(clean[False], tmp_path / "bag")  # no CRC: the damage reaches the decoder
    data = bytearray(mcap.read_bytes())
    starts = [i for i in range(len(data)) if data[i:i + 3] == b"\xff\xd8\xff"]
    ends = [data.index(b"\xff\xd9", s) + 2 for s in starts]
    k = len(starts) // 2
    payload = bytes(data[starts[k]:ends[k]])
    assert image_problem(payload) is None
    size = min(4096, len(payload) // 2)
    at = starts[k] + len(payload) // 3
    data[at:at + size] = np.random.default_rng(3).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert image_problem(bytes(data[starts[k]:ends[k]])) is not None
    mcap.write_bytes(bytes(data))
    with pytest.raises(BagDataError) as info:
        load_bag(bag)
    text = str(info.value)
    assert info.value.kind == "corrupt" and "/camera/view" in text and "undecodable" in text
    assert "1 of " in text  # counted: one frame of that view


def test_skip_errors_leaves_a_damaged_bag_out(clean, tmp_path: Path, capsys) -> None:
    bag, mcap = _copy(clean[True], tmp_path / "bags" / "damaged")
    shutil.copytree(clean[True], tmp_path / "bags" / "sound")
    data = bytearray(mcap.read_bytes())
    data[len(data) // 2:len(data) // 2 + 1000] = b"\x00" * 1000
    mcap.write_bytes(bytes(data))
    reports: list = []
    episodes = load_episodes(tmp_path / "bags", skip_errors=True, reports=reports)
    assert [e.name for e in episodes] == ["sound"]
    assert [r.skipped for r in reports if r.name == "damaged"] == [{"error: corrupt": 1}]
    out = tmp_path / "ds"
    assert lerobot_export.main([str(tmp_path / "bags"), "--output", str(out)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(bag) in line and "checksum" in line and "--skip-errors" in line
    assert not out.exists()
