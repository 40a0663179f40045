"""`kernelctl remove`: delete kernelspecs and the environments kernelctl made for them.

The one removal path: `remove`, `remove --broken` and `doctor --fix` all plan with
plan_removal (kernelctl.ownership says what may go) and delete with apply_removals,
under the same locks and journal as every other change. The plan is made again under
the lock. A kernel goes in two journaled renames (its directory, then its venv) and one
commit; a run killed before the commit gets both back from the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple

from kernelctl.errors import KernelctlError, disk_errors
from kernelctl.inventory import find_kernel, find_kernels
from kernelctl.model import KernelInfo, Status
from kernelctl.ownership import check_removable_dir, venv_verdict
from kernelctl.results import Failure, attempt_each
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


@dataclass(frozen=True)
class RemovalOptions:
    keep_venv: bool = False
    delete_user_files: bool = False  # a venv holding the user's files goes too


def plan_removals(names: Sequence[str], broken: bool, options: RemovalOptions,
                  env: Mapping[str, str]) -> Tuple[list, list]:
    """(the removals, a Failure for each kernel that must stay): a refusal for one
    kernel never stops the others."""
    if not names and not broken:
        raise KernelctlError("no kernel to remove was named",
                             "Name the kernels (kernelctl list shows them), or pass --broken.")
    everything = find_kernels(env, include_shadowed=True)
    if broken:
        chosen = [k for k in everything if k.managed and k.status == Status.BROKEN]
    else:
        chosen = _unique([find_kernel(_checked(name), env) for name in names])
    removals, refusals = [], []
    for kernel in chosen:
        try:
            removals.append(plan_removal(kernel, everything, options))
        except KernelctlError as refusal:
            refusals.append(Failure(kernel.name, refusal))
    return removals, refusals


def plan_removal(kernel: KernelInfo, everything: list,
                 options: RemovalOptions = RemovalOptions()) -> Removal:
    """What removing `kernel` deletes; a KernelctlError when it must not be deleted."""
    if kernel.belongs_to:
        raise KernelctlError(
            f"the kernel '{kernel.name}' belongs to {kernel.belongs_to} (it is that "
            "environment's own kernel); kernelctl does not remove it",
            "It goes with that environment. To hide it from Jupyter, make a kernel of "
            "your own with the same name in your user data dir (kernelctl create --name).")
    check_removable_dir(kernel.resource_dir)
    venv = kernel.venv
    if not kernel.managed or venv is None:
        return Removal(kernel)
    if kernel.base is not None and kernel.base.adopted:
        return Removal(kernel, venv_kept=f"kept {venv}: it was adopted, not made by "
                                         "kernelctl; only the kernelspec goes")
    if options.keep_venv:
        return Removal(kernel, venv_kept=f"kept {venv} (--keep-venv)")
    verdict = venv_verdict(venv, kernel.resource_dir, kernel.name, everything,
                           options.delete_user_files)
    return Removal(kernel, venv=venv) if verdict.delete else Removal(kernel,
                                                                     venv_kept=verdict.why_kept)


def apply_removals(removals: Sequence[Removal], home: Path, env: Mapping[str, str],
                   options: RemovalOptions = RemovalOptions()) -> Tuple[list, list]:
    """(the removals done, a Failure for each that was refused under the lock)."""
    sweep_leftovers(home)
    return attempt_each(removals, lambda removal: _apply(removal, home, env, options),
                        lambda removal: removal.kernel.name, "removed")


def _apply(planned: Removal, home: Path, env: Mapping[str, str],
           options: RemovalOptions) -> Removal:
    kernel = planned.kernel
    venvs = [planned.venv] if planned.venv else []
    with disk_errors(f"removing {kernel.name}"), stop_signals_raise(), \
            locks(home, [kernel.name], venvs), Transaction(home, [kernel.name]) as tx:
        removal = _again_under_lock(planned, env, options)
        try:
            move_aside(kernel.resource_dir, tx, beside=kernel.resource_dir.parent.parent)
            if removal.venv:
                move_aside(removal.venv, tx)
        except PermissionError as exc:
            raise KernelctlError(
                f"cannot remove {exc.filename}: permission denied",
                "It is a system-wide kernel or environment: ask the site's admins to remove it.",
            ) from exc
    return removal


def _again_under_lock(planned: Removal, env: Mapping[str, str],
                      options: RemovalOptions) -> Removal:
    """The plan made again now that the lock is held; a refusal if it changed."""
    everything = find_kernels(env, include_shadowed=True)
    kernel = next((k for k in everything if k.resource_dir == planned.kernel.resource_dir), None)
    again = plan_removal(kernel, everything, options) if kernel is not None else None
    if again is None or again.venv != planned.venv:
        raise KernelctlError(f"{planned.kernel.name} changed since the removal was planned; "
                             "it was not touched",
                             f"Run kernelctl remove {planned.kernel.name} again.")
    return again


def _checked(name: str) -> str:
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise KernelctlError(f"'{name}' is not a kernel name",
                             "Give the name `kernelctl list` shows, not a path.")
    return name


def _unique(kernels: list) -> list:
    return list({kernel.resource_dir: kernel for kernel in kernels}.values())
