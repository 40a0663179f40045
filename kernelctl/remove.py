"""`kernelctl remove`: delete kernelspecs and the environments kernelctl made for them.

The one removal path: `remove`, `remove --broken` and `doctor --fix` all plan with
plan_removal and delete with apply_removals, under the same locks as create/install.
Each kernel goes in two renames (its venv first: a kernel without its venv is listed
as broken and removable, never stuck), then the deletion of what was moved aside.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from kernelctl.errors import Interrupted, KernelctlError, disk_errors
from kernelctl.inventory import find_kernel, find_kernels
from kernelctl.kernelspec import check_only_kernelspec
from kernelctl.model import KernelInfo, Status
from kernelctl.paths import same_path
from kernelctl.record import read_record
from kernelctl.transaction import (
    Transaction,
    locks,
    move_aside,
    stop_signals_raise,
    sweep_leftovers,
)


@dataclass(frozen=True)
class Removal:
    kernel: KernelInfo
    venv: Optional[Path] = None  # the environment to delete with it
    venv_kept: str = ""  # why an environment stays, when one does


def plan_removals(names: Sequence[str], broken: bool, keep_venv: bool,
                  env: Mapping[str, str]) -> list:
    if not names and not broken:
        raise KernelctlError("no kernel to remove was named",
                             "Name the kernels (kernelctl list shows them), or pass --broken.")
    everything = find_kernels(env, include_shadowed=True)
    if broken:
        chosen = [k for k in everything if k.managed and k.status == Status.BROKEN]
    else:
        chosen = _unique([find_kernel(_checked(name), env) for name in names])
    return [plan_removal(kernel, everything, keep_venv) for kernel in chosen]


def plan_removal(kernel: KernelInfo, everything: list, keep_venv: bool = False) -> Removal:
    """What removing `kernel` deletes; a KernelctlError when it must not be deleted."""
    if kernel.belongs_to:
        raise KernelctlError(
            f"the kernel '{kernel.name}' belongs to {kernel.belongs_to} (it is that "
            "environment's own kernel); kernelctl does not remove it",
            "It goes with that environment. To hide it from Jupyter, make a kernel of "
            "your own with the same name in your user data dir (kernelctl create --name).")
    check_only_kernelspec(kernel.resource_dir)
    venv = kernel.venv
    if not kernel.managed or venv is None or not os.path.lexists(venv):
        return Removal(kernel)
    if keep_venv:
        return Removal(kernel, venv_kept=f"kept {venv} (--keep-venv)")
    why_not = _why_not_ours(kernel, venv, everything)
    return Removal(kernel, venv_kept=why_not) if why_not else Removal(kernel, venv=venv)


def apply_removals(removals: Sequence[Removal], home: Path) -> None:
    sweep_leftovers(home)
    done: list = []
    for removal in removals:
        try:
            _apply(removal, home)
        except Interrupted as exc:
            if not done:
                raise
            raise Interrupted(f"{exc.message} to {removal.kernel.name}; already removed: "
                              f"{', '.join(done)}") from exc
        done.append(removal.kernel.name)


def _apply(removal: Removal, home: Path) -> None:
    kernel = removal.kernel
    venvs = [removal.venv] if removal.venv else []
    with disk_errors(f"removing {kernel.name}"), stop_signals_raise(), \
            locks(home, [kernel.name], venvs), Transaction(home) as tx:
        # Again under the lock: the directory may have changed since the plan was shown.
        check_only_kernelspec(kernel.resource_dir)
        if removal.venv:
            _check_still_ours(kernel, removal.venv)
        try:
            if removal.venv:
                move_aside(removal.venv, tx)
            move_aside(kernel.resource_dir, tx, beside=kernel.resource_dir.parent.parent)
        except PermissionError as exc:
            raise KernelctlError(
                f"cannot remove {exc.filename}: permission denied",
                "It is a system-wide kernel or environment: ask the site's admins to remove it.",
            ) from exc


def _check_still_ours(kernel: KernelInfo, venv: Path) -> None:
    record = _record(venv)
    if record is None or record.kernel != kernel.name:
        raise KernelctlError(f"{venv} changed since the removal was planned; it was not touched",
                             f"Run kernelctl remove {kernel.name} again.")


def _checked(name: str) -> str:
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise KernelctlError(f"'{name}' is not a kernel name",
                             "Give the name `kernelctl list` shows, not a path.")
    return name


def _unique(kernels: list) -> list:
    return list({kernel.resource_dir: kernel for kernel in kernels}.values())


def _record(venv: Path):
    try:
        return read_record(venv)
    except (KernelctlError, OSError):
        return None


def _why_not_ours(kernel: KernelInfo, venv: Path, everything: list) -> str:
    if kernel.base is not None and kernel.base.adopted:
        return f"kept {venv}: it was adopted, not made by kernelctl; only the kernelspec goes"
    if os.path.islink(venv) or not os.path.isdir(venv):
        return f"kept {venv}: it is not a directory kernelctl made"
    record = _record(venv)
    if record is None:
        return f"kept {venv}: it has no readable kernelctl.toml, so kernelctl did not make it"
    if record.kernel != kernel.name:
        return f"kept {venv}: it belongs to the kernel '{record.kernel}'"
    sharing = sorted({k.name for k in everything if k.venv and same_path(k.venv, venv)
                      and k.resource_dir != kernel.resource_dir})
    if sharing:
        return f"kept {venv}: the kernel(s) {', '.join(sharing)} use it too"
    return ""
