"""Doctor checks of each kernel: health, shadowing, its env block, ipykernel."""

from __future__ import annotations

import os
import re
from functools import lru_cache, partial
from pathlib import Path
from typing import Callable, Iterator, Optional

from kernelctl.binding import PythonBinding
from kernelctl.doctor.report import CheckResult, Context, Fix, kernel_result
from kernelctl.environment import GUARD_MODULE, guard_roots
from kernelctl.errors import KernelctlError
from kernelctl.model import KernelInfo, KernelSpec, Status
from kernelctl.paths import kernelctl_home, missing, path_list
from kernelctl.record import write_atomically
from kernelctl.ownership import kernel_dir_target
from kernelctl.remove import Removal, apply_removals, plan_removal
from kernelctl.transaction import locks
from kernelctl.venvs import home_of, sees_system_site_packages, site_packages, venv_of

DIST_INFO = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)\.(dist|egg)-info$")


def kernel_health(context: Context) -> Iterator[CheckResult]:
    for kernel in context.kernels:
        if kernel.status == Status.OK and kernel.problems:
            yield kernel_result(kernel, "kernel.health", "warn", "; ".join(kernel.problems),
                                "Reinstall before the purge: kernelctl julia --force.")
        elif kernel.status in (Status.OK, Status.UNKNOWN):
            yield kernel_result(kernel, "kernel.health", "ok", _healthy(kernel))
        elif kernel.status == Status.MISMATCH:
            command = _rebuild_command(kernel, context)
            yield kernel_result(kernel, "kernel.health", "warn",
                                f"{kernel.name} cannot run in this session: {kernel.problems[0]}",
                                _start_with(kernel, context) + (f" Or rebuild it on this session's "
                                                       f"base: {command}" if command else ""),
                                _rebuild_fix(kernel, command, context))
        else:
            yield _broken(kernel, context)


def _healthy(kernel: KernelInfo) -> str:
    if kernel.managed:
        return f"{kernel.name} is ok"
    return (f"{kernel.name} was made by another tool: kernelctl can only judge it by "
            "starting it (kernelctl doctor --deep NAME)")


def _start_with(kernel: KernelInfo, context: Context) -> str:
    """How to use it as it is: the words of the kind that found the mismatch."""
    from kernelctl.bases import start_hint

    if kernel.base is None:
        return "Make a kernel for this session with kernelctl create."
    return start_hint(kernel.base, context.session)


def _rebuild_command(kernel: KernelInfo, context: Context) -> Optional[str]:
    # Imported here: rebuild pulls in create, which only stale kernels need.
    from kernelctl.rebuild import rebuild_command

    return rebuild_command(kernel, context.env)


def _rebuild_fix(kernel: KernelInfo, command: Optional[str], context: Context) -> Optional[Fix]:
    """Rebuilding is safe to offer: the old kernel stays until the new one has started."""
    if not command or "--base BASE" in command:
        return None
    from kernelctl.rebuild import RebuildRequest, rebuild

    base = command.split(" --base ", 1)[1]
    home = context.home or kernelctl_home(context.env)
    def apply() -> None:
        rebuild(RebuildRequest(kernel.name, base), context.env, home, lambda step: None,
                lambda line: None)

    return Fix(f"rebuild the kernel {kernel.name} on {base} ({command})", apply)


def _broken(kernel: KernelInfo, context: Context) -> CheckResult:
    message = f"{kernel.name} will not start: {'; '.join(kernel.problems)}"
    venv_gone = kernel.managed and kernel.venv is not None and missing(kernel.venv)
    command = _rebuild_command(kernel, context)
    if not venv_gone:
        return kernel_result(kernel, "kernel.health", "fail", message,
                             f"Rebuild it: {command}" if command else
                             f"See kernelctl show {kernel.name}; recreate it, or remove it "
                             f"(kernelctl remove {kernel.name}).",
                             _rebuild_fix(kernel, command, context))
    recreate = (f"rebuild it ({command}; the packages added to the lost environment are "
                "not known)" if command else
                f"recreate it (kernelctl create --name {kernel.name} --force ...)")
    try:
        # The one removal path, with remove's own safety checks (a kernel directory
        # holding the user's files is never deleted).
        from kernelctl.inventory import find_kernels

        removal = plan_removal(kernel, find_kernels(context.env, include_shadowed=True))
    except KernelctlError as refusal:
        return kernel_result(kernel, "kernel.health", "fail", message,
                             f"It cannot be removed safely: {refusal.message}. "
                             f"{refusal.hint} Or {recreate}.")
    fix = Fix(f"remove the kernel {kernel.name} (its environment {kernel.venv} is gone)",
              partial(_remove, removal, context))
    return kernel_result(kernel, "kernel.health", "fail", message,
                         f"Remove it (kernelctl remove {kernel.name}, or doctor --fix) or "
                         f"{recreate}.", fix)


def _remove(removal: Removal, context: Context) -> None:
    _, refused = apply_removals([removal], context.home or kernelctl_home(context.env),
                                context.env)
    if refused:
        raise refused[0].error


