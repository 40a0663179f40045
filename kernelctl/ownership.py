"""May kernelctl delete or replace this? The one answer every command asks for.

- A kernel directory: only when it holds nothing but kernelspec files. A symlink to
  one is the user's: replacing the kernel follows it (the target is rewritten, the link
  stays); removing the kernel removes the link alone, never what it points to.
- A venv: only when its record names this kernel (by its kernel directory; a name is
  shared by kernels in two prefixes) and no other kernelspec on any Jupyter path uses
  it, by kernelctl's metadata, its argv[0] or its env's VIRTUAL_ENV or PATH. Files the
  user put inside it (pip's src/ checkouts of `-e git+...`, notes) are named, and it is
  deleted only when the user says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Optional

from kernelctl.errors import KernelctlError
from kernelctl.model import KernelInfo, KernelSpec
from kernelctl.paths import is_within, path_list, same_path
from kernelctl.record import INCOMPLETE_MARKER, RECORD_NAME, EnvRecord, read_record
from kernelctl.venvs import CONFIG

if TYPE_CHECKING:
    from kernelctl.transaction import Transaction

LOGO_FILES = ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg")
LAUNCHER = "kernelctl-launch.sh"
EXPLAINER = "kernelctl-explain.py"
SLURM_RELAY = "kernelctl-slurm.py"  # a Slurm kernel's relay (docs/slurm-kernels.md)
# A hand-made kernel.json that `kernelctl adopt` fixed, kept so the user can go back.
ORIGINAL_SPEC = "kernel.json.before-kernelctl"
# What a kernelspec directory may hold; anything else means it is not only a kernelspec.
KERNELSPEC_FILES = frozenset({"kernel.json", "kernel.js", "kernel.css", LAUNCHER, EXPLAINER,
                              SLURM_RELAY,
                              ORIGINAL_SPEC, *LOGO_FILES})
# What venv/virtualenv, uv, pip and kernelctl put at the top of an environment.
VENV_FILES = frozenset({"bin", "lib", "lib64", "include", "share", "etc", "man", "Scripts",
                        CONFIG, ".gitignore", ".lock", "CACHEDIR.TAG", "pip-selfcheck.json",
                        RECORD_NAME, INCOMPLETE_MARKER})
# Said wherever a deletion needs the user's word.
DELETE_USER_FILES = "--delete-user-files"


def kernel_dir_target(kernel_dir: Path) -> Path:
    """The directory kernelctl changes for a kernel: a symlink's target, never the link."""
    return Path(os.path.realpath(kernel_dir))


def foreign_files(kernel_dir: Path) -> list:
    """What a kernel directory holds besides a kernelspec (someone's notes or data)."""
    try:
        return sorted(set(os.listdir(kernel_dir)) - KERNELSPEC_FILES)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise KernelctlError(f"cannot read {kernel_dir}: {exc.strerror}",
                             "Check its permissions, or remove it yourself.") from exc


def check_only_kernelspec(kernel_dir: Path, doing: str = "delete") -> None:
    """Refuse to delete or replace a directory holding more than a kernelspec."""
    extra = foreign_files(kernel_dir_target(kernel_dir))
    if extra:
        raise KernelctlError(
            f"{kernel_dir} holds files that are not part of a kernelspec "
            f"({', '.join(extra[:5])}{', ...' if len(extra) > 5 else ''})",
            f"kernelctl will not {doing} them; move them out of {kernel_dir}, then run the "
            "command again.")


def check_removable_dir(kernel_dir: Path) -> None:
    """A kernel directory `remove` may delete: only kernelspec files. A symlink is
    removed as the link alone: what it points to is the user's and stays."""
    if not os.path.islink(kernel_dir):
        check_only_kernelspec(kernel_dir)


def spec_uses_venv(spec: KernelSpec, venv: Path) -> bool:
    """Whether a kernelspec runs from `venv` in any of the ways a kernel can."""
    binding = spec.binding
    if binding is not None and binding.venv and same_path(binding.venv, venv):
        return True
    if os.path.isabs(spec.argv[0]) and is_within(spec.argv[0], venv):
        return True
    env = spec.values()
    if env.get("VIRTUAL_ENV") and same_path(env["VIRTUAL_ENV"], venv):
        return True
    return any(os.path.isabs(entry) and is_within(entry, venv)
               for entry in path_list(env.get("PATH")))


