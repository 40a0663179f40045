"""The one way kernelctl runs another program."""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import threading
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

from kernelctl import shell
from kernelctl.errors import DISK_FULL_MARKERS, CommandFailed, disk_full_error
from kernelctl.redact import redact

log = logging.getLogger("kernelctl")

OUTPUT_TAIL_LINES = 25
# After Ctrl-C: how long pip may take to roll back the package it was replacing.
STOP_GRACE_SECONDS = 10.0
PR_SET_PDEATHSIG = 1


def completed(
    cmd: Sequence[str | Path],
    *,
    env: Optional[Mapping[str, str]] = None,
    what: str,
    hint: str = "",
    cwd: Optional[Path] = None,
    timeout: Optional[float],
) -> subprocess.CompletedProcess:
    """Run `cmd` to its end and return what it did, whatever its exit code. It never
    outlives kernelctl (stopped when kernelctl is interrupted, killed by Linux if
    kernelctl is killed); it is stopped after `timeout` seconds (None only where the
    wait is the point: `sbatch --wait`), said as a CommandFailed."""
    argv = [str(part) for part in cmd]
    log.debug("running: %s", redact(shell.words(map(str, argv))))
    try:
        process = subprocess.Popen(
            argv, env=dict(env) if env is not None else None, cwd=cwd,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, errors="replace", preexec_fn=_die_with_parent_hook(),
        )
    except FileNotFoundError as exc:
        raise CommandFailed(f"{what} failed: {argv[0]} not found", hint) from exc
    except OSError as exc:
        raise CommandFailed(f"{what} failed: cannot run {argv[0]}: {exc.strerror}", hint) from exc
    try:
        stdout, stderr = _communicate(process, what, timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise CommandFailed(f"{what} did not finish within {timeout:g} s and was stopped",
                            hint) from None
    except BaseException:  # Ctrl-C, or Interrupted from SIGTERM/SIGHUP
        _stop(process)
        raise
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def run(
    cmd: Sequence[str | Path],
    *,
    env: Optional[Mapping[str, str]] = None,
    what: str,
    hint: str = "",
    cwd: Optional[Path] = None,
    timeout: Optional[float] = None,
    any_exit: bool = False,
    with_stderr: bool = False,
) -> str:
    """Run `cmd`, return its stdout; on failure raise CommandFailed naming `what`.

    stderr is folded into the error, so the user sees pip's own words. A disk-full
    failure gets the quota hint instead of a generic one. `any_exit`: stdout whatever
    the exit code (`quota` exits 1 when over quota, which is what doctor asks about).
    `with_stderr`: stdout then stderr (`module avail` answers on stderr). No `timeout`
    only for installers, whose time is the packages' (and which Ctrl-C stops).
    """
    done = completed(cmd, env=env, what=what, hint=hint, cwd=cwd, timeout=timeout)
    stdout, stderr = done.stdout, done.stderr
    if done.returncode != 0 and not any_exit:
        output = redact((stdout + stderr).strip())
        # Killed by SIGXFSZ: a write went past the file-size limit (ulimit -f), which a
        # program that does not ignore the signal (uv) reports no other way.
        if any(marker in output for marker in DISK_FULL_MARKERS) \
                or done.returncode == -signal.SIGXFSZ:
            raise disk_full_error(what, _tail(output, 3) if done.returncode != -signal.SIGXFSZ
                                  else "a file grew past the file-size limit (ulimit -f)")
        raise CommandFailed(
            f"{what} failed (exit {done.returncode}):\n{_tail(output, OUTPUT_TAIL_LINES)}",
            hint,
        )
    return stdout + stderr if with_stderr else stdout


def spawn_detached(argv: Sequence[str], env: Mapping[str, str], log_file: Path
                   ) -> subprocess.Popen:
    """A process meant to outlive this command (ipyparallel's controller and engines),
    in its own session so that it is stopped as a group; its output goes to `log_file`.
    The only process kernelctl starts without a time limit or a tie to its own life."""
    with open(log_file, "ab") as out:
        return subprocess.Popen(list(argv), env=dict(env), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    """Let the child finish its own clean-up: a Ctrl-C at the terminal reached it too;
    if it is still running a moment later, it gets a SIGINT of its own, then a SIGKILL."""
    for stop_signal, wait in ((None, 1.0), (signal.SIGINT, STOP_GRACE_SECONDS)):
        if stop_signal is not None:
            process.send_signal(stop_signal)
        try:
            process.communicate(timeout=wait)  # drain the pipes: a full one would block it
            return
        except subprocess.TimeoutExpired:
            pass
    process.kill()
    process.communicate()


# A program with a time limit (a probe of a base interpreter) that has not answered after
# this long is said to be waited for: a hung filesystem must not look like a hung tool.
NOTICE_AFTER_SECONDS = 3.0


def _communicate(process: subprocess.Popen, what: str, timeout: Optional[float]) -> tuple:
    if timeout is None or timeout <= NOTICE_AFTER_SECONDS:
        return process.communicate(timeout=timeout)
    try:
        return process.communicate(timeout=NOTICE_AFTER_SECONDS)
    except subprocess.TimeoutExpired:
        sys.stderr.write(f"kernelctl: still waiting for {what} ({NOTICE_AFTER_SECONDS:g} s so "
                         f"far; giving up after {timeout:g} s)\n")
        sys.stderr.flush()
    return process.communicate(timeout=timeout - NOTICE_AFTER_SECONDS)


def _die_with_parent_hook() -> Optional[Callable[[], object]]:
    """A preexec hook asking Linux to SIGKILL the child when kernelctl dies (even by
    SIGKILL), so pip never goes on writing into an environment nobody watches.
    Only while single-threaded: preexec hooks are unsafe in threaded programs."""
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return None
    prctl = _libc_prctl()
    if prctl is None:
        return None
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@lru_cache(maxsize=1)
def _libc_prctl() -> Optional[Callable[..., int]]:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _tail(text: str, lines: int) -> str:
    return "\n".join("    " + line for line in text.splitlines()[-lines:])