def shadowed_kernels(context: Context) -> Iterator[CheckResult]:
    for kernel in context.shadowed:
        yield kernel_result(
            kernel, "kernel.shadowed", "warn",
            f"the kernel {kernel.name} in {kernel.resource_dir.parent} is hidden: "
            f"{kernel.problems[0]}",
            "Jupyter offers only the first kernel of a name. Remove the one you do not "
            f"want (kernelctl remove {kernel.name} removes the visible one).")


def env_block(context: Context) -> Iterator[CheckResult]:
    """A kernelctl kernel whose env no longer puts its venv first (edited, or old)."""
    for kernel in python_kernels(context):
        binding = spec_of(kernel).binding
        if not binding or not binding.venv or kernel.status == Status.BROKEN:
            continue
        venv = Path(binding.venv)
        site = site_packages(venv)
        wrong = _env_problems(kernel.spec, venv, site)
        if not wrong:
            yield kernel_result(kernel, "kernel.env-block", "ok", "its env block puts the venv first")
            continue
        fix = Fix(f"rewrite the env block of {kernel.name} (VIRTUAL_ENV, PATH, PYTHONPATH with "
                  "its venv first, no empty or ${VAR} entries)",
                  partial(_rewrite_env, kernel, venv, site,
                          context.home or kernelctl_home(context.env)))
        yield kernel_result(kernel, "kernel.env-block", "warn",
                            f"its kernel.json env is stale: {'; '.join(wrong)}",
                            "kernelctl doctor --fix rewrites it.", fix)


def _env_problems(spec: KernelSpec, venv: Path, site: Optional[Path]) -> list:
    raw_env, env = spec.env, spec.values()  # templates left as text: judged as written
    problems = []
    if env.get("VIRTUAL_ENV") != str(venv):
        problems.append(f"VIRTUAL_ENV is {env.get('VIRTUAL_ENV')!r}, not {venv}")
    if path_list(env.get("PATH"))[:1] != [str(venv / "bin")]:
        problems.append("PATH does not start with the venv's bin")
    if site and path_list(env.get("PYTHONPATH"))[:1] != [str(site)]:
        problems.append("PYTHONPATH does not start with the venv's site-packages")
    for var in ("PATH", "PYTHONPATH"):
        value = env.get(var, "")
        if "$" in raw_env.get(var, "").replace("$$", ""):
            problems.append(f"{var} has a ${{VAR}} that Jupyter may leave as literal text")
        if value and "" in value.split(os.pathsep):
            problems.append(f"{var} has an empty entry (puts the notebook's directory first)")
    return problems


def _rewrite_env(kernel: KernelInfo, venv: Path, site: Optional[Path], home: Path) -> None:
    """VIRTUAL_ENV, PATH and PYTHONPATH set anew (their ${VAR} entries dropped: the
    finding); every other entry kept exactly as stored, templates included. Under the
    kernel's lock, from kernel.json as it is now."""
    from kernelctl.inventory import read_spec

    with locks(home, [kernel.name]):
        path = kernel_dir_target(kernel.resource_dir) / "kernel.json"
        spec, problem = read_spec(str(path))
        if spec is None:
            raise KernelctlError(f"{path} changed meanwhile: {problem}; it was not touched")
        env = spec.values()
        keep = [p for p in path_list(env.get("PATH")) if "$" not in p and p != str(venv / "bin")]
        literals = {"VIRTUAL_ENV": str(venv), "PATH": os.pathsep.join([str(venv / "bin"), *keep])}
        if site:
            rest = [p for p in path_list(env.get("PYTHONPATH")) if "$" not in p and p != str(site)]
            literals["PYTHONPATH"] = os.pathsep.join([str(site), *rest])
        write_atomically(path, spec.with_literals(literals).to_text())


def package_shadowing(context: Context) -> Iterator[CheckResult]:
    """The base's copy of a package winning over the venv's: in the kernel, and when the
    venv's python runs from a terminal, srun or a batch job (the session's PYTHONPATH)."""
    for kernel in python_kernels(context):
        venv = kernel_venv(kernel)
        site = site_packages(venv) if venv else None
        if site is None or kernel.status == Status.BROKEN:
            continue
        mine = distributions(str(site))
        env = spec_of(kernel).values()
        in_kernel = env.get("PYTHONPATH", context.env.get("PYTHONPATH", ""))
        losers = _losers(kernel, mine, path_list(in_kernel), site)
        if losers:
            yield kernel_result(kernel, "kernel.shadowing", "fail",
                                f"in the kernel, {_describe(losers)}",
                                _shadowing_hint(kernel))
        else:
            yield kernel_result(kernel, "kernel.shadowing", "ok",
                                "in the kernel, the venv's packages win")
        losers = _losers(kernel, mine, path_list(context.env.get("PYTHONPATH")), site)
        yield kernel_result(
            kernel, "pitfall.pythonpath", "warn" if losers else "ok",
            f"from a terminal, srun or a batch job, {_describe(losers)}" if losers else
            "this session's PYTHONPATH shadows none of its venv's packages",
            f"Before running {venv}/bin/python: export PYTHONPATH={site}:$PYTHONPATH; or "
            "recreate the environment with kernelctl create (its venvs fix this themselves)."
            if losers else "")


