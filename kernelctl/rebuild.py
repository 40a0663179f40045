"""`kernelctl rebuild`: make a kernel's environment again, on its base or a new one.

The new venv is built beside the old one and its kernel is started before anything
is switched; then the kernel directory is swapped (same name, same display name, so
notebooks keep their kernel) and the old venv deleted. Any failure before the switch
leaves the old kernel as it was and no trace of the new one.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Optional, Tuple

from kernelctl.bases import Base, current_spec, exact_spec, resolve_base
from kernelctl.create import (
    CreateRequest,
    Progress,
    build_kernel,
    check_starts,
    free_path_beside,
)
from kernelctl.errors import KernelctlError, disk_errors
from kernelctl.kernelspec import carry_kernelspec_files, install_staged
from kernelctl.model import METADATA_KEY, KernelInfo, KernelSpec, Status, env_digest
from kernelctl.ownership import (
    check_only_kernelspec,
    check_venvs_may_go,
    retire_venv,
)
from kernelctl.proc import run
from kernelctl.record import read_record, write_record
from kernelctl.slurm import METADATA_KEY as SLURM_KEY
from kernelctl.slurm import SlurmRequest
from kernelctl.transaction import (
    Transaction,
    locks,
    stop_signals_raise,
    sweep_leftovers,
)
from kernelctl.venvs import own_distributions, requirement_name

@dataclass(frozen=True)
class RebuildRequest:
    name: str
    base: Optional[str] = None  # None: the kernel's own base (what the site has now)
    no_index: bool = False
    find_links: tuple = ()
    installer: str = "auto"
    delete_user_files: bool = False  # the old venv may go with files the user put there


@dataclass(frozen=True)
class Rebuilt:
    kernel: KernelInfo
    base_before: str
    packages: tuple  # reinstalled in the new venv
    from_base: tuple  # requested, but the new base already has them: not reinstalled


def rebuild(request: RebuildRequest, env: Mapping[str, str], home: Path,
            progress: Progress, notice: Progress) -> Rebuilt:
    from kernelctl.inventory import find_kernel

    kernel = find_kernel(request.name, env)
    old_venv = _rebuildable(kernel)
    binding = kernel.base
    assert binding is not None and kernel.spec is not None
    spec = request.base or same_base(kernel)
    if request.base is None and spec != exact_base(kernel):
        notice(f"the kernel's base {binding.label} is not here; rebuilding on what this "
               f"session has: --base {spec}")
    progress(f"Inspecting the base {spec}")
    base = resolve_base(spec, env)
    wanted, requirement_files = _requests(old_venv, notice)
    provided = _provided_by(base, env)
    keep = tuple(r for r in wanted if not _satisfied(r, provided))
    from_base = tuple(r for r in wanted if r not in keep)
    if from_base:
        notice("the new base already has " + ", ".join(
            f"{r} ({provided[requirement_name(r)]})" for r in from_base) + ": not reinstalled")
    sweep_leftovers(home)
    with disk_errors("rebuilding the kernel"), stop_signals_raise(), \
            locks(home, [kernel.name], [old_venv]), Transaction(home, [kernel.name]) as tx:
        kernel = _again_under_lock(kernel, env)
        old_venv = _rebuildable(kernel)
        check_only_kernelspec(kernel.resource_dir, "replace")
        check_venvs_may_go([old_venv], kernel.resource_dir, env, request.delete_user_files)
        new_venv = free_path_beside(old_venv)
        create = CreateRequest(base=base.spec, name=kernel.name,
                               display_name=chosen_display_name(kernel), venv=new_venv,
                               packages=keep,
                               requirement_files=requirement_files, no_index=request.no_index,
                               find_links=request.find_links, installer=request.installer,
                               slurm=slurm_request(kernel.spec))
        with locks(home, (), [new_venv]):
            staged, made = build_kernel(create, base, kernel.name, new_venv,
                                        kernel.resource_dir, env, progress, notice, tx)
        made = carry_user_changes(kernel, made, staged, notice)
        progress(f"Starting the new kernel {kernel.name} to check it")
        check_starts(staged, made, env)
        _remember(new_venv, from_base)
        progress(f"Switching {kernel.name} to the new environment")
        install_staged(staged, kernel.resource_dir, tx)
        kept = retire_venv(old_venv, kernel.resource_dir, kernel.name, tx, env,
                           request.delete_user_files)
        if kept:
            notice(kept)
    return Rebuilt(made, binding.label, keep, from_base)


def slurm_request(spec: Optional[KernelSpec]) -> Optional[SlurmRequest]:
    """What a Slurm kernel asks of Slurm: kept by a rebuild."""
    return SlurmRequest.from_metadata(spec.metadata.get(SLURM_KEY)) if spec else None


def chosen_display_name(kernel: KernelInfo) -> Optional[str]:
    """The display name to keep: the user's own; None for the one kernelctl wrote, which
    names the old base ("Python 3.12 (prgenv-gnu/24.11:v1)") and would go on naming it:
    the new base's name replaces it."""
    binding = kernel.base
    shown_name = re.sub(r" · Slurm (?:step|job)(?:: .*)?\Z", "", kernel.display_name)
    written = re.fullmatch(r"Python \d+\.\d+ \((.+)\)(?: · (.+))?", shown_name)
    if binding is None or written is None or written.group(2) not in (None, kernel.name):
        return kernel.display_name
    shown = written.group(1)
    named = {binding.label, getattr(binding, "python", None), getattr(binding, "base_env", None)}
    return None if shown in named else kernel.display_name


