"""Doctor checks for pitfalls from the sites' docs: torchrun, RANK, a busy GPU."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator, Mapping

from kernelctl.doctor.kernels import kernel_venv, python_kernels, spec_of
from kernelctl.doctor.report import CheckResult, Context, kernel_result
from kernelctl.doctor.session import container_name
from kernelctl.errors import CommandFailed
from kernelctl.proc import run
from kernelctl.venvs import site_packages


def torchrun(context: Context) -> Iterator[CheckResult]:
    """`torchrun` outside the venv runs the base's Python, without the venv's packages."""
    for kernel in python_kernels(context):
        venv = kernel_venv(kernel)
        site = site_packages(venv) if venv else None
        if site is None or not os.path.isdir(site / "torch"):
            continue
        path = spec_of(kernel).values().get("PATH", context.env.get("PATH", ""))
        found = shutil.which("torchrun", path=path)
        if venv is not None and found and Path(found).parent != venv / "bin":
            yield kernel_result(
                kernel, "pitfall.torchrun", "warn",
                f"`torchrun` resolves to {found}, outside the venv that has torch: it would "
                "run the base's Python without the venv's packages",
                "Use `python -m torch.distributed.run` instead of `torchrun`.")
        else:
            yield kernel_result(kernel, "pitfall.torchrun", "ok",
                                "`torchrun` is the venv's own (or absent)")


def rank_variables(context: Context) -> Iterator[CheckResult]:
    present = [f"{var}={context.env[var]}" for var in ("RANK", "LOCAL_RANK") if var in context.env]
    if not present:
        yield CheckResult("pitfall.rank-env", "ok", "RANK and LOCAL_RANK are not set")
        return
    where = f" (set by the container {container_name(context.env)})" \
        if container_name(context.env) else ""
    yield CheckResult(
        "pitfall.rank-env", "warn",
        f"{' and '.join(present)} are set in this session{where}: accelerate's "
        "notebook_launcher and transformers' Trainer then fail or hang",
        "In the notebook's first cell: import os; os.environ.pop('RANK', None); "
        "os.environ.pop('LOCAL_RANK', None)")


def gpu_holders(context: Context) -> Iterator[CheckResult]:
    nvidia_smi = shutil.which("nvidia-smi", path=context.env.get("PATH", ""))
    if not nvidia_smi:
        yield CheckResult("pitfall.gpu-busy", "ok", "no nvidia-smi: no NVIDIA GPU to check")
        return
    holders = _my_gpu_processes(nvidia_smi, context.env)
    if not holders:
        yield CheckResult("pitfall.gpu-busy", "ok", "no other process of yours holds a GPU")
        return
    listed = "; ".join(f"pid {pid} ({name}, {memory} MiB)" for pid, name, memory in holders)
    yield CheckResult(
        "pitfall.gpu-busy", "warn",
        f"your other processes hold GPU memory: {listed} (often another notebook's kernel)",
        "Shut those kernels down (JupyterLab: Running Terminals and Kernels), or kill the "
        "pids; then restart this kernel.")


def _my_gpu_processes(nvidia_smi: str, env: Mapping[str, str]) -> list:
    try:
        out = run([nvidia_smi, "--query-compute-apps=pid,process_name,used_memory",
                   "--format=csv,noheader,nounits"], env=env, timeout=10,
                  what="nvidia-smi")
    except CommandFailed:
        return []
    mine, holders = _own_tree(), []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        pid = int(parts[0])
        try:
            owner = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue  # gone, or in another pid namespace
        if owner == os.getuid() and pid not in mine:
            holders.append((pid, parts[1], parts[2]))
    return holders


def _own_tree() -> set:
    """This process and its ancestors (the kernel or terminal doctor runs from)."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids
