"""`kernelctl julia`: IJulia kernels that survive julia updates, plus an Nsight Systems one.

kernelctl talks to julia only through the three small scripts below, each run with
`julia --startup-file=no -e`. IJulia's own `installkernel` writes the kernel (so argv
matches the IJulia version) into a staging data dir; kernelctl then makes it robust and
moves it into place, like `create`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Optional

from kernelctl import __version__, uenv
from kernelctl.binding import JuliaBinding
from kernelctl.errors import CommandFailed, KernelctlError, disk_errors
from kernelctl.kernelspec import (
    check_kernel_name,
    install_staged,
    kernels_dir,
    check_replaceable,
    staging_dir,
)
from kernelctl.model import KernelInfo, KernelSpec, Status
from kernelctl.proc import run
from kernelctl.transaction import (
    Transaction,
    locks,
    remove_path,
    stop_signals_raise,
    sweep_leftovers,
)

PROBE = """# kernelctl:probe
import Pkg
ijulia = ""
for (uuid, dep) in Pkg.dependencies()
    dep.name == "IJulia" && (global ijulia = string(dep.version))
end
println("version\\t", VERSION)
println("bindir\\t", Sys.BINDIR)
println("depot\\t", join(DEPOT_PATH, ":"))
println("ijulia\\t", ijulia)
"""
ADD_IJULIA = """# kernelctl:add-ijulia
import Pkg
Pkg.add("IJulia")
"""
INSTALL_KERNEL = """# kernelctl:installkernel
import IJulia
options = filter(!isempty, split(get(ENV, "KERNELCTL_JULIA_OPTIONS", ""), "\\n"))
IJulia.installkernel(ENV["KERNELCTL_DISPLAY_NAME"], options...;
                     specname=ENV["KERNELCTL_SPECNAME"],
                     displayname=ENV["KERNELCTL_DISPLAY_NAME"])
"""
# What a julia uenv's `jupyter` view sets and a kernel needs even if the server lacks it.
JULIA_ENV_VARS = ("JULIA_DEPOT_PATH", "JULIA_LOAD_PATH", "JULIAUP_DEPOT_PATH")
NO_JULIA_HINT = (
    "On CSCS, start JupyterLab with the julia uenv and the view `jupyter` (Hub spawner "
    "form, Advanced options). Elsewhere install juliaup "
    "(curl -fsSL https://install.julialang.org | sh) or load a julia module, then run "
    "`kernelctl julia` again; or pass --julia PATH."
)


@dataclass(frozen=True)
class JuliaRequest:
    julia: Optional[Path] = None
    name: Optional[str] = None
    display_name: Optional[str] = None
    threads: Optional[str] = None
    project: str = "@."
    nsys: Optional[bool] = None  # None: when the machine has an NVIDIA GPU and nsys
    force: bool = False


@dataclass(frozen=True)
class JuliaInstall:
    """The julia kernels will run: a stable launcher, and what it needs around it."""

    launcher: Path  # the `julia` of the view, PATH or juliaup; never Sys.BINDIR's copy
    image: Optional[uenv.MountedUenv]
    view: Optional[str]
    env: dict  # JULIA_* for the kernel (from the session, else from the view)


def julia_kernels(request: JuliaRequest, env: Mapping[str, str], home: Path,
                  progress: Callable[[str], None]) -> list:
    if request.name is not None:
        check_kernel_name(request.name)
    threads, project = _checked_threads(request.threads), _project_option(request.project)
    nsys = _nsys(request.nsys, env)
    progress("Looking for julia")
    install = find_julia(request.julia, env)
    julia_env = {**env, **install.env}
    facts = _query(install.launcher, julia_env)
    if not facts["ijulia"]:
        progress("Installing IJulia into your Julia depot (Pkg.add)")
        _julia(install.launcher, ADD_IJULIA, julia_env, "installing IJulia",
               "Compute nodes are often offline: run `kernelctl julia` once where the "
               "internet is reachable (a login node), then again here.")
        facts = _query(install.launcher, julia_env)
    name = check_kernel_name(request.name if request.name is not None
                             else f"julia-{_major_minor(facts['version'])}")
    display = request.display_name or f"Julia {facts['version']}"
    kernels = kernels_dir(None)
    names = [name] + ([f"{name}-nsys"] if nsys else [])
    sweep_leftovers(home)
    with disk_errors("writing the kernels"), stop_signals_raise(), locks(home, names), \
            Transaction(home, names) as tx:
        for kernel_name in names:  # under the lock: as they are now
            check_replaceable(kernels / kernel_name, request.force)
        progress(f"Writing the kernel {name} with IJulia.installkernel")
        staged = _installkernel(install, name, display, project, julia_env, kernels, tx)
        written = _written_spec(staged / "kernel.json")
        spec = _robust_spec(written, install, env, threads,
                            _metadata(install, facts, project, threads, env))
        specs = [(staged, spec)]
        if nsys:
            nsys_dir = staged.with_name(staged.name + "-nsys")
            shutil.copytree(staged, nsys_dir)
            specs.append((nsys_dir, _nsys_spec(spec, nsys, display, request.display_name)))
        return [_place(source, kernel_spec, kernels / kernel_name, tx)
                for (source, kernel_spec), kernel_name in zip(specs, names)]


def find_julia(julia: Optional[Path], env: Mapping[str, str]) -> JuliaInstall:
    """--julia, then PATH, then a mounted julia uenv's view, then juliaup."""
    launcher = (_given(julia) if julia else _on_path(env)) or None
    images = uenv.session_uenvs(env)
    image, view = _image_of(launcher, images) if launcher else _view_with_julia(images, env)
    if launcher is None and image is not None:
        launcher = image.view_root(view) / "bin" / "julia"
    launcher = launcher or _juliaup(env)
    if launcher is None:
        raise KernelctlError("julia was not found (not on PATH, in a uenv, or via juliaup)",
                             NO_JULIA_HINT)
    _refuse_scratch(launcher, env)
    julia_env = {}
    for var in JULIA_ENV_VARS:
        value = env.get(var) or (image.view_value(view, var) if image else None)
        if value:
            julia_env[var] = value
    return JuliaInstall(launcher=launcher, image=image, view=view, env=julia_env)


