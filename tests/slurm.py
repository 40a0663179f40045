"""A real single-node Slurm (slurmctld + slurmd on 127.0.0.1) for tests, as root.

The configuration follows docs/testing.md: auth/none, cred/none, proctrack/linuxproc,
task/none, one node named after this host, state in a temp dir. The node has more CPUs
than this machine (config_overrides) and four stand-in GPUs: character devices made
with mknod (Slurm refuses regular files) named in gres.conf, so each step and job gets
its own CUDA_VISIBLE_DEVICES. Memory is tracked per CPU, so several jobs share the node.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

CONF = """ClusterName=kernelctl-tests
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/none
CredType=cred/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmUser=root
EnforcePartLimits=ALL
GresTypes=gpu
SlurmdParameters=config_overrides
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=100
ReturnToService=2
MpiDefault=none
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=16000 Gres=gpu:{gpus} State=UNKNOWN
PartitionName=tests Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=short Nodes=ALL MaxTime=00:30:00 State=UP
"""
CPUS = 8
GPUS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Slurm:
    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"

    def env(self, base: dict) -> dict:
        return {**base, "SLURM_CONF": str(self.conf)}

    def start(self) -> "Slurm":
        for tool in ("slurmctld", "slurmd", "srun", "sbatch"):
            if not shutil.which(tool):
                raise AssertionError(f"{tool} is missing: make test installs slurm-wlm (apt)")
        for sub in ("state", "spool", "dev"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        host = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
        self.conf.write_text(CONF.format(host=host, root=self.root, cpus=CPUS, gpus=GPUS,
                                         ctld_port=_free_port(), d_port=_free_port()))
        devices = []
        for index in range(GPUS):
            device = self.root / "dev" / f"nvidia{index}"
            if not device.exists():
                os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(195, index))
            devices.append(str(device))
        (self.root / "gres.conf").write_text(
            "".join(f"Name=gpu File={device}\n" for device in devices))
        env = self.env(dict(os.environ))
        subprocess.run(["slurmctld", "-c"], env=env, check=True)
        subprocess.run(["slurmd", "-c"], env=env, check=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True,
                                   text=True).stdout.strip()
            if state == "idle":
                return self
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"slurmd never became idle: {(self.root / 'slurmd.log').read_text()}")

    def stop(self) -> None:
        subprocess.run(["scontrol", "shutdown"], env=self.env(dict(os.environ)),
                       capture_output=True)
        for daemon in ("slurmd", "slurmctld"):
            pid_file = self.root / f"{daemon}.pid"
            if pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text()), 15)
                except (ProcessLookupError, ValueError):
                    pass