# What the kernel.json of a kernelctl Python kernel holds beside its launcher.
KERNEL_ARGV_TAIL = ("-f", "{connection_file}")


def carry_user_changes(old: KernelInfo, made: KernelInfo, staged: Path,
                       notice: Progress) -> KernelInfo:
    """The new kernel.json with what the user changed in the old one: env entries
    (templates kept as templates), extra argv options, metadata and other keys, logos.
    What cannot be carried is said before the switch."""
    assert old.spec is not None and made.spec is not None
    old_spec, new_spec = old.spec, made.spec
    env, carried, lost = _carried_env(old_spec, new_spec, str(old.venv), str(made.venv))
    argv = list(new_spec.argv)
    if tuple(old_spec.argv[2:4]) == KERNEL_ARGV_TAIL and len(old_spec.argv) > 4:
        argv += old_spec.argv[4:]
        carried.append("argv " + " ".join(old_spec.argv[4:]))
    elif tuple(old_spec.argv[2:4]) != KERNEL_ARGV_TAIL:
        lost.append(f"argv (it was edited: {' '.join(old_spec.argv)})")
    metadata = {**{k: v for k, v in old_spec.metadata.items() if k != METADATA_KEY},
                **new_spec.metadata}
    other = {**old_spec.other, **new_spec.other}
    spec = replace(new_spec, argv=tuple(argv), env=env, metadata=metadata, other=other)
    (staged / "kernel.json").write_text(spec.to_text())
    carry_kernelspec_files(old.resource_dir, staged)
    if carried:
        notice(f"kept from the old kernel.json: {', '.join(carried)}")
    if lost:
        notice("not carried into the new kernel (kernelctl sets these for the new "
               f"environment; edit kernel.json again if you need them): {'; '.join(lost)}")
    return replace(made, spec=spec)


def _carried_env(old: KernelSpec, new: KernelSpec, old_venv: str,
                 new_venv: str) -> Tuple[dict, list, list]:
    """(the env, the user's entries carried, the user's entries that could not be)."""
    written = _written_digests(old)
    env, carried, lost = dict(new.env), [], []
    for key, stored in old.env.items():
        if written is None:  # made before kernelctl recorded what it wrote
            users = key not in new.env and old_venv not in stored
        else:
            users = written.get(key) != env_digest(stored)
        if not users:
            continue
        if key in new.env and new.env[key] != stored.replace(old_venv, new_venv):
            lost.append(f"{key}={stored}")
        else:
            env[key] = stored
            carried.append(key)
    return env, carried, lost


def _written_digests(spec: KernelSpec) -> Optional[dict]:
    binding = spec.binding
    if binding is None or binding.env_written is None:
        return None
    return dict(item.split(":", 1) for item in binding.env_written.split(",") if ":" in item)


def _again_under_lock(kernel: KernelInfo, env: Mapping[str, str]) -> KernelInfo:
    """The kernel as it is now that the lock is held (what was read before may be stale)."""
    from kernelctl.inventory import find_kernels

    for now in find_kernels(env, include_shadowed=True):
        if now.resource_dir == kernel.resource_dir:
            return now
    raise KernelctlError(f"the kernel '{kernel.name}' was removed meanwhile; nothing was "
                         "changed", "kernelctl list shows the kernels there are now.")


def _remember(venv: Path, from_base: tuple) -> None:
    """The record keeps every request, also those the base meets now: the next base
    may not."""
    record = read_record(venv)
    if record is not None and from_base:
        write_record(venv, replace(record, packages=tuple(dict.fromkeys(
            [*record.packages, *from_base]))))