def _given(julia: Path) -> Path:
    path = Path(os.path.abspath(os.path.expanduser(julia)))
    if not os.access(path, os.X_OK) or os.path.isdir(path):
        raise KernelctlError(f"--julia {julia} is not an executable file", NO_JULIA_HINT)
    return path


def _on_path(env: Mapping[str, str]) -> Optional[Path]:
    found = shutil.which("julia", path=env.get("PATH", ""))
    return Path(found) if found else None


def _image_of(launcher: Path, images: list) -> tuple:
    for image in images:
        if image.contains(launcher):
            views = [v for v in image.active_views if image.view_root(v)
                     and image.view_root(v) in launcher.parents]
            return image, (views or list(image.active_views) or [None])[0]
    return None, None


def _view_with_julia(images: list, env: Mapping[str, str]) -> tuple:
    """The view with julia: the one the uenv's recipe names (recipes/julia.toml:
    `jupyter`) first."""
    from kernelctl.bases import image_view

    for image in images:
        preferred = image_view(image.name, env) or "jupyter"
        views = sorted(image.views(), key=lambda v: v != preferred)
        for view in views:
            root = image.view_root(view)
            if root and os.access(root / "bin" / "julia", os.X_OK):
                return image, view
    return None, None


def _juliaup(env: Mapping[str, str]) -> Optional[Path]:
    """juliaup's launcher; if only juliaup itself is there, let it fetch a julia."""
    home = Path(env.get("HOME", "~")).expanduser()
    launcher = home / ".juliaup" / "bin" / "julia"
    if os.access(launcher, os.X_OK):
        return launcher
    juliaup = shutil.which("juliaup", path=env.get("PATH", ""))
    if not juliaup:
        return None
    run([juliaup, "add", "release"], env=env, what="juliaup add release",
        hint="juliaup needs the internet the first time; run it on a login node.")
    launcher = Path(juliaup).parent / "julia"
    return launcher if os.access(launcher, os.X_OK) else None


def _refuse_scratch(launcher: Path, env: Mapping[str, str]) -> None:
    scratch = env.get("SCRATCH")
    if not scratch:
        return
    scratch_dir = os.path.realpath(scratch)
    for path in {str(launcher), os.path.realpath(launcher)}:
        if path == scratch_dir or path.startswith(scratch_dir + os.sep):
            raise KernelctlError(
                f"julia at {launcher} lives on $SCRATCH ({scratch}), which is purged: "
                "its kernel would break silently",
                "Use a launcher outside $SCRATCH: the julia uenv's view `jupyter`, or "
                "juliaup's ~/.juliaup/bin/julia, with --julia PATH.")


def _query(launcher: Path, env: Mapping[str, str]) -> dict:
    out = _julia(launcher, PROBE, env, "asking julia for its version and packages", "")
    facts = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
    if "version" not in facts:
        raise KernelctlError(f"{launcher} did not answer like julia", NO_JULIA_HINT)
    facts.setdefault("ijulia", "")
    return facts


def _julia(launcher: Path, script: str, env: Mapping[str, str], what: str, hint: str) -> str:
    return run([launcher, "--startup-file=no", "-e", script], env=env, what=what, hint=hint)


def _installkernel(install: JuliaInstall, name: str, display: str, project: str,
                   env: Mapping[str, str], kernels: Path, tx: Transaction) -> Path:
    """IJulia.installkernel into a staging data dir beside `kernels`; the written dir."""
    kernels.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(kernels, f"julia-{name}")
    tx.made(staging)
    staging.mkdir()
    tx.after_success(lambda: remove_path(staging))
    _julia(install.launcher, INSTALL_KERNEL, {
        **env, "JUPYTER_DATA_DIR": str(staging), "KERNELCTL_SPECNAME": name,
        "KERNELCTL_DISPLAY_NAME": display, "KERNELCTL_JULIA_OPTIONS": project,
    }, "IJulia.installkernel", "Check that IJulia loads: julia -e 'import IJulia'.")
    written = staging / "kernels" / name
    if not os.path.isfile(written / "kernel.json"):
        raise CommandFailed(f"IJulia.installkernel wrote no {written / 'kernel.json'}")
    return written


