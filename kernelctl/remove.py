"""`kernelctl remove`: delete kernelspecs and the environments kernelctl made for them."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from kernelctl.errors import KernelctlError
from kernelctl.inventory import find_kernel, find_kernels
from kernelctl.kernelspec import EXPLAINER, LAUNCHER, LOGO_FILES
from kernelctl.model import KernelInfo
from kernelctl.record import read_record

# What a kernelspec directory may hold; anything else means it is not only a kernelspec.
KERNELSPEC_FILES = {"kernel.json", "kernel.js", "kernel.css", LAUNCHER, EXPLAINER, *LOGO_FILES}


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
        chosen = [k for k in everything if k.managed and k.status == "broken"]
    else:
        chosen = _unique([find_kernel(_checked(name), env) for name in names])
    return [_plan(kernel, everything, keep_venv) for kernel in chosen]


def apply_removals(removals: Sequence[Removal]) -> None:
    for removal in removals:
        _delete(removal.kernel.resource_dir)  # first, so Jupyter stops offering it
        if removal.venv:
            _delete(removal.venv)


def _checked(name: str) -> str:
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise KernelctlError(f"'{name}' is not a kernel name",
                             "Give the name `kernelctl list` shows, not a path.")
    return name


def _unique(kernels: list) -> list:
    return list({kernel.resource_dir: kernel for kernel in kernels}.values())


def _plan(kernel: KernelInfo, everything: list, keep_venv: bool) -> Removal:
    _check_is_kernelspec(kernel.resource_dir)
    venv = kernel.venv
    if not kernel.managed or venv is None or not (venv.exists() or venv.is_symlink()):
        return Removal(kernel)
    if keep_venv:
        return Removal(kernel, venv_kept=f"kept {venv} (--keep-venv)")
    why_not = _why_not_ours(kernel, venv, everything)
    return Removal(kernel, venv_kept=why_not) if why_not else Removal(kernel, venv=venv)


def _why_not_ours(kernel: KernelInfo, venv: Path, everything: list) -> str:
    if venv.is_symlink() or not venv.is_dir():
        return f"kept {venv}: it is not a directory kernelctl made"
    try:
        record = read_record(venv)
    except KernelctlError:
        record = None
    if record is None:
        return f"kept {venv}: it has no readable kernelctl.toml, so kernelctl did not make it"
    if record.kernel != kernel.name:
        return f"kept {venv}: it belongs to the kernel '{record.kernel}'"
    sharing = sorted({k.name for k in everything
                      if k.venv == venv and k.resource_dir != kernel.resource_dir})
    if sharing:
        return f"kept {venv}: the kernel(s) {', '.join(sharing)} use it too"
    return ""


def _check_is_kernelspec(resource_dir: Path) -> None:
    """Refuse to delete a directory holding more than a kernelspec (someone's data)."""
    if resource_dir.is_symlink() or not resource_dir.is_dir():
        return
    try:
        extra = sorted(set(os.listdir(resource_dir)) - KERNELSPEC_FILES)
    except OSError as exc:
        raise KernelctlError(f"cannot read {resource_dir}: {exc.strerror}",
                             "Check its permissions, or remove it yourself.") from exc
    if extra:
        raise KernelctlError(
            f"{resource_dir} holds files that are not part of a kernelspec ({', '.join(extra[:5])})",
            "kernelctl will not delete them; move them away or remove the directory yourself.")


def _delete(path: Path) -> None:
    """Remove a kernelspec or environment; a symlink is removed, never followed."""
    try:
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
    except PermissionError as exc:
        raise KernelctlError(
            f"cannot remove {path}: permission denied",
            "It is a system-wide kernel or environment: ask the site's admins to remove it.",
        ) from exc
