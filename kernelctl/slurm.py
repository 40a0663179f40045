"""Slurm kernels: what a kernel asks of Slurm, checked before anything is made, and the
kernel's live jobs or steps as its relay records them (docs/slurm-kernels.md)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional

from kernelctl import proc
from kernelctl.errors import CommandFailed, KernelctlError
from kernelctl.model import SLURM_KEY
from kernelctl.paths import kernelctl_home

if TYPE_CHECKING:
    from kernelctl.model import KernelInfo

MODES = ("step", "job")
# kernel.json's metadata key holding a Slurm kernel's request; the relay reads it.
METADATA_KEY = SLURM_KEY
# Slurm's --time forms: MIN, MIN:SEC, H:MIN:SEC, D-H, D-H:MIN, D-H:MIN:SEC.
TIME_FORMS = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?\Z")
MEMORY = re.compile(r"[1-9]\d*[KMGT]?\Z|0\Z", re.IGNORECASE)
GPUS = re.compile(r"(?:[A-Za-z0-9_.-]+:)?[1-9]\d*\Z")
NAME_VALUE = re.compile(r"[A-Za-z0-9_.,:|&!()\[\]*@+-]+\Z")
# What the relay itself sets on the job: a --slurm-arg may not take these over.
RELAY_OWNS = ("--export", "--output", "-o", "--error", "-e", "--parsable", "--wrap",
              "--job-name", "-J", "--jobid", "--nodelist", "-w", "--ntasks", "-n",
              "--nodes", "-N", "--overlap")
TEST_ONLY_TIMEOUT = 60.0


@dataclass(frozen=True)
class SlurmRequest:
    mode: str
    cpus: Optional[int] = None
    mem: Optional[str] = None
    gpus: Optional[str] = None
    time: Optional[str] = None
    partition: Optional[str] = None
    account: Optional[str] = None
    constraint: Optional[str] = None
    args: tuple = field(default_factory=tuple)
    start_timeout: Optional[int] = None

    def checked(self) -> "SlurmRequest":
        """The request, or a KernelctlError naming the first bad value."""
        if self.mode not in MODES:
            raise KernelctlError(f"--slurm {self.mode!r} is not a Slurm mode",
                                 "Use --slurm step (a job step of the server's allocation) "
                                 "or --slurm job (a job of its own).")
        if self.cpus is not None and self.cpus < 1:
            raise KernelctlError(f"--cpus {self.cpus}: a kernel needs at least 1 CPU",
                                 "Pass --cpus 1 or more.")
        if self.mem is not None and not MEMORY.match(self.mem):
            raise KernelctlError(f"--mem {self.mem!r} is not a Slurm memory size",
                                 "Use a number with an optional unit K, M, G or T: --mem 8G.")
        if self.gpus is not None and not GPUS.match(self.gpus):
            raise KernelctlError(f"--gpus {self.gpus!r} is not a GPU count",
                                 "Use a count, or TYPE:COUNT: --gpus 1, --gpus a100:2.")
        if self.time is not None:
            minutes(self.time)
        for option, value in (("--partition", self.partition), ("--account", self.account),
                              ("--constraint", self.constraint)):
            if value is not None and not NAME_VALUE.match(value):
                raise KernelctlError(f"{option} {value!r} has characters Slurm does not take "
                                     "there", f"Give the {option[2:]} as Slurm names it "
                                     "(sinfo, sacctmgr show assoc user=$USER).")
        for arg in self.args:
            _check_passed_argument(arg)
        if self.start_timeout is not None and self.start_timeout < 1:
            raise KernelctlError(f"--start-timeout {self.start_timeout}: give a number of "
                                 "seconds, 1 or more", "e.g. --start-timeout 600")
        return self

    def options(self) -> list:
        """The resource options, as the relay passes them (in step mode, partition,
        account and constraint are the allocation's, not the step's)."""
        options = []
        if self.cpus:
            options.append(f"--cpus-per-task={self.cpus}")
        if self.mem:
            options.append(f"--mem={self.mem}")
        if self.gpus:
            options.append(f"--gres=gpu:{self.gpus}")
        if self.time:
            options.append(f"--time={self.time}")
        if self.mode == "job":
            options += [f"--{key}={value}" for key, value in (
                ("partition", self.partition), ("account", self.account),
                ("constraint", self.constraint)) if value]
        return options + list(self.args)

    def summary(self) -> str:
        """What the Launcher shows: "Slurm job: 4 CPUs, 1 GPU, 1 h"."""
        parts = []
        if self.cpus:
            parts.append(f"{self.cpus} CPU{'s' if self.cpus != 1 else ''}")
        if self.gpus:
            count = int(self.gpus.rsplit(":", 1)[-1])
            kind = self.gpus.rsplit(":", 1)[0] + " " if ":" in self.gpus else ""
            parts.append(f"{count} {kind}GPU{'s' if count != 1 else ''}")
        if self.mem:
            parts.append(f"{self.mem.upper()}B" if self.mem[-1].isalpha() else f"{self.mem} MB")
        if self.time:
            parts.append(duration(minutes(self.time)))
        if self.partition and self.mode == "job":
            parts.append(self.partition)
        return f"Slurm {self.mode}" + (f": {', '.join(parts)}" if parts else "")

    def to_metadata(self) -> dict:
        """As kernel.json keeps it; `options` is what the relay passes to srun/sbatch."""
        data = {key: value for key, value in asdict(self).items()
                if value not in (None, (), [])}
        if self.args:
            data["args"] = list(self.args)
        data["options"] = self.options()
        return data

    @classmethod
    def from_metadata(cls, data: object) -> Optional["SlurmRequest"]:
        if not isinstance(data, dict) or data.get("mode") not in MODES:
            return None
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        known["args"] = tuple(str(a) for a in known.get("args", ()))
        return cls(**known)

    def with_changes(self, **changes: Any) -> "SlurmRequest":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def minutes(value: str) -> int:
    """Minutes in a Slurm --time value, or a KernelctlError."""
    if value.upper() in ("INFINITE", "UNLIMITED"):
        return 0
    match = TIME_FORMS.match(value)
    if not match:
        raise KernelctlError(f"--time {value!r} is not a Slurm time limit",
                             "Use MINUTES, HH:MM:SS or DAYS-HH[:MM[:SS]]: --time 60, "
                             "--time 1:00:00, --time 1-12.")
    days, first, second, third = match.groups()
    if days is not None:  # D-H[:M[:S]]
        return int(days) * 1440 + int(first) * 60 + int(second or 0) + (1 if third else 0)
    if third is not None:  # H:M:S
        return int(first) * 60 + int(second) + (1 if int(third) else 0)
    return int(first) + (1 if second and int(second) else 0)  # M or M:S


def duration(total_minutes: int) -> str:
    if total_minutes == 0:
        return "no time limit"
    days, rest = divmod(total_minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "",
             f"{mins} min" if mins else ""]
    return " ".join(p for p in parts if p)


def _check_passed_argument(arg: str) -> None:
    if not arg.startswith("-") or any(not ch.isprintable() for ch in arg):
        raise KernelctlError(f"--slurm-arg {arg!r} is not a Slurm option",
                             "Pass each option whole, with its value: "
                             "--slurm-arg=--qos=debug.")
    option = arg.split("=", 1)[0]
    if option in RELAY_OWNS:
        raise KernelctlError(f"--slurm-arg {arg}: kernelctl sets {option} itself for a "
                             "Slurm kernel", "Leave it out; the resource options "
                             "(--cpus, --mem, --gpus, --time, --partition) are yours.")


def check_accepted(request: SlurmRequest, env: Mapping[str, str]) -> None:
    """Ask Slurm whether it would run such a job (sbatch --test-only): an unknown
    partition or account, more CPUs than a node has, a time over the partition's limit
    are refused here, in one line, before anything is made."""
    if not shutil.which("sbatch", path=env.get("PATH")):
        raise KernelctlError("Slurm kernels need Slurm, and sbatch is not on PATH here",
                             "Run this on a login or compute node of your cluster, or "
                             "leave out --slurm.")
    problem = test_only(request, env)
    if problem:
        raise KernelctlError(f"Slurm would not run this kernel: {problem}",
                             "Check the partitions and limits with sinfo, your accounts "
                             "with sacctmgr show assoc user=$USER (docs/slurm-kernels.md).")
    if request.mode == "step" and request.cpus and env.get("SLURM_CPUS_ON_NODE", "").isdigit() \
            and request.cpus > int(env["SLURM_CPUS_ON_NODE"]):
        raise KernelctlError(
            f"--cpus {request.cpus}: this allocation has {env['SLURM_CPUS_ON_NODE']} CPUs "
            "on this node, and a step cannot have more", "Ask for fewer, or use --slurm job.")


def test_only(request: SlurmRequest, env: Mapping[str, str]) -> str:
    """What sbatch --test-only says is wrong with the request; "" when it would run."""
    script = resources.files("kernelctl").joinpath("resources", "test_only.sh")
    job_request = replace(request, mode="job") if request.mode == "step" else request
    quiet = {k: v for k, v in env.items() if not k.startswith(("SBATCH_", "SLURM_EXPORT"))}
    try:
        done = proc.completed(["sbatch", "--test-only", *job_request.options(), str(script)],
                              env=quiet, what="sbatch --test-only", timeout=TEST_ONLY_TIMEOUT)
    except CommandFailed as exc:
        return exc.message
    if done.returncode == 0:
        return ""
    lines = [line.replace("sbatch: error: ", "").strip()
             for line in done.stderr.splitlines() if line.strip()]
    wanted = [line for line in lines if "Batch job submission failed" not in line] or lines
    return "; ".join(dict.fromkeys(wanted)) or f"sbatch exited with status {done.returncode}"


# ---------------------------------------------------------------- live runs

def runs_dir(env: Mapping[str, str]) -> Path:
    """Where relays record their runs (kernelctl-slurm.py's runs_dir)."""
    return kernelctl_home(env) / "slurm-runs"


def with_runs(kernel: "KernelInfo", env: Mapping[str, str]) -> "KernelInfo":
    """The kernel with its live runs when it is a Slurm kernel."""
    if kernel.slurm is None:
        return kernel
    return replace(kernel, slurm_runs=tuple(live_runs(kernel.name, env)))


def live_runs(kernel_name: str, env: Mapping[str, str]) -> list:
    """The kernel's running relays: {job, step, state, reason, node, time_left, mode},
    one per open notebook."""
    folder = runs_dir(env) / kernel_name
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return []
    host = socket.gethostname().split(".")[0]
    runs = []
    for entry in entries:
        state = _read(folder / entry / "state.json")
        if not state or state.get("phase") == "ended" and state.get("state") == "ENDED":
            continue
        if not _relay_alive(state, host):
            continue
        run = {key: state.get(key) for key in (
            "mode", "job", "step", "phase", "state", "reason", "node", "time_left")}
        runs.append({**run, "summary": describe_run(run)})
    return runs


def _relay_alive(state: dict, host: str) -> bool:
    pid = state.get("relay_pid")
    if state.get("host") != host:  # another node: trust a recent record
        return time.time() - float(state.get("updated") or 0) < 60
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _read(path: Path) -> Optional[dict]:
    try:
        with open(path) as source:
            data = json.load(source)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe_run(run: dict) -> str:
    """One line: "job 12 RUNNING on node1, 58:12 left" / "job 13 PENDING (Resources)"."""
    what = f"step {run['job']}.{run['step']}" if run.get("mode") == "step" and run.get("step") \
        else f"job {run.get('job') or '(not submitted)'}"
    text = f"{what} {run.get('state') or run.get('phase')}"
    if run.get("state") == "PENDING" and run.get("reason"):
        text += f" ({run['reason']})"
    if run.get("node"):
        text += f" on {run['node']}"
    if run.get("time_left") and run.get("time_left") not in ("INVALID", "NOT_SET"):
        text += f", {run['time_left']} left"
    return text


def summary_of(wanted: dict) -> str:
    """The summary of a request as kernel.json keeps it."""
    request = SlurmRequest.from_metadata(wanted)
    return request.summary() if request is not None else "Slurm (an unknown mode)"
