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
from kernelctl.paths import is_within, path_list

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
    base_env, layers, python = None, (), interpreter.executable
    if interpreter.in_venv:
        # virtualenv cannot make a venv from a venv's python: build on the interpreter
        # under it, and layer the venv's site-packages in (its packages are the point).
        base_env, layers = interpreter.prefix, _site_dirs(interpreter)
        python = checked_probe(Path(interpreter.base_executable), env).executable
    # sys.executable, not `path`: a pyenv or conda shim is a script, not the interpreter.
    return Base(kind="python", name="system" if label == "system" else "python",
                label=label, python=python, interpreter=interpreter, base_env=base_env,
                layers=layers, pythonpath=tuple(path_list(env.get("PYTHONPATH", ""))))


def _site_dirs(interpreter) -> tuple:
    """The venv's own site-packages, as its python lists them (not the base's)."""
    return tuple(entry for entry in interpreter.path
                 if os.path.basename(entry) in ("site-packages", "dist-packages")
                 and is_within(entry, interpreter.prefix))
