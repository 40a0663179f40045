"""Doctor checks of the session: which base it runs on, and whether kernels can be added."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Mapping, Optional

from kernelctl import uenv
from kernelctl.doctor.report import CheckResult, Context
from kernelctl.jupyter_paths import data_dir


def session_base(context: Context) -> Iterator[CheckResult]:
    parts = [_describe_uenv(image, context.env) for image in context.session.uenvs]
    container = container_name(context.env)
    if container:
        parts.append(f"container {container}")
    modules = [m for m in context.env.get("LOADEDMODULES", "").split(":") if m]
    if modules:
        parts.append("modules " + ", ".join(modules))
    message = "; ".join(parts) or ("no uenv, container or modules: kernels build on plain "
                                   "interpreters (--base system or python:PATH)")
    yield CheckResult("session.base", "ok", f"this session runs on {message}")


def _describe_uenv(image: uenv.MountedUenv, env: Mapping[str, str]) -> str:
    info = uenv.inspect(image.digest or image.name, env) if image.digest else {}
    label = uenv.UenvLabel(image.name, info.get("version"), info.get("tag"))
    views = ", ".join(image.active_views) or "none"
    digest = f", image {image.digest[:12]}" if image.digest else ""
    return f"uenv {label} at {image.mount} (views: {views}{digest})"


def container_name(env: Mapping[str, str]) -> Optional[str]:
    """A name for the container this session runs in, or None outside one."""
    for var in ("SLURM_CONTAINER", "ENROOT_ROOTFS", "container", "APPTAINER_NAME",
                "SINGULARITY_NAME"):
        if env.get(var):
            return env[var]
    if os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"):
        return "(docker/podman)"
    return None


def kernel_dirs_writable(context: Context) -> Iterator[CheckResult]:
    kernels = Path(data_dir(context.env)) / "kernels"
    existing = kernels
    while not os.path.exists(existing) and existing != existing.parent:
        existing = existing.parent
    if os.path.isdir(existing) and os.access(existing, os.W_OK | os.X_OK):
        yield CheckResult("session.kernel-dirs", "ok", f"new kernels can be written to {kernels}")
        return
    yield CheckResult(
        "session.kernel-dirs", "fail",
        f"Jupyter's kernel directory {kernels} cannot be written ({existing} is "
        f"{'not a directory' if not os.path.isdir(existing) else 'read-only'})",
        "Fix the permissions of that directory, free quota, or point JUPYTER_DATA_DIR at a "
        "writable place (kernelctl create --prefix DIR also works).")
