"""Jupyter's kernel search path, without importing jupyter_core on the common path.

`kernelctl list` must be fast, and jupyter_core.paths costs more to import (tempfile,
platformdirs) than listing 200 kernels. This follows jupyter_core 5's rules on
Linux/Unix with default settings; anywhere else (macOS, Windows, JUPYTER_PLATFORM_DIRS)
it asks jupyter_core itself. tests/test_list.py checks both agree.
"""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path
from typing import Mapping

SYSTEM_PATHS = ["/usr/local/share/jupyter", "/usr/share/jupyter"]
FALSE_WORDS = ("no", "n", "false", "off", "0", "0.0")


def kernel_dirs(env: Mapping[str, str]) -> list:
    """jupyter_path("kernels") plus IPython's kernels dir, as KernelSpecManager searches."""
    ipython_dir = env.get("IPYTHONDIR") or os.path.join(os.path.expanduser("~"), ".ipython")
    return [Path(p) / "kernels" for p in jupyter_path(env)] + [Path(ipython_dir) / "kernels"]


def jupyter_path(env: Mapping[str, str]) -> list:
    if sys.platform in ("darwin", "win32") or _set(env, "JUPYTER_PLATFORM_DIRS"):
        from jupyter_core.paths import jupyter_path as upstream

        return upstream()
    paths = [p.rstrip(os.sep) for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p] \
        if env.get("JUPYTER_PATH") else []
    user = [data_dir(env)]
    if site.ENABLE_USER_SITE and site.getuserbase():
        userdir = str(Path(site.getuserbase(), "share", "jupyter"))
        if userdir not in user:
            user.append(userdir)
    prefix = [p for p in [str(Path(sys.prefix, "share", "jupyter"))] if p not in SYSTEM_PATHS]
    paths += prefix + user if _prefer_environment(env) else user + prefix
    return paths + [p for p in SYSTEM_PATHS if p not in paths]


def data_dir(env: Mapping[str, str]) -> str:
    if env.get("JUPYTER_DATA_DIR"):
        return env["JUPYTER_DATA_DIR"]
    home = str(Path("~").expanduser().resolve())
    return os.path.join(env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share"),
                        "jupyter")


def _set(env: Mapping[str, str], name: str) -> bool:
    return name in env and env[name].lower() not in FALSE_WORDS


def _prefer_environment(env: Mapping[str, str]) -> bool:
    if "JUPYTER_PREFER_ENV_PATH" in env:
        return _set(env, "JUPYTER_PREFER_ENV_PATH")
    if sys.prefix != sys.base_prefix and _owned(sys.prefix):
        return True
    return ("CONDA_PREFIX" in env and sys.prefix.startswith(env["CONDA_PREFIX"])
            and env.get("CONDA_DEFAULT_ENV", "base") != "base" and _owned(sys.prefix))


def _owned(path: str) -> bool:
    existing = Path(path).resolve()
    while not os.path.exists(existing) and existing != existing.parent:
        existing = existing.parent
    try:
        return existing.stat().st_uid == os.geteuid()
    except OSError:
        return os.access(existing, os.W_OK)
