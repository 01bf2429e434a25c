"""Progress bars for people at a terminal; the JSON lines stay for logs and scripts.

A run started from a terminal shows a tqdm bar on stderr (steps or samples, rate, ETA, the
latest loss); under a job scheduler or a pipe stderr is not a TTY and nothing but the JSON lines
is written. JSON lines printed while a bar is shown go through ``write_above`` so they do not
break it.
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


def progress_bar(total: int | None, desc: str, unit: str, *, initial: int = 0,
                 enabled: bool | None = None):
    """A tqdm bar on stderr, or None. ``enabled``: None = only when stderr is a terminal."""
    stream = sys.stderr
    if enabled is None:
        enabled = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
    if not enabled:
        return None
    import shutil

    from tqdm import tqdm

    # A terminal that reports no size (a bare pseudo-terminal) would get an empty bar.
    sized = shutil.get_terminal_size((0, 0)).columns > 0
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=stream,
                dynamic_ncols=sized, ncols=None if sized else 100, smoothing=0.1)


@contextlib.contextmanager
def write_above(bar) -> Iterator[None]:
    """Print to the terminal without tearing the bar (clears it, prints, redraws)."""
    if bar is None:
        yield
        return
    from tqdm import tqdm

    with tqdm.external_write_mode(file=bar.fp):
        yield