def kernels_to_rebuild(names: list, stale: bool, env: Mapping[str, str]) -> list:
    """The names given, then (with --stale) every kernelctl Python kernel that cannot
    start here: base or venv gone, or mismatched."""
    from kernelctl.inventory import find_kernels

    chosen = list(names)
    if stale:
        found = [k.name for k in find_kernels(env) if k.managed and k.base is not None
                 and not k.base.adopted and k.language == "python"
                 and k.status in (Status.MISMATCH, Status.BROKEN)]
        if not found and not names:
            raise KernelctlError("no kernelctl kernel is stale here",
                                 "`kernelctl list` shows them all.")
        chosen += found
    if not chosen:
        raise KernelctlError("no kernel given", "e.g. kernelctl rebuild myenv, or --stale for "
                             "all whose base or environment is gone")
    return list(dict.fromkeys(chosen))


def exact_base(kernel: KernelInfo) -> str:
    """The --base that names the kernel's base exactly (pinned versions)."""
    assert kernel.base is not None
    return exact_spec(kernel.base)


def same_base(kernel: KernelInfo) -> str:
    """The kernel's base as this session has it: exactly when the kernel is fine here,
    else the same base at what the site has now (its kind says what that is)."""
    assert kernel.base is not None
    return exact_spec(kernel.base) if kernel.status is Status.OK else current_spec(kernel.base)


def rebuild_command(kernel: KernelInfo, env: Mapping[str, str]) -> Optional[str]:
    """The exact `kernelctl rebuild` that makes a stale kernel work in this session, or
    None when it cannot be rebuilt (not kernelctl's, not Python)."""
    try:
        _rebuildable(kernel)
    except KernelctlError:
        return None
    spec = same_base(kernel)
    try:
        base = resolve_base(spec, env)
    except KernelctlError:
        return f"kernelctl rebuild {kernel.name} --base BASE (a base this session has)"
    return f"kernelctl rebuild {kernel.name} --base {base.spec}"


def _rebuildable(kernel: KernelInfo) -> Path:
    binding = kernel.base
    if not kernel.managed or binding is None or kernel.spec is None:
        raise KernelctlError(f"the kernel '{kernel.name}' was not made by kernelctl",
                             f"Let kernelctl take it over first: kernelctl adopt {kernel.name}")
    if binding.adopted:
        raise KernelctlError(
            f"the kernel '{kernel.name}' uses an environment kernelctl did not make",
            f"Rebuild it with its own tools, then `kernelctl adopt {kernel.name}` again.")
    if kernel.language != "python" or kernel.venv is None:
        raise KernelctlError(
            f"the kernel '{kernel.name}' is not a Python kernel with a kernelctl environment",
            "`kernelctl julia --force` remakes Julia kernels.")
    return Path(kernel.venv)


def _requests(venv: Path, notice: Progress) -> tuple:
    """(requirements, requirement files) the user asked for, from the venv's record;
    without a record, the distributions the venv itself holds (never the base's)."""
    record = read_record(venv) if os.path.isdir(venv) else None
    if record is not None:
        files = tuple(f for f in record.requirement_files if os.path.isfile(f))
        lost = [f for f in record.requirement_files if f not in files]
        if lost:
            notice(f"requirement files no longer there, skipped: {', '.join(lost)}")
        return tuple(p for p in record.packages if requirement_name(p) != "ipykernel"), files
    held = _venv_distributions(venv)
    if held:
        notice(f"{venv} has no kernelctl record: reinstalling what it holds itself "
               f"({', '.join(held)})")
    else:
        notice(f"{venv} is gone: the packages added to it are not known; rebuilding "
               "with the base's packages only")
    return held, ()


def _venv_distributions(venv: Path) -> tuple:
    """The top-level distributions installed in the venv itself (what no other one there
    requires), by name, without pip's own."""
    found = own_distributions(venv)
    required = {requirement_name(line) for dist in found.values() for line in dist.requires or []}
    plumbing = {"pip", "setuptools", "wheel", "ipykernel"}
    return tuple(sorted(n for n in found if n not in required and n not in plumbing))


PROVIDED = """
import importlib.metadata as m, json
print(json.dumps({d.metadata["Name"]: d.version for d in m.distributions()
                  if d.metadata["Name"]}))
"""


def _provided_by(base: Base, env: Mapping[str, str]) -> dict:
    """The distributions the base's Python sees (its site-packages, view, layers)."""
    active = dict(base.activated(env))
    if base.pythonpath or base.layers:
        active["PYTHONPATH"] = os.pathsep.join([*base.pythonpath, *base.layers])
    try:
        listed = json.loads(run([base.python, "-c", PROVIDED], env=active,
                                what=f"listing the packages of {base.python}", timeout=120))
    except (KernelctlError, ValueError):
        return {}
    return {requirement_name(name): version for name, version in listed.items()}


def _satisfied(requirement: str, provided: dict) -> bool:
    """Whether the base has a version that meets `requirement` (URLs and files never)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        return False
    version = provided.get(requirement_name(requirement))
    return (version is not None and not parsed.url
            and parsed.specifier.contains(version, prereleases=True))
