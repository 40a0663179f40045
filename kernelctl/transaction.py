"""All-or-nothing for every change kernelctl makes: a write-ahead journal, locks, and
the recovery of what a killed run left.

A Transaction records each step it is about to take (a directory made, a path moved
aside, a staged kernel put in place or swapped with the old one) in a journal in
$KERNELCTL_HOME/leftovers, held locked while the process lives, and only then takes it.
If the block fails or is interrupted, the steps are undone, newest first. If the
process dies (SIGKILL: the OOM killer during pip), the next kernelctl run reads the
journal and does the same: before the commit it *restores* what was moved aside and
deletes only what the dead run made; after the commit it finishes the clean-up. Each
undo checks what is on disk (inodes, existence) first, so a step the process died
before taking is never "undone".
"""

from __future__ import annotations

import ctypes
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
from typing import Callable, Iterable, Iterator, NoReturn, Optional

from kernelctl.errors import Busy, Interrupted, KernelctlError

log = logging.getLogger("kernelctl")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
LEFTOVERS = "leftovers"
JOURNAL_FORMAT = 2
# Every directory a journal may delete outright starts so: asides, staging dirs.
OWN_PREFIXES = (".kernelctl-", ".kernelctl~")
# Tests only: "N" or "N:SIGTERM" sends the signal at the N-th step boundary (1-based);
# KERNELCTL_TEST_STEPS=FILE appends each boundary's name to FILE.
FAULT_VARIABLE = "KERNELCTL_TEST_FAULT"
STEPS_VARIABLE = "KERNELCTL_TEST_STEPS"
_asides = itertools.count()
_steps = itertools.count(1)


class Transaction:
    """Journaled steps, undone newest first if the block fails or is interrupted, and
    committed (their clean-up run) when it ends normally."""

    def __init__(self, home: Optional[Path] = None, kernels: Iterable[str] = ()) -> None:
        self._undo: list = []
        self._after_success: list = []
        self._journal = Journal(home / LEFTOVERS, list(kernels)) if home is not None else None

    # -- journaled steps ------------------------------------------------------------

    def made(self, path: Path, venv: bool = False) -> None:
        """`path` is about to be created by this run: deleted if the run does not commit.
        A venv (not named by OWN_PREFIXES) is deleted only while no kernel uses it."""
        self._step({"op": "made", "path": str(path), "venv": venv})

    def moved_aside(self, path: Path, aside: Path) -> None:
        self._step({"op": "aside", "path": str(aside), "origin": str(path)},
                   lambda: os.rename(path, aside))

    def placed(self, staged: Path, target: Path) -> None:
        self._step({"op": "placed", "path": str(target), "staged": str(staged),
                    "ino": _inode(staged)}, lambda: os.rename(staged, target))

    def exchanged(self, staged: Path, target: Path) -> None:
        self._step({"op": "exchange", "path": str(target), "staged": str(staged),
                    "ino": _inode(staged), "old_ino": _inode(target)},
                   lambda: exchange(staged, target))

    def _step(self, entry: dict, action: Optional[Callable[[], object]] = None) -> None:
        # Held off from the journal write to the undo's registration: a Ctrl-C in
        # between would leave a step taken with nothing to undo it.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            if self._journal is not None:
                self._journal.write(entry)
            checkpoint(f"{entry['op']}-intent")
            if action is not None:
                action()
            self._undo.append(lambda: undo_step(entry))
            if entry["op"] in ("aside", "exchange"):
                self._after_success.append(lambda: finish_step(entry))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        checkpoint(entry["op"])

    # -- in-process only --------------------------------------------------------------

    def undo_with(self, action: Callable[[], object]) -> None:
        self._undo.append(action)

    def after_success(self, action: Callable[[], object]) -> None:
        self._after_success.append(action)

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type: Optional[type], exc: Optional[BaseException],
                 tb: object) -> None:
        if exc_type is None:
            self._commit()
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
            raise Interrupted(f"{reason}; nothing was changed",
                              signum=_signum(exc) if exc is not None else 2) from None

    def _commit(self) -> None:
        """The change stands from here on; deleting what it replaced may be interrupted,
        and then the journal hands the rest to the next run."""
        if self._journal is not None:
            self._journal.commit()
        checkpoint("commit")
        try:
            for action in self._after_success:
                _quietly(action)
        except (KeyboardInterrupt, Interrupted) as exc:
            raise Interrupted("interrupted while deleting old files; the change itself is "
                              "done, and the next kernelctl command deletes what is left",
                              signum=_signum(exc))
        if self._journal is not None:
            self._journal.close()


