"""One JSON object, filled part by part and printed exactly once, even when time runs out.

Why: a GPU session is short and lent once; a check that overruns or crashes in one part must
still hand back the figures of the others. ``CheckReport`` holds the result; every part runs
through ``run_part`` (an exception becomes that part's ``"error"``, the other parts go on). A
watchdog thread prints the report at the deadline, with the unfinished part marked, and ends the
process; SIGTERM (a wrapper's ``timeout``) does the same. After every part the report is also
written to ``partial_path``, so a wrapper can still print it if the process is killed outright.
Parts declared up front carry ``"error": "not run ..."`` until they run, so the printed object
always lists every part.
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from asyncvla_training.cli_errors import one_line

#: Exit status when at least one part has an error (the JSON is printed all the same).
EXIT_PART_FAILED = 1
NOT_RUN = "not run: the check ended before this part"

Path = tuple[str, ...]
Put = Callable[..., None]


def _json_safe(value: Any) -> Any:
    """NaN/inf become strings ("nan", "inf"): they are results to see, and invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def error_text(exc: BaseException) -> str:
    """How a failure is written into a part: the exception's type and its one-line message."""
    return f"{type(exc).__name__}: {one_line(exc)}"


def has_error(value: Any) -> bool:
    """True when any nested dict of ``value`` has an ``"error"`` key."""
    if isinstance(value, dict):
        return "error" in value or any(has_error(v) for v in value.values())
    if isinstance(value, list):
        return any(has_error(v) for v in value)
    return False


class CheckReport:
    """The result object of a time-boxed check (see module docs)."""

    def __init__(self, data: dict[str, Any], deadline_s: float, stream: TextIO | None = None,
                 partial_path: str | None = None) -> None:
        self.data = data
        self._start = time.monotonic()
        self._deadline = self._start + float(deadline_s)
        self._deadline_s = float(deadline_s)
        self._stream = stream if stream is not None else sys.stdout
        self._partial_path = partial_path
        self._lock = threading.RLock()
        self._current: Path | None = None
        self._printed = False
        self._timer: threading.Timer | None = None
        self._previous_sigterm: Any = None

    # ------------------------------------------------------------------ parts
    def declare(self, *paths: Path) -> None:
        """Parts that will run: listed as not run until they do."""
        for path in paths:
            self._node(path)["error"] = NOT_RUN

    def seconds_left(self) -> float:
        return self._deadline - time.monotonic()

    def put(self, path: Path, **fields: Any) -> None:
        """Add ``fields`` to the part at ``path`` (visible to the watchdog at once)."""
        with self._lock:
            self._node(path).update(fields)

    def run_part(self, path: Path, fn: Callable[[Put], None], needs_s: float = 0.0) -> bool:
        """Run ``fn(put)``; ``put(**fields)`` records results as they come. An exception becomes
        the part's ``"error"`` (results recorded before it stay). Skipped, with the reason, when
        fewer than ``needs_s`` seconds are left. Returns whether the part finished without error."""
        with self._lock:
            node = self._node(path)
            node.pop("error", None)
            left = self.seconds_left()
            if left < needs_s:
                node["error"] = (f"skipped: {left:.0f} s left before the {self._deadline_s:.0f} s "
                                 f"deadline, this part needs about {needs_s:.0f} s")
                return False
            self._current = path
        started = time.monotonic()
        ok = True
        try:
            fn(lambda **fields: self.put(path, **fields))
        except Exception as exc:  # noqa: BLE001 - any failure of a part is that part's result
            ok = False
            self.put(path, error=error_text(exc))
        finally:
            with self._lock:
                self._current = None
                self._node(path)["part_s"] = round(time.monotonic() - started, 1)
            self.write_partial()
        return ok

    def _node(self, path: Path) -> dict[str, Any]:
        node = self.data
        for key in path:
            node = node.setdefault(key, {})
        return node

    # ------------------------------------------------------------------ output
    @property
    def ok(self) -> bool:
        with self._lock:
            return not has_error(self.data)

    def _finalised(self) -> dict[str, Any]:
        data = dict(self.data)
        data["ok"] = not has_error(self.data)
        data["wall_s"] = round(time.monotonic() - self._start, 1)
        return _json_safe(data)

    def write_partial(self) -> None:
        """The report so far, to ``partial_path`` (written whole, then renamed into place)."""
        if not self._partial_path:
            return
        with self._lock:
            text = json.dumps(self._finalised())
        tmp = f"{self._partial_path}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(tmp, self._partial_path)

    def emit(self) -> bool:
        """Print the report as one JSON line (once; later calls do nothing). Returns whether
        this call printed it."""
        with self._lock:
            if self._printed:
                return False
            self._printed = True
            text = json.dumps(self._finalised())
        self._stream.write(text + "\n")
        self._stream.flush()
        return True

    # ------------------------------------------------------------------ deadline
    def start_watchdog(self) -> None:
        """At the deadline (and on SIGTERM): mark the running part, print, exit the process."""
        self._timer = threading.Timer(max(0.0, self.seconds_left()), self.expire,
                                      args=(f"timed out: the check's {self._deadline_s:.0f} s "
                                            "deadline passed during this part",))
        self._timer.daemon = True
        self._timer.start()
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(
                signal.SIGTERM, lambda *_: self.expire("terminated (SIGTERM) during this part"))

    def stop_watchdog(self) -> None:
        """Cancel the deadline and give SIGTERM back its previous handler."""
        if self._timer is not None:
            self._timer.cancel()
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    def expire(self, reason: str) -> None:
        """Mark the running part with ``reason``, print the report and end the process now
        (``os._exit``: a CUDA kernel or a compiler may be what is still running)."""
        with self._lock:
            if self._current is not None:
                self._node(self._current)["error"] = reason
            printed = self.emit()
        if printed:
            os._exit(EXIT_PART_FAILED)
