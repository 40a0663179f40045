"""Benchmark a Slurm kernel's start, to its first cell's answer, against the same kernel
run in the server (no Slurm), same run: what asking Slurm costs a notebook user.

On the single-node Slurm the tests use (as root, like `make test`): a kernelctl kernel,
the same made a step kernel (in an allocation) and a job kernel, each started through
jupyter_client and asked to run `1`, interleaved. Usage: make bench (BENCH_ROUNDS)
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "8"))
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import user_env  # noqa: E402
from tests.conftest import BASE_PYTHON, wheelhouse_dir  # noqa: E402
from tests.slurm import Slurm  # noqa: E402

KERNELS = {"plain": (), "step": ("--slurm", "step", "--cpus", "1"),
           "job": ("--slurm", "job", "--cpus", "1")}


def first_answer(name: str, env: dict) -> float:
    """Seconds from start_kernel to the first cell's reply."""
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name=name)
    start = time.perf_counter()
    manager.start_kernel(env=env, cwd=env["HOME"])
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        reply = client.execute_interactive("1", timeout=120, output_hook=lambda _: None)
        assert reply["content"]["status"] == "ok", reply["content"]
        return time.perf_counter() - start
    finally:
        client.stop_channels()
        manager.shutdown_kernel()


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="kernelctl-bench-slurm-"))
    os.chmod(scratch, 0o755)
    slurm = Slurm(scratch / "slurm").start()
    try:
        env = slurm.env(user_env(scratch / "home"))
        for name, options in KERNELS.items():
            subprocess.run([sys.executable, "-m", "kernelctl", "create", "--base",
                            f"python:{BASE_PYTHON}", "--name", name, "--no-index",
                            "--find-links", str(wheelhouse_dir()), *options], env=env,
                           check=True, stdout=subprocess.DEVNULL)
        allocation = subprocess.run(["sbatch", "--parsable", "-c", "4", "-o", os.devnull,
                                     "--wrap", "sleep 3600"],
                                    env=env, capture_output=True, text=True,
                                    check=True).stdout.strip()
        while "RUNNING" not in subprocess.run(["squeue", "-h", "-j", allocation, "-o", "%T"],
                                              env=env, capture_output=True, text=True).stdout:
            time.sleep(0.2)
        os.environ.update(JUPYTER_DATA_DIR=env["JUPYTER_DATA_DIR"])
        server = {**env, "SLURM_JOB_ID": allocation}
        times: dict = {name: [] for name in KERNELS}
        first_answer("plain", server)  # warm the page cache
        for _ in range(ROUNDS):
            for name in KERNELS:
                times[name].append(first_answer(name, server))
    finally:
        slurm.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    plain = statistics.median(times["plain"])
    print(f"\nstart to the first cell's answer, median of {ROUNDS} (interleaved)\n")
    print("| kernel | first answer | ratio |")
    print("|---|---|---|")
    for name, words in (("plain", "the kernel in the server (no Slurm)"),
                        ("step", "--slurm step (a step of the server's allocation)"),
                        ("job", "--slurm job (a job of its own, node idle)")):
        median = statistics.median(times[name])
        print(f"| {words} | {median:.2f} s | {median / plain:.2f}x |")


if __name__ == "__main__":
    main()
