"""All-or-nothing for multi-step work: undo steps, locks, and what a killed run left.

A Transaction undoes its registered steps, newest first, when its block fails or is
interrupted. What it must never leave behind even if the process is SIGKILLed (a
kernel moved aside, a staging dir) is also written to a journal in
$KERNELCTL_HOME/leftovers, held locked while the process lives; the next kernelctl
run that changes anything (`sweep_leftovers`) deletes what a dead run listed.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import itertools
import json
import logging
import os
import shutil
import signal
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from kernelctl.errors import Busy, Interrupted

log = logging.getLogger("kernelctl")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
LEFTOVERS = "leftovers"
# Every path a journal may list starts so: asides, staging dirs.
OWN_PREFIXES = (".kernelctl-", ".kernelctl~")
_asides = itertools.count()


class Transaction:
    """Undo registered steps, newest first, if the block fails or is interrupted."""

    def __init__(self, home: Optional[Path] = None) -> None:
        self._undo: list = []
        self._after_success: list = []
        self._journal = Journal(home / LEFTOVERS) if home is not None else None

    def undo_with(self, action: Callable[[], object]) -> None:
        self._undo.append(action)

    def after_success(self, action: Callable[[], object]) -> None:
        self._after_success.append(action)

    def leftover(self, path: Path) -> None:
        """`path` is deleted by the next kernelctl run if this process dies before its
        block ends (a SIGKILL cannot be undone in-process)."""
        if self._journal is not None:
            self._journal.add(path)

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._finish()
            return
        # A second Ctrl-C must not cut the undo short.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            for action in reversed(self._undo):
                _quietly(action)
            if self._journal is not None:
                self._journal.close()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if issubclass(exc_type, (KeyboardInterrupt, Interrupted)):
            reason = exc.message if isinstance(exc, Interrupted) else "interrupted"
            raise Interrupted(f"{reason}; nothing was changed") from None

    def _finish(self) -> None:
        """Clean-up after success (deleting what was moved aside) may be interrupted:
        the change stands, and the journal hands what is left to the next run."""
        try:
            for action in self._after_success:
                _quietly(action)
        except (KeyboardInterrupt, Interrupted):
            raise Interrupted("interrupted while deleting old files; the change itself is "
                              "done, and the next kernelctl command deletes what is left")
        if self._journal is not None:
            self._journal.close()


def _quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except Interrupted:  # SIGTERM/SIGHUP: the caller says what stands
        raise
    except Exception:  # keep going with the rest; the first error is what matters
        log.warning("clean-up step failed", exc_info=True)


class Journal:
    """The paths this process would leave behind if it died now; a locked file."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._paths: list = []
        self._fd: Optional[int] = None
        self._file: Optional[Path] = None

    def add(self, path: Path) -> None:
        fd = self._fd if self._fd is not None else self._open()
        self._paths.append(os.path.abspath(path))
        data = json.dumps(self._paths).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)

    def _open(self) -> int:
        self._directory.mkdir(parents=True, exist_ok=True)
        journal = self._directory / f"{os.getpid()}-{next(_asides)}.json"
        fd = os.open(journal, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        self._file, self._fd = journal, fd
        return fd

    def close(self) -> None:
        if self._fd is None or self._file is None:
            return
        journal = self._file
        _quietly(lambda: os.unlink(journal))
        os.close(self._fd)
        self._fd = None


def sweep_leftovers(home: Path) -> list:
    """Delete what kernelctl runs that died listed in their journals; the paths deleted."""
    directory = home / LEFTOVERS
    try:
        journals = sorted(directory.iterdir())
    except OSError:
        return []
    swept: list = []
    for journal in journals:
        swept += _sweep_journal(journal)
    return swept


def _sweep_journal(journal: Path) -> list:
    try:
        fd = os.open(journal, os.O_RDWR)
    except OSError:
        return []
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return []  # its process is still running
        if not os.path.exists(journal) or os.stat(journal).st_ino != os.fstat(fd).st_ino:
            return []  # another sweep got there first
        try:
            listed = json.loads(os.pread(fd, 1 << 20, 0) or b"[]")
        except ValueError:
            listed = []
        # Only names kernelctl gives what it moves aside or stages: a damaged journal
        # must never delete anything else.
        paths = [p for p in listed if isinstance(p, str)
                 and os.path.basename(p).startswith(OWN_PREFIXES)] \
            if isinstance(listed, list) else []
        for path in paths:
            _quietly(lambda: remove_path(Path(path)))
        os.unlink(journal)
        return paths
    finally:
        os.close(fd)


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP (a closed terminal) into Interrupted, like Ctrl-C."""

    def interrupt(signum, frame):
        raise Interrupted(f"stopped by {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def locks(home: Path, kernels: Iterable[str] = (), venvs: Iterable[Path] = ()) -> Iterator[None]:
    """Exclusive locks on kernel names and environment paths, released by the OS if we
    die: two kernelctl runs never work on the same kernel or the same venv at once."""
    keys = [(f"kernel-{name}", f"the kernel '{name}'") for name in kernels]
    keys += [(f"venv-{_path_key(venv)}", f"the environment {venv}") for venv in venvs]
    with ExitStack() as stack:
        for key, what in sorted(set(keys)):
            stack.enter_context(_lock(home / "locks" / f"{key}.lock", what))
        yield


def _path_key(path: Path) -> str:
    return hashlib.sha256(os.path.realpath(path).encode("utf-8", "surrogateescape")).hexdigest()[:24]


@contextmanager
def _lock(lock_file: Path, what: str) -> Iterator[None]:
    """The lock file exists only while held: it is deleted before it is released, so
    the locks directory never fills up. Whoever locks a file that was deleted meanwhile
    (it opened it just before) sees that and takes the new one."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise Busy(f"another kernelctl is working on {what} right now",
                       "Wait for it to finish, then run the command again.") from exc
        if _still_named(fd, lock_file):
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(lock_file)
        except OSError:
            pass
        os.close(fd)


