"""Benchmark package installation: `kernelctl create -p numpy -p pandas -p matplotlib`
with uv and with pip, against the seed recipe with the same packages, in the same run.

All installs are offline from one local wheelhouse (build/wheelhouse-sci, made by
`make bench`), so every contender reads the same files; each round's caches are warm
after the first. The base is the plain interpreter (no ipykernel: everyone installs it).
Also measured: the first `import pandas, matplotlib.pyplot` after each install, and the
second one, because uv (like kernelctl's default) does not compile bytecode at install
time and Python compiles on first import instead.

Prints a Markdown table. Usage: make bench (BENCH_ROUNDS, default 3).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import timed, user_env  # noqa: E402
from tests.conftest import BASE_PYTHON  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PACKAGES = ["numpy", "pandas", "matplotlib"]
WHEELHOUSE = ROOT / "build" / "wheelhouse-sci"
IMPORT = "import pandas, matplotlib.pyplot"



def seed_recipe(venv: Path, env: dict) -> list:
    return [
        [BASE_PYTHON, "-m", "venv", "--system-site-packages", venv],
        [venv / "bin" / "pip", "install", "--quiet", "--no-index", "--find-links", WHEELHOUSE,
         "ipykernel", *PACKAGES],
        [venv / "bin" / "python", "-m", "ipykernel", "install", "--user", "--name", "recipe",
         "--env", "PATH", f"{venv}/bin:{env['PATH']}", "--env", "VIRTUAL_ENV", str(venv)],
    ]


def kernelctl(installer: str) -> list:
    return [[sys.executable, "-m", "kernelctl", "create", "--base", f"python:{BASE_PYTHON}",
             "--name", "bench", "--force", "--installer", installer, "--no-index",
             "--find-links", WHEELHOUSE, *[arg for p in PACKAGES for arg in ("-p", p)]]]


def imports(python: Path, env: dict) -> tuple:
    """(first, second) import time of pandas + matplotlib.pyplot."""
    env = {**env, "MPLBACKEND": "Agg", "MPLCONFIGDIR": tempfile.mkdtemp()}
    return tuple(timed([[python, "-c", IMPORT]], env) for _ in range(2))


def main() -> None:
    if not any(WHEELHOUSE.glob("pandas-*.whl")):
        sys.exit(f"no wheelhouse at {WHEELHOUSE}: run `make bench`")
    scratch = Path(tempfile.mkdtemp(prefix="kernelctl-bench-install-"))
    env = user_env(scratch / "home")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # first imports write bytecode, as for users
    times: dict = {"recipe": [], "uv": [], "pip": []}
    first_import: dict = {k: [] for k in times}
    second_import: dict = {k: [] for k in times}
    try:
        for round_ in range(ROUNDS):
            venv = scratch / f"recipe-{round_}"
            times["recipe"].append(timed(seed_recipe(venv, env), env))
            first, second = imports(venv / "bin" / "python", env)
            first_import["recipe"].append(first)
            second_import["recipe"].append(second)
            for installer in ("uv", "pip"):
                times[installer].append(timed(kernelctl(installer), env))
                python = Path(env["KERNELCTL_HOME"]) / "venvs" / "bench" / "bin" / "python"
                first, second = imports(python, env)
                first_import[installer].append(first)
                second_import[installer].append(second)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    recipe = statistics.median(times["recipe"])
    print(f"create with {', '.join(PACKAGES)} (+ ipykernel), offline from one wheelhouse, "
          f"median of {ROUNDS} rounds:\n")
    print("| contender | time | ratio vs recipe | first import | second import |")
    print("|---|---|---|---|---|")
    for label, key in (("seed recipe (venv + pip install + ipykernel install)", "recipe"),
                       ("kernelctl create --installer uv", "uv"),
                       ("kernelctl create --installer pip", "pip")):
        median = statistics.median(times[key])
        print(f"| {label} | {median:.2f} s | {median / recipe:.2f}x | "
              f"{statistics.median(first_import[key]):.2f} s | "
              f"{statistics.median(second_import[key]):.2f} s |")


if __name__ == "__main__":
    main()
