"""A receive thread that survives its own exceptions and stops promptly on request.

Why: a bridge's socket is read in a background thread so the ROS executor (diagnostics timer,
parameter services) never blocks on I/O. A bug triggered by one odd message must cost that message,
not the bridge: every exception is counted and reported, and the loop goes on. ROS-free.
"""
from __future__ import annotations

import threading
from typing import Callable


class ReceiveLoop:
    """Call `step()` again and again in a daemon thread until `stop()`.

    `step` must return within a short poll timeout (the bridges poll their socket for 100 ms), so
    that `stop()` is noticed. An exception from `step` goes to `on_error` and, after
    `error_backoff` seconds (no busy loop when the error repeats), the loop continues.
    """

    def __init__(self, name: str, step: Callable[[], None],
                 on_error: Callable[[BaseException], None], error_backoff: float = 0.01) -> None:
        self._step = step
        self._on_error = on_error
        self._backoff = error_backoff
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.errors = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the thread to stop and wait; True if it ended within `timeout`."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:  # noqa: BLE001 - the loop must survive anything from step
                self.errors += 1
                try:
                    self._on_error(exc)
                except Exception:  # noqa: BLE001 - nor may a failing error handler end it
                    pass
                self._stop.wait(self._backoff)
