"""`kernelctl doctor`: find, explain and fix what breaks Jupyter kernels on HPC.

Checks are small functions of a Context that yield CheckResults (id, status, message,
hint, and optionally a safe Fix); CHECKS lists them in report order. See
docs/troubleshooting.md for every check and the messages users actually see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Optional

from kernelctl.doctor import deep, kernels, logs, pitfalls, session, slurm, storage
from kernelctl.doctor.report import CheckResult, Context
from kernelctl.errors import KernelctlError
from kernelctl.inventory import Session

CHECKS = (
    session.session_base, session.kernel_dirs_writable,
    kernels.kernel_health, kernels.shadowed_kernels, kernels.env_block,
    kernels.package_shadowing, kernels.ipykernel_importable,
    storage.quota, storage.scratch_link,
    logs.server_log,
    pitfalls.torchrun, pitfalls.rank_variables, pitfalls.gpu_holders,
    deep.deep, slurm.srun_probe, slurm.slurm_requests,
)
__all__ = ["CHECKS", "CheckResult", "Context", "diagnose", "examine", "failed"]


def examine(names: list, env: Mapping[str, str], deep: bool, timeout: float,
            approve: Optional[Callable[[list], bool]], home: Optional[Path] = None,
            srun: bool = False) -> list:
    """Diagnose; with `approve`, offer the safe fixes found, apply the approved ones, and
    diagnose again so the report shows what is left."""
    results = diagnose(names, env, deep, timeout, home, srun)
    if approve is None:
        return results
    fixes = [result.fix for result in results if result.fix]
    if not approve(fixes):
        return results
    for fix in fixes:
        try:
            fix.apply()
        except OSError as exc:
            raise KernelctlError(f"could not {fix.description}: {exc.strerror}",
                                 "Check the permissions and free space there, then run "
                                 "kernelctl doctor --fix again.") from exc
    return diagnose(names, env, deep, timeout, home, srun)


def diagnose(names: list, env: Mapping[str, str], deep: bool = False,
             timeout: float = 60.0, home: Optional[Path] = None, srun: bool = False) -> list:
    from kernelctl.inventory import find_kernel, find_kernels, is_shadowed

    everything = find_kernels(env, include_shadowed=True)
    if names:
        chosen = list({k.resource_dir: k for k in (find_kernel(n, env) for n in names)}.values())
    else:
        chosen = [k for k in everything if k.visible or not is_shadowed(k)]
    wanted = {k.name for k in chosen}
    shadowed = tuple(k for k in everything if is_shadowed(k) and k.name in wanted)
    context = Context(env, Session.current(env), tuple(chosen), shadowed, deep, timeout, home,
                      srun)
    return [result for function in CHECKS for result in function(context)]


def failed(results: list) -> bool:
    return any(result.status == "fail" for result in results)
