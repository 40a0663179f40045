"""`--base conda:PREFIX`, and a conda env's python reached through `python:` or `system`:
a venv on a shared conda env, whose kernel starts with the env activated.

Activation is what `conda activate` does, in its order: CONDA_PREFIX and PATH, the
variables of `etc/conda/env_vars.d/*.json` then of `conda-meta/state` (kept in kernel.json,
read when the kernel is made), and the `etc/conda/activate.d/*.sh` scripts, which the
launcher sources at every start (packages install them: GDAL_DATA, PROJ_DATA, CUDA),
under bash as conda's own shells do. The launcher then execs Python: the kernel stays
the process Jupyter interrupts and restarts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional, Tuple

from kernelctl import shell
from kernelctl.bases import Base
from kernelctl.bases.kind import BaseKind
from kernelctl.binding import Binding
from kernelctl.errors import KernelctlError
from kernelctl.textfiles import load_json

if TYPE_CHECKING:
    from kernelctl.probe import Interpreter

PREFIX = "conda:"


class CondaKind(BaseKind):
    detect_order = 40

    def resolve(self, spec: str, env: Mapping[str, str]) -> Base:
        prefix = Path(os.path.abspath(os.path.expanduser(spec[len(PREFIX):].strip())))
        return conda_base(str(prefix), env, label=PREFIX + str(prefix))

    def detect(self, env: Mapping[str, str]) -> Optional[Tuple[Base, str]]:
        prefix = env.get("CONDA_PREFIX")
        if prefix and os.path.isdir(os.path.join(prefix, "conda-meta")):
            return self.resolve(PREFIX + prefix, env), f"the conda env {prefix} is active"
        return None

    def environment_base(self, root: Path, interpreter: "Interpreter",
                         env: Mapping[str, str]) -> Optional[Base]:
        """A conda env is its own base: adopting it activates it at each start."""
        if os.path.isdir(root / "conda-meta"):
            return conda_base(str(root), env, label=f"{PREFIX}{root}")
        return None

    def unavailable_message(self, base: Base, rebuild: str) -> str:
        return (f"kernelctl: the conda environment this kernel was built on "
                f"({base.binding_extra['conda_prefix']}) is gone or no longer has its "
                f"Python. Rebuild the kernel on another one, with its packages: {rebuild} "
                "--base conda:PREFIX")

    def missing(self, binding: Binding) -> Optional[str]:
        prefix = binding.extra.get("conda_prefix")
        if prefix and not os.path.isdir(os.path.join(prefix, "conda-meta")):
            return f"the conda environment it was built on ({prefix}) is gone"
        return None

    def job_steps(self, binding: Binding) -> str:
        return f"activates the conda environment {binding.extra.get('conda_prefix')}"


KIND = CondaKind()


def conda_base(prefix: str, env: Mapping[str, str], label: str,
               python: Optional[Path] = None) -> Base:
    """The conda env at `prefix` as a base; `label` is how the user named it, `python`
    the interpreter they named (a venv's, layered on the env), else the env's own."""
    from kernelctl.bases.interpreters import interpreter_layers

    _check_conda_env(prefix)
    python = python or Path(prefix) / "bin" / "python3"
    if not os.access(python, os.X_OK):
        raise KernelctlError(f"the conda environment {prefix} has no Python (no bin/python3)",
                             f"Install one into it (conda install -p {prefix} python), or "
                             "choose an environment that has Python.")
    variables = activation_variables(prefix)
    active_path = os.pathsep.join([str(Path(prefix) / "bin"), env.get("PATH", "")]).rstrip(":")
    active = {**env, **variables, "PATH": active_path}
    interpreter, build_on, base_env, layers = interpreter_layers(python, active)
    scripts = activation_scripts(prefix)
    bash = shutil.which("bash", path="/bin:/usr/bin")
    if scripts and not bash:
        raise KernelctlError(f"the conda environment {prefix} has activation scripts "
                             f"({scripts[0].name}), and there is no bash to run them",
                             "Install bash, or remove the scripts from etc/conda/activate.d.")
    return Base(
        kind="conda", name="conda", label=label, python=build_on, interpreter=interpreter,
        base_env=base_env, layers=layers, session_env={**variables, "PATH": active_path},
        kernel_vars=variables, launch_steps=launch_steps(prefix),
        launcher_shell=bash if scripts and bash else "/bin/sh",
        kernel_name="conda-" + (os.path.basename(prefix.rstrip("/")) or "root"),
        binding_extra={"conda_prefix": prefix},
    )


def _check_conda_env(prefix: str) -> None:
    if not os.path.isdir(prefix):
        raise KernelctlError(f"{prefix} does not exist",
                             "Pass the prefix of a conda environment (`conda env list`).")
    if not os.access(prefix, os.R_OK | os.X_OK):
        raise KernelctlError(f"{prefix} cannot be read (permission denied)",
                             "Ask its owner to make it readable, or use your own env.")
    if not os.path.isdir(os.path.join(prefix, "conda-meta")):
        raise KernelctlError(f"{prefix} is not a conda environment (it has no conda-meta/)",
                             "Pass a conda env's prefix (`conda env list`), or use "
                             "--base python:PATH for another interpreter.")


def activation_variables(prefix: str) -> dict:
    """What `conda activate` exports, besides PATH: env_vars.d files in sorted order,
    then `conda env config vars` (conda-meta/state), which win."""
    variables = {"CONDA_PREFIX": prefix, "CONDA_DEFAULT_ENV": prefix}
    sources = sorted(Path(prefix, "etc", "conda", "env_vars.d").glob("*.json"))
    sources.append(Path(prefix, "conda-meta", "state"))
    for source in sources:
        variables.update(_env_vars(source))
    return variables


def _env_vars(source: Path) -> dict:
    if not source.is_file():
        return {}
    try:
        data = load_json(source)
    except (OSError, ValueError) as exc:
        raise KernelctlError(f"{source} cannot be read as JSON: {exc}",
                             "conda itself would fail to activate this environment; fix "
                             "or remove the file.") from exc
    found = data.get("env_vars", {}) if source.name == "state" and isinstance(data, dict) \
        else data
    if not isinstance(found, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in found.items()):
        raise KernelctlError(f"{source} does not map variable names to strings",
                             "Fix the file (see `conda env config vars`).")
    shell.check_names(found, str(source))
    return found


def activation_scripts(prefix: str) -> list:
    return sorted(Path(prefix, "etc", "conda", "activate.d").glob("*.sh"))


LAUNCH_STEPS = """\
# The conda environment's activation scripts (etc/conda/activate.d), as conda runs them.
for script in {prefix}/etc/conda/activate.d/*.sh; do
  # shellcheck source=/dev/null
  [ -f "$script" ] && . "$script"
done
[ -d {prefix}/conda-meta ] || base_here=no
"""


def launch_steps(prefix: str) -> str:
    return LAUNCH_STEPS.format(prefix=shell.quote(prefix))
