"""`kernelctl create`: a venv bound to a base, and a kernel that works, or nothing."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Optional

from kernelctl import __version__
from kernelctl.bases import Base, resolve_base
from kernelctl.environment import (Venv, check_pip_inputs, create_venv, install_packages,
                                   kernel_env, pip_options)
from kernelctl.errors import KernelctlError, NameTaken, disk_errors
from kernelctl.kernelspec import (LAUNCHER, build_spec, check_kernel_name, install_staged,
                                  ipykernel_logos, kernels_dir, launcher_script,
                                  make_room_for_kernel, stage_kernel)
from kernelctl.model import KernelInfo
from kernelctl.probe import probe
from kernelctl.record import INCOMPLETE_MARKER, EnvRecord, read_record, write_record
from kernelctl.transaction import (Transaction, move_aside, name_lock, remove_path,
                                    stop_signals_raise)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CreateRequest:
    base: str
    name: Optional[str] = None
    display_name: Optional[str] = None
    venv: Optional[Path] = None
    prefix: Optional[Path] = None
    packages: tuple = ()
    requirement_files: tuple = ()
    no_index: bool = False
    find_links: tuple = ()
    force: bool = False


def create(request: CreateRequest, env: Mapping[str, str], home: Path,
           progress: Progress) -> KernelInfo:
    check_pip_inputs(request.requirement_files, request.find_links)
    progress(f"Inspecting the base {request.base}")
    base = resolve_base(request.base, env)
    name = check_kernel_name(request.name or base.default_kernel_name)
    venv_root = Path(os.path.abspath(request.venv or home / "venvs" / name))
    kernel_dir = kernels_dir(request.prefix) / name
    with stop_signals_raise(), name_lock(home, name), disk_errors("creating the kernel"), \
            Transaction() as tx:
        make_room_for_kernel(kernel_dir, request.force, tx)
        _make_room_for_venv(venv_root, request.force, tx)
        venv = _build_venv(venv_root, base, request, name, env, progress, tx)
        progress(f"Writing the kernel {name}")
        metadata = {**base.binding(), "venv": str(venv.root),
                    "kernelctl_version": __version__, "created": _now()}
        spec = build_spec(kernel_dir / LAUNCHER, request.display_name or base.display_name,
                          kernel_env(venv, base, env, _own_bin()), metadata)
        launcher = launcher_script(venv.python, base.interpreter.version, venv.root,
                                   base.digest or "", *_explanations(request, base, name, venv))
        staged = stage_kernel(kernel_dir.parent, name, spec, ipykernel_logos(venv.ipykernel),
                              launcher)
        install_staged(staged, kernel_dir, tx)
    return KernelInfo(name=name, display_name=spec["display_name"], language="python",
                      resource_dir=kernel_dir, managed=True, status="ok",
                      base=base.binding(), venv=venv.root)


def _make_room_for_venv(venv_root: Path, force: bool, tx: Transaction) -> None:
    if not venv_root.exists() and not venv_root.is_symlink():
        return
    if venv_root.is_dir() and not venv_root.is_symlink():
        ours = read_record(venv_root) is not None
        if not ours and (venv_root / INCOMPLETE_MARKER).exists():
            remove_path(venv_root)  # left by a create that was killed (we hold its lock)
            return
        if not any(venv_root.iterdir()):
            venv_root.rmdir()
            tx.undo_with(lambda: venv_root.mkdir(exist_ok=True))
            return
        if ours:
            if not force:
                raise NameTaken(f"the environment {venv_root} already exists",
                                "Pass --force to rebuild it, or choose another --name/--venv.")
            move_aside(venv_root, tx)
            return
    raise KernelctlError(
        f"{venv_root} exists and was not made by kernelctl; it will not be touched",
        "Choose another --venv (or --name), or move that directory away yourself.",
    )


def _build_venv(root: Path, base: Base, request: CreateRequest, name: str,
                env: Mapping[str, str], progress: Progress, tx: Transaction) -> "_BuiltVenv":
    tx.undo_with(lambda: remove_path(root))
    root.mkdir(parents=True)
    (root / INCOMPLETE_MARKER).write_text(f"{os.getpid()}\n")
    progress(f"Creating the environment {root}")
    venv = create_venv(root, base)
    run_env = {**env, **kernel_env(venv, base, env, _own_bin())}
    packages = [*base.packages, *request.packages]
    missing = [] if base.interpreter.ipykernel else ["ipykernel"]
    if packages or missing or request.requirement_files:
        progress(f"Installing {', '.join(packages + missing) or 'requirements'} (pip)")
    install_packages(venv, packages, request.requirement_files, pip_options(request.no_index, request.find_links), run_env,
                     also=missing)
    checked = probe(venv.python, run_env)
    if checked.ipykernel is None or Path(checked.prefix) != root:
        raise KernelctlError(f"the new environment {root} cannot import ipykernel",
                             "Install ipykernel into the base or pass -p ipykernel.")
    write_record(root, EnvRecord(
        kernel=name, kernelctl_version=__version__, created=_now(), base=base.binding(),
        packages=tuple(packages + missing),
        requirement_files=tuple(str(Path(r).absolute()) for r in request.requirement_files)))
    (root / INCOMPLETE_MARKER).unlink()
    return _BuiltVenv(venv.root, venv.python, venv.site_packages, checked.ipykernel)


def _explanations(request: CreateRequest, base: Base, name: str, venv: Venv) -> tuple:
    """What the notebook says when the venv is gone, or its base cannot run here."""
    recreate = f"kernelctl create --base {request.base} --name {name} --force"
    gone = (f"kernelctl: this kernel's environment {venv.root} no longer exists. In a "
            f"terminal, recreate it ({recreate}) or remove the kernel (kernelctl remove {name}).")
    if base.kind == "uenv":
        unavailable = (
            f"kernelctl: this kernel was made for the uenv {base.label} (view {base.view}), "
            "which this session does not have. Start JupyterLab with the uenv "
            f"{base.label} and the view {base.view}, or pick a kernel made for this "
            "session's image (kernelctl list shows them).")
    else:
        unavailable = (f"kernelctl: the Python this kernel's environment was built on "
                       f"({base.python}) cannot run here. Recreate it: {recreate}")
    return gone, unavailable


@dataclass(frozen=True)
class _BuiltVenv(Venv):
    ipykernel: Optional[str] = None


def _own_bin() -> Optional[Path]:
    """kernelctl's own venv bin dir, kept out of kernels' PATH (kernels outlive the tool)."""
    return Path(sys.executable).parent if sys.prefix != sys.base_prefix else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
