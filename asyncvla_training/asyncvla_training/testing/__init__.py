"""Stand-ins for tests, demos and profiling, kept apart from the product code.

- ``tiny_vlm``: an offline tiny random-weight Qwen2.5-VL (same code paths as the real model) and
  the 3B architecture's config for random-weight speed measurements.
- ``synthetic_bag``: rosbag2 recordings of a synthetic insertion-like motion (the main job's data).
- ``synthetic_episodes``: in-memory episodes for smoke runs (``asyncvla-train --synthetic N``).
"""