def _still_named(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def move_aside(path: Path, tx: Transaction, beside: Optional[Path] = None) -> Path:
    """Rename `path` into `beside` (default: its own directory) under a hidden name; put
    it back on failure, delete it on success, and by the next run if we are killed.

    Kernels go aside into the kernels dir's parent, where Jupyter never lists them."""
    directory = Path(os.path.realpath(beside)) if beside is not None else path.parent
    aside = directory / f".kernelctl-old-{path.name}-{os.getpid()}-{next(_asides)}"
    tx.leftover(aside)
    # Held off for the rename and its undo step: a Ctrl-C in between would leave the
    # thing moved aside with nothing to put it back.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        aside = _rename_aside(path, aside, tx)
        tx.undo_with(lambda: os.rename(aside, path))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    tx.after_success(lambda: remove_path(aside))
    return aside


def _rename_aside(path: Path, aside: Path, tx: Transaction) -> Path:
    try:
        os.rename(path, aside)
        return aside
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    # Another filesystem there: stay in the same directory, under a name Jupyter
    # rejects ('~'), so it is never offered as a kernel.
    aside = path.with_name(f".kernelctl~old-{path.name}-{os.getpid()}-{next(_asides)}")
    tx.leftover(aside)
    os.rename(path, aside)
    return aside


def make_dirs(directory: Path, tx: Transaction) -> None:
    """mkdir -p that removes, on failure, the directories it made (if still empty)."""
    missing = []
    for parent in [directory, *directory.parents]:
        if os.path.lexists(parent):
            break
        missing.append(parent)
    for made in reversed(missing):
        made.mkdir()
        tx.undo_with(partial(_rmdir_if_empty, made))


def _rmdir_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass


def remove_path(path: Path) -> None:
    """Delete a file, symlink (never followed) or directory tree, if it is there."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)
