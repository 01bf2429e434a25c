"""The `main()` every AsyncVLA node shares: init, spin single-threaded, report start-up errors.

Single-threaded on purpose: rclpy's MultiThreadedExecutor costs far more CPU on the action node's
input callbacks (its inputs at their rates, 265 messages/s) than the single-threaded one, and it
does not always keep up with them (tools/bench/bench_spin_cpu.py; the runs are in
docs/benchmarks/, the table in asyncvla_action_node/TIMING.md). Work that must not
block the executor (VL extraction, socket reads) runs on the node's own threads instead.
"""
from __future__ import annotations

import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


def spin_node(make_node: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Run the node until Ctrl-C; a start-up error is printed in one line and exits 1."""
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # start-up errors: say what is wrong, no traceback spam
        print(f"{name}: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
