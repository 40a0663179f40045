"""`kernelctl create`: a venv bound to a base, and a kernel that works, or nothing."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Callable, Mapping, Optional, Tuple

from kernelctl import __version__
from kernelctl.bases import Base, default_base, resolve_base, unavailable_message
from kernelctl.environment import (
    check_pip_inputs,
    create_venv,
    install_packages,
    kernel_env,
    own_bin,
    pip_options,
)
from kernelctl.errors import Interrupted, KernelctlError, NameTaken, disk_errors
from kernelctl.installers import choose
from kernelctl.kernelspec import (
    HERE_FLAG,
    LAUNCHER,
    SLURM_KEY,
    build_spec,
    check_kernel_name,
    check_replaceable,
    install_staged,
    ipykernel_logos,
    kernels_dir,
    launcher_script,
    stage_kernel,
)
from kernelctl.ownership import (
    check_venvs_may_go,
    half_made_venv,
    kernel_dir_target,
    retire_venv,
)
from kernelctl.model import KernelInfo, Status
from kernelctl.paths import check_writable, same_path
from kernelctl.probe import probe
from kernelctl.record import INCOMPLETE_MARKER, EnvRecord, read_record, write_record
from kernelctl.redact import redact
from kernelctl.slurm import SlurmRequest, check_accepted
from kernelctl.transaction import (
    Transaction,
    locks,
    make_dirs,
    move_aside,
    stop_signals_raise,
    sweep_leftovers,
)
from kernelctl.venvs import Venv, check_requirement

if TYPE_CHECKING:
    from jupyter_client.manager import KernelManager

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CreateRequest:
    base: Optional[str] = None  # None: the base that fits the session (bases.default_base)
    name: Optional[str] = None
    display_name: Optional[str] = None
    venv: Optional[Path] = None
    prefix: Optional[Path] = None
    packages: tuple = ()
    requirement_files: tuple = ()
    no_index: bool = False
    find_links: tuple = ()
    force: bool = False
    installer: str = "auto"  # auto (uv when installed, else pip), pip or uv
    delete_user_files: bool = False  # --force may delete a venv holding the user's files
    slurm: Optional[SlurmRequest] = None  # run as a Slurm step or job (docs/slurm-kernels.md)


def create(request: CreateRequest, env: Mapping[str, str], home: Path,
           progress: Progress, notice: Progress = lambda line: None) -> KernelInfo:
    """`notice`: what the user must read even when not watching progress (which base
    was chosen for them, an offline install the recipe asked for)."""
    check_pip_inputs(request.requirement_files, request.find_links)
    for package in request.packages:
        check_requirement(package, "-p/--package")
    choose(request.installer, env)  # an unknown or missing installer, before any work
    if request.name is not None:
        check_kernel_name(request.name)
    if request.slurm is not None:
        progress("Asking Slurm whether it accepts the kernel's request (sbatch --test-only)")
        check_accepted(request.slurm.checked(), env)
    venv_root = _checked_venv_path(request.venv) if request.venv else None
    if request.base is None:
        progress("Looking for the base that fits this session")
        base, why = default_base(env)
        notice(f"no --base given: building on {base.label}, because {why}")
        request = replace(request, base=base.spec)
    else:
        progress(f"Inspecting the base {request.base}")
        base = resolve_base(request.base, env)
    progress(f"Building on {base.describe()}")
    name = check_kernel_name(request.name if request.name is not None
                             else base.default_kernel_name)
    venv_root = venv_root or _checked_venv_path(home / "venvs" / name)
    kernel_dir = kernels_dir(request.prefix) / name
    sweep_leftovers(home)
    check_writable([home, kernel_dir.parent, venv_root.parent], "kernelctl create")
    with disk_errors("creating the kernel"), stop_signals_raise(), \
            locks(home, [name], [venv_root]), Transaction(home, [name]) as tx:
        # Checked under the lock: another run may have changed them since.
        check_replaceable(kernel_dir, request.force)
        build_at = _make_room_for_venv(venv_root, kernel_dir, request, env, tx)
        retiring = [v for v in dict.fromkeys([_venv_of_kernel(kernel_dir), venv_root])
                    if v is not None and v != build_at]
        with locks(home, (), [v for v in [build_at, *retiring] if v != venv_root]):
            check_venvs_may_go(retiring, kernel_dir, env, request.delete_user_files)
            staged, kernel = build_kernel(request, base, name, build_at, kernel_dir, env,
                                          progress, notice, tx)
            if os.path.lexists(kernel_dir):
                progress(f"Starting the new kernel {name} to check it")
                check_starts(staged, kernel, env)  # the old one stays until the new one works
            install_staged(staged, kernel_dir, tx)
            for venv in retiring:
                kept = retire_venv(venv, kernel_dir, name, tx, env, request.delete_user_files)
                if kept:
                    notice(kept)
    return kernel


def _venv_of_kernel(kernel_dir: Path) -> Optional[Path]:
    """The venv a kernelctl kernel at `kernel_dir` runs, from its kernel.json."""
    from kernelctl.inventory import read_spec

    spec, _ = read_spec(os.path.join(kernel_dir, "kernel.json"))
    binding = spec.binding if spec is not None else None
    return Path(binding.venv) if binding is not None and binding.venv else None


def build_kernel(request: CreateRequest, base: Base, name: str, venv_root: Path,
                 kernel_dir: Path, env: Mapping[str, str], progress: Progress,
                 notice: Progress, tx: Transaction) -> Tuple[Path, KernelInfo]:
    """The venv at `venv_root` and the kernel, staged (not yet at `kernel_dir`): the part
    of create that `rebuild` shares."""
    venv = _build_venv(venv_root, base, request, name, kernel_dir, env, progress, notice, tx)
    progress(f"Writing the kernel {name}")
    binding = replace(base.binding(), venv=str(venv.root),
                      kernelctl_version=__version__, created=_now())
    spec = build_spec(kernel_dir / LAUNCHER, request.display_name or
                      written_display_name(base.display_name(name), request.slurm),
                      kernel_env(venv, base, base.frozen(env), own_bin()), binding,
                      base.launcher_shell, request.slurm)
    gone, unavailable = _explanations(request, base, name, venv)
    launcher = launcher_script(venv.python, base.interpreter.version, venv.root,
                               base.digest or "", gone, unavailable, base.layers,
                               base.launch_steps, slurm=request.slurm is not None)
    staged = stage_kernel(kernel_dir.parent, name, spec, ipykernel_logos(venv.ipykernel),
                          tx, launcher, slurm=request.slurm is not None)
    return staged, KernelInfo(name=name, display_name=spec.display_name, language="python",
                              resource_dir=kernel_dir, managed=True, status=Status.OK,
                              base=binding, venv=venv.root, spec=spec)


def written_display_name(base_shown: str, slurm: Optional[SlurmRequest]) -> str:
    """The display name kernelctl writes: the base's, and what a Slurm kernel asks for
    ("Python 3.12 (system) · my-env · Slurm job: 4 CPUs, 1 GPU, 1 h")."""
    return base_shown if slurm is None else f"{base_shown} · {slurm.summary()}"


def _checked_venv_path(venv: Path) -> Path:
    root = Path(os.path.abspath(os.path.expanduser(venv)))
    if os.pathsep in str(root):
        raise KernelctlError(f"the environment path {root} contains '{os.pathsep}'",
                             f"'{os.pathsep}' separates PATH entries, so the environment's "
                             "bin could never be put on PATH; choose a --venv without it.")
    return root


def _make_room_for_venv(venv_root: Path, kernel_dir: Path, request: CreateRequest,
                        env: Mapping[str, str], tx: Transaction) -> Path:
    """Where the new venv is built: `venv_root` when it is free; beside it when --force
    replaces kernelctl's venv there (venvs cannot be moved, and the old one must stay
    whole until the new kernel has started)."""
    if not os.path.lexists(venv_root):
        return venv_root
    if os.path.isdir(venv_root) and not os.path.islink(venv_root):
        record = read_record(venv_root)
        if not os.listdir(venv_root):
            move_aside(venv_root, tx)
            return venv_root
        if record is not None:
            _check_not_in_use(venv_root, kernel_dir, env)
            if not request.force:
                raise NameTaken(f"the environment {venv_root} already exists (made by "
                                f"kernelctl for the kernel '{record.kernel}')",
                                "Pass --force to rebuild it, or choose another --name/--venv.")
            return free_path_beside(venv_root)
        if half_made_venv(venv_root):  # left by a create that was killed (we hold its lock)
            move_aside(venv_root, tx)
            return venv_root
    raise KernelctlError(
        f"{venv_root} exists and was not made by kernelctl; it will not be touched",
        "Choose another --venv (or --name), or move that directory away yourself.",
    )


def free_path_beside(venv: Path) -> Path:
    """A free path next to `venv` (never `venv` itself, even when it is gone: its
    retirement after the switch must not find the new venv there)."""
    stem = re.sub(r"-\d+$", "", venv.name)
    for candidate in [venv.parent / stem] + [venv.parent / f"{stem}-{i}" for i in range(2, 100)]:
        if candidate != venv and not os.path.lexists(candidate):
            return candidate
    raise KernelctlError(f"no free name next to {venv}", "Remove old environments there.")


def _check_not_in_use(venv_root: Path, kernel_dir: Path, env: Mapping[str, str]) -> None:
    """--force rebuilds an environment only for the kernel it belongs to: rebuilding
    another kernel's would silently take that kernel's packages away. An environment
    whose kernel is gone is free."""
    from kernelctl.inventory import find_kernels

    users = sorted({k.name for k in find_kernels(env, include_shadowed=True)
                    if k.venv and same_path(k.venv, venv_root)
                    and not same_path(k.resource_dir, kernel_dir)})
    if users:
        raise KernelctlError(
            f"the environment {venv_root} belongs to the kernel(s) {', '.join(users)}",
            f"Choose another --venv, or remove {users[0]} first (kernelctl remove {users[0]}).")


def _build_venv(root: Path, base: Base, request: CreateRequest, name: str, kernel_dir: Path,
                env: Mapping[str, str], progress: Progress, notice: Progress,
                tx: Transaction) -> "_BuiltVenv":
    make_dirs(root.parent, tx)
    tx.made(root, venv=True)
    root.mkdir()
    (root / INCOMPLETE_MARKER).write_text(f"{os.getpid()}\n")
    progress(f"Creating the environment {root}")
    venv = create_venv(root, base)
    active = base.activated(env)
    run_env = {**active, **kernel_env(venv, base, active, own_bin())}
    packages = [*base.packages, *request.packages]
    missing = [] if base.interpreter.ipykernel else ["ipykernel"]
    uv = choose(request.installer, env)
    if packages or missing or request.requirement_files:
        progress(f"Installing {redact(', '.join(packages + missing)) or 'requirements'} "
                 f"({'uv' if uv else 'pip'})")
    if base.no_index and not request.no_index:
        notice(f"installing offline (--no-index), as the recipe {base.recipe} says: pip "
               "finds packages in the site's wheelhouse (its pip configuration)")
    install_packages(venv, packages, request.requirement_files,
                     pip_options(request.no_index or base.no_index, request.find_links),
                     run_env, also=missing, uv=uv)
    checked = probe(venv.python, run_env)
    if checked.ipykernel is None or not same_path(checked.prefix, root):
        raise KernelctlError(f"the new environment {root} cannot import ipykernel",
                             "Install ipykernel into the base or pass -p ipykernel.")
    write_record(root, EnvRecord(
        kernel=name, kernelctl_version=__version__, created=_now(),
        base=base.binding().to_metadata(),
        packages=tuple(redact(p) for p in packages + missing),
        requirement_files=tuple(str(Path(r).absolute()) for r in request.requirement_files),
        kernel_dir=str(kernel_dir_target(kernel_dir))))
    (root / INCOMPLETE_MARKER).unlink()
    return _BuiltVenv(venv.root, venv.python, venv.site_packages, checked.ipykernel)


def _explanations(request: CreateRequest, base: Base, name: str, venv: Venv) -> Tuple[str, str]:
    """What the notebook says when the venv is gone, or its base cannot run here."""
    recreate = f"kernelctl create --base {request.base} --name {name} --force"
    rebuild = f"kernelctl rebuild {name}"  # keeps the packages added to the environment
    gone = (f"kernelctl: this kernel's environment {venv.root} no longer exists. In a "
            f"terminal, recreate it ({recreate}) or remove the kernel (kernelctl remove {name}).")
    unavailable = unavailable_message(base, rebuild)
    return gone, unavailable


@dataclass(frozen=True)
class _BuiltVenv(Venv):
    ipykernel: Optional[str] = None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


START_TIMEOUT = 120.0


def check_starts(staged: Path, made: KernelInfo, env: Mapping[str, str]) -> None:
    """Start the staged kernel through its own launcher and run a line of code in it:
    what replaces a working kernel must work first."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    assert made.spec is not None
    spec = made.spec.to_dict()
    launcher = str(made.resource_dir / LAUNCHER)
    # A Slurm kernel is checked here, not as a job: what is checked is its environment.
    here = [HERE_FLAG] if SLURM_KEY in made.spec.metadata else []
    spec["argv"] = [item for arg in spec["argv"]
                    for item in ([str(staged / LAUNCHER), *here] if arg == launcher else [arg])]
    with tempfile.TemporaryDirectory(prefix="kernelctl-check-") as kernels:
        os.makedirs(os.path.join(kernels, "check"))
        with open(os.path.join(kernels, "check", "kernel.json"), "w") as out:
            json.dump(spec, out)
        manager = KernelManager(kernel_name="check",
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels]))
        with tempfile.TemporaryFile() as output:
            try:
                _run_a_line(manager, env, output)
            except (Interrupted, KeyboardInterrupt):
                raise  # stopped by the user, not a failed start
            except Exception as exc:  # any failure to start is the finding
                output.seek(0)
                tail = output.read().decode("utf-8", "replace").strip().splitlines()[-5:]
                raise KernelctlError(
                    f"the new kernel did not start ({exc}); the old one is unchanged"
                    + "".join(f"\n  {line}" for line in tail),
                    "kernelctl doctor --deep shows what the old one does.") from exc
            finally:
                if manager.has_kernel:
                    manager.shutdown_kernel(now=True)


def _run_a_line(manager: "KernelManager", env: Mapping[str, str], output: IO[bytes]) -> None:
    manager.start_kernel(env=dict(env), stdout=output, stderr=output)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=START_TIMEOUT)
        reply = client.execute_interactive("import sys", timeout=START_TIMEOUT)
    finally:
        client.stop_channels()
    if reply["content"]["status"] != "ok":
        raise RuntimeError(reply["content"].get("evalue"))
