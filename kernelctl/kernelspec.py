"""Kernelspecs on disk: names, kernel.json contents, and installing one atomically."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from kernelctl.errors import KernelctlError, NameTaken
from kernelctl.model import METADATA_KEY
from kernelctl.transaction import Transaction, move_aside, remove_path

# jupyter_client lower-cases names and accepts only these characters.
KERNEL_NAME_RE = re.compile(r"^[a-z0-9._-]+$")
LOGO_FILES = ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg")


def check_kernel_name(name: str) -> str:
    if not KERNEL_NAME_RE.match(name) or name.strip(".") == "" or name.startswith("."):
        suggestion = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.") or "my-kernel"
        raise KernelctlError(
            f"'{name}' is not a kernel name Jupyter accepts",
            f"Use lower-case letters, digits, '.', '_' and '-', e.g. --name {suggestion}",
        )
    return name


def kernels_dir(prefix: Optional[Path]) -> Path:
    """Where a new kernel goes: PREFIX/share/jupyter/kernels, or the user's data dir."""
    if prefix is not None:
        return prefix / "share" / "jupyter" / "kernels"
    from jupyter_core.paths import jupyter_data_dir  # honours JUPYTER_DATA_DIR

    return Path(jupyter_data_dir()) / "kernels"


def build_spec(python: Path, display_name: str, env: dict, python_version: str,
               metadata: dict) -> dict:
    argv = [str(python)]
    if tuple(int(p) for p in python_version.split(".")[:2]) >= (3, 11):
        argv.append("-Xfrozen_modules=off")  # as ipykernel does: lets the debugger work
    argv += ["-m", "ipykernel_launcher", "-f", "{connection_file}"]
    return {
        "argv": argv,
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
        # jupyter_client runs string.Template over env values: keep `$` literal.
        "env": {key: value.replace("$", "$$") for key, value in env.items()},
        "metadata": {"debugger": True, METADATA_KEY: metadata},
    }


def stage_kernel(kernels: Path, name: str, spec: dict, logo_dir: Optional[Path]) -> Path:
    """Write the kernel into a hidden temp dir beside `kernels`; install_staged moves it in.

    The temp dir is outside `kernels` so Jupyter never lists a half-written kernel.
    """
    kernels.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".kernelctl-{name}-", dir=kernels.parent))
    (staging / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
    for logo in LOGO_FILES:
        if logo_dir and (logo_dir / logo).is_file():
            shutil.copyfile(logo_dir / logo, staging / logo)
    staging.chmod(0o755)
    return staging


def ipykernel_logos(ipykernel_location: Optional[str]) -> Optional[Path]:
    """ipykernel's own logos, from the copy the kernel will use, else from ours."""
    if ipykernel_location:
        return Path(ipykernel_location) / "resources"
    import importlib.util

    spec = importlib.util.find_spec("ipykernel")
    if spec and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]) / "resources"
    return None


def make_room_for_kernel(kernel_dir: Path, force: bool, tx: Transaction) -> None:
    """An existing kernel of that name stays unless --force; then it is moved aside."""
    if not (kernel_dir.exists() or kernel_dir.is_symlink()):
        return
    if not force:
        raise NameTaken(f"a kernel named '{kernel_dir.name}' already exists at {kernel_dir}",
                        "Pass --force to replace it, or choose another --name.")
    move_aside(kernel_dir, tx)


def install_staged(staging: Path, kernel_dir: Path, tx: Transaction) -> None:
    """Move a staged kernel into place: the last step, so Jupyter sees all or nothing."""
    tx.undo_with(lambda: remove_path(staging))
    os.rename(staging, kernel_dir)
    tx.undo_with(lambda: remove_path(kernel_dir))
