"""`kernelctl adopt PATH|KERNEL`: give an environment made by hand (DKRZ's
`conda create --prefix` + `ipykernel install`, a virtualenv) kernelctl's kernel, or fix
such a hand-made kernelspec in place.

The environment stays the user's: kernelctl writes nothing into it (no record, no guard;
the kernelspec carries the fixes) unless asked to install ipykernel, and `remove` of an
adopted kernel deletes only its kernelspec.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Optional, Tuple

from kernelctl import __version__
from kernelctl.bases import Base, resolve_base
from kernelctl.environment import kernel_env, own_bin, pip_options
from kernelctl.errors import KernelctlError, disk_errors
from kernelctl.kernelspec import (
    EXPLAINER,
    LAUNCHER,
    ORIGINAL_SPEC,
    build_spec,
    check_kernel_name,
    install_staged,
    ipykernel_logos,
    kernels_dir,
    launcher_script,
    stage_kernel,
)
from kernelctl.model import KernelInfo, Status
from kernelctl.probe import Interpreter, probe
from kernelctl.proc import run
from kernelctl.record import write_atomically
from kernelctl.transaction import Transaction, locks, remove_path, stop_signals_raise
from kernelctl.venvs import Venv, site_packages


@dataclass(frozen=True)
class AdoptRequest:
    target: str  # an environment's directory, or the name of a hand-made kernel
    base: Optional[str] = None  # what the environment was built on, when not its own Python
    name: Optional[str] = None
    display_name: Optional[str] = None
    prefix: Optional[Path] = None
    install_ipykernel: bool = False
    no_index: bool = False
    find_links: tuple = ()


def adopt(request: AdoptRequest, env: Mapping[str, str], home: Path,
          progress: Callable[[str], None]) -> KernelInfo:
    root, existing = _target(request.target, env)
    python = _env_python(root)
    progress(f"Inspecting the environment {root}")
    interpreter = probe(python, env)
    base = _base_of(root, interpreter, request.base, env)
    progress(f"It is built on {base.describe()}")
    if existing is not None:
        name, kernel_dir = existing.name, existing.resource_dir
    else:
        name = check_kernel_name(request.name or _name_for(root))
        kernel_dir = kernels_dir(request.prefix) / name
        if os.path.lexists(kernel_dir):
            raise KernelctlError(f"a kernel named '{name}' already exists at {kernel_dir}",
                                 f"Adopt that kernel instead (kernelctl adopt {name}), or "
                                 "choose another --name.")
    with disk_errors("adopting the environment"), stop_signals_raise(), \
            locks(home, [name], []), Transaction(home) as tx:
        if interpreter.ipykernel is None:
            interpreter = _give_ipykernel(root, python, request, env, progress)
        venv = Venv(root=root, python=python, site_packages=site_packages(root) or root)
        binding = replace(base.binding(), venv=str(root), adopted="yes",
                          kernelctl_version=__version__,
                          created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        display = request.display_name or (existing.display_name if existing else
                                           f"Python {interpreter.major_minor} ({root.name})")
        # What the hand-made kernel.json set stays, unless kernelctl must set it.
        kept = existing.spec.values() if existing is not None and existing.spec else {}
        spec = build_spec(kernel_dir / LAUNCHER, display,
                          {**kept, **kernel_env(venv, base, base.frozen(env), own_bin())},
                          binding, base.launcher_shell)
        launcher = launcher_script(
            python, interpreter.version, root, base.digest or "",
            f"kernelctl: the environment {root} no longer exists. Remove this kernel "
            f"(kernelctl remove {name}).",
            f"kernelctl: what the environment {root} was built on ({base.label}) is not "
            "available in this session.", base.layers, base.launch_steps)
        progress(f"Writing the kernel {name}")
        if existing is not None:
            _fix_in_place(kernel_dir, spec.to_text(), launcher, tx)
        else:
            staged = stage_kernel(kernel_dir.parent, name, spec,
                                  ipykernel_logos(interpreter.ipykernel), tx, launcher)
            install_staged(staged, kernel_dir, tx)
    return KernelInfo(name=name, display_name=display, language="python",
                      resource_dir=kernel_dir, managed=True, status=Status.OK,
                      base=binding, venv=root)


def _target(target: str, env: Mapping[str, str]) -> Tuple[Path, Optional[KernelInfo]]:
    """(the environment's root, the hand-made kernel to fix or None)."""
    if "/" in target or target.startswith("~"):
        root = Path(os.path.abspath(os.path.expanduser(target)))
        if not os.path.isdir(root):
            raise KernelctlError(f"{root} is not a directory",
                                 "Pass an environment's directory (it holds bin/python) or "
                                 "the name of a kernel (kernelctl list).")
        return root, None
    from kernelctl.inventory import find_kernel

    kernel = find_kernel(target, env)
    if kernel.managed:
        raise KernelctlError(f"the kernel '{kernel.name}' is already kernelctl's",
                             f"kernelctl show {kernel.name} says what it is built on.")
    if kernel.belongs_to:  # fixing it in place would write into that environment
        raise KernelctlError(f"the kernel '{kernel.name}' belongs to {kernel.belongs_to}",
                             "Adopt the environment by its directory instead: "
                             f"kernelctl adopt {kernel.resource_dir.parents[3]}")
    argv0 = kernel.spec.argv[0] if kernel.spec else ""
    if not os.path.isabs(argv0) or not os.path.isfile(argv0):
        raise KernelctlError(
            f"the kernel '{kernel.name}' does not start an environment's python "
            f"(argv[0] is {argv0 or 'missing'})",
            "Adopt the environment by its directory instead: kernelctl adopt PATH.")
    return Path(os.path.dirname(os.path.dirname(argv0))), kernel


def _env_python(root: Path) -> Path:
    for name in ("python", "python3"):
        if os.access(root / "bin" / name, os.X_OK):
            return root / "bin" / name
    raise KernelctlError(f"{root} is not a Python environment (no bin/python)",
                         "Pass a virtualenv's or conda environment's directory.")


def _base_of(root: Path, interpreter: Interpreter, spec: Optional[str],
             env: Mapping[str, str]) -> Base:
    """What the environment stands on: its own conda env, the interpreter under a venv,
    or what the user says (--base module:python3, for a venv made on a module's Python)."""
    if spec:
        return resolve_base(spec, env)
    from kernelctl.bases import conda

    if os.path.isdir(root / "conda-meta"):
        return conda.conda_base(str(root), env, label=f"conda:{root}")
    from kernelctl.bases.python import python_base

    return python_base(f"python:{interpreter.base_executable}", interpreter.base_executable, env)


def _name_for(root: Path) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", root.name.lower()).strip("-.") or "adopted"


def _give_ipykernel(root: Path, python: Path, request: AdoptRequest, env: Mapping[str, str],
                    progress: Callable[[str], None]) -> Interpreter:
    if not request.install_ipykernel:
        raise KernelctlError(
            f"ipykernel is not installed in {root}, so no kernel can start from it",
            "Pass --install-ipykernel to let kernelctl pip-install it there (the only "
            "change it would make to the environment), or install it yourself.")
    progress(f"Installing ipykernel into {root} (pip)")
    run([python, "-m", "pip", "install", "--no-warn-script-location",
         *pip_options(request.no_index, request.find_links), "ipykernel"],
        env={**env, "PIP_REQUIRE_VIRTUALENV": "0"}, what="pip install ipykernel",
        hint="Offline: --no-index --find-links DIR with a directory of wheels.")
    return probe(python, env)


def _fix_in_place(kernel_dir: Path, spec_text: str, launcher: str, tx: Transaction) -> None:
    """A hand-made kernelspec, fixed where it is: its other files (logos) stay, its
    kernel.json is kept as ORIGINAL_SPEC, the new one is written last and atomically."""
    from importlib import resources

    original = (kernel_dir / "kernel.json").read_text(encoding="utf-8")
    explainer = resources.files("kernelctl").joinpath("resources", "kernelctl_explain.py")
    for file_name, text in ((ORIGINAL_SPEC, original), (LAUNCHER, launcher),
                            (EXPLAINER, explainer.read_text())):
        _write_new(kernel_dir / file_name, text, tx)
    write_atomically(kernel_dir / "kernel.json", spec_text)


def _write_new(path: Path, text: str, tx: Transaction) -> None:
    path.write_text(text)
    tx.undo_with(lambda: remove_path(path))
