"""Kernelspecs on disk: names, kernel.json contents, and installing one atomically."""

from __future__ import annotations

import errno
import os
import re
import shutil
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Optional

from kernelctl import shell
from kernelctl.binding import Binding
from kernelctl.errors import KernelctlError, NameTaken
from kernelctl.model import KERNEL_NAME_RE, METADATA_KEY, KernelSpec, env_digest, escape_env
from kernelctl.ownership import (  # noqa: F401 (re-exported: the kernelspec's files)
    EXPLAINER,
    KERNELSPEC_FILES,
    LAUNCHER,
    LOGO_FILES,
    ORIGINAL_SPEC,
    SLURM_RELAY,
    check_only_kernelspec,
    kernel_dir_target,
)
from kernelctl.paths import new_dir_mode
from kernelctl.slurm import METADATA_KEY as SLURM_KEY
from kernelctl.slurm import SlurmRequest
from kernelctl.transaction import Transaction, aside_name, move_aside

# A file name holds 255 bytes; kernelctl adds prefixes and suffixes (".kernelctl-old-",
# a pid) to names it moves aside or stages.
MAX_NAME_LENGTH = 100
# The launcher's first argument that makes it exec the rest instead of the kernel.
RUN_FLAG = "--kernelctl-run"
# A Slurm kernel's launcher: the kernel itself, here (what runs in the step or job).
HERE_FLAG = "--kernelctl-here"
# Where a Slurm kernel goes instead of starting ipykernel: to the relay, which starts
# the step or job; the job runs `launcher --kernelctl-slurm-kernel RUN_DIR KERNEL_DIR`
# (sbatch runs a copy of the launcher, so the kernel's dir is an argument).
SLURM_DISPATCH = """  case "${{1-}}" in
    {here}) shift ;;
    --kernelctl-slurm-kernel) shift; exec "$python" "$2/{relay}" kernel "$@" ;;
    *) exec "$python" "$(dirname "$0")/{relay}" relay "$(dirname "$0")" "$@" ;;
  esac
"""


def check_kernel_name(name: str) -> str:
    suggestion = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.")[:MAX_NAME_LENGTH] \
        or "my-kernel"
    if len(name) > MAX_NAME_LENGTH:
        raise KernelctlError(f"the kernel name is {len(name)} characters long; at most "
                             f"{MAX_NAME_LENGTH} are allowed", f"Use a shorter --name, e.g. {suggestion}")
    if not KERNEL_NAME_RE.match(name) or name.startswith((".", "-")):
        raise KernelctlError(
            f"'{name}' is not a kernel name Jupyter accepts" if name else "the kernel name is empty",
            "Use lower-case letters, digits, '.', '_' and '-', not starting with '.' or '-', "
            f"e.g. --name {suggestion}",
        )
    return name


def made_by_kernelctl(resource_dir: Path) -> bool:
    """Whether a kernel directory's kernel.json carries kernelctl's metadata block."""
    from kernelctl.inventory import read_spec

    spec, _ = read_spec(os.path.join(resource_dir, "kernel.json"))
    return spec is not None and spec.binding is not None


def kernels_dir(prefix: Optional[Path]) -> Path:
    """Where a new kernel goes: PREFIX/share/jupyter/kernels, or the user's data dir.
    Absolute: kernel.json names its launcher by this path, and the server's cwd differs."""
    if prefix is not None:
        return Path(os.path.abspath(os.path.expanduser(prefix))) / "share" / "jupyter" / "kernels"
    from jupyter_core.paths import jupyter_data_dir  # honours JUPYTER_DATA_DIR

    return Path(os.path.abspath(jupyter_data_dir())) / "kernels"


