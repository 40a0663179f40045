"""`kernelctl install`: add packages to a kernelctl kernel's environment, so they win."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence, Tuple

from kernelctl.environment import check_pip_inputs, install_packages, pip_options
from kernelctl.errors import Interrupted, KernelctlError, disk_errors
from kernelctl.inventory import find_kernel
from kernelctl.model import KernelInfo, KernelSpec, Status
from kernelctl.record import EnvRecord, read_record, write_record
from kernelctl.redact import redact
from kernelctl.transaction import (
    locks,
    remove_path,
    stop_signals_raise,
    sweep_leftovers,
)
from kernelctl.installers import choose
from kernelctl.venvs import CONFIG, Venv, check_requirement, open_venv


def install(name: str, packages: Sequence[str], requirement_files: Sequence[Path],
            no_index: bool, find_links: Sequence[str], env: Mapping[str, str], home: Path,
            progress: Callable[[str], None], installer: str = "auto") -> KernelInfo:
    if not packages and not requirement_files:
        raise KernelctlError("nothing to install", "Name packages, or pass -r FILE.")
    check_pip_inputs(requirement_files, find_links)
    for package in packages:
        check_requirement(package, "the package list")
    uv = choose(installer, env)
    kernel, root, _ = _installable(find_kernel(name, env))
    sweep_leftovers(home)
    with disk_errors("installing"), stop_signals_raise(), locks(home, [kernel.name], [root]):
        # Checked under the lock: a `remove` that ran meanwhile took the venv away, and
        # pip through a venv without pyvenv.cfg would write into the base interpreter.
        kernel, root, spec = _installable(find_kernel(name, env))
        venv, record = _intact_venv(kernel.name, root)
        progress(f"Installing {redact(', '.join([*packages, *map(str, requirement_files)]))} "
                 f"into {root}")
        with _pip_interruptible(venv):
            install_packages(venv, packages, requirement_files,
                             pip_options(no_index, find_links), {**env, **spec.values()},
                             uv=uv)
        write_record(root, replace(
            record,
            packages=tuple(dict.fromkeys([*record.packages, *map(redact, packages)])),
            requirement_files=tuple(dict.fromkeys(
                [*record.requirement_files, *(str(Path(r).absolute()) for r in requirement_files)])),
        ))
    return kernel


def _intact_venv(name: str, root: Path) -> Tuple[Venv, EnvRecord]:
    """The kernel's venv and record, if it is still whole and still this kernel's."""
    venv = open_venv(root)
    record = read_record(root)
    broken = [str(p) for p in (root / CONFIG, root / "bin" / "python") if not os.path.isfile(p)]
    why = (f"{', '.join(broken)} missing" if broken else
           "it has no site-packages directory" if venv is None else
           "it has no kernelctl.toml record" if record is None else
           f"it belongs to the kernel '{record.kernel}'" if record.kernel != name else "")
    if why or venv is None or record is None:
        raise KernelctlError(f"the environment {root} is not whole: {why}; nothing "
                             "was installed",
                             f"Recreate it: kernelctl create --name {name} --force ...")
    return venv, record


@contextmanager
def _pip_interruptible(venv: Venv) -> Iterator[None]:
    """On Ctrl-C pip rolls back the package it was replacing; the stash dirs (~name)
    it leaves when stopped mid-way are removed, and the message says what stands."""
    before = set(_stash_dirs(venv.site_packages))
    try:
        yield
    except (KeyboardInterrupt, Interrupted) as exc:
        for stash in set(_stash_dirs(venv.site_packages)) - before:
            remove_path(stash)
        reason = exc.message if isinstance(exc, Interrupted) else "interrupted"
        raise Interrupted(f"{reason}: pip was stopped. Packages it had finished stay "
                          "installed, the one under way was rolled back; run the same "
                          "kernelctl install again to finish") from None


def _stash_dirs(site_packages: Path) -> list:
    try:
        return [site_packages / n for n in os.listdir(site_packages) if n.startswith("~")]
    except OSError:
        return []


def _installable(kernel: KernelInfo) -> Tuple[KernelInfo, Path, KernelSpec]:
    """The kernel, its venv and its spec, if kernelctl may install into it."""
    if kernel.managed and kernel.language == "julia":
        raise KernelctlError(f"'{kernel.name}' is a Julia kernel",
                             'Add Julia packages from a notebook: import Pkg; Pkg.add("PKG").')
    if not kernel.managed or kernel.venv is None or kernel.spec is None:
        raise KernelctlError(
            f"the kernel '{kernel.name}' was not made by kernelctl",
            "kernelctl only installs into environments it made; use that environment's own "
            "pip, or make a kernelctl kernel with `kernelctl create`.")
    if kernel.status != Status.OK:
        raise KernelctlError(
            f"the kernel '{kernel.name}' is {kernel.status}: {'; '.join(kernel.problems)}",
            "A mismatched kernel works only in a session with its base image; a broken one "
            f"must be made again: kernelctl create --name {kernel.name} --force ...")
    return kernel, kernel.venv, kernel.spec
