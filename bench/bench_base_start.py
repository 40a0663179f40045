"""Kernel start for a module base and a conda base, against a plain kernelspec, same run.

Module base: kernelctl's kernel loads its pinned modules through Lmod at every start.
The plain spec is the alternative kernelctl decided against: the same venv's python,
started directly, with the modules' environment recorded in kernel.json at create time.
Conda base: kernelctl's kernel sources the env's activate.d scripts under bash; the plain
spec carries the same variables frozen. Targets: <= 1.10x. Usage: make bench
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_kernel_start import start_time  # noqa: E402
from bench.common import user_env  # noqa: E402
from kernelctl import lmod  # noqa: E402
from tests.conftest import wheelhouse_dir  # noqa: E402
from tests.modulefiles import LMOD_CMD, build_tree  # noqa: E402
from tests.test_conda import GDAL_ACTIVATE  # noqa: E402
from tests.wheels import build_wheel  # noqa: E402


def create(env: dict, base: str, name: str) -> dict:
    subprocess.run([sys.executable, "-m", "kernelctl", "create", "--base", base, "--name", name,
                    "--no-index", "--find-links", str(wheelhouse_dir())], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return json.loads((Path(env["JUPYTER_DATA_DIR"]) / "kernels" / name / "kernel.json")
                      .read_text())


def plain_copy(env: dict, name: str, spec: dict, frozen: dict) -> str:
    """The same venv's python, no launcher, with `frozen` variables in kernel.json."""
    venv = spec["metadata"]["kernelctl"]["venv"]
    plain = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / f"{name}-plain"
    plain.mkdir()
    plain_spec = {**spec, "argv": [f"{venv}/bin/python", "-Xfrozen_modules=off", "-m",
                                   "ipykernel_launcher", "-f", "{connection_file}"],
                  "env": {**frozen, **spec["env"]}}
    (plain / "kernel.json").write_text(json.dumps(plain_spec))
    return plain.name


def conda_prefix(root: Path) -> Path:
    from tests.modulefiles import python_installation

    prefix = root / "envs" / "geo"
    python_installation(prefix)
    (prefix / "conda-meta").mkdir()
    (prefix / "conda-meta" / "state").write_text(json.dumps({"env_vars": {"A": "1"}}))
    (prefix / "etc" / "conda" / "activate.d").mkdir(parents=True)
    (prefix / "etc" / "conda" / "activate.d" / "gdal.sh").write_text(GDAL_ACTIVATE)
    return prefix


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="kernelctl-bench-bases-"))
    try:
        wheels = scratch / "wheels"
        build_wheel(wheels, "kctl_extra", "0.3")
        build_wheel(wheels, "kctl_shadow", "1.0")
        tree = build_tree(scratch / "lmod", wheels, wheelhouse_dir())
        env = user_env(scratch / "home")
        os.environ.update(JUPYTER_DATA_DIR=env["JUPYTER_DATA_DIR"])
        modules = "StdEnv/2023,python,scipy-stack"
        module_env = {**env, "LMOD_CMD": LMOD_CMD, "MODULEPATH": str(tree.core)}
        spec = create(module_env, f"module:{modules}", "modules")
        loaded = lmod.load(Path(LMOD_CMD), modules.split(","), module_env)
        frozen = {k: v for k, v in loaded.changes.items() if v is not None and k != "PATH"}
        pairs = {"module base": ("modules", plain_copy(env, "modules", spec, frozen))}
        prefix = conda_prefix(scratch / "conda")
        spec = create(env, f"conda:{prefix}", "conda")
        pairs["conda base"] = ("conda", plain_copy(
            env, "conda", spec, {"GDAL_DATA": f"{prefix}/share/gdal"}))
        times = {name: [] for pair in pairs.values() for name in pair}
        for name in times:
            start_time(name, env)  # warm the page cache
        for _ in range(ROUNDS):  # interleaved, so drift hits all alike
            for name in times:
                times[name].append(start_time(name, env))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nkernel start to ready, median of {ROUNDS} (interleaved)\n")
    print("| base | plain spec, environment frozen | kernelctl kernel | ratio |")
    print("|---|---|---|---|")
    for label, (managed, plain) in pairs.items():
        managed_s, plain_s = (statistics.median(times[n]) for n in (managed, plain))
        print(f"| {label} | {plain_s:.3f} s | {managed_s:.3f} s | {managed_s / plain_s:.3f}x |")


if __name__ == "__main__":
    main()