LAUNCHER_TEMPLATE = """#!/bin/sh
# Written by kernelctl; needs nothing of kernelctl. Starts this kernel's Python or, when
# that cannot run in this session, a stand-in kernel that says why in the notebook
# (instead of Jupyter's silent "kernel died, restarting" loop).
python={python}
digest={digest}
# The environments this one is layered on; the kernel is not itself without them.
base_here=yes
{layer_checks}{launch_steps}case ",$UENV_MOUNT_LIST," in
  *"/$digest/"*|",,") image_here=yes ;;
  *) image_here=no ;;
esac
if [ -x "$python" ] && [ "$base_here" = yes ] && {{ [ -z "$digest" ] || [ "$image_here" = yes ]; }}; then
  # `{run_flag} CMD...` (kernelctl run/submit/engines): CMD in this very environment.
  case "${{1-}}" in {run_flag}) shift; exec "$@" ;; esac
{slurm_dispatch}  exec "$python" {python_flags}-m ipykernel_launcher "$@"
fi
if [ ! -d {venv} ]; then why={gone}; else why={unavailable}; fi
case "${{1-}}" in {run_flag}|--kernelctl-slurm-kernel) echo "kernelctl-launch.sh: $why" >&2; exit 1 ;; esac
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
                    gone: str, unavailable: str, layers: tuple = (),
                    launch_steps: str = "", slurm: bool = False) -> str:
    """kernelctl-launch.sh for a kernel; `gone` and `unavailable` are what the notebook
    shows when the venv was deleted, or its Python (its base image) is not here.
    `launch_steps`: the base's own set-up (loading modules), run before the checks.
    `slurm`: the kernel runs as a Slurm step or job, through kernelctl-slurm.py."""
    flags = "-Xfrozen_modules=off " if _at_least(python_version, (3, 11)) else ""
    quote = shell.quote
    return LAUNCHER_TEMPLATE.format(
        python=quote(str(python)), digest=quote(digest), python_flags=flags,
        layer_checks="".join(f"[ -d {quote(layer)} ] || base_here=no\n" for layer in layers),
        launch_steps=launch_steps,
        venv=quote(str(venv)), gone=quote(gone), unavailable=quote(unavailable),
        explainer=EXPLAINER, run_flag=RUN_FLAG,
        slurm_dispatch=SLURM_DISPATCH.format(here=HERE_FLAG, relay=SLURM_RELAY) if slurm else "")


RUN_LINE = '  case "${1-}" in ' + RUN_FLAG + ') shift; exec "$@" ;; esac\n'


def with_slurm_dispatch(launcher: str, slurm: bool) -> Optional[str]:
    """A launcher kernelctl wrote, made to start its kernel through the Slurm relay (or
    no longer); None for one written before it could (no run mode to anchor on)."""
    dispatch = SLURM_DISPATCH.format(here=HERE_FLAG, relay=SLURM_RELAY)
    if RUN_LINE not in launcher:
        return None
    plain = launcher.replace(RUN_LINE + dispatch, RUN_LINE)
    return plain.replace(RUN_LINE, RUN_LINE + dispatch) if slurm else plain


def build_spec(launcher: Path, display_name: str, env: dict, binding: Binding,
               shell: str = "/bin/sh", slurm: Optional[SlurmRequest] = None) -> KernelSpec:
    """`slurm`: the kernel runs as a Slurm step or job; its interrupts are messages, as
    srun does not forward a single SIGINT (the relay passes the message on)."""
    stored = escape_env(env)
    binding = replace(binding, env_written=",".join(
        f"{key}:{env_digest(value)}" for key, value in sorted(stored.items())))
    metadata = {"debugger": True, METADATA_KEY: binding.to_metadata()}
    if slurm is not None:
        metadata[SLURM_KEY] = slurm.to_metadata()
    return KernelSpec(
        # /bin/sh always exists, so a kernel whose Python is gone can still explain itself.
        argv=(shell, str(launcher), "-f", "{connection_file}"),
        display_name=display_name, language="python", metadata=metadata,
        # The launcher execs Python: same pid, same signals.
        other={"interrupt_mode": "signal" if slurm is None else "message"},
    ).with_values(env)


def _at_least(version: str, minimum: tuple) -> bool:
    return tuple(int(part) for part in version.split(".")[:2]) >= minimum


def stage_kernel(kernels: Path, name: str, spec: KernelSpec, logo_dir: Optional[Path],
                 tx: Transaction, launcher: str = "", slurm: bool = False) -> Path:
    """Write the kernel into a hidden dir where Jupyter never looks, on the filesystem
    of `kernels`; install_staged moves it in. A dead run's is deleted by the next run."""
    kernels.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(kernels, name)
    tx.made(staging)
    staging.mkdir(mode=new_dir_mode())  # a --prefix kernel is shared
    (staging / "kernel.json").write_text(spec.to_text())
    if launcher:
        (staging / LAUNCHER).write_text(launcher)
        explainer = resources.files("kernelctl").joinpath("resources", "kernelctl_explain.py")
        (staging / EXPLAINER).write_text(explainer.read_text())
    if slurm:
        relay = resources.files("kernelctl").joinpath("resources", "kernelctl_slurm.py")
        (staging / SLURM_RELAY).write_text(relay.read_text())
    for logo in LOGO_FILES:
        if logo_dir and os.path.isfile(logo_dir / logo):
            shutil.copyfile(logo_dir / logo, staging / logo)
    return staging


