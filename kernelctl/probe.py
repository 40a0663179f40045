"""Ask an interpreter everything kernelctl needs to know, in one start-up."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from kernelctl.errors import CommandFailed, KernelctlError
from kernelctl.proc import run

# Runs under the *target* interpreter (Python >= 3.9), with the environment the kernel
# will have, so that PYTHONPATH copies count. find_spec only locates, it imports nothing.
PROBE_SOURCE = r"""
import importlib.util, json, os, sys
def where(name):
    spec = importlib.util.find_spec(name)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return list(spec.submodule_search_locations)[0]
    return spec.origin
print(json.dumps({
    "executable": sys.executable,
    "base_executable": getattr(sys, "_base_executable", sys.executable),
    "version": "%d.%d.%d" % sys.version_info[:3],
    "prefix": sys.prefix,
    "base_prefix": sys.base_prefix,
    "path": sys.path,
    "pip": where("pip"),
    "ipykernel": where("ipykernel"),
}))
"""


@dataclass(frozen=True)
class Interpreter:
    executable: str
    base_executable: str
    version: str
    prefix: str
    base_prefix: str
    path: tuple
    pip: Optional[str]
    ipykernel: Optional[str]

    @property
    def major_minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def in_venv(self) -> bool:
        return self.prefix != self.base_prefix

    @property
    def supported(self) -> bool:
        major, minor = (int(part) for part in self.version.split(".")[:2])
        return (major, minor) >= (3, 9)


def probe(python: Path, env: Mapping[str, str]) -> Interpreter:
    """Run the probe with `python` under `env` (cwd `/`, so nothing local shadows)."""
    try:
        out = run([python, "-c", PROBE_SOURCE], env=env, cwd=Path("/"),
                  what=f"inspecting the interpreter {python}")
        data = json.loads(out)
    except (CommandFailed, ValueError) as exc:
        raise KernelctlError(
            f"{python} does not run as a Python interpreter",
            "Pass a working Python >= 3.9 with --base python:PATH.",
        ) from exc
    data["path"] = tuple(data["path"])
    return Interpreter(**data)
