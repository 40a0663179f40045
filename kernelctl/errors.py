"""The one error type that reaches a user as a message, a hint and an exit code."""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from typing import Iterator, Optional


class KernelctlError(Exception):
    """A problem the user can act on. Anything else is a bug and keeps its traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class BaseNotActive(KernelctlError):
    """The requested base image is not the one this session has."""


class NotFound(KernelctlError):
    """What was asked for by name (a kernel, a recipe) does not exist."""


class NameTaken(KernelctlError):
    """A kernel or environment of that name already exists."""


class Busy(KernelctlError):
    """Another kernelctl process is working on the same name."""


class CommandFailed(KernelctlError):
    """A subprocess (pip, a probe, uenv) exited non-zero or did not finish in time."""


class Interrupted(KernelctlError):
    """Ctrl-C, SIGTERM or SIGHUP arrived; the message says what stands. The exit status
    is the shell's for that signal (130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, message: str, hint: str = "", signum: int = 2) -> None:
        super().__init__(message, hint)
        self.signum = signum
        self.exit_code = 128 + signum


DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
DISK_FULL_MARKERS = ("No space left on device", "Disk quota exceeded", "File too large")
DISK_FULL_HINT = (
    "The disk or your quota is full (HPC homes count bytes and files). "
    "Check with `quota` or `df -h ~` and `df -i ~`, free some space, or put the "
    "environment on a larger filesystem with --venv (e.g. under $PROJECT; avoid purged "
    "$SCRATCH)."
)
NOT_WRITABLE_HINT = (
    "Choose a place you can write to: drop --prefix to install for yourself, or pass "
    "--venv DIR on a writable filesystem; KERNELCTL_HOME and JUPYTER_DATA_DIR must be "
    "writable too."
)


class DiskFull(KernelctlError):
    """A full disk or quota; `where`, when known, is a path on the filesystem that filled
    up (pip only says "No space left": its caller knows where it was writing)."""

    def __init__(self, what: str, detail: str, where: Optional[str] = None) -> None:
        place = f" (on the filesystem mounted at {mount_point(where)})" if where else ""
        super().__init__(f"ran out of disk space or quota while {what}{place}: {detail}",
                         DISK_FULL_HINT)
        self.what, self.detail, self.where = what, detail, where

    def on(self, where: str) -> "DiskFull":
        """The same error, naming the filesystem of `where`."""
        return DiskFull(self.what, self.detail, where)


def disk_full_error(what: str, detail: str, where: Optional[str] = None) -> DiskFull:
    return DiskFull(what, detail, where)


def mount_point(path: str) -> str:
    """The mount point of the filesystem `path` is on (its nearest existing parent's)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and path != os.path.dirname(path):
        path = os.path.dirname(path)
    try:
        device = os.stat(path).st_dev
        while path != os.path.dirname(path) and os.stat(os.path.dirname(path)).st_dev == device:
            path = os.path.dirname(path)
    except OSError:
        pass
    return path


def user_error_for(exc: OSError, what: str) -> Optional[KernelctlError]:
    """The user's version of a filesystem error (full, read-only, not permitted), or None
    for an error that is a bug. It names the destination of a copy, not its source."""
    where = exc.filename2 or exc.filename
    detail = f"{exc.strerror}: {where}" if where else str(exc.strerror or exc)
    if exc.errno in DISK_FULL_ERRNOS:
        return disk_full_error(what, detail, where)
    if exc.errno == errno.EROFS:
        return KernelctlError(f"{where or 'a filesystem'} is on a read-only filesystem "
                              f"(while {what})", NOT_WRITABLE_HINT)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return KernelctlError(f"permission denied while {what}: {where or exc.strerror}",
                              NOT_WRITABLE_HINT)
    return None


@contextmanager
def disk_errors(what: str) -> Iterator[None]:
    """Turn a full disk or quota, a read-only filesystem or a denied write into a user
    error with a hint that says what to do."""
    try:
        yield
    except OSError as exc:
        error = user_error_for(exc, what)
        if error is None:
            raise
        raise error from exc


def as_user_error(exc: BaseException) -> Optional[KernelctlError]:
    """What the user is told for `exc`, or None for a bug (which keeps its traceback):
    a KernelctlError as it is, Ctrl-C as "interrupted", a filesystem error that is full,
    read-only or not the user's as such."""
    if isinstance(exc, KernelctlError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted("interrupted")
    return user_error_for(exc, "working") if isinstance(exc, OSError) else None
