"""How every ``asyncvla-*`` command reports bad input: one line naming the file and the fix, exit 2.

A user who points a command at a broken bag, a missing cache entry or an existing output
directory needs to know which file and what to do, not a traceback. The errors below are the
ones raised for bad *input* (recordings, caches, checkpoints, options); anything else is a bug
and keeps its traceback. Commands check their outputs before writing anything, so a refused run
leaves nothing half-written.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

EXIT_USAGE = 2


class CliError(Exception):
    """Bad input to a command; the message names the file (or option) and the fix."""


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Error types that mean "bad input". Modules not imported yet cannot have raised anything,
    so their error types are looked up only when loaded (the data CLIs never import torch)."""
    from .data.errors import BagDataError, CacheError, SplitError

    types: list[type[BaseException]] = [CliError, BagDataError, CacheError, SplitError,
                                        FileNotFoundError, FileExistsError]
    checkpoint = sys.modules.get("asyncvla_policy.checkpoint")
    if checkpoint is not None:
        types.append(checkpoint.CheckpointError)
    return tuple(types)


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (multi-line messages are joined)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def run_cli(prog: str, body: Callable[[], int],
            hints: Mapping[type[BaseException], str] | None = None) -> int:
    """Run ``body``; a bad-input error prints ``prog: message[; hint]`` on stderr and returns 2.

    ``hints`` adds the command-specific fix to errors whose message cannot know it (for a bad bag:
    the option that skips it).
    """
    try:
        return body()
    except _user_error_types() as exc:
        message = one_line(exc)
        for kind, hint in (hints or {}).items():
            if isinstance(exc, kind) and hint not in message:
                message = f"{message}; {hint}"
                break
        print(f"{prog}: {message}", file=sys.stderr, flush=True)
        return EXIT_USAGE
