"""`--base system` (python3 on PATH) and `--base python:PATH`: a bare interpreter.
(The interpreter toolkit every kind shares is kernelctl.bases.interpreters.)"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional, Tuple

from kernelctl.bases import Base
from kernelctl.bases.kind import BaseKind
from kernelctl.bases.interpreters import checked_path, interpreter_layers
from kernelctl.binding import Binding, PythonBinding
from kernelctl.errors import KernelctlError
from kernelctl.paths import path_list

if TYPE_CHECKING:
    from kernelctl.probe import Interpreter

PREFIX = "python:"


class PythonKind(BaseKind):
    detect_order = 100  # the fallback: what a session without another base runs

    def resolve(self, spec: str, env: Mapping[str, str]) -> Base:
        if spec == "system":
            return python_base("system", system_python(env), env)
        return python_base(spec, spec[len(PREFIX):], env)

    def detect(self, env: Mapping[str, str]) -> Tuple[Base, str]:
        """An active venv, layered on; else python3 on PATH."""
        venv = env.get("VIRTUAL_ENV")
        if venv and os.access(os.path.join(venv, "bin", "python"), os.X_OK):
            return (self.resolve(PREFIX + os.path.join(venv, "bin", "python"), env),
                    f"the venv {venv} is active; its packages are layered on")
        return self.resolve("system", env), ("python3 on PATH (no uenv, container, modules or active "
                                           "environment in this session)")

    def environment_base(self, root: Path, interpreter: "Interpreter",
                         env: Mapping[str, str]) -> Base:
        """A venv made by hand stands on the interpreter under it."""
        python = interpreter.base_executable
        return python_base(PREFIX + python, python, env)

    def unavailable_message(self, base: Base, rebuild: str) -> str:
        if base.base_env:
            return (f"kernelctl: the environment this kernel was built on ({base.base_env}) "
                    "is gone, or was rebuilt with another Python, so its packages are "
                    f"missing. Rebuild the kernel on what is there now: {rebuild} --base BASE")
        return (f"kernelctl: the Python this kernel's environment was built on "
                f"({base.python}) cannot run here. Rebuild it: {rebuild} --base BASE")

    def missing(self, binding: Binding) -> Optional[str]:
        """A kernel layered on a venv is not itself without that venv's packages (an
        interpreter that is gone is found by the launch check)."""
        return layers_missing(binding)


KIND = PythonKind()


def layers_missing(binding: Binding) -> Optional[str]:
    """Any Python kernel may be layered on a venv (bases.missing asks every kernel)."""
    if not isinstance(binding, PythonBinding):
        return None
    gone = [d for d in binding.layer_dirs() if not os.path.isdir(d)]
    if not gone:
        return None
    return (f"the environment it was built on ({binding.base_env}) is gone or was rebuilt "
            f"with another Python: {gone[0]} is missing")


def system_python(env: Mapping[str, str]) -> str:
    """python3 on PATH. Never, silently, the interpreter kernelctl runs in: its
    environment (pipx, uv tool) goes away with the next upgrade, and the kernel with it."""
    found = shutil.which("python3", path=env.get("PATH"))
    if found:
        return found
    candidates = [p for p in dict.fromkeys([getattr(sys, "_base_executable", ""),
                                            "/usr/bin/python3"]) if p and os.access(p, os.X_OK)]
    raise KernelctlError(
        f"--base system means python3 on PATH, and there is none on PATH "
        f"({env.get('PATH') or 'PATH is empty'}); kernelctl will not build on the "
        f"interpreter it runs in ({sys.executable}), which goes away when kernelctl is "
        "upgraded or uninstalled",
        "Name the Python to build on: "
        + (", ".join(f"--base python:{p}" for p in candidates) if candidates
           else "--base python:/path/to/python3")
        + ", or put its directory on PATH.")


def python_base(label: str, python: str, env: Mapping[str, str]) -> Base:
    path = checked_path(python)
    interpreter, python, base_env, layers = interpreter_layers(path, env)
    conda = _conda_prefix(interpreter)
    if conda is not None:
        from kernelctl.bases import conda as conda_kind

        return conda_kind.conda_base(conda, env, label=label, python=path)
    return Base(kind="python", name="system" if label == "system" else "python",
                label=label, python=python, interpreter=interpreter, base_env=base_env,
                layers=layers, pythonpath=tuple(path_list(env.get("PYTHONPATH", ""))))


def _conda_prefix(interpreter: "Interpreter") -> Optional[str]:
    """The conda env the interpreter (or the one under its venv) belongs to."""
    for prefix in (interpreter.prefix, interpreter.base_prefix):
        if os.path.isdir(os.path.join(prefix, "conda-meta")):
            return prefix
    return None
