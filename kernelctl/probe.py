"""Ask an interpreter everything kernelctl needs to know, in one start-up."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from kernelctl.errors import CommandFailed, KernelctlError
from kernelctl.proc import run

# Runs under the *target* interpreter (Python >= 3.9), with the environment the kernel
# will have, so that PYTHONPATH copies count. find_spec only locates, it imports nothing.
PROBE_SOURCE = r"""
import importlib.util, json, os, sys
def base_executable():
    # In a venv, Python < 3.11 sets sys._base_executable to the venv's own python.
    if sys.prefix == sys.base_prefix:
        return sys.executable
    exe = getattr(sys, "_base_executable", "")
    venv_bin = os.path.realpath(os.path.join(sys.prefix, "bin"))
    if exe and os.path.realpath(os.path.dirname(exe)) != venv_bin:
        return exe
    for name in ("python%d.%d" % sys.version_info[:2], "python3", "python"):
        candidate = os.path.join(sys.base_prefix, "bin", name)
        if os.access(candidate, os.X_OK):
            return candidate
    return exe or sys.executable
def where(name):
    spec = importlib.util.find_spec(name)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return list(spec.submodule_search_locations)[0]
    return spec.origin
print(json.dumps({
    "executable": sys.executable,
    "base_executable": base_executable(),
    "version": "%d.%d.%d" % sys.version_info[:3],
    "prefix": sys.prefix,
    "base_prefix": sys.base_prefix,
    "path": sys.path,
    "pip": where("pip"),
    "ipykernel": where("ipykernel"),
}))
"""


VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
# A Python starts in well under a second; a uenv's on a cold parallel filesystem may take
# tens of seconds. Past this, the "interpreter" is taken to hang.
DEFAULT_TIMEOUT = 120.0


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
    timeout = _timeout(env)
    try:
        out = run([python, "-c", PROBE_SOURCE], env=env, cwd=Path("/"), timeout=timeout,
                  what=f"inspecting the interpreter {python}")
    except CommandFailed as exc:
        raise KernelctlError(
            f"{python} does not run as a Python interpreter: {exc.message.strip()}",
            "Pass a working Python >= 3.9 with --base python:PATH. On a slow filesystem, "
            f"allow more than {timeout:g} s with KERNELCTL_PROBE_TIMEOUT=SECONDS.",
        ) from exc
    try:
        return _interpreter(json.loads(out.strip().splitlines()[-1] if out.strip() else ""))
    except (ValueError, TypeError, KeyError) as exc:
        raise KernelctlError(
            f"{python} does not run as a Python interpreter: its answer is wrong ({exc})",
            "Pass a working Python >= 3.9 with --base python:PATH.",
        ) from exc


def _timeout(env: Mapping[str, str]) -> float:
    try:
        value = float(env.get("KERNELCTL_PROBE_TIMEOUT") or DEFAULT_TIMEOUT)
    except ValueError:
        value = DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def _interpreter(data: object) -> Interpreter:
    """The probe's answer, checked field by field: a wrapper script or a broken
    interpreter may print anything."""
    if not isinstance(data, dict):
        raise ValueError("its answer is not a JSON object")
    for key in ("executable", "base_executable", "version", "prefix", "base_prefix"):
        if not isinstance(data.get(key), str):
            raise ValueError(f"'{key}' is missing or not a string")
    if not VERSION_RE.match(data["version"]):
        raise ValueError(f"version {data['version']!r} is not MAJOR.MINOR.MICRO")
    path = data.get("path")
    if not isinstance(path, list) or not all(isinstance(p, str) for p in path):
        raise ValueError("'path' is not a list of strings")
    for key in ("pip", "ipykernel"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ValueError(f"'{key}' is not a string")
    return Interpreter(
        executable=data["executable"], base_executable=data["base_executable"],
        version=data["version"], prefix=data["prefix"], base_prefix=data["base_prefix"],
        path=tuple(path), pip=data.get("pip"), ipykernel=data.get("ipykernel"))
