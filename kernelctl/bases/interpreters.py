"""The interpreter toolkit every base kind uses: an interpreter given by path, and the
venv it may live in, layered on (never built from). Not a kind itself."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional, Tuple

from kernelctl.bases import checked_probe
from kernelctl.errors import KernelctlError
from kernelctl.paths import is_within

if TYPE_CHECKING:  # the probe module runs programs: imported where one is run
    from kernelctl.probe import Interpreter


def checked_path(python: str) -> Path:
    path = Path(python).expanduser()
    if not path.is_absolute() or not os.access(path, os.X_OK) or os.path.isdir(path):
        raise KernelctlError(
            f"'{python}' is not an executable file given by an absolute path",
            "Write --base python:/absolute/path/to/python3 (see `which python3`).",
        )
    return path


def interpreter_layers(path: Path, env: Mapping[str, str]
                       ) -> Tuple["Interpreter", str, Optional[str], tuple]:
    """(interpreter, the python to build on, base_env, layers) for the python at `path`.

    virtualenv cannot make a venv from a venv's python: build on the interpreter under
    it, and layer the venv's site-packages in (its packages are the point). The python
    is sys.executable, not `path`: a pyenv or conda shim is a script, not the interpreter.
    """
    interpreter = checked_probe(path, env)
    if not interpreter.in_venv:
        return interpreter, interpreter.executable, None, ()
    under = checked_probe(Path(interpreter.base_executable), env).executable
    return interpreter, under, interpreter.prefix, _site_dirs(interpreter)


def _site_dirs(interpreter: "Interpreter") -> tuple:
    """The venv's own site-packages, as its python lists them (not the base's)."""
    return tuple(entry for entry in interpreter.path
                 if os.path.basename(entry) in ("site-packages", "dist-packages")
                 and is_within(entry, interpreter.prefix))
