"""`--base system` (python3 on PATH) and `--base python:PATH`: a bare interpreter."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Mapping, Optional, Sequence

from kernelctl.bases import Base, checked_probe
from kernelctl.binding import Binding
from kernelctl.errors import KernelctlError
from kernelctl.paths import path_list

PREFIX = "python:"


def claims(spec: str) -> bool:
    return spec == "system" or spec.startswith(PREFIX)


def resolve(spec: str, env: Mapping[str, str]) -> Base:
    if spec == "system":
        return _python_base("system", shutil.which("python3", path=env.get("PATH")) or
                            sys.executable, env)
    return _python_base(spec, spec[len(PREFIX):], env)


def from_recipe(recipe, env: Mapping[str, str]) -> Base:
    raise KernelctlError(f"recipe {recipe.path} has base.kind 'python', which recipes "
                         "cannot name yet", "Use --base python:PATH.")


def mismatch(binding: Binding, uenvs: Sequence) -> Optional[str]:
    return None  # an interpreter that is gone is a broken kernel, found by its launch check


def _python_base(label: str, python: str, env: Mapping[str, str]) -> Base:
    path = Path(python).expanduser()
    if not path.is_absolute() or not os.access(path, os.X_OK) or os.path.isdir(path):
        raise KernelctlError(
            f"'{python}' is not an executable file given by an absolute path",
            "Write --base python:/absolute/path/to/python3 (see `which python3`).",
        )
    interpreter = checked_probe(path, env)
    if interpreter.in_venv:
        # A venv cannot sit on top of another venv: build on the interpreter under it.
        path = Path(interpreter.base_executable)
        interpreter = checked_probe(path, env)
    # sys.executable, not `path`: a pyenv or conda shim is a script, not the interpreter.
    return Base(kind="python", name="system" if label == "system" else "python",
                label=label, python=interpreter.executable, interpreter=interpreter,
                pythonpath=tuple(path_list(env.get("PYTHONPATH", ""))))
