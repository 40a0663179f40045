"""What every benchmark shares: a clean user environment in a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def user_env(home: Path, **extra: str) -> dict:
    """os.environ without ambient pip, uenv, Jupyter or Slurm settings, with its own HOME,
    Jupyter data dir and KERNELCTL_HOME under `home` (created)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UENV_", "JUPYTER_", "SLURM_")) and k != "PYTHONPATH"}
    env.update(HOME=str(home), KERNELCTL_HOME=str(home / "kernelctl"),
               JUPYTER_DATA_DIR=str(home / "jupyter"), PIP_CONFIG_FILE=os.devnull,
               PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def timed(cmds: list, env: dict) -> float:
    """Seconds to run `cmds` one after the other (output discarded, failures raise)."""
    start = time.perf_counter()
    for cmd in cmds:
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def compiled(root: Path) -> None:
    """Bytecode for kernelctl's modules, as `pip install` writes it: with
    PYTHONDONTWRITEBYTECODE set (CI sets it), a source checkout would compile every
    module at every start and the timings would measure the compiler."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "kernelctl")],
                   check=True)
