"""Run ROS node processes from tests: start, read their output, stop them, never leak them."""
from __future__ import annotations

import fcntl
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
#: The DDS domain ids tests and tools may take: ids above 101 can collide with ephemeral ports.
DOMAIN_IDS = range(10, 100)
#: Leases taken by `allocate_domain_id`, held until this process exits.
_process_leases: list["DomainLease"] = []


def domain_lock_path(domain_id: int) -> str:
    """The lock file whose exclusive flock reserves `domain_id` on this machine.

    /tmp itself, not $TMPDIR: a DDS domain is machine-wide, so every user's runs must meet at the
    same lock files."""
    return f"/tmp/asyncvla-domain-{domain_id}.lock"


@dataclass
class DomainLease:
    """A DDS domain id reserved on this machine until `release` (or this process's exit).

    Why a lock: tests and tools of concurrent runs (other engineers, CI) each start DDS
    participants; two runs on one domain id see each other's topics. The reservation is an
    exclusive `flock` on /tmp/asyncvla-domain-<id>.lock: the kernel drops it when the holder
    exits, even on SIGKILL, so a crashed run never leaves an id taken. The descriptor is not
    inherited by child processes (Python's default), so a leaked child never holds it.
    """

    domain_id: int
    fd: int | None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the only descriptor releases the flock
            self.fd = None

    def __enter__(self) -> "DomainLease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def reserve_domain_id(first: int | None = None) -> DomainLease:
    """Reserve a free DDS domain id in 10..99 for as long as the lease is held.

    The search starts at a pid- and call-dependent id so that concurrent runs rarely try the same
    ids first (`first`: start there instead, as the tests of this function do to force contention),
    and skips every id another holder has locked (another process, or another lease of this one:
    flock locks belong to the open file, not the process). RuntimeError when all 90 are taken.
    """
    start = (os.getpid() * 7 + next(_domain_counter) if first is None
             else first - DOMAIN_IDS.start)
    for k in range(len(DOMAIN_IDS)):
        domain = DOMAIN_IDS[(start + k) % len(DOMAIN_IDS)]
        # read-only is enough for flock, and works on a lock file another user created
        fd = os.open(domain_lock_path(domain), os.O_CREAT | os.O_RDONLY, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by someone else
            os.close(fd)
            continue
        return DomainLease(domain, fd)
    raise RuntimeError(f"every DDS domain id in {DOMAIN_IDS.start}..{DOMAIN_IDS.stop - 1} is "
                       "reserved (lock files /tmp/asyncvla-domain-*.lock)")


def allocate_domain_id() -> int:
    """A DDS domain id reserved for the rest of this process's life (tools and benchmarks).

    Tests use `reserve_domain_id` through the `ros_env` fixture instead, which releases the id at
    the test's teardown."""
    lease = reserve_domain_id()
    _process_leases.append(lease)
    return lease.domain_id


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
