"""`kernelctl install`: add packages to a kernelctl kernel's environment, so they win."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from kernelctl.environment import Venv, check_pip_inputs, install_packages, pip_options
from kernelctl.errors import KernelctlError, disk_errors
from kernelctl.inventory import find_kernel
from kernelctl.model import KernelInfo
from kernelctl.record import read_record, write_record
from kernelctl.transaction import name_lock, stop_signals_raise


def install(name: str, packages: Sequence[str], requirement_files: Sequence[Path],
            no_index: bool, find_links: Sequence[str], env: Mapping[str, str], home: Path,
            progress: Callable[[str], None]) -> KernelInfo:
    if not packages and not requirement_files:
        raise KernelctlError("nothing to install", "Name packages, or pass -r FILE.")
    check_pip_inputs(requirement_files, find_links)
    kernel = _installable(find_kernel(name, env))
    record = read_record(kernel.venv)
    if record is None:
        raise KernelctlError(f"{kernel.venv} has no kernelctl.toml record",
                             f"Recreate it: kernelctl create --name {kernel.name} --force ...")
    spec_env = {k: v.replace("$$", "$") for k, v in kernel.spec.get("env", {}).items()}
    with stop_signals_raise(), name_lock(home, kernel.name), disk_errors("installing"):
        progress(f"Installing {', '.join([*packages, *map(str, requirement_files)])} "
                 f"into {kernel.venv}")
        install_packages(_venv(kernel), packages, requirement_files,
                         pip_options(no_index, find_links), {**env, **spec_env})
        write_record(kernel.venv, replace(
            record,
            packages=tuple(dict.fromkeys([*record.packages, *packages])),
            requirement_files=tuple(dict.fromkeys(
                [*record.requirement_files, *(str(Path(r).absolute()) for r in requirement_files)])),
        ))
    return kernel


def _installable(kernel: KernelInfo) -> KernelInfo:
    if kernel.managed and kernel.language == "julia":
        raise KernelctlError(f"'{kernel.name}' is a Julia kernel",
                             'Add Julia packages from a notebook: import Pkg; Pkg.add("PKG").')
    if not kernel.managed or kernel.venv is None:
        raise KernelctlError(
            f"the kernel '{kernel.name}' was not made by kernelctl",
            "kernelctl only installs into environments it made; use that environment's own "
            "pip, or make a kernelctl kernel with `kernelctl create`.")
    if kernel.status != "ok":
        raise KernelctlError(
            f"the kernel '{kernel.name}' is {kernel.status}: {'; '.join(kernel.problems)}",
            "A mismatched kernel works only in a session with its base image; a broken one "
            f"must be made again: kernelctl create --name {kernel.name} --force ...")
    return kernel


def _venv(kernel: KernelInfo) -> Venv:
    site_packages = next(iter(sorted(kernel.venv.glob("lib/python*/site-packages"))), None)
    if site_packages is None:
        raise KernelctlError(f"{kernel.venv} has no site-packages directory",
                             f"Recreate it: kernelctl create --name {kernel.name} --force ...")
    return Venv(root=kernel.venv, python=kernel.venv / "bin" / "python",
                site_packages=site_packages)