def _losers(kernel: KernelInfo, mine: dict, pythonpath: list, site: Path) -> list:
    """(name, base version, venv version, entry) for each venv package a PYTHONPATH entry
    ahead of the venv would win. A kernelctl venv's guard moves the venv ahead of the
    entries it judges the base's, so only the user's own entries remain."""
    guarded = _base_entry_rule(kernel, site)
    losers = []
    for entry in pythonpath:
        if os.path.abspath(entry) == str(site):
            break
        if guarded is not None and guarded(entry):
            continue
        for name, version in distributions(os.path.abspath(entry)).items():
            if name in mine and version != mine[name]:
                losers.append((name, version, mine[name], entry))
    return losers


def _describe(losers: list) -> str:
    return "; ".join(f"the base's {name} {theirs} ({entry}) wins over the venv's {ours}"
                     for name, theirs, ours, entry in losers)


def _shadowing_hint(kernel: KernelInfo) -> str:
    if kernel.managed:
        return "kernelctl doctor --fix rewrites its env block with the venv first."
    return ("Put the venv's site-packages first in the kernel's PYTHONPATH, or recreate "
            "the kernel with kernelctl create (which does).")


def ipykernel_importable(context: Context) -> Iterator[CheckResult]:
    for kernel in python_kernels(context):
        if kernel.status == Status.BROKEN:
            continue
        places = import_places(kernel, context)
        if places is None:
            continue
        if any(os.path.isfile(Path(place) / "ipykernel" / "__init__.py") for place in places):
            yield kernel_result(kernel, "kernel.ipykernel", "ok", "ipykernel is importable")
            continue
        yield kernel_result(
            kernel, "kernel.ipykernel", "fail",
            "ipykernel is not importable in its environment: the kernel cannot start",
            f"kernelctl install {kernel.name} ipykernel" if kernel.managed else
            "Install ipykernel into that environment (pip install ipykernel).")


def import_places(kernel: KernelInfo, context: Context) -> Optional[list]:
    """Where the kernel's Python looks for packages, judged without running it."""
    env = spec_of(kernel).values()
    places = path_list(env.get("PYTHONPATH", context.env.get("PYTHONPATH", "")))
    venv = kernel_venv(kernel)
    if venv:
        site = site_packages(venv)
        places += [str(site)] if site else []
        if isinstance(kernel.base, PythonBinding):  # a venv layered on another venv
            places += kernel.base.layer_dirs()
        if sees_system_site_packages(venv):
            places += _prefix_site_packages(Path(home_of(venv) or "/").parent)
        return places
    argv0 = spec_of(kernel).argv[0]
    if not os.path.isabs(argv0):
        return None
    return places + _prefix_site_packages(Path(argv0).parent.parent)


def _prefix_site_packages(prefix: Path) -> list:
    found = [str(p) for p in prefix.glob("lib/python3*/site-packages")]
    found += [str(p) for p in prefix.glob("lib/python3*/dist-packages")]
    if str(prefix) == "/usr":  # Debian's python keeps packages here
        found += ["/usr/lib/python3/dist-packages"]
    return found


# --- helpers, shared with the pitfall and --deep checks -----------------------------

def python_kernels(context: Context) -> list:
    return [k for k in context.kernels if k.spec is not None and k.language == "python"]


def spec_of(kernel: KernelInfo) -> KernelSpec:
    """The spec of a kernel from python_kernels(), which keeps only kernels with one."""
    if kernel.spec is None:
        raise ValueError(f"{kernel.name} has no readable kernel.json")
    return kernel.spec


def kernel_venv(kernel: KernelInfo) -> Optional[Path]:
    return kernel.venv or venv_of(spec_of(kernel).argv[0])


def _base_entry_rule(kernel: KernelInfo, site: Path) -> Optional[Callable[[str], bool]]:
    """Which PYTHONPATH entries the venv's path guard moves behind the venv: the guard's
    own rule (kernelctl's copy of it) with the image roots from the kernel's metadata,
    never code run from the user's venv. None for a venv without the guard."""
    if not os.path.isfile(site / f"{GUARD_MODULE}.pth"):
        return None
    from kernelctl.resources import kernelctl_guard as guard

    mount = kernel.base.mount if kernel.base else None
    roots = guard_roots([mount] if mount else [])
    return lambda entry: guard._belongs_to_base(guard._normal(entry), roots)


@lru_cache(maxsize=None)
def distributions(directory: str) -> dict:
    """{normalized name: version} of the packages installed in `directory`."""
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    found = {}
    for name in names:
        match = DIST_INFO.match(name)
        if match:
            found[re.sub(r"[-_.]+", "-", match["name"]).lower()] = match["version"]
    return found


