"""Every command once, as the front ends call it: arguments in, a typed result out
(kernelctl.results). The CLI prints what these return; the JupyterLab panel's server
serves the same results. Nothing here prints or asks: progress and notices go to the
callbacks given, questions are the caller's (remove's plan, doctor's approval).

Each function imports its command when called, so `kernelctl --help` and `list` load
only what they use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Optional, Sequence


if TYPE_CHECKING:
    from kernelctl.adopt import AdoptRequest
    from kernelctl.create import CreateRequest
    from kernelctl.julia import JuliaRequest
    from kernelctl.rebuild import RebuildRequest, Rebuilt
    from kernelctl.remove import RemovalOptions
    from kernelctl.results import (
        Created,
        DoctorReport,
        EnginesStarted,
        EnginesStopped,
        Failure,
        Installed,
        JuliaKernels,
        KernelDetail,
        Kernels,
        RebuildReport,
        RecipeDetail,
        Recipes,
        RemovalPlan,
        Removed,
        Result,
        Submitted,
    )
    from kernelctl.submit import SubmitRequest

Say = Callable[[str], None]


def _quiet(line: str) -> None:
    pass


def list_kernels(env: Mapping[str, str], include_shadowed: bool = False) -> "Kernels":
    from kernelctl.inventory import find_kernels
    from kernelctl.results import Kernels

    return Kernels(tuple(find_kernels(env, include_shadowed=include_shadowed)))


def show(name: str, env: Mapping[str, str]) -> "KernelDetail":
    from kernelctl.inventory import find_kernel, kernel_record
    from kernelctl.results import KernelDetail

    kernel = find_kernel(name, env)
    return KernelDetail(kernel, kernel_record(kernel))


def slurm(name: str, mode: Optional[str], changes: dict, env: Mapping[str, str],
          home: Path) -> "KernelDetail":
    """A kernel made (or no longer) a Slurm kernel; its environment untouched."""
    from kernelctl.inventory import kernel_record
    from kernelctl.results import KernelDetail
    from kernelctl.slurm_kernels import change_slurm

    kernel = change_slurm(name, mode, changes, env, home)
    return KernelDetail(kernel, kernel_record(kernel))


def create(request: "CreateRequest", env: Mapping[str, str], home: Path,
           progress: Say = _quiet, notice: Say = _quiet,
           definition: Optional[Path] = None) -> "Created":
    """A new kernel; from a definition file (`--from`) when one is given."""
    from kernelctl.results import Created

    if definition is not None:
        from kernelctl.definition import create_from

        return Created(create_from(definition, request, env, home, progress, notice))
    from kernelctl.create import create as create_kernel

    return Created(create_kernel(request, env, home, progress, notice))


def adopt(request: "AdoptRequest", env: Mapping[str, str], home: Path,
          progress: Say = _quiet) -> "Created":
    from kernelctl.adopt import adopt as adopt_environment
    from kernelctl.results import Created

    return Created(adopt_environment(request, env, home, progress))


def install(name: str, packages: Sequence[str], requirements: Sequence[Path], no_index: bool,
            find_links: Sequence[str], env: Mapping[str, str], home: Path,
            progress: Say = _quiet, installer: str = "auto") -> "Installed":
    from kernelctl.install import install as install_into
    from kernelctl.results import Installed

    kernel = install_into(name, list(packages), list(requirements), no_index, list(find_links),
                          env, home, progress, installer)
    return Installed(kernel, (*packages, *(f"-r {r}" for r in requirements)))


def julia(request: "JuliaRequest", env: Mapping[str, str], home: Path,
          progress: Say = _quiet) -> "JuliaKernels":
    from kernelctl.julia import julia_kernels
    from kernelctl.results import JuliaKernels

    return JuliaKernels(tuple(julia_kernels(request, env, home, progress)))


def plan_removal(names: Sequence[str], broken: bool, options: "RemovalOptions",
                 env: Mapping[str, str], dry_run: bool = False) -> "RemovalPlan":
    """What remove would delete, and each kernel that must stay, with why."""
    from kernelctl.remove import plan_removals
    from kernelctl.results import RemovalPlan

    removals, refused = plan_removals(names, broken, options, env)
    return RemovalPlan(tuple(removals), dry_run, tuple(refused))


def remove(plan: "RemovalPlan", options: "RemovalOptions", env: Mapping[str, str],
           home: Path) -> "Removed":
    """The plan carried out; what its kernels' locks now refuse is a failure, not lost."""
    from kernelctl.remove import apply_removals
    from kernelctl.results import Removed

    done, failed = apply_removals(plan.removals, home, env, options)
    return Removed(tuple(done), (*plan.failed, *failed))


def rebuild(names: Sequence[str], stale: bool, request: "RebuildRequest",
            env: Mapping[str, str], home: Path, progress: Say = _quiet, notice: Say = _quiet,
            each: Callable[["Result"], None] = lambda result: None,
            failure: Callable[["Failure"], None] = lambda failed: None) -> "RebuildReport":
    """Rebuild each kernel in turn; one kernel's refusal does not stop the others (it is
    a Failure in the report, and `failure` hears of it at once, as `each` hears of each
    kernel rebuilt). An interruption stops the run, and says what was already done."""
    from dataclasses import replace

    from kernelctl.rebuild import kernels_to_rebuild
    from kernelctl.rebuild import rebuild as rebuild_kernel
    from kernelctl.results import RebuildReport, RebuiltOne, attempt_each

    def one(name: str) -> "Rebuilt":
        rebuilt = rebuild_kernel(replace(request, name=name), env, home, progress, notice)
        each(RebuiltOne(rebuilt))
        return rebuilt

    done, failed = attempt_each(kernels_to_rebuild(list(names), stale, env), one,
                                str, "rebuilt", failure)
    return RebuildReport(tuple(done), tuple(failed))


def doctor(names: Sequence[str], env: Mapping[str, str], deep: bool = False,
           timeout: float = 60.0, approve: Optional[Callable[[list], bool]] = None,
           home: Optional[Path] = None, srun: bool = False) -> "DoctorReport":
    """Every check's finding; with `approve`, the safe repairs it approves are applied
    and the report is what is left."""
    from kernelctl.doctor import examine
    from kernelctl.results import DoctorReport

    return DoctorReport(tuple(examine(list(names), env, deep, timeout, approve, home, srun)))


def submit(request: "SubmitRequest", env: Mapping[str, str], home: Path,
           notice: Say = _quiet) -> "Submitted":
    from kernelctl.results import Submitted
    from kernelctl.submit import submit as submit_job

    return Submitted(submit_job(request, env, home, notice), request.dry_run)


def start_engines(name: str, n: int, srun_args: Sequence[str], env: Mapping[str, str],
                  timeout: float) -> "EnginesStarted":
    from kernelctl import engines
    from kernelctl.results import EnginesStarted

    return EnginesStarted(engines.start(name, n, list(srun_args), env, timeout))


def stop_engines(name: str, env: Mapping[str, str]) -> "EnginesStopped":
    from kernelctl import engines
    from kernelctl.results import EnginesStopped

    return EnginesStopped(name, engines.stop(name, env))


def recipes(env: Mapping[str, str]) -> "Recipes":
    from kernelctl.bases.catalogue import catalogue
    from kernelctl.results import Recipes

    return Recipes(tuple(catalogue(env)))


def recipe(name: str, env: Mapping[str, str]) -> "RecipeDetail":
    from kernelctl.bases.catalogue import catalogue
    from kernelctl.results import RecipeDetail

    return RecipeDetail(catalogue(env, [name])[0])