def venv_users(venv: Path, kernels: Iterable[KernelInfo],
               except_dir: Optional[Path] = None) -> list:
    """The kernels (besides the one at `except_dir`) that use `venv`."""
    return sorted({k.name for k in kernels if k.spec is not None
                   and (except_dir is None or not same_path(k.resource_dir, except_dir))
                   and spec_uses_venv(k.spec, venv)})


def owns(record: EnvRecord, kernel_dir: Path, name: str) -> bool:
    """Whether a venv's record names this kernel: by its directory (records since
    kernelctl 0.x name it), else by its name (older records)."""
    if record.kernel_dir:
        return same_path(record.kernel_dir, kernel_dir)
    return record.kernel == name


def user_files_in_venv(venv: Path) -> list:
    """What the user put at the top of a venv: pip's src/ checkouts, notes, data."""
    try:
        return sorted(set(os.listdir(venv)) - VENV_FILES)
    except OSError:
        return []


@dataclass(frozen=True)
class VenvVerdict:
    delete: bool
    why_kept: str = ""


def venv_verdict(venv: Optional[Path], kernel_dir: Path, name: str,
                 kernels: Iterable[KernelInfo], delete_user_files: bool = False) -> VenvVerdict:
    """Whether removing or replacing the kernel at `kernel_dir` may delete `venv`.
    A KernelctlError when it would, but the venv holds the user's files."""
    if venv is None or not os.path.lexists(venv):
        return VenvVerdict(False)
    if os.path.islink(venv) or not os.path.isdir(venv):
        return VenvVerdict(False, f"kept {venv}: it is not a directory kernelctl made")
    try:
        record = read_record(venv)
    except KernelctlError:
        record = None
    if record is None:
        return VenvVerdict(False, f"kept {venv}: it has no readable kernelctl.toml, so "
                                  "kernelctl did not make it")
    if not owns(record, kernel_dir, name):
        return VenvVerdict(False, f"kept {venv}: it belongs to the kernel '{record.kernel}'"
                                  + (f" at {record.kernel_dir}" if record.kernel_dir else ""))
    users = venv_users(venv, kernels, except_dir=kernel_dir)
    if users:
        return VenvVerdict(False, f"kept {venv}: the kernel(s) {', '.join(users)} use it too")
    extra = user_files_in_venv(venv)
    if extra and not delete_user_files:
        raise KernelctlError(
            f"the environment {venv} holds files you put there ({', '.join(extra[:5])}"
            f"{', ...' if len(extra) > 5 else ''}), which deleting it would lose",
            f"Move them out first, or pass {DELETE_USER_FILES} to delete them with it "
            "(or --keep-venv to keep the environment).")
    return VenvVerdict(True)


def check_venvs_may_go(venvs: Iterable[Path], kernel_dir: Path, env: Mapping[str, str],
                       delete_user_files: bool = False) -> None:
    """Before building a replacement: refuse now, not after the build, when a venv the
    switch would retire holds the user's files."""
    venvs = [v for v in venvs if os.path.isdir(v)]
    if not venvs:
        return
    from kernelctl.inventory import find_kernels

    kernels = find_kernels(env, include_shadowed=True)
    for venv in venvs:
        venv_verdict(venv, kernel_dir, kernel_dir.name, kernels, delete_user_files)


def half_made_venv(venv: Path) -> bool:
    """A venv a dead run was making: kernelctl's incomplete marker or its record, and
    no kernel uses it. What the sweep may delete."""
    if not (os.path.exists(venv / INCOMPLETE_MARKER) or os.path.exists(venv / RECORD_NAME)):
        return False
    from kernelctl.inventory import find_kernels

    return not venv_users(venv, find_kernels(os.environ, include_shadowed=True))


def retire_venv(venv: Optional[Path], kernel_dir: Path, name: str, tx: "Transaction",
                env: Mapping[str, str],
                delete_user_files: bool = False) -> str:
    """Once a kernel no longer uses `venv` (after its switch, or its removal): move it
    aside through `tx` (deleted at the commit, restored if the run fails or dies) when
    it may go; else say why it stays."""
    from kernelctl.inventory import find_kernels
    from kernelctl.transaction import move_aside

    verdict = venv_verdict(venv, kernel_dir, name, find_kernels(env, include_shadowed=True),
                           delete_user_files)
    if verdict.delete and venv is not None:
        move_aside(venv, tx)
    return verdict.why_kept
