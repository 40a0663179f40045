"""Every kernelspec on Jupyter's search path, with its health (`list` and `show`).

This is the hot path of `kernelctl list`: it must not import jupyter_client (~0.17 s);
kernelctl.jupyter_paths gives the search path with Jupyter's own precedence.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Optional, Tuple

from kernelctl import uenv
from kernelctl.binding import JuliaBinding, PythonBinding
from kernelctl.containers import Container, session_container
from kernelctl.errors import KernelctlError, NotFound
from kernelctl.jupyter_paths import kernel_dirs
from kernelctl.model import KERNEL_NAME_RE, LAUNCHER_SHELLS, KernelInfo, KernelSpec, Status
from kernelctl.paths import is_within, same_path, unreachable
from kernelctl.venvs import home_of, site_packages, venv_of

MAX_SPEC_BYTES = 1 << 20  # a kernel.json is a few hundred bytes; refuse to parse megabytes
BARE_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
SHADOWED_BY = "shadowed by the kernel of the same name in"


@dataclass(frozen=True)
class Session:
    """What this session offers kernels: its mounted uenvs, its container, its PATH, and
    its environment (where a base kind finds its own marks)."""

    uenvs: tuple
    path: str
    scratch: str = ""
    container: Optional[Container] = None
    env: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def current(cls, env: Mapping[str, str]) -> "Session":
        return cls(tuple(uenv.session_uenvs(env)), env.get("PATH", ""), env.get("SCRATCH", ""),
                   session_container(env), env)


def find_kernels(env: Mapping[str, str], include_shadowed: bool = False) -> list:
    """Visible kernels and the entries Jupyter skips; shadowed duplicates on request."""
    _forget_answers()
    session = Session.current(env)
    winners: dict = {}
    found = []
    for directory in kernel_dirs(env):
        for entry in _directory_entries(directory):
            kernel = inspect_kernel(entry, session)
            if kernel is None or not include_shadowed and _offered_by_no_server(kernel):
                continue
            if kernel.slurm is not None:
                from kernelctl.slurm import with_runs

                kernel = with_runs(kernel, env)
            if kernel.visible and kernel.name in winners:
                if include_shadowed:
                    found.append(_shadowed(kernel, winners[kernel.name]))
                continue
            if kernel.visible:
                winners[kernel.name] = kernel
            found.append(kernel)
    return found


def _forget_answers() -> None:
    """The filesystem answers cached for one listing (many kernels share an interpreter,
    a venv, a kernels directory): a long-running process (the panel's server) must not
    judge today's kernels by yesterday's answers."""
    for cached in (_executable, _environment_with, venv_of, site_packages):
        cached.cache_clear()


def find_kernel(name: str, env: Mapping[str, str]) -> KernelInfo:
    """The kernel Jupyter would start for `name` (or, failing that, any entry so named)."""
    candidates = [k for k in find_kernels(env, include_shadowed=True)
                  if k.name == name.lower() or k.resource_dir.name == name]
    if not candidates:
        raise NotFound(f"no kernel named '{name}'",
                             "`kernelctl list` shows the kernels Jupyter can see.")
    return next((k for k in candidates if k.visible), candidates[0])


def _directory_entries(directory: Path) -> list:
    """The entries of a kernels directory, by name, as paths."""
    try:
        with os.scandir(directory) as entries:
            names = sorted(entry.name for entry in entries)
    except OSError:  # missing or unreadable: Jupyter skips it too
        return []
    return [directory / name for name in names]


def _shadowed(kernel: KernelInfo, winner: KernelInfo) -> KernelInfo:
    problem = f"{SHADOWED_BY} {winner.resource_dir.parent}"
    return replace(kernel, visible=False, problems=(problem, *kernel.problems))


def is_shadowed(kernel: KernelInfo) -> bool:
    """Hidden behind a same-named kernel earlier on the path (not merely skipped)."""
    return not kernel.visible and bool(kernel.problems) and \
        kernel.problems[0].startswith(SHADOWED_BY)


def inspect_kernel(resource_dir: Path, session: Session) -> Optional[KernelInfo]:
    """One entry of a kernels directory, judged; None for a plain file (not a kernel)."""
    # Opening kernel.json first: for the usual entry, one system call fewer.
    spec, problem = read_spec(os.path.join(resource_dir, "kernel.json"))
    if problem is _NO_SPEC:
        if os.path.isdir(resource_dir):
            return _ignored(resource_dir, "the directory has no kernel.json")
        if os.path.islink(resource_dir):
            return _ignored(resource_dir, f"it is a symlink to {os.readlink(resource_dir)}, "
                                          "which does not exist")
        return None
    if not KERNEL_NAME_RE.match(resource_dir.name.lower()):
        return _ignored(resource_dir, f"the name '{resource_dir.name}' has characters Jupyter "
                                      "does not accept (only a-z 0-9 . _ -)")
    if spec is None:
        return _kernel(resource_dir, None, Status.BROKEN, (problem,))
    status, problems = judge(spec, session, resource_dir)
    return _kernel(resource_dir, spec, status, problems)


_NO_SPEC = "no kernel.json"


def read_spec(path: str) -> Tuple[Optional[KernelSpec], Optional[str]]:
    """(KernelSpec, None) for a usable kernel.json, (None, why) for anything else."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_SPEC_BYTES:
                return None, f"kernel.json is {size} bytes, too big to be a kernelspec"
            data = json.loads(handle.read().decode("utf-8"))
        return KernelSpec.from_dict(data), None
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None, _NO_SPEC
    except OSError as exc:
        return None, f"kernel.json cannot be read: {exc.strerror}"
    except UnicodeDecodeError:
        return None, "kernel.json is not UTF-8 text"
    except RecursionError:
        return None, "kernel.json is nested too deeply to be a kernelspec"
    except ValueError as exc:  # JSON syntax, or KernelSpec's own word on its shape
        message = str(exc)
        return None, message if message.startswith("kernel.json") else \
            f"kernel.json is not valid JSON ({message})"


def _is_native(resource_dir: Path) -> bool:
    """A spec shipped inside a Python install (PREFIX/share/jupyter/kernels), like
    ipykernel's own python3: its bare `python` means "the server's Python" on purpose."""
    return _environment_of(resource_dir) is not None


def _environment_of(resource_dir: Path) -> Optional[str]:
    """The Python install a kernelspec ships in (PREFIX/share/jupyter/kernels), if any."""
    return _environment_with(os.path.dirname(resource_dir))


# Every kernel of a directory ships in the same install: ask once per directory.
@lru_cache(maxsize=None)
def _environment_with(kernels_dir: str) -> Optional[str]:
    prefix = os.path.dirname(os.path.dirname(os.path.dirname(kernels_dir)))
    if not kernels_dir.endswith(os.path.join("", "share", "jupyter", "kernels")):
        return None
    if any(os.path.exists(os.path.join(prefix, "bin", exe)) for exe in ("python3", "python")):
        return prefix
    return None


def _offered_by_no_server(kernel: KernelInfo) -> bool:
    """kernelctl's own environment's kernels (ipykernel's python3 in a pipx or uv tool
    venv): kernelctl's search path has its own prefix, but no Jupyter server runs from a
    venv without one, so no user sees them."""
    if not kernel.belongs_to or not same_path(kernel.resource_dir.parent,
                                              Path(sys.prefix, "share", "jupyter", "kernels")):
        return False
    return not any(os.path.exists(Path(sys.prefix, "bin", server))
                   for server in ("jupyter-server", "jupyter-lab", "jupyter-notebook"))


def judge(spec: KernelSpec, session: Session, resource_dir: Path) -> Tuple[Status, tuple]:
    """(status, problems) for a parsed kernelspec; see docs/json.md for the statuses."""
    argv0 = spec.argv[0]
    if BARE_PYTHON.match(argv0) and _is_native(resource_dir):
        return Status.UNKNOWN, ()
    if BARE_PYTHON.match(argv0):
        return Status.BROKEN, (f"argv[0] is a bare '{argv0}': Jupyter would start the "
                               "server's own Python instead of this kernel's",)
    relative = _relative_argv(spec.argv)
    if relative:
        return Status.BROKEN, (relative,)
    binding = spec.binding
    venv = Path(binding.venv) if binding and binding.venv else venv_of(argv0)
    if binding and venv and not os.path.isdir(venv):
        if unreachable(venv):
            return Status.BROKEN, (f"its environment {venv} cannot be reached: permission "
                                   "denied (another user's directory?)",)
        return Status.BROKEN, (f"its environment {venv} was deleted",)
    if isinstance(binding, PythonBinding) or binding and binding.image:
        # The base kinds are imported only when a kernel needs one.
        from kernelctl import bases

        gone = bases.missing(binding)
        if gone:
            return Status.BROKEN, (gone,)
        mismatch = bases.mismatch(binding, session)
        if mismatch:
            return Status.MISMATCH, (mismatch,)
    # A kernelctl Python kernel starts via kernelctl-launch.sh: judge the venv's Python.
    interpreter = _env_python(venv) if venv is not None and binding and binding.venv else argv0
    problems = _launch_problems(interpreter, venv, session)
    warnings: tuple = ()
    if isinstance(binding, JuliaBinding) and not problems:
        problems, warnings = julia_problems(binding, session)
    if problems:
        return Status.BROKEN, problems
    return (Status.OK if binding else Status.UNKNOWN), warnings


def _relative_argv(argv: tuple) -> Optional[str]:
    """A relative path in argv resolves against the server's working directory, which
    is never the one it was written for (kernelctl's launcher, or `bin/python`)."""
    launcher = argv[1] if argv[0] in LAUNCHER_SHELLS and len(argv) > 1 else None
    for part in (argv[0], launcher):
        if part and "/" in part and not os.path.isabs(part):
            return (f"its kernel.json names {part} by a relative path, which Jupyter "
                    "resolves from wherever the server runs")
    if launcher and launcher.endswith(".sh") and not os.path.isfile(launcher):
        return f"its launcher {launcher} is missing"
    return None


def _env_python(venv: Path) -> str:
    """bin/python, or bin/python3 in an adopted environment that has only that."""
    python = venv / "bin" / "python"
    return str(venv / "bin" / "python3") if not os.path.lexists(python) and \
        os.path.lexists(venv / "bin" / "python3") else str(python)


def _launch_problems(argv0: str, venv: Optional[Path], session: Session) -> tuple:
    if "/" not in argv0:
        if shutil.which(argv0, path=session.path) is None:
            return (f"argv[0] '{argv0}' is not on PATH",)
        return ()
    if not _executable(argv0):
        return (f"its interpreter {argv0} is missing",)
    home = home_of(venv) if venv else None
    if home and not os.path.isdir(home):
        return (f"the Python its environment was made from ({home}) is gone",)
    return ()


def julia_problems(binding: JuliaBinding, session: Session) -> tuple:
    """(broken, warnings) for a Julia kernel: its julia and depot, and purged storage."""
    julia, depot = binding.julia, binding.depot
    if julia and not _executable(julia):
        return (f"its julia {julia} is missing",), ()
    if depot and not os.path.isdir(depot):
        return (f"its Julia depot {depot} is gone (purged from $SCRATCH?)",), ()
    scratch = session.scratch
    warnings = tuple(
        f"its {what} {path} is on $SCRATCH, which is purged: the kernel will break when "
        "it is; reinstall then with `kernelctl julia --force`"
        for what, path in (("julia", julia), ("Julia depot", depot))
        if scratch and path and is_within(path, scratch))
    return (), warnings


# Many kernels share an interpreter: ask the filesystem once per path.
@lru_cache(maxsize=None)
def _executable(path: str) -> bool:
    return os.access(path, os.X_OK)


def _kernel(resource_dir: Path, spec: Optional[KernelSpec], status: Status, problems: tuple,
            visible: bool = True) -> KernelInfo:
    binding = spec.binding if spec is not None else None
    venv = binding.venv if binding else None
    owner = _environment_of(resource_dir) if binding is None else None
    return KernelInfo(
        name=resource_dir.name.lower(),
        display_name=spec.display_name if spec else resource_dir.name,
        language=spec.language if spec else "",
        resource_dir=resource_dir, managed=binding is not None, status=status,
        problems=problems, base=binding, venv=Path(venv) if venv else None,
        visible=visible, spec=spec,
        belongs_to=f"the Python environment {owner}" + (
            " that kernelctl itself runs in" if same_path(owner, sys.prefix) else "")
        if owner else None,
    )


def _ignored(resource_dir: Path, why: str) -> KernelInfo:
    return _kernel(resource_dir, None, Status.BROKEN, (f"Jupyter ignores it: {why}",), visible=False)


def kernel_record(kernel: KernelInfo) -> Optional[dict]:
    """The environment record of a kernelctl kernel, as stored; None when there is none."""
    if not kernel.managed or kernel.venv is None:
        return None
    from kernelctl.record import read_record

    try:
        record = read_record(kernel.venv)
    except (KernelctlError, OSError):
        return None
    return record.to_toml() if record else None
