#!/usr/bin/env python3
"""The main job: run the AsyncVLA pipeline on this machine and print a summary.

Until the nodes exist this is a smoke run of the built messages over DDS between two processes.
"""
from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from asyncvla_testing.processes import ProcessGroup, allocate_domain_id  # noqa: E402

PEER = os.path.join(HERE, "asyncvla_testing", "dds_peer.py")


def main() -> int:
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_DOMAIN_ID=str(allocate_domain_id()), PYTHONUNBUFFERED="1")
    summary = {}
    for kind in ("VLFeatures", "ActionChunk", "ForceOctBatch"):
        group = ProcessGroup(env)
        try:
            sub = group.start("sub", [PEER, "sub", "--type", kind, "--count", "10"])
            sub.wait_for_line("SUBSCRIBED", 30)
            group.start("pub", [PEER, "pub", "--type", kind, "--count", "10", "--period", "0.02",
                                "--wait-subscribers", "1", "--stamp-at-publish", "--hold", "1"])
            done = sub.wait_for_line("DONE", 60)
            summary[kind] = int(done.split("=")[1])
        finally:
            group.stop_all()
    print(json.dumps({"smoke": "messages over DDS", "received_of_10": summary}))
    return 0 if all(v == 10 for v in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
