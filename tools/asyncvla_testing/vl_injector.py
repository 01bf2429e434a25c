#!/usr/bin/env python3
"""Publishes VL features like the VLM node would, with faults on demand (fault injection tests).

The real VLM node cannot be made to emit NaN, another model id or another feature size on
purpose, so the fault-injection suite uses this stand-in on the same latched topic. Features are
random but finite and stamped "now" (a camera stamp from this machine's clock). Faults are read
from `--fault-file` (one name per line, re-read every 0.1 s):

    vl_nan      NaN values in the payload (sent as float32, bypassing the encoder's check)
    vl_inf      inf values in the payload (the same way)
    vl_model    another model id
    vl_dim      another feature dimension
    vl_pause    publish nothing (the VLM hung)

Each message's sequence number is printed with its mode ("SENT <seq> <mode>") so a test can
prove that no chunk was computed from a bad one.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from rclpy.node import Node

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from asyncvla_common import qos  # noqa: E402
from asyncvla_common.timeconv import ns_to_stamp  # noqa: E402
from asyncvla_core.vl_payload import DTYPE_FLOAT32, encode_features  # noqa: E402
from asyncvla_msgs.msg import VLFeatures  # noqa: E402

FAULTS = ("vl_nan", "vl_inf", "vl_model", "vl_dim", "vl_pause")


class VLInjector(Node):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__("asyncvla_vl_injector")
        self.args = args
        self.pub = self.create_publisher(VLFeatures, args.topic, qos.LATCHED)
        self.rng = np.random.default_rng(1)
        self.sequence = 0
        self.faults: set[str] = set()
        self.create_timer(1.0 / args.rate, self.publish)
        self.create_timer(0.1, self.read_faults)
        print("INJECTOR READY", flush=True)

    def read_faults(self) -> None:
        path = self.args.fault_file
        if path and os.path.exists(path):
            with open(path) as f:
                self.faults = {line.strip() for line in f if line.strip() in FAULTS}
        else:
            self.faults = set()

    def publish(self) -> None:
        if "vl_pause" in self.faults:
            return
        self.sequence += 1
        dim = self.args.dim + (8 if "vl_dim" in self.faults else 0)
        features = self.rng.standard_normal((self.args.tokens, dim)).astype(np.float32)
        msg = VLFeatures()
        msg.header.stamp = ns_to_stamp(self.get_clock().now().nanoseconds)
        msg.header.frame_id = "vlm"
        msg.sequence = self.sequence
        msg.model_id = self.args.model_id + ("-other" if "vl_model" in self.faults else "")
        msg.num_tokens, msg.feature_dim = features.shape
        if "vl_nan" in self.faults or "vl_inf" in self.faults:
            features[0, 0] = np.nan if "vl_nan" in self.faults else np.inf
            msg.dtype, msg.data = DTYPE_FLOAT32, features.astype("<f4").tobytes()
        else:
            data, code = encode_features(features, "float16")
            msg.dtype, msg.data = code, data
        self.pub.publish(msg)
        mode = ",".join(sorted(self.faults)) or "ok"
        print(f"SENT {self.sequence} {mode}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-id", required=True)
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("--dim", type=int, required=True)
    parser.add_argument("--rate", type=float, default=3.0)
    parser.add_argument("--topic", default="/asyncvla/vl_features")
    parser.add_argument("--fault-file", default="")
    args = parser.parse_args()
    from asyncvla_common.spin import spin_node

    sys.exit(spin_node(lambda: VLInjector(args), "VLInjector"))


if __name__ == "__main__":
    main()
