"""The one way kernelctl runs another program."""

from __future__ import annotations

import logging
import shlex
import subprocess
from pathlib import Path
from typing import Mapping, Optional, Sequence

from kernelctl.errors import DISK_FULL_MARKERS, CommandFailed, disk_full_error

log = logging.getLogger("kernelctl")

OUTPUT_TAIL_LINES = 25


def run(
    cmd: Sequence[str | Path],
    *,
    env: Optional[Mapping[str, str]] = None,
    what: str,
    hint: str = "",
    cwd: Optional[Path] = None,
) -> str:
    """Run `cmd`, return its stdout; on failure raise CommandFailed naming `what`.

    stderr is folded into the error, so the user sees pip's own words. A disk-full
    failure gets the quota hint instead of a generic one.
    """
    argv = [str(part) for part in cmd]
    log.debug("running: %s", shlex.join(argv))
    try:
        # subprocess.run kills the child if we are interrupted while waiting.
        done = subprocess.run(
            argv, env=dict(env) if env is not None else None, cwd=cwd,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
        )
    except FileNotFoundError as exc:
        raise CommandFailed(f"{what} failed: {argv[0]} not found", hint) from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        if any(marker in output for marker in DISK_FULL_MARKERS):
            raise disk_full_error(what, _tail(output, 3))
        raise CommandFailed(
            f"{what} failed (exit {done.returncode}):\n{_tail(output, OUTPUT_TAIL_LINES)}",
            hint, output,
        )
    return done.stdout


def _tail(text: str, lines: int) -> str:
    return "\n".join("    " + line for line in text.splitlines()[-lines:])