def _signum(exc: BaseException) -> int:
    return getattr(exc, "signum", signal.SIGINT)


def _quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except Interrupted:  # SIGTERM/SIGHUP: the caller says what stands
        raise
    except Exception:  # keep going with the rest; the first error is what matters
        log.warning("clean-up step failed", exc_info=True)


def checkpoint(name: str) -> None:
    """A step boundary; the fault-injection hook of the safety tests (inert otherwise)."""
    if STEPS_VARIABLE not in os.environ and FAULT_VARIABLE not in os.environ:
        return
    number = next(_steps)
    if os.environ.get(STEPS_VARIABLE):
        with open(os.environ[STEPS_VARIABLE], "a") as steps:
            steps.write(f"{number} {name}\n")
    at, _, sig = os.environ.get(FAULT_VARIABLE, "").partition(":")
    if at == str(number):
        os.kill(os.getpid(), getattr(signal, sig or "SIGKILL"))


# -- what a step means, for the live run and for the sweep of a dead one --------------

def undo_step(entry: dict) -> None:
    """Put back what the step changed, if the disk shows it was taken."""
    path, op = Path(entry["path"]), entry["op"]
    if op == "aside":
        origin = Path(entry["origin"])
        if os.path.lexists(path) and not os.path.lexists(origin):
            os.rename(path, origin)
        elif entry.get("format") == 1 and path.name.startswith(OWN_PREFIXES):
            remove_path(path)  # an older run's replacement stands in its place
    elif op in ("placed", "exchange"):
        staged = Path(entry["staged"])
        if _inode(path) == entry["ino"]:  # the new one is in place: take it out again
            if op == "exchange":
                exchange(staged, path)
            elif not os.path.lexists(staged):
                os.rename(path, staged)
    elif op == "made":
        _delete_made(path, entry.get("venv", False))


def finish_step(entry: dict) -> None:
    """After the commit: delete what a step put aside (the old kernel, the old venv),
    and what is left of a staging dir (a made venv is in use now: it stays)."""
    if entry["op"] == "made":
        path = Path(entry["path"])
        if path.name.startswith(OWN_PREFIXES):
            remove_path(path)
    elif entry["op"] == "aside":
        path = Path(entry["path"])
        if path.name.startswith(OWN_PREFIXES):
            remove_path(path)
    elif entry["op"] == "exchange":
        staged = Path(entry["staged"])  # now holds the old kernel
        if entry.get("old_ino") is not None and _inode(staged) == entry["old_ino"]:
            remove_path(staged)


def _delete_made(path: Path, venv: bool) -> None:
    if path.name.startswith(OWN_PREFIXES):
        remove_path(path)
    elif venv and os.path.isdir(path) and not os.path.islink(path):
        from kernelctl.ownership import half_made_venv

        if half_made_venv(path):
            remove_path(path)


def _inode(path: Path) -> Optional[list]:
    try:
        stat = os.lstat(path)
    except OSError:
        return None
    return [stat.st_dev, stat.st_ino]


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> None:
    """Swap two directories in one atomic step (Linux renameat2 RENAME_EXCHANGE)."""
    libc = ctypes.CDLL(None, use_errno=True)
    function = getattr(libc, "renameat2", None)
    if function is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", str(a))
    if function(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a), None, str(b))


class Journal:
    """What this process is doing, step by step; a file locked while it lives."""

    def __init__(self, directory: Path, kernels: list) -> None:
        self._directory = directory
        self._steps: list = []
        self._data = {"format": JOURNAL_FORMAT, "pid": os.getpid(), "kernels": kernels,
                      "committed": False, "steps": self._steps}
        self._fd: Optional[int] = None
        self._file: Optional[Path] = None

    def write(self, entry: dict) -> None:
        self._steps.append(entry)
        self._save()

    def commit(self) -> None:
        if self._fd is not None:
            self._data["committed"] = True
            self._save()

    def _save(self) -> None:
        fd = self._fd if self._fd is not None else self._open()
        data = json.dumps(self._data).encode()
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
    """Finish what kernelctl runs that died had started: restore what they moved aside
    (or, after their commit, delete it). The paths acted on."""
    directory = home / LEFTOVERS
    try:
        journals = sorted(directory.iterdir())
    except OSError:
        return []
    swept: list = []
    for journal in journals:
        swept += _sweep_journal(journal, home)
    return swept


