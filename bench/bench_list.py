"""Benchmark `kernelctl list --json` against `jupyter kernelspec list --json`, same run.

200, then 1,000 kernelspecs in the user's data dir: 20 made by `kernelctl create` (real
venvs on a simulated uenv, so their health checks do real work) and the rest foreign.
Interleaved pairs, median of the per-pair ratios. Prints a Markdown table.
Usage: make bench
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import compiled, user_env  # noqa: E402
from tests.conftest import BASE_PYTHON, DIGEST, make_image, wheelhouse_dir  # noqa: E402

SIZES, MANAGED = (200, 1000), 20
TARGETS = {200: "<= 0.3x", 1000: "<= 0.25x"}
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "11"))


def once(cmd: list, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def compare(jupyter: list, kernelctl: list, env: dict) -> tuple:
    """(jupyter's median, kernelctl's median, median of the per-pair ratios)."""
    once(jupyter, env), once(kernelctl, env)
    pairs = [(once(jupyter, env), once(kernelctl, env)) for _ in range(ROUNDS)]
    return (statistics.median(j for j, _ in pairs), statistics.median(k for _, k in pairs),
            statistics.median(k / j for j, k in pairs))


def add_foreign(env: dict, count: int) -> None:
    kernels = Path(env["JUPYTER_DATA_DIR"]) / "kernels"
    for index in range(count):
        spec_dir = kernels / f"foreign-{index:04}"
        if spec_dir.exists():
            continue
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": [str(BASE_PYTHON), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Foreign {index}", "language": "python"}))


def populate(env: dict) -> None:
    for index in range(MANAGED):
        subprocess.run([sys.executable, "-m", "kernelctl", "create", "--base", "prgenv-gnu",
                        "--name", f"managed-{index:03}"], env=env, check=True,
                       stdout=subprocess.DEVNULL)


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="kernelctl-bench-list-"))
    try:
        env = user_env(scratch / "home")
        image = make_image(scratch / "uenv", "prgenv-gnu", "24.11", "v1", DIGEST, None,
                           ["ipykernel"], [wheelhouse_dir()])
        session = image.session_env(env)
        populate(session)
        compiled(ROOT)
        bin_dir = Path(sys.executable).parent
        rows = []
        for size in SIZES:
            add_foreign(session, size - MANAGED)
            rows.append((size, *compare([str(bin_dir / "jupyter-kernelspec"), "list", "--json"],
                                        [str(bin_dir / "kernelctl"), "list", "--json"], session)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nkernelspecs ({MANAGED} kernelctl, the rest foreign), {ROUNDS} interleaved pairs\n")
    print("| kernels | jupyter kernelspec list --json | kernelctl list --json (with health) "
          "| ratio | target |")
    print("|---|---|---|---|---|")
    for size, jupyter, kernelctl, ratio in rows:
        print(f"| {size} | {jupyter:.3f} s | {kernelctl:.3f} s | {ratio:.2f}x | {TARGETS[size]} |")


if __name__ == "__main__":
    main()
