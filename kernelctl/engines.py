"""`kernelctl engines`: ipyparallel engines on Slurm, in exactly a kernel's environment.

What CSCS's ipcmagic (`%ipcluster start -n N`) does, without its pitfall: ipcmagic
starts `ipengine` by bare name through PATH, so engines may run another env's Python.
Here the controller runs on this node and `srun` starts the engines, both through the
kernel's own launcher (runner.RUN_FLAG): the engines' sys.prefix, packages, modules and
uenv are the kernel's. The notebook connects with ipp.Client(profile="kernelctl-NAME").
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from kernelctl.errors import CommandFailed, KernelctlError
from kernelctl.kernelspec import check_kernel_name
from kernelctl.proc import completed, spawn_detached
from kernelctl.runner import KernelCommand, kernel_command

STATE = "kernelctl-engines.json"
CONTROLLER_TIMEOUT = 60.0
IMPORT_TIMEOUT = 120.0  # a cold import from a parallel filesystem


@dataclass(frozen=True)
class Engines:
    kernel: str
    profile: str
    profile_dir: Path
    n: int
    srun: tuple  # the srun command line used

    def to_json(self) -> dict:
        return {"kernel": self.kernel, "profile": self.profile,
                "profile_dir": str(self.profile_dir), "engines": self.n,
                "srun": list(self.srun),
                "client": f'ipp.Client(profile="{self.profile}")'}


def profile_dir(kernel: str, env: Mapping[str, str]) -> Path:
    ipython = env.get("IPYTHONDIR") or os.path.join(env.get("HOME") or os.path.expanduser("~"),
                                                     ".ipython")
    return Path(os.path.abspath(ipython)) / f"profile_kernelctl-{kernel}"


def start(name: str, n: int, srun_args: Sequence[str], env: Mapping[str, str],
          timeout: float) -> Engines:
    if n < 1:
        raise KernelctlError(f"-n must be at least 1 (got {n})", "e.g. kernelctl engines NAME -n 4")
    srun = shutil.which("srun", path=env.get("PATH"))
    if not srun:
        raise KernelctlError("srun is not on PATH: engines are started with Slurm",
                             "Run this on a system with Slurm, inside your allocation.")
    target = kernel_command(name, env)
    _check_ipyparallel(target, env)
    directory = profile_dir(target.kernel.name, env)
    if _running(directory):
        raise KernelctlError(f"engines for the kernel '{target.kernel.name}' are already running",
                             f"Stop them first: kernelctl engines {target.kernel.name} --stop")
    (directory / "log").mkdir(parents=True, exist_ok=True)
    (directory / "security").mkdir(exist_ok=True)
    for old in (directory / "security").glob("ipcontroller-*.json"):
        old.unlink()
    python = str(target.kernel.venv / "bin" / "python") if target.kernel.venv else "python"
    run_env = target.env(env)
    controller = spawn_detached(target.argv([python, "-m", "ipyparallel.controller",
                                     f"--profile-dir={directory}", "--ip=*"], env),
                        run_env, directory / "log" / "kernelctl-controller.log")
    state = {"kernel": target.kernel.name, "n": n, "controller": controller.pid}
    _save(directory, state)
    try:
        _wait_for_file(directory / "security" / "ipcontroller-engine.json", controller,
                       directory / "log" / "kernelctl-controller.log")
        # Inside an allocation, Jupyter's own step may hold its CPUs: --overlap lets the
        # engines' step share them (CSCS's recipe for srun from a notebook).
        command = [srun, "-n", str(n), *(["--overlap"] if env.get("SLURM_JOB_ID") else []),
                   *srun_args]
        engines = spawn_detached(command + target.argv([python, "-m", "ipyparallel.engine",
                                                f"--profile-dir={directory}"], env),
                         run_env, directory / "log" / "kernelctl-engines.log")
        _save(directory, {**state, "srun": engines.pid})
        _wait_for_engines(target, python, directory, n, timeout, run_env, engines)
    except BaseException:
        stop(target.kernel.name, env, quiet=True)
        raise
    return Engines(target.kernel.name, f"kernelctl-{target.kernel.name}", directory, n,
                   tuple(command))


def stop(name: str, env: Mapping[str, str], quiet: bool = False) -> Optional[int]:
    """Stop a kernel's engines and controller; how many engines there were, None when
    none were running."""
    # A name, never a path: "x/../../elsewhere" must not reach outside the profiles.
    directory = profile_dir(check_kernel_name(name.lower()), env)
    state = _load(directory)
    if state is None:
        if quiet:
            return None
        raise KernelctlError(f"no engines are running for the kernel '{name}'",
                             f"Start them: kernelctl engines {name} -n 4")
    pids = [state[key] for key in ("srun", "controller") if isinstance(state.get(key), int)]
    running = [pid for pid in pids if _ours(pid)]
    for pid in running:
        _terminate(pid)
    (directory / STATE).unlink()
    if not running and not quiet:
        raise KernelctlError(f"no engines are running for the kernel '{name}' (they had "
                             "ended; their record is cleared)",
                             f"Start them: kernelctl engines {name} -n 4")
    return state.get("n")


def _check_ipyparallel(target: KernelCommand, env: Mapping[str, str]) -> None:
    done = completed(target.argv(["python", "-c", "import ipyparallel"], env), env=target.env(env),
                     what="importing ipyparallel in the kernel's environment",
                     timeout=IMPORT_TIMEOUT)
    if done.returncode != 0:
        raise KernelctlError(
            f"ipyparallel cannot be imported in the kernel '{target.kernel.name}'s environment",
            f"Install it there: kernelctl install {target.kernel.name} -p ipyparallel")


def _wait_for_file(path: Path, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + CONTROLLER_TIMEOUT
    while not os.path.exists(path):
        if process.poll() is not None or time.monotonic() > deadline:
            raise KernelctlError(f"the ipyparallel controller did not start: {_tail(log)}",
                                 f"Its log: {log}")
        time.sleep(0.2)


WAIT = """
import ipyparallel as ipp, sys
client = ipp.Client(profile_dir=sys.argv[1])
client.wait_for_engines(int(sys.argv[2]), timeout=float(sys.argv[3]))
print(len(client.ids))
"""


def _wait_for_engines(target: KernelCommand, python: str, directory: Path, n: int,
                      timeout: float, env: Mapping[str, str], engines: subprocess.Popen) -> None:
    try:
        done = completed(target.argv([python, "-c", WAIT, str(directory), str(n), str(timeout)],
                                     env),
                         env=env, what="waiting for the engines", timeout=timeout + 60)
        failed = done.returncode != 0
    except CommandFailed:
        failed = True
    if failed:
        log = directory / "log" / "kernelctl-engines.log"
        why = "srun ended" if engines.poll() is not None else f"not within {timeout:g} s"
        raise KernelctlError(f"the {n} engines did not all register ({why}): {_tail(log)}",
                             f"Their log: {log}. Inside an allocation, ask for no more tasks "
                             "than it has; pass srun options after `--`.")


def _terminate(pid: int) -> None:
    """SIGTERM the process group (srun passes it to the engines), SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _running(directory: Path) -> bool:
    state = _load(directory) or {}
    return any(isinstance(state.get(k), int) and _ours(state[k]) for k in ("controller", "srun"))


def _ours(pid: int) -> bool:
    """Still our controller or srun: alive, and running ipyparallel (a recorded pid may
    have been reused by another process since)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"ipyparallel" in cmdline.read() and _alive(pid)
    except OSError:
        return False


def _load(directory: Path) -> Optional[dict]:
    try:
        with open(directory / STATE) as text:
            state = json.load(text)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _save(directory: Path, state: dict) -> None:
    from kernelctl.record import write_atomically

    write_atomically(directory / STATE, json.dumps(state) + "\n")


def _tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"
