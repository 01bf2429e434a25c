"""Runs VL extraction on a worker thread so the ROS executor never blocks on the VLM.

At most one extraction runs at a time; a new one is accepted only when the worker is idle (the
node then decides when to start the next, honouring its target period). Results and failures go
to callbacks on the worker thread.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable


class VLWorker:
    def __init__(self, run: Callable[[Any], Any], on_result: Callable[[Any, Any], None],
                 on_error: Callable[[Any, BaseException], None]) -> None:
        self._run = run
        self._on_result = on_result
        self._on_error = on_error
        self._jobs: queue.Queue = queue.Queue(maxsize=1)
        self._busy = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vl-worker", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    def try_submit(self, job: Any) -> bool:
        """Start `job` if idle; False (and nothing queued) when an extraction is running."""
        if self._busy.is_set():
            return False
        self._busy.set()
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            return False
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                result = self._run(job)
            except BaseException as exc:  # noqa: BLE001 - reported, worker keeps running
                self._busy.clear()
                self._on_error(job, exc)
                continue
            self._busy.clear()
            self._on_result(job, result)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
