"""Benchmark a kernelctl kernel's start time against a plain ipykernel spec, same run.

Both start the same venv's Python through jupyter_client (start_kernel + wait_for_ready);
the plain spec is what `ipykernel install` writes: [venv python, -m, ipykernel_launcher,
-f, {connection_file}] with the same env. The difference is kernelctl-launch.sh, which
lets a broken kernel explain itself. Target: <= 3 % slower. Usage: make bench
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# 40 interleaved pairs: the spread of the per-pair ratios shows a 2 % difference.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "40"))
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import user_env  # noqa: E402
from tests.conftest import BASE_PYTHON, wheelhouse_dir  # noqa: E402


def start_time(name: str, env: dict) -> float:
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name=name)
    start = time.perf_counter()
    manager.start_kernel(env=env, cwd=env["HOME"])
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    elapsed = time.perf_counter() - start
    client.stop_channels()
    manager.shutdown_kernel(now=True)
    return elapsed


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="kernelctl-bench-start-"))
    try:
        env = user_env(scratch / "home")
        subprocess.run([sys.executable, "-m", "kernelctl", "create", "--base",
                        f"python:{BASE_PYTHON}", "--name", "managed", "--no-index",
                        "--find-links", str(wheelhouse_dir())], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        managed = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / "managed"
        spec = json.loads((managed / "kernel.json").read_text())
        venv = spec["metadata"]["kernelctl"]["venv"]
        plain = managed.parent / "plain"
        plain.mkdir()
        spec["argv"] = [f"{venv}/bin/python", "-Xfrozen_modules=off", "-m",
                        "ipykernel_launcher", "-f", "{connection_file}"]
        (plain / "kernel.json").write_text(json.dumps(spec))
        os.environ.update(JUPYTER_DATA_DIR=env["JUPYTER_DATA_DIR"])
        times: dict = {"plain": [], "managed": []}
        start_time("plain", env)  # warm the page cache for both
        for _ in range(ROUNDS):  # interleaved, so drift hits both alike
            for name in times:
                times[name].append(start_time(name, env))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    plain_s, managed_s = (statistics.median(times[n]) for n in ("plain", "managed"))
    ratios = sorted(m / p for m, p in zip(times["managed"], times["plain"]))
    quartiles = statistics.quantiles(ratios, n=4)
    print(f"\nkernel start to ready, median of {ROUNDS} (interleaved); per-pair ratio "
          f"median {statistics.median(ratios):.3f}x, quartiles {quartiles[0]:.3f}x-"
          f"{quartiles[2]:.3f}x\n")
    print("| kernel | start | ratio |")
    print("|---|---|---|")
    print(f"| plain ipykernel spec (same venv, same env) | {plain_s:.3f} s | 1.00x |")
    print(f"| kernelctl kernel (kernelctl-launch.sh) | {managed_s:.3f} s | "
          f"{managed_s / plain_s:.3f}x |")


if __name__ == "__main__":
    main()
