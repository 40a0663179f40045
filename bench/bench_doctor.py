"""`kernelctl doctor` (no --deep) on a healthy session with 50 kernels: target < 1 s.

50 real kernelctl kernels on a simulated prgenv-gnu uenv, $SCRATCH linked; the
alternative measured in the same run is `jupyter kernelspec list` (which only lists).
Usage: make bench
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import user_env  # noqa: E402
from tests.conftest import DIGEST, make_image, wheelhouse_dir  # noqa: E402

KERNELS = 50
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))


def median_time(cmd: list, env: dict) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - start)
    if cmd[-1] == "doctor" and done.returncode != 0:
        sys.exit(f"doctor found problems on the benchmark session:\n{done.stdout}")
    return statistics.median(times)


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="kernelctl-bench-doctor-"))
    try:
        (scratch / "scratch").mkdir()
        env = user_env(scratch / "home", SCRATCH=str(scratch / "scratch"))
        os.symlink(scratch / "scratch", scratch / "home" / "scratch")
        image = make_image(scratch / "uenv", "prgenv-gnu", "24.11", "v1", DIGEST, None,
                           ["ipykernel"], [wheelhouse_dir()])
        session = image.session_env(env)
        for index in range(KERNELS):
            subprocess.run([sys.executable, "-m", "kernelctl", "create", "--base", "prgenv-gnu",
                            "--name", f"k{index:02}"], env=session, check=True,
                           stdout=subprocess.DEVNULL)
        bin_dir = Path(sys.executable).parent
        doctor = median_time([str(bin_dir / "kernelctl"), "doctor"], session)
        listing = median_time([str(bin_dir / "jupyter-kernelspec"), "list"], session)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n{KERNELS} healthy kernelctl kernels, median of {ROUNDS}\n")
    print("| command | time | ratio |")
    print("|---|---|---|")
    print(f"| jupyter kernelspec list (lists only) | {listing:.3f} s | 1.00x |")
    print(f"| kernelctl doctor (all checks, no --deep) | {doctor:.3f} s | {doctor / listing:.2f}x |")


if __name__ == "__main__":
    main()