# The files of a kernel dir a user may have customised, carried when it is remade.
CARRIED_FILES = ("kernel.js", "kernel.css", *LOGO_FILES)


def carry_kernelspec_files(kernel_dir: Path, staged: Path) -> None:
    """Copy the old kernel's own logos, kernel.js and kernel.css into its replacement."""
    source = kernel_dir_target(kernel_dir)
    for name in CARRIED_FILES:
        if os.path.isfile(source / name):
            shutil.copyfile(source / name, staged / name)


def staging_dir(kernels: Path, name: str) -> Path:
    """Beside the kernels dir (Jupyter lists every subdirectory of it), unless that is
    another filesystem: then inside it, under a name Jupyter rejects ('~')."""
    real = Path(os.path.realpath(kernels))
    try:
        same_device = os.stat(real).st_dev == os.stat(real.parent).st_dev \
            and os.access(real.parent, os.W_OK)
    except OSError:
        same_device = False
    if same_device:
        return aside_name(Path(name), real.parent, "new")
    return aside_name(Path(name), real, "new", inside_kernels=True)


def ipykernel_logos(ipykernel_location: Optional[str]) -> Optional[Path]:
    """ipykernel's own logos, from the copy the kernel will use, else from ours."""
    if ipykernel_location:
        return Path(ipykernel_location) / "resources"
    import importlib.util

    spec = importlib.util.find_spec("ipykernel")
    if spec and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]) / "resources"
    return None


def check_replaceable(kernel_dir: Path, force: bool) -> None:
    """An existing kernel of that name stays unless --force; then it is replaced only if
    kernelctl made it and it holds nothing but a kernelspec."""
    if not os.path.lexists(kernel_dir):
        return
    if not force:
        raise NameTaken(f"a kernel named '{kernel_dir.name}' already exists at {kernel_dir}",
                        "Pass --force to replace it, or choose another --name.")
    if not made_by_kernelctl(kernel_dir):
        raise KernelctlError(
            f"the kernel '{kernel_dir.name}' at {kernel_dir} was not made by kernelctl; "
            "--force replaces only kernelctl's own kernels",
            f"Choose another --name, or remove it first (kernelctl remove {kernel_dir.name}).")
    check_only_kernelspec(kernel_dir, "replace")


def install_staged(staged: Path, kernel_dir: Path, tx: Transaction) -> None:
    """Put a staged kernel in place, the one switch: a new name is one rename; an
    existing kernel is swapped with it in one atomic step (its symlink followed, never
    replaced), so Jupyter always sees the old kernel or the new one."""
    if not os.path.lexists(kernel_dir):
        tx.placed(staged, kernel_dir)
        return
    target = kernel_dir_target(kernel_dir)
    try:
        tx.exchanged(staged, target)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
        # No atomic swap on this filesystem (NFS): two renames, both journaled.
        move_aside(target, tx, beside=staged.parent)
        tx.placed(staged, target)
