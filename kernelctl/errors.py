"""The one error type that reaches a user as a message, a hint and an exit code."""

from __future__ import annotations

import errno
from contextlib import contextmanager
from typing import Iterator


class KernelctlError(Exception):
    """A problem the user can act on. Anything else is a bug and keeps its traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class BaseNotActive(KernelctlError):
    """The requested base image is not the one this session has."""


class NameTaken(KernelctlError):
    """A kernel or environment of that name already exists."""


class Busy(KernelctlError):
    """Another kernelctl process is working on the same name."""


class CommandFailed(KernelctlError):
    """A subprocess (pip, a probe, uenv) exited non-zero."""

    def __init__(self, message: str, hint: str = "", output: str = "") -> None:
        super().__init__(message, hint)
        self.output = output


class Interrupted(KernelctlError):
    """Ctrl-C, SIGTERM or SIGHUP arrived; work done so far has been undone."""

    exit_code = 130


DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
DISK_FULL_MARKERS = ("No space left on device", "Disk quota exceeded", "File too large")
DISK_FULL_HINT = (
    "The disk or your quota is full (HPC homes count bytes and files). "
    "Check with `quota` or `df -h ~`, free some space, or put the environment on "
    "a larger filesystem with --venv (e.g. under $PROJECT; avoid purged $SCRATCH)."
)


def disk_full_error(what: str, detail: str) -> KernelctlError:
    return KernelctlError(f"ran out of disk space or quota while {what}: {detail}", DISK_FULL_HINT)


@contextmanager
def disk_errors(what: str) -> Iterator[None]:
    """Turn a full disk or quota (ENOSPC, EDQUOT, EFBIG) into a user error with the hint."""
    try:
        yield
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            raise disk_full_error(what, f"{exc.strerror}: {exc.filename}") from exc
        raise