def _written_spec(path: Path) -> KernelSpec:
    try:
        return KernelSpec.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, RecursionError) as exc:
        raise CommandFailed(f"IJulia.installkernel wrote an unusable {path}: {exc}") from exc


def _robust_spec(spec: KernelSpec, install: JuliaInstall, env: Mapping[str, str],
                 threads: Optional[str], binding: JuliaBinding) -> KernelSpec:
    """Run the stable launcher (IJulia wrote Sys.BINDIR's julia, which updates and purges
    remove) with the environment julia needs written in, whatever the server has."""
    kernel_env = dict(install.env)
    if threads:
        kernel_env["JULIA_NUM_THREADS"] = threads
    path = [str(install.launcher.parent)] + [p for p in env.get("PATH", "").split(os.pathsep) if p]
    kernel_env["PATH"] = os.pathsep.join(dict.fromkeys(path))
    return replace(spec, argv=(str(install.launcher), *spec.argv[1:])) \
        .with_literals(kernel_env).with_binding(binding)


def _nsys_spec(spec: KernelSpec, nsys: Path, display: str,
               custom_display: Optional[str]) -> KernelSpec:
    """The same kernel run under `nsys launch`; CUDA.jl's profiler finds nsys by JULIA_CUDA_NSYS."""
    shown = f"{custom_display} (Nsight Systems)" if custom_display else \
        f"{display} (Nsight Systems)"
    return replace(spec, display_name=shown, argv=(str(nsys), "launch", "--trace=cuda", *spec.argv)) \
        .with_literals({"JULIA_CUDA_NSYS": str(nsys)}) \
        .with_binding(replace(_julia_binding(spec), nsys=str(nsys)))


def _place(staged: Path, spec: KernelSpec, kernel_dir: Path, tx: Transaction) -> KernelInfo:
    (staged / "kernel.json").write_text(spec.to_text())
    install_staged(staged, kernel_dir, tx)
    return KernelInfo(name=kernel_dir.name, display_name=spec.display_name,
                      language="julia", resource_dir=kernel_dir, managed=True, status=Status.OK,
                      base=_julia_binding(spec))


def _julia_binding(spec: KernelSpec) -> JuliaBinding:
    binding = spec.binding
    if not isinstance(binding, JuliaBinding):
        raise CommandFailed("a Julia kernel lost its metadata while being written")
    return binding


def _metadata(install: JuliaInstall, facts: dict, project: str, threads: Optional[str],
              env: Mapping[str, str]) -> JuliaBinding:
    image = install.image
    info = uenv.inspect(image.digest or image.name, env) if image else {}
    label = str(uenv.UenvLabel(image.name, info.get("version"), info.get("tag"))) \
        if image else f"julia {facts['version']}"
    return JuliaBinding(
        kind="julia", name="julia", label=label, julia=str(install.launcher),
        julia_version=facts["version"], julia_bindir=facts.get("bindir"),
        ijulia_version=facts["ijulia"], depot=facts.get("depot", "").split(":")[0] or None,
        project=project.split("=", 1)[1], threads=threads,
        image=image.name if image else None, view=install.view if image else None,
        digest=(info.get("digest") or image.digest) if image else None,
        mount=str(image.mount) if image else None,
        kernelctl_version=__version__,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _nsys(wanted: Optional[bool], env: Mapping[str, str]) -> Optional[Path]:
    """nsys for a second kernel: asked for, or found on a machine with an NVIDIA GPU."""
    if wanted is False:
        return None
    cuda_home = env.get("CUDA_HOME")
    found = shutil.which("nsys", path=env.get("PATH", "")) or (
        cuda_home and shutil.which("nsys", path=os.path.join(cuda_home, "bin")))
    if wanted and not found:
        raise KernelctlError("--nsys: Nsight Systems (nsys) was not found on PATH or in "
                             "$CUDA_HOME/bin", "Load Nsight Systems (or set CUDA_HOME), or "
                             "drop --nsys.")
    has_gpu = bool(shutil.which("nvidia-smi", path=env.get("PATH", "")) or cuda_home)
    return Path(os.path.abspath(found)) if found and (wanted or has_gpu) else None


def _checked_threads(threads: Optional[str]) -> Optional[str]:
    if threads is None or threads == "auto" or (threads.isdigit() and int(threads) > 0):
        return threads
    raise KernelctlError(f"--threads {threads} is neither a positive number nor 'auto'",
                         "e.g. --threads 8 or --threads auto")


def _project_option(project: str) -> str:
    if project == "@.":
        return "--project=@."
    path = Path(project).expanduser().absolute()
    if not os.path.isdir(path):
        raise KernelctlError(f"--project {project} is not a directory",
                             "Pass a Julia project directory, or @. (the notebook's own).")
    return f"--project={path}"


def _major_minor(version: str) -> str:
    match = re.match(r"(\d+)\.(\d+)", version)
    return f"{match[1]}.{match[2]}" if match else version
