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
import shutil
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Optional, Tuple

from kernelctl import __version__, shell
from kernelctl.bases import Base, base_of_environment, resolve_base
from kernelctl.environment import kernel_env, own_bin, pip_options
from kernelctl.errors import Interrupted, KernelctlError, disk_errors
from kernelctl.kernelspec import (
    LAUNCHER,
    ORIGINAL_SPEC,
    build_spec,
    carry_kernelspec_files,
    check_only_kernelspec,
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
from kernelctl.ownership import kernel_dir_target
from kernelctl.transaction import Transaction, locks, stop_signals_raise
from kernelctl.venvs import Venv, own_distributions, site_packages


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
            locks(home, [name], [root]):
        if existing is not None:  # as it is now that the lock is held
            existing = _target(request.target, env)[1]
            assert existing is not None
            check_only_kernelspec(existing.resource_dir, "rewrite")
        elif os.path.lexists(kernel_dir):
            raise KernelctlError(f"a kernel named '{name}' was made at {kernel_dir} meanwhile",
                                 "Choose another --name.")
        if interpreter.ipykernel is None:  # pip's work is no journaled step: said apart
            interpreter = _give_ipykernel(root, python, request, env, progress)
        with Transaction(home, [name]) as tx:
            venv = Venv(root=root, python=python, site_packages=site_packages(root) or root)
            binding = replace(base.binding(), venv=str(root), adopted="yes",
                              kernelctl_version=__version__,
                              created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
            display = request.display_name or (existing.display_name if existing else
                                               f"Python {interpreter.major_minor} ({root.name})")
            spec = build_spec(kernel_dir / LAUNCHER, display,
                              kernel_env(venv, base, base.frozen(env), own_bin()),
                              binding, base.launcher_shell)
            if existing is not None and existing.spec is not None:
                # What the hand-made kernel.json set stays, as written (its ${VAR}s stay
                # templates), unless kernelctl must set it.
                shell.check_names(existing.spec.env,
                                  f"the env of {existing.resource_dir}/kernel.json")
                spec = replace(spec, env={**existing.spec.env, **spec.env})
            launcher = launcher_script(
                python, interpreter.version, root, base.digest or "",
                f"kernelctl: the environment {root} no longer exists. Remove this kernel "
                f"(kernelctl remove {name}).",
                f"kernelctl: what the environment {root} was built on ({base.label}) is not "
                "available in this session.", base.layers, base.launch_steps)
            progress(f"Writing the kernel {name}")
            staged = stage_kernel(kernel_dir_target(kernel_dir).parent, name, spec,
                                  ipykernel_logos(interpreter.ipykernel), tx, launcher)
            if existing is not None:
                _keep_original(existing.resource_dir, staged)
            install_staged(staged, kernel_dir, tx)
    return KernelInfo(name=name, display_name=display, language="python",
                      resource_dir=kernel_dir, managed=True, status=Status.OK,
                      base=binding, venv=root)


def _target(target: str, env: Mapping[str, str]) -> Tuple[Path, Optional[KernelInfo]]:
    """(the environment's root, the hand-made kernel to fix or None). Only a virtualenv
    or a conda environment: `/`, /usr and other prefixes are never taken for one (adopt
    may pip-install into what it adopts)."""
    root, kernel = _given_target(target, env)
    if not (os.path.isfile(root / "pyvenv.cfg") or os.path.isdir(root / "conda-meta")):
        what = f"the kernel '{kernel.name}' runs {root}/bin/python, and {root}" \
            if kernel is not None else str(root)
        raise KernelctlError(f"{what} is not a Python environment kernelctl can adopt: "
                             "neither a virtualenv (no pyvenv.cfg) nor a conda environment "
                             "(no conda-meta/)",
                             "adopt takes environments made for a project (python -m venv, "
                             "virtualenv, conda create --prefix); for a system Python make a "
                             "kernel on it instead: kernelctl create --base python:PATH")
    return root, kernel


def _given_target(target: str, env: Mapping[str, str]) -> Tuple[Path, Optional[KernelInfo]]:
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
    return resolve_base(spec, env) if spec else base_of_environment(root, interpreter, env)


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
    before = _installed(root)
    try:
        run([python, "-m", "pip", "install", "--no-warn-script-location",
             *pip_options(request.no_index, request.find_links), "ipykernel"],
            env={**env, "PIP_REQUIRE_VIRTUALENV": "0"}, what="pip install ipykernel",
            hint="Offline: --no-index --find-links DIR with a directory of wheels.")
    except (Interrupted, KeyboardInterrupt) as exc:
        added = sorted(set(_installed(root).items()) - set(before.items()))
        done = (f"pip had already installed into {root}: "
                + ", ".join(f"{n} {v}" for n, v in added) if added
                else f"pip had installed nothing into {root} yet")
        raise Interrupted(f"{getattr(exc, 'message', 'interrupted')}: no kernel was written; "
                          f"{done}", "Run the same kernelctl adopt again to finish.",
                          signum=getattr(exc, "signum", 2)) from None
    return probe(python, env)


def _installed(root: Path) -> dict:
    """{distribution: version} in the environment's own site-packages."""
    return {name: dist.version for name, dist in own_distributions(root).items()}


def _keep_original(kernel_dir: Path, staged: Path) -> None:
    """A hand-made kernelspec, fixed: its logos and other kernelspec files carried, its
    kernel.json kept as ORIGINAL_SPEC so the user can go back."""
    carry_kernelspec_files(kernel_dir, staged)
    shutil.copyfile(kernel_dir_target(kernel_dir) / "kernel.json", staged / ORIGINAL_SPEC)
