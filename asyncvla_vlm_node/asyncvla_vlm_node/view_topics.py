"""Which image topic each view is read from (no ROS).

Default: what the camera bridge publishes for the view (conventions.CameraView.topic), as a
relative name so a launch namespace moves it with the bridge's. A lab view is looked up in
conventions.LAB_VIEWS; any other view name gets the same pattern.
"""
from __future__ import annotations

from asyncvla_core.conventions import LAB_VIEWS, CameraView

#: Relative prefix of the camera bridge's topics (its topics.prefix default, without the root).
CAMERA_PREFIX = "camera"


def default_view_topic(view: str, compressed: bool = True) -> str:
    """camera/<view>/image_raw[/compressed] for `view`."""
    known = {v.name: v for v in LAB_VIEWS}
    return known.get(view, CameraView(view, "")).topic(CAMERA_PREFIX, compressed)


def view_topics(views: list[str], topics: list[str], compressed: bool = True) -> list[str]:
    """One topic per view: `topics` as given, '' entries filled with the view's default topic;
    [''] or [] means the default for every view. ValueError when the counts differ."""
    if len(topics) <= 1 and not any(topics):
        topics = [""] * len(views)
    if len(topics) != len(views):
        raise ValueError(f"{len(views)} views but {len(topics)} views.image_topics (give one per "
                         "view, or [''] for camera/<view>/image_raw[/compressed] each)")
    return [t or default_view_topic(v, compressed) for v, t in zip(views, topics)]
