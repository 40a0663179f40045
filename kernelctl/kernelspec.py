"""Kernelspecs on disk: names, kernel.json contents, and installing one atomically."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import tempfile
from importlib import resources
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


LAUNCHER = "kernelctl-launch.sh"
EXPLAINER = "kernelctl-explain.py"
LAUNCHER_TEMPLATE = """#!/bin/sh
# Written by kernelctl; needs nothing of kernelctl. Starts this kernel's Python or, when
# that cannot run in this session, a stand-in kernel that says why in the notebook
# (instead of Jupyter's silent "kernel died, restarting" loop). Healthy path: one test.
python={python}
digest={digest}
case ",$UENV_MOUNT_LIST," in
  *"/$digest/"*|",,") image_here=yes ;;
  *) image_here=no ;;
esac
if [ -x "$python" ] && {{ [ -z "$digest" ] || [ "$image_here" = yes ]; }}; then
  exec "$python" {python_flags}-m ipykernel_launcher "$@"
fi
if [ ! -d {venv} ]; then why={gone}; else why={unavailable}; fi
# The Jupyter server's Python (our parent) has ipykernel, or else one on PATH may.
server_python=$(tr '\\0' '\\n' < /proc/$PPID/cmdline 2>/dev/null | head -n 1)
for candidate in "$server_python" python3 python; do
  if [ -n "$candidate" ] && "$candidate" -c 'import ipykernel' >/dev/null 2>&1; then
    exec "$candidate" "$(dirname "$0")/{explainer}" "$why" "$@"
  fi
done
echo "$why" >&2
exit 1
"""


def launcher_script(python: Path, python_version: str, venv: Path, digest: str,
                    gone: str, unavailable: str) -> str:
    """kernelctl-launch.sh for a kernel; `gone` and `unavailable` are what the notebook
    shows when the venv was deleted, or its Python (its base image) is not here."""
    flags = "-Xfrozen_modules=off " if _at_least(python_version, (3, 11)) else ""
    quote = shlex.quote
    return LAUNCHER_TEMPLATE.format(
        python=quote(str(python)), digest=quote(digest), python_flags=flags,
        venv=quote(str(venv)), gone=quote(gone), unavailable=quote(unavailable),
        explainer=EXPLAINER)


def build_spec(launcher: Path, display_name: str, env: dict, metadata: dict) -> dict:
    return {
        # /bin/sh always exists, so a kernel whose Python is gone can still explain itself.
        "argv": ["/bin/sh", str(launcher), "-f", "{connection_file}"],
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",  # the launcher execs Python: same pid, same signals
        # jupyter_client runs string.Template over env values: keep `$` literal.
        "env": {key: value.replace("$", "$$") for key, value in env.items()},
        "metadata": {"debugger": True, METADATA_KEY: metadata},
    }


def _at_least(version: str, minimum: tuple) -> bool:
    return tuple(int(part) for part in version.split(".")[:2]) >= minimum


def stage_kernel(kernels: Path, name: str, spec: dict, logo_dir: Optional[Path],
                 launcher: str = "") -> Path:
    """Write the kernel into a hidden temp dir beside `kernels`; install_staged moves it in.

    The temp dir is outside `kernels` so Jupyter never lists a half-written kernel.
    """
    kernels.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".kernelctl-{name}-", dir=kernels.parent))
    (staging / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
    if launcher:
        (staging / LAUNCHER).write_text(launcher)
        explainer = resources.files("kernelctl").joinpath("resources", "kernelctl_explain.py")
        (staging / EXPLAINER).write_text(explainer.read_text())
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
