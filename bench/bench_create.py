"""Benchmark `kernelctl create` against the seed recipe (CSCS docs), in the same run.

Scenarios:
  with-ipykernel     a simulated prgenv-gnu uenv whose view has ipykernel (PYTHONPATH)
  without-ipykernel  a plain interpreter; ipykernel comes from a local wheelhouse

The seed recipe: python -m venv --system-site-packages; pip install ipykernel;
python -m ipykernel install --user --env PATH .. --env VIRTUAL_ENV .. --env PYTHONPATH ..
Prints a Markdown table (time, ratio, files per environment). Usage: make bench
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
from tests.conftest import BASE_PYTHON, DIGEST, make_image, wheelhouse_dir  # noqa: E402
from tests.wheels import build_wheel  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))



def seed_recipe(venv: Path, python: str, pip_offline: list, env: dict) -> list:
    site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    pythonpath = f"{site}:{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(site)
    return [
        [python, "-m", "venv", "--system-site-packages", venv],
        [venv / "bin" / "pip", "install", "--quiet", *pip_offline, "ipykernel"],
        [venv / "bin" / "python", "-m", "ipykernel", "install", "--user", "--name", "recipe",
         "--env", "PATH", f"{venv}/bin:{env['PATH']}", "--env", "VIRTUAL_ENV", str(venv),
         "--env", "PYTHONPATH", pythonpath],
    ]


def kernelctl(base: str, extra: list) -> list:
    return [[sys.executable, "-m", "kernelctl", "create", "--base", base, "--name", "bench",
             "--force", *extra]]


def files_in(path: Path) -> int:
    return sum(1 for p in path.rglob("*") if not p.is_dir())


def measure(label: str, recipe_env: dict, recipe_python: str, kernelctl_base: str,
            offline: list, scratch: Path) -> dict:
    recipe_times, tool_times = [], []
    for round_ in range(ROUNDS):
        venv = scratch / f"recipe-{label}-{round_}"
        recipe_times.append(timed(seed_recipe(venv, recipe_python, offline, recipe_env), recipe_env))
        recipe_files = files_in(venv)
        tool_times.append(timed(kernelctl(kernelctl_base, offline), recipe_env))
    tool_files = files_in(Path(recipe_env["KERNELCTL_HOME"]) / "venvs" / "bench")
    recipe, tool = statistics.median(recipe_times), statistics.median(tool_times)
    return {"scenario": label, "recipe_s": recipe, "kernelctl_s": tool, "ratio": tool / recipe,
            "recipe_files": recipe_files, "kernelctl_files": tool_files}


def main() -> None:
    wheelhouse = wheelhouse_dir()
    offline = ["--no-index", "--find-links", str(wheelhouse)]
    scratch = Path(tempfile.mkdtemp(prefix="kernelctl-bench-"))
    try:
        env = user_env(scratch / "home")
        wheels = scratch / "wheels"
        build_wheel(wheels, "kctl_shadow", "1.0")
        image = make_image(scratch / "uenv", "prgenv-gnu", "24.11", "v1", DIGEST, None,
                           ["ipykernel", "kctl_shadow==1.0"], [wheelhouse, wheels])
        session = image.session_env(env)
        rows = [
            measure("with-ipykernel (uenv)", session, str(image.view_root / "bin" / "python3"),
                    "prgenv-gnu", offline, scratch),
            measure("without-ipykernel", env, str(BASE_PYTHON), f"python:{BASE_PYTHON}",
                    offline, scratch),
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"rounds: {ROUNDS} (median), python {sys.version.split()[0]}, {os.cpu_count()} cores\n")
    print("| base | seed recipe | kernelctl create | ratio | files (recipe) | files (kernelctl) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['scenario']} | {row['recipe_s']:.2f} s | {row['kernelctl_s']:.2f} s | "
              f"{row['ratio']:.2f}x | {row['recipe_files']} | {row['kernelctl_files']} |")


if __name__ == "__main__":
    main()
