"""Run ROS node processes from tests: start, read their output, stop them, never leak them."""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

_domain_counter = itertools.count()


def allocate_domain_id() -> int:
    """A DDS domain for one test, in 10..99 (ids above 101 may collide with ephemeral ports).

    The pid spreads concurrent pytest runs apart; the counter separates tests inside one run.
    """
    return 10 + (os.getpid() * 7 + next(_domain_counter)) % 90


@dataclass
class ManagedProcess:
    """A child process whose combined stdout/stderr is collected line by line in the background."""

    name: str
    popen: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            with self._lock:
                self.lines.append(raw.rstrip("\n"))

    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_for_line(self, needle: str, timeout: float) -> str:
        """Return the first output line containing `needle`; raise TimeoutError with the output."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            with self._lock:
                new = self.lines[seen:]
                seen = len(self.lines)
            for line in new:
                if needle in line:
                    return line
            if self.popen.poll() is not None and not new:
                time.sleep(0.1)  # let the pump thread drain the pipe
                with self._lock:
                    rest = self.lines[seen:]
                for line in rest:
                    if needle in line:
                        return line
                raise RuntimeError(f"{self.name} exited ({self.popen.returncode}) before printing "
                                   f"{needle!r}; output:\n{self.output()}")
            time.sleep(0.02)
        raise TimeoutError(f"{self.name}: no line with {needle!r} within {timeout}s; output:\n"
                           f"{self.output()}")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGINT (the way a user stops a node), then SIGKILL if it does not exit in time."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGINT)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                self.popen.wait(timeout)
            except ProcessLookupError:
                pass
        return self.popen.returncode


class ProcessGroup:
    """Processes started by one test, sharing its environment (and so its DDS domain)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: list[ManagedProcess] = []

    def start(self, name: str, args: list[str], extra_env: dict[str, str] | None = None,
              python: bool = True) -> ManagedProcess:
        env = dict(self.env)
        env.update(extra_env or {})
        cmd = [sys.executable, *args] if python else args
        popen = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, text=True, bufsize=1,
                                 start_new_session=True, cwd=tempfile.gettempdir())
        proc = ManagedProcess(name, popen)
        threading.Thread(target=proc._pump, daemon=True).start()
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.stop(timeout=3.0)
