"""`latest_only`: publish the new chunk as it is (LeRobot's `latest_only`)."""
from __future__ import annotations

from ..chunk import Chunk
from .base import BlendingStrategy


class LatestOnly(BlendingStrategy):
    name = "latest_only"

    def combine(self, new: Chunk) -> Chunk:
        return new
