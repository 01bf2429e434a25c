"""DDS domain ids for tests are reserved machine-wide (tools/asyncvla_testing/processes.py).

Concurrent test runs (several engineers' suites and CI on one machine) each start DDS
participants; two runs on one domain see each other's topics. Every check here forces the
processes to try the same id first, so only the lock can keep them apart.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from asyncvla_testing.processes import DOMAIN_IDS, reserve_domain_id

TOOLS = os.path.join(os.path.dirname(__file__), "..", "..", "tools")
HOLDER = f"""
import sys
sys.path.insert(0, {TOOLS!r})
from asyncvla_testing.processes import reserve_domain_id
lease = reserve_domain_id(first=int(sys.argv[1]))
print(lease.domain_id, flush=True)
sys.stdin.read()  # hold the id until the test closes our stdin (or kills us)
"""


def start_holder(first: int) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(first)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip().isdigit(), f"holder printed {line!r}"
    return proc, int(line)


def test_parallel_processes_never_share_an_id():
    """Eight processes started together, all trying the same id first, hold eight ids."""
    procs = [subprocess.Popen([sys.executable, "-c", HOLDER, "42"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(8)]
    try:
        ids = [int(p.stdout.readline()) for p in procs]
        assert len(set(ids)) == len(ids), ids
        assert all(i in DOMAIN_IDS for i in ids), ids
        with reserve_domain_id(first=42) as mine:  # and this process gets none of theirs
            assert mine.domain_id not in ids, (mine.domain_id, ids)
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(10)


def test_two_leases_in_one_process_differ_and_a_released_id_is_free_again():
    a = reserve_domain_id(first=57)
    b = reserve_domain_id(first=a.domain_id)
    assert b.domain_id != a.domain_id
    taken = a.domain_id
    a.release()
    b.release()
    with reserve_domain_id(first=taken) as again:
        assert again.domain_id == taken


def test_a_killed_holder_leaves_no_id_taken():
    proc, held = start_holder(73)
    with reserve_domain_id(first=held) as other:
        assert other.domain_id != held
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    with reserve_domain_id(first=held) as after:
        assert after.domain_id == held  # the kernel dropped the dead holder's lock


def test_every_id_taken_is_an_error(monkeypatch):
    import asyncvla_testing.processes as processes

    with reserve_domain_id(first=20) as only:
        monkeypatch.setattr(processes, "DOMAIN_IDS", range(only.domain_id, only.domain_id + 1))
        with pytest.raises(RuntimeError, match="every DDS domain id"):
            processes.reserve_domain_id()


def test_the_ros_env_fixture_holds_its_id_for_the_test(ros_env):
    proc, got = start_holder(int(ros_env["ROS_DOMAIN_ID"]))
    try:
        assert got != int(ros_env["ROS_DOMAIN_ID"])
    finally:
        proc.stdin.close()
        proc.wait(10)