def _sweep_journal(journal: Path, home: Path) -> list:
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
        data = _read_journal(fd)
        kernels = [k for k in data.get("kernels", []) if isinstance(k, str)]
        try:
            with locks(home, kernels):
                acted = _replay(data)
        except Busy:
            return []  # a live run works on those kernels; it sweeps when done
        os.unlink(journal)
        return acted
    finally:
        os.close(fd)


def _read_journal(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 1 << 20, 0) or b"{}")
    except ValueError:
        return {}
    if isinstance(data, list):  # format 1 (kernelctl before the safety core): bare paths
        return {"steps": [step for step in map(_format_1_step, data) if step]}
    return data if isinstance(data, dict) else {}


def _format_1_step(path: object) -> Optional[dict]:
    """A path an older kernelctl journaled: a staging dir (made), or a kernel or venv it
    had moved aside, whose origin its name tells. The old sweep deleted those; this
    one puts them back where nothing took their place (the user's working kernel)."""
    if not isinstance(path, str):
        return None
    name = os.path.basename(path)
    for prefix in (".kernelctl-old-", ".kernelctl~old-"):
        if name.startswith(prefix):
            original = name[len(prefix):].rsplit("-", 2)[0]
            parent = os.path.dirname(path)
            is_kernel = os.path.isfile(os.path.join(path, "kernel.json")) \
                and not os.path.isfile(os.path.join(path, "pyvenv.cfg"))
            beside = is_kernel and prefix == ".kernelctl-old-"  # moved out of kernels/
            origin = os.path.join(parent, "kernels", original) if beside \
                else os.path.join(parent, original)
            return {"op": "aside", "path": path, "origin": origin, "format": 1}
    return {"op": "made", "path": path} if name.startswith(".kernelctl-") else None


def _replay(data: dict) -> list:
    steps = [s for s in data.get("steps", []) if _well_formed(s)]
    committed = data.get("committed") is True
    acted = []
    for step in (steps if committed else reversed(steps)):
        try:
            (finish_step if committed else undo_step)(step)
        except (OSError, ValueError):
            log.warning("could not recover %s", step.get("path"), exc_info=True)
            continue
        acted.append(step["path"])
    return acted


def _well_formed(step: object) -> bool:
    """A damaged journal must never make kernelctl touch anything else."""
    if not isinstance(step, dict) or not isinstance(step.get("path"), str):
        return False
    needs = {"aside": ("origin",), "placed": ("staged",), "exchange": ("staged",),
             "made": ()}.get(step.get("op"))  # type: ignore[arg-type]
    return needs is not None and all(isinstance(step.get(key), str) for key in needs)


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP (a closed terminal) into Interrupted, like Ctrl-C."""

    def interrupt(signum: int, frame: object) -> NoReturn:
        raise Interrupted(f"stopped by {signal.Signals(signum).name}", signum=signum)

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
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise KernelctlError(f"{lock_file.parent} is not a directory (kernelctl keeps its "
                             "locks there)", f"Move that file away: mv {lock_file.parent} "
                             f"{lock_file.parent}.bak") from exc
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


def aside_name(path: Path, directory: Path, kind: str = "old",
               inside_kernels: bool = False) -> Path:
    """A hidden name for what kernelctl moves aside or stages. Inside a kernels dir
    (another filesystem left no choice) it holds a '~', which Jupyter rejects in a
    kernel name, so it is never offered as a kernel."""
    mark = "~" if inside_kernels else "-"
    return directory / f".kernelctl{mark}{kind}-{path.name}-{os.getpid()}-{next(_asides)}"


def move_aside(path: Path, tx: Transaction, beside: Optional[Path] = None) -> Path:
    """Rename `path` into `beside` (default: its own directory) under a hidden name; put
    it back on failure (or by the next run, if we are killed), delete it on success."""
    directory = Path(os.path.realpath(beside)) if beside is not None else path.parent
    aside = aside_name(path, directory)
    try:
        tx.moved_aside(path, aside)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # Another filesystem there: stay in the same directory, under a name Jupyter
        # rejects ('~'), so it is never offered as a kernel.
        aside = aside_name(path, path.parent, inside_kernels=True)
        tx.moved_aside(path, aside)
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
        # In-process only: after a SIGKILL an empty directory is harmless, and a journal
        # must never name a directory kernelctl would rmdir by its name alone.
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
