"""`kernelctl slurm NAME`: make an existing kernel a Slurm kernel, change what it asks
for, or make it a plain kernel again. Its environment is not touched: only its
kernelspec (kernel.json, launcher, relay) is replaced, in one switch."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Optional

from kernelctl.binding import PythonBinding
from kernelctl.errors import KernelctlError, disk_errors
from kernelctl.kernelspec import (
    LAUNCHER,
    carry_kernelspec_files,
    install_staged,
    stage_kernel,
    with_slurm_dispatch,
)
from kernelctl.model import SLURM_KEY, KernelInfo, KernelSpec
from kernelctl.ownership import check_only_kernelspec, kernel_dir_target
from kernelctl.slurm import SlurmRequest, check_accepted
from kernelctl.transaction import Transaction, locks, stop_signals_raise, sweep_leftovers

OFF = "off"
WRITTEN_SUFFIX = re.compile(r" · Slurm (?:step|job)(?:: .*)?\Z")


def change_slurm(name: str, mode: Optional[str], changes: dict, env: Mapping[str, str],
                 home: Path) -> KernelInfo:
    """The kernel, now asking Slurm for `mode` and `changes` (None: keep its mode;
    "off": a plain kernel again)."""
    from kernelctl.inventory import find_kernel

    kernel = find_kernel(name, env)
    current = _python_kernel(kernel)
    request = _wanted(kernel, current, mode, changes)
    if request is not None:
        check_accepted(request, env)
    sweep_leftovers(home)
    with disk_errors("changing the kernel"), stop_signals_raise(), locks(home, [kernel.name]), \
            Transaction(home, [kernel.name]) as tx:
        kernel = find_kernel(name, env)  # again, under the lock
        check_only_kernelspec(kernel.resource_dir, "replace")
        launcher = _launcher(kernel, request is not None)
        spec = _spec(kernel, request)
        staged = stage_kernel(kernel.resource_dir.parent, kernel.name, spec, None, tx,
                              launcher, slurm=request is not None)
        carry_kernelspec_files(kernel.resource_dir, staged)
        install_staged(staged, kernel.resource_dir, tx)
    return find_kernel(name, env)


def _python_kernel(kernel: KernelInfo) -> Optional[SlurmRequest]:
    """The kernel's current request; refused for what kernelctl cannot re-target."""
    binding = kernel.base
    if not isinstance(binding, PythonBinding) or kernel.spec is None or \
            not os.path.isfile(kernel.resource_dir / LAUNCHER):
        raise KernelctlError(f"'{kernel.name}' is not a Python kernel kernelctl made, so it "
                             "cannot be made a Slurm kernel",
                             "Make one: kernelctl create --slurm job ... (kernelctl adopt "
                             "takes over a hand-made kernel first).")
    return SlurmRequest.from_metadata(kernel.slurm)


def _wanted(kernel: KernelInfo, current: Optional[SlurmRequest], mode: Optional[str],
            changes: dict) -> Optional[SlurmRequest]:
    given = {key: value for key, value in changes.items() if value not in (None, ())}
    if mode == OFF:
        if given:
            raise KernelctlError("--mode off makes a plain kernel: resource options do not "
                                 "apply", "Leave them out.")
        if current is None:
            raise KernelctlError(f"'{kernel.name}' is not a Slurm kernel",
                                 "Nothing to turn off.")
        return None
    if current is None and mode is None:
        raise KernelctlError(f"'{kernel.name}' is not a Slurm kernel yet",
                             f"Say how it runs: kernelctl slurm {kernel.name} --mode job "
                             "(or step) with its resources.")
    base = current if current is not None else SlurmRequest(mode=mode or "job")
    request = base.with_changes(mode=mode, **given)
    return request.checked()


def _launcher(kernel: KernelInfo, slurm: bool) -> str:
    text = (kernel_dir_target(kernel.resource_dir) / LAUNCHER).read_text()
    changed = with_slurm_dispatch(text, slurm)
    if changed is None:
        raise KernelctlError(f"the launcher of '{kernel.name}' was written by an older "
                             "kernelctl", f"Rebuild it first: kernelctl rebuild {kernel.name}")
    return changed


def _spec(kernel: KernelInfo, request: Optional[SlurmRequest]) -> KernelSpec:
    spec = kernel.spec
    assert spec is not None
    metadata = {k: v for k, v in spec.metadata.items() if k != SLURM_KEY}
    if request is not None:
        metadata[SLURM_KEY] = request.to_metadata()
    display = spec.display_name
    if kernel.slurm is None or WRITTEN_SUFFIX.search(display):  # kernelctl's own words
        display = WRITTEN_SUFFIX.sub("", display)
        display = f"{display} · {request.summary()}" if request is not None else display
    other = {**spec.other, "interrupt_mode": "message" if request is not None else "signal"}
    return replace(spec, display_name=display, metadata=metadata, other=other)
