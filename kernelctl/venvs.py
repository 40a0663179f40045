"""What a virtual environment on disk is: its pyvenv.cfg, site-packages, interpreter.

Asked the same way by every command; none of these raise for a directory the user
cannot read (a colleague's venv on a shared Jupyter path).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

CONFIG = "pyvenv.cfg"


@dataclass(frozen=True)
class Venv:
    root: Path
    python: Path
    site_packages: Path

    @property
    def bin(self) -> Path:
        return self.python.parent


def open_venv(root: Path) -> Optional[Venv]:
    """The venv at `root`, or None when it has no pyvenv.cfg or site-packages."""
    site = site_packages(root)
    if site is None or not os.path.isfile(root / CONFIG):
        return None
    return Venv(root=root, python=root / "bin" / "python", site_packages=site)


def pyvenv_cfg(venv: Path) -> dict:
    """pyvenv.cfg as {key: value}; {} when it is missing or unreadable."""
    try:
        with open(venv / CONFIG, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return {}
    return {key.strip(): value.strip()
            for key, sep, value in (line.partition("=") for line in lines) if sep}


def home_of(venv: Path) -> Optional[str]:
    """The directory of the interpreter the venv was made from (pyvenv.cfg `home`)."""
    return pyvenv_cfg(venv).get("home") or None


def sees_system_site_packages(venv: Path) -> bool:
    return pyvenv_cfg(venv).get("include-system-site-packages", "false").lower() == "true"


# Many doctor checks ask for the same venv's site-packages.
@lru_cache(maxsize=None)
def site_packages(venv: Path) -> Optional[Path]:
    try:
        return next(iter(sorted(venv.glob("lib/python*/site-packages"))), None)
    except OSError:
        return None


@lru_cache(maxsize=None)
def venv_of(interpreter: str) -> Optional[Path]:
    """The venv an interpreter path (VENV/bin/python) belongs to, or None."""
    candidate = os.path.dirname(os.path.dirname(interpreter))
    return Path(candidate) if os.path.isfile(os.path.join(candidate, CONFIG)) else None


def requirement_name(requirement: str) -> str:
    """The normalised project name a requirement string names (PEP 503), for comparing
    the user's spellings (kctl_shadow==2.0) with installed distributions (kctl-shadow)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        return str(canonicalize_name(Requirement(requirement).name))
    except InvalidRequirement:
        return str(canonicalize_name(re.split(r"[<>=!~;@\[ ]", requirement.strip(), 1)[0]))


def own_distributions(venv: Path) -> dict:
    """{normalised name: distribution} installed in the venv itself (not its base's)."""
    from importlib.metadata import distributions

    # Not the cached site_packages(): the venv may be newer than the cache.
    site = next(iter(sorted(venv.glob("lib/python*/site-packages"))), None)
    if site is None:
        return {}
    return {requirement_name(d.metadata["Name"]): d for d in distributions(path=[str(site)])
            if d.metadata["Name"]}


def check_requirement(requirement: str, where: str) -> str:
    """A package request as pip must take it: a requirement (name, extras, versions,
    `name @ URL`), a URL or a path, never an option (`--index-url=...` would redirect
    pip) and never more than one line."""
    from kernelctl.errors import KernelctlError

    text = requirement.strip()
    if not text or text.startswith("-") or any(ch in requirement for ch in "\r\n\0"):
        raise KernelctlError(f"{where}: {requirement!r} is not a package requirement",
                             "Name packages as pip does (numpy, numpy>=2, pkg @ URL); "
                             "options are not packages.")
    return requirement
