"""Benchmark `kernelctl --help` against `python -c "import typer"`, same run.

The floor of any typer CLI is importing typer; kernelctl's start-up is what it adds on
top (its own modules, defining its commands, formatting the help). Interleaved pairs,
median of the per-pair ratios (robust to a busy machine). Usage: make bench
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import compiled  # noqa: E402

PAIRS = int(os.environ.get("BENCH_PAIRS", "21"))


def once(cmd: list) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    compiled(ROOT)
    typer = [sys.executable, "-c", "import typer"]
    kernelctl = [str(Path(sys.executable).parent / "kernelctl"), "--help"]
    once(typer), once(kernelctl)  # warm the page cache and the bytecode
    pairs = [(once(typer), once(kernelctl)) for _ in range(PAIRS)]
    floor = statistics.median(t for t, _ in pairs)
    ours = statistics.median(k for _, k in pairs)
    ratio = statistics.median(k / t for t, k in pairs)
    print(f"\nStart-up, {PAIRS} interleaved pairs\n")
    print("| command | time | ratio | target |")
    print("|---|---|---|---|")
    print(f'| python -c "import typer" | {floor * 1000:.1f} ms | 1.00x | |')
    print(f"| kernelctl --help | {ours * 1000:.1f} ms | {ratio:.2f}x | <= 1.2x |")


if __name__ == "__main__":
    main()
