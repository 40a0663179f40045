"""All-or-nothing for multi-step work: each step registers how to undo itself."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from kernelctl.errors import Busy, Interrupted

log = logging.getLogger("kernelctl")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Transaction:
    """Undo registered steps, newest first, if the block fails or is interrupted."""

    def __init__(self) -> None:
        self._undo: list = []
        self._after_success: list = []

    def undo_with(self, action: Callable[[], object]) -> None:
        self._undo.append(action)

    def after_success(self, action: Callable[[], object]) -> None:
        self._after_success.append(action)

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        actions = self._after_success if exc_type is None else reversed(self._undo)
        # A second Ctrl-C must not cut the clean-up short.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            for action in actions:
                try:
                    action()
                except Exception:  # keep undoing the rest; the first error is what matters
                    log.warning("clean-up step failed", exc_info=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return False


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP (a closed terminal) into Interrupted, like Ctrl-C."""

    def interrupt(signum, frame):
        raise Interrupted(f"stopped by {signal.Signals(signum).name}; nothing was left behind")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def name_lock(home: Path, name: str) -> Iterator[None]:
    """Hold an exclusive lock for one kernel name; released by the OS if we die."""
    locks = home / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    fd = os.open(locks / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise Busy(f"another kernelctl is working on the kernel '{name}' right now",
                       "Wait for it to finish, then run the command again.") from exc
        yield
    finally:
        os.close(fd)


def move_aside(path: Path, tx: Transaction) -> None:
    """Rename `path` out of the way; put it back on failure, delete it on success."""
    aside = path.with_name(f".{path.name}.kernelctl-old-{os.getpid()}")
    os.rename(path, aside)
    tx.undo_with(lambda: os.rename(aside, path))
    tx.after_success(lambda: remove_path(aside))


def remove_path(path: Path) -> None:
    """Delete a file, symlink (never followed) or directory tree, if it is there."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
