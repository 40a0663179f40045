"""`doctor --srun`: does each kernel's environment survive into an srun step?

Inside an allocation, the same probe runs through the kernel's launcher here and in a
one-task srun step; any difference (another Python, a lost module or variable, the
base's copy of a package winning) is what scripts and engines on the allocation hit.
"""

from __future__ import annotations

import json
import shutil
from typing import Iterator

from kernelctl.doctor.deep import ORIGIN
from kernelctl.doctor.report import CheckResult, Context, kernel_result
from kernelctl.errors import CommandFailed, KernelctlError
from kernelctl.proc import completed
from kernelctl.model import KernelInfo, Status

PROBE = ORIGIN + """
print(json.dumps({"executable": sys.executable, "prefix": sys.prefix,
                  "ipykernel": _kernelctl_origin("ipykernel"),
                  **{var: os.environ.get(var) for var in ("VIRTUAL_ENV", "LOADEDMODULES",
                     "CONDA_PREFIX", "UENV_VIEW", "EBPYTHONPREFIXES")}}))
"""


def srun_probe(context: Context) -> Iterator[CheckResult]:
    if not context.srun:
        return
    srun = shutil.which("srun", path=context.env.get("PATH"))
    if not srun:
        yield CheckResult("slurm.srun", "fail", "srun is not on PATH",
                          "doctor --srun is for a system with Slurm.")
        return
    if not context.env.get("SLURM_JOB_ID"):
        yield CheckResult("slurm.srun", "warn", "not inside a Slurm allocation (no "
                          "SLURM_JOB_ID): the srun probe was not run",
                          "Run it in a JupyterLab terminal on a compute node, or under salloc.")
        return
    for kernel in context.kernels:
        if kernel.managed and kernel.status is Status.OK:
            yield _compare(kernel, srun, context)


def _compare(kernel: KernelInfo, srun: str, context: Context) -> CheckResult:
    from kernelctl.runner import kernel_command

    try:
        target = kernel_command(kernel.name, context.env)
    except KernelctlError as exc:
        return kernel_result(kernel, "slurm.srun", "warn", f"not probed: {exc.message}", exc.hint)
    command = target.argv(["python", "-c", PROBE], context.env)
    env = target.env(context.env)
    try:
        here = _probe(command, env, context.timeout)
        there = _probe([srun, "-n", "1", "--overlap", *command], env, context.timeout)
    except ValueError as exc:
        return kernel_result(kernel, "slurm.srun", "fail",
                             f"the probe of {kernel.name} failed: {exc}",
                             "Try it by hand: kernelctl run " + kernel.name +
                             " -- srun -n 1 python -c 'import sys; print(sys.prefix)'")
    lost = {key: (here[key], there.get(key)) for key in here if there.get(key) != here[key]}
    if lost:
        differences = "; ".join(f"{key} is {was!r} here but {now!r} in srun"
                                for key, (was, now) in lost.items())
        return kernel_result(kernel, "slurm.srun", "fail",
                             f"{kernel.name}'s environment changes under srun: {differences}",
                             "Start steps through the kernel's launcher (kernelctl run "
                             f"{kernel.name} -- CMD, kernelctl submit, kernelctl engines), "
                             "and keep srun's default --export=ALL.")
    return kernel_result(kernel, "slurm.srun", "ok",
                         f"{kernel.name}'s environment is the same under srun "
                         f"(Python {here['executable']})")


def _probe(command: list, env: dict, timeout: float) -> dict:
    try:
        done = completed(command, env=env, what="the environment probe", timeout=timeout)
    except CommandFailed as exc:
        raise ValueError(exc.message) from exc
    if done.returncode != 0:
        raise ValueError(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                         else f"exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def slurm_requests(context: Context) -> Iterator[CheckResult]:
    """Would Slurm still run each Slurm kernel's job (sbatch --test-only)? A partition
    renamed, an account expired, a limit lowered: said here, before a notebook waits."""
    from kernelctl.slurm import SlurmRequest, test_only

    for kernel in context.kernels:
        request = SlurmRequest.from_metadata(kernel.slurm)
        if request is None:
            continue
        if not shutil.which("sbatch", path=context.env.get("PATH")):
            yield kernel_result(kernel, "slurm.request", "warn",
                                f"{kernel.name} is a Slurm kernel, and sbatch is not on PATH "
                                "here: it can only start where Slurm is",
                                "Use it from JupyterLab on your cluster.")
            continue
        problem = test_only(request, context.env)
        if problem:
            yield kernel_result(kernel, "slurm.request", "fail",
                                f"Slurm would not run {kernel.name}'s {request.mode}: {problem}",
                                f"Ask for what Slurm accepts: kernelctl slurm {kernel.name} "
                                "--partition ... --time ... (sinfo shows the partitions).")
        else:
            yield kernel_result(kernel, "slurm.request", "ok",
                                f"Slurm accepts {kernel.name}'s request ({request.summary()})")
