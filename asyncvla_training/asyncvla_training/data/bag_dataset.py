"""rosbag2 recordings -> aligned ``Episode`` objects: the entry point of the trainers.

    from asyncvla_training.data import BagDatasetConfig, load_episodes
    episodes = load_episodes(["bags/run01", "bags/run02"], BagDatasetConfig(views=("view1",)))

A path may be a rosbag2 directory (metadata.yaml), a single .mcap/.db3 file, or a folder holding
bag directories (searched recursively). See asyncvla_training/TRAINING_DATA.md.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from asyncvla_core.conventions import DEFAULT_PROMPT
from .alignment import AlignmentConfig, AlignmentReport, align_streams
from .bag_reader import BagTopics, read_bag_streams
from .episode import Episode
from .errors import BagDataError

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class BagDatasetConfig:
    """Everything that decides how bags become episodes (store it with a checkpoint).

    ``views``: camera views in the order the VLM node is configured with; None = every view found
    (sorted by name). ``prompt``: force this prompt; None = the bag's (custom data
    ``asyncvla.prompt``, else the first recorded VLFeatures prompt), else ``default_prompt``.
    """

    views: tuple[str, ...] | None = None
    topics: BagTopics = field(default_factory=BagTopics)
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    aline_length: int = 1025
    prompt: str | None = None
    default_prompt: str = DEFAULT_PROMPT

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BagDatasetConfig:
        data = dict(data)
        topics_data = dict(data.pop("topics", None) or {})
        alignment_data = dict(data.pop("alignment", None) or {})
        for name, given, known_cls in (("topics", topics_data, BagTopics),
                                       ("alignment", alignment_data, AlignmentConfig)):
            unknown = set(given) - {f.name for f in fields(known_cls)}
            if unknown:
                raise ValueError(f"unknown BagDatasetConfig.{name} key(s): {sorted(unknown)}")
        topics = BagTopics(**{k: tuple(v) if isinstance(v, list) else v
                              for k, v in topics_data.items()})
        alignment = AlignmentConfig(**alignment_data)
        if data.get("views") is not None:
            data["views"] = tuple(data["views"])
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown BagDatasetConfig key(s): {sorted(unknown)}")
        return cls(topics=topics, alignment=alignment, **data)


def find_bags(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Bag paths under ``paths``: bag directories, .mcap/.db3 files, or folders searched for bags.

    A path that does not exist is returned as is (loading it raises BagDataError "missing_bag").
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists() or path.is_file() or (path / "metadata.yaml").is_file():
            found.append(path)
            continue
        bags = sorted(p.parent for p in path.rglob("metadata.yaml"))
        if not bags:
            found.append(path)  # reported as missing metadata when loaded
        found.extend(bags)
    return found


def load_bag(path: str | Path, config: BagDatasetConfig = BagDatasetConfig()
             ) -> tuple[list[Episode], AlignmentReport]:
    """Episodes of one bag (more than one when holes split it) and the alignment report."""
    streams = read_bag_streams(path, config.topics, config.views, config.aline_length)
    prompt = config.prompt or streams.prompt or config.default_prompt
    if config.prompt:
        streams.prompt_source = "config"
    elif not streams.prompt:
        streams.prompt_source = "default"
    return align_streams(streams, config.alignment, prompt)


def load_episodes(paths: str | Path | Iterable[str | Path],
                  config: BagDatasetConfig = BagDatasetConfig(), *, skip_errors: bool = False,
                  reports: list[AlignmentReport] | None = None) -> list[Episode]:
    """Episodes of every bag under ``paths``, in path order.

    ``skip_errors``: log and skip bags that raise BagDataError instead of failing (the errors are
    still reported through ``reports`` as a report with ``skipped={"error: <kind>": 1}``).
    """
    return list(iter_episodes(paths, config, skip_errors=skip_errors, reports=reports))


def iter_episodes(paths: str | Path | Iterable[str | Path],
                  config: BagDatasetConfig = BagDatasetConfig(), *, skip_errors: bool = False,
                  reports: list[AlignmentReport] | None = None) -> Iterator[Episode]:
    """``load_episodes`` one bag at a time: only one bag's episodes are alive at once if the
    caller does not keep them (the LeRobot export streams datasets larger than memory this way)."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    names: dict[str, str] = {}
    bags = find_bags(paths)
    if not bags:
        raise BagDataError("no bags found", bag=", ".join(map(str, paths)), kind="missing_bag")
    for bag in bags:
        try:
            found, report = load_bag(bag, config)
        except BagDataError as exc:
            if not skip_errors:
                raise
            LOG.warning("skipping %s", exc)
            if reports is not None:
                reports.append(AlignmentReport(bag=str(bag), name=bag.name,
                                               skipped={f"error: {exc.kind}": 1}))
            continue
        for episode in found:
            if episode.name in names:
                raise BagDataError(f"episode name {episode.name!r} also comes from "
                                   f"{names[episode.name]}; bag names must be unique", bag=bag,
                                   kind="config")
            names[episode.name] = str(bag)
        if reports is not None:
            reports.append(report)
        LOG.info("%s: %d samples in %d episode(s), skipped %s", bag, report.samples,
                 report.segments, report.skipped or "none")
        yield from found


def dataset_summary(episodes: Sequence[Episode]) -> dict:
    """Counts for logs: episodes, samples, seconds, views, action space."""
    return {
        "episodes": len(episodes),
        "samples": int(sum(len(e) for e in episodes)),
        "seconds": float(sum(len(e) * e.step_period for e in episodes)),
        "views": list(episodes[0].views) if episodes else [],
        "action_space": episodes[0].action_space if episodes else "",
    }
