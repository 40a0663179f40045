"""Doctor check of this session's Jupyter server log and the kernel errors in it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

from kernelctl.doctor.report import CheckResult, Context

TAIL_BYTES = 256 * 1024
SHOWN_ERRORS = 5
KERNEL_ERROR = re.compile(
    r"KernelRestarter|restarting kernel|kernel died|Kernel .* died|Traceback|\[E |ERROR"
    r"|KernelUnavailable", re.IGNORECASE)


def server_log(context: Context) -> Iterator[CheckResult]:
    job = context.env.get("SLURM_JOB_ID")
    if not job:
        yield CheckResult("logs.server", "ok", "not in a Slurm job: no JupyterHub server log "
                          "to read (on a Hub, it is jupyterhub_<jobid>.log or slurm-<jobid>.out)")
        return
    candidates = [Path(context.env[var]) / name for var, name in (
        ("SCRATCH", f"jupyterhub_{job}.log"), ("HOME", f"slurm-{job}.out")) if context.env.get(var)]
    log = next((path for path in candidates if os.path.isfile(path)), None)
    if log is None:
        yield CheckResult("logs.server", "warn",
                          f"no server log for job {job} at {' or '.join(map(str, candidates))}",
                          "Your site may keep it elsewhere; `scontrol show job $SLURM_JOB_ID` "
                          "shows StdOut.")
        return
    try:
        errors = recent_kernel_errors(log)
    except OSError as exc:
        yield CheckResult("logs.server", "warn",
                          f"the server log {log} cannot be read: {exc.strerror}",
                          f"Check its permissions (ls -l {log}).")
        return
    if errors:
        shown = "\n  ".join(errors)
        yield CheckResult("logs.server", "warn",
                          f"the server log {log} has recent kernel errors:\n  {shown}",
                          f"Read the context: less +G {log}")
    else:
        yield CheckResult("logs.server", "ok", f"the server log is {log} (no kernel errors)")


def recent_kernel_errors(log: Path) -> list:
    with open(log, "rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - TAIL_BYTES))
        lines = handle.read().decode("utf-8", "replace").splitlines()
    errors = [line.strip() for line in lines if KERNEL_ERROR.search(line)]
    return list(dict.fromkeys(errors))[-SHOWN_ERRORS:]
