"""Benchmark `kernelctl list --json` against `jupyter kernelspec list --json`, same run.

200 kernelspecs in the user's data dir: 20 made by `kernelctl create` (real venvs on a
simulated uenv, so their health checks do real work) and 180 foreign ones. Prints a
Markdown table. Usage: make bench
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

from bench.common import user_env  # noqa: E402
from tests.conftest import BASE_PYTHON, DIGEST, make_image, wheelhouse_dir  # noqa: E402

KERNELS, MANAGED = 200, 20
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))


def median_time(cmd: list, env: dict) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def populate(env: dict) -> None:
    for index in range(MANAGED):
        subprocess.run([sys.executable, "-m", "kernelctl", "create", "--base", "prgenv-gnu",
                        "--name", f"managed-{index:03}"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
    kernels = Path(env["JUPYTER_DATA_DIR"]) / "kernels"
    for index in range(KERNELS - MANAGED):
        spec_dir = kernels / f"foreign-{index:03}"
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": [str(BASE_PYTHON), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Foreign {index}", "language": "python"}))


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="kernelctl-bench-list-"))
    try:
        env = user_env(scratch / "home")
        image = make_image(scratch / "uenv", "prgenv-gnu", "24.11", "v1", DIGEST, None,
                           ["ipykernel"], [wheelhouse_dir()])
        session = image.session_env(env)
        populate(session)
        jupyter = median_time([str(Path(sys.executable).parent / "jupyter-kernelspec"),
                               "list", "--json"], session)
        kernelctl = median_time([str(Path(sys.executable).parent / "kernelctl"),
                                 "list", "--json"], session)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n{KERNELS} kernelspecs ({MANAGED} kernelctl, {KERNELS - MANAGED} foreign), "
          f"median of {ROUNDS}\n")
    print("| command | time | ratio |")
    print("|---|---|---|")
    print(f"| jupyter kernelspec list --json | {jupyter:.3f} s | 1.00x |")
    print(f"| kernelctl list --json (with health) | {kernelctl:.3f} s | {kernelctl / jupyter:.2f}x |")


if __name__ == "__main__":
    main()
