"""Adding a base kind is one module and one registry line (docs/architecture.md).

tests/toykind.py is that module; the registry line is `register(...)`, made at start-up
by the kernelctl process these tests run (the same line in kind.KINDS would do it for
good). No other file knows the kind: create, list, show, doctor, recipes, submit
--dry-run and rebuild must all work on it, with the kind's own words.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BASE_PYTHON
from tests.helpers import execute_in_kernel, run_in_kernel
from tests.toykind import make_image

REPO = Path(__file__).resolve().parents[1]
# kernelctl's own entry point, with the toy kind registered first.
BOOT = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
        "from kernelctl.bases.kind import register; "
        "register('toy', 'tests.toykind', ('toy:',)); "
        "from kernelctl.cli import main; sys.argv[0] = 'kernelctl'; main()")
CODE = ("import json, os, sys, kctl_shadow, toyprovided\n"
        "print(json.dumps({'prefix': sys.prefix, 'shadow': kctl_shadow.__version__,\n"
        "                  'provided': toyprovided.WHERE}))")


def toy_kernelctl(*args, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BOOT, str(REPO), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def toy(tmp_path, test_wheels):
    image = make_image(tmp_path / "toy-image", str(BASE_PYTHON))
    # The image's own, older copy of a package, which the venv's must win over.
    (image / "site" / "kctl_shadow").mkdir()
    (image / "site" / "kctl_shadow" / "__init__.py").write_text("__version__ = '1.0'\n")
    session = {**os.environ, "TOY_IMAGE": str(image), "PYTHONPATH": str(image / "site")}
    return image, session


def test_a_toy_kind_runs_through_every_command(toy, test_wheels, wheelhouse, tmp_path):
    image, session = toy
    offline = ["--no-index", f"--find-links={test_wheels}", f"--find-links={wheelhouse}"]
    # create, with the kind found by default (no --base): the kind's detect, its words.
    done = toy_kernelctl("create", "--json", "-p", "kctl_shadow==2.0", *offline, env=session)
    assert done.returncode == 0, done.stderr
    assert f"the toy image {image} is active" in done.stderr
    kernel = json.loads(done.stdout)
    assert kernel["name"] == "toy-toy-image"
    assert kernel["base"]["kind"] == "toy" and kernel["base"]["toy_id"] == "build-1"
    # The kernel runs in a server with the image, its venv's copy winning over the image's.
    seen = json.loads(run_in_kernel("toy-toy-image", CODE, session))
    assert seen == {"prefix": kernel["venv"], "shadow": "2.0", "provided": "the toy image"}

    # list and show: ok here; a mismatch, in the kind's words, in a session without it.
    listing = json.loads(toy_kernelctl("list", "--json", env=session).stdout)
    assert [k["status"] for k in listing["kernels"] if k["name"] == "toy-toy-image"] == ["ok"]
    elsewhere = {k: v for k, v in session.items() if k != "TOY_IMAGE"}
    shown = json.loads(toy_kernelctl("show", "toy-toy-image", "--json", env=elsewhere).stdout)
    assert shown["status"] == "mismatch"
    assert shown["problems"] == [f"made for the toy image {image}, which this session "
                                 "does not run"]

    # doctor: the mismatch, with the kind's own hint.
    report = json.loads(toy_kernelctl("doctor", "toy-toy-image", "--json", env=elsewhere).stdout)
    hints = [c["hint"] for c in report["checks"] if c["kernel"] == "toy-toy-image"]
    assert any(f"Start JupyterLab with TOY_IMAGE={image}." in hint for hint in hints), report
    # Started where the image is not: the notebook says what the kind says.
    reply, printed = execute_in_kernel("toy-toy-image", "1", elsewhere)
    assert f"this kernel needs the toy image toy:{image}" in printed, (reply, printed)

    # submit --dry-run: the job script says what the kind's launcher does.
    script = tmp_path / "job.py"
    script.write_text("print(1)\n")
    done = toy_kernelctl("submit", "toy-toy-image", script, "--dry-run", env=session)
    assert done.returncode == 0, done.stderr
    assert "# checks the toy image build-1, checks that the base is here" in done.stdout

    # rebuild: on the kind's exact spec, packages again, the kernel runs.
    done = toy_kernelctl("rebuild", "toy-toy-image", "--json", *offline, env=session)
    assert done.returncode == 0, done.stderr
    rebuilt = json.loads(done.stdout)["rebuilt"][0]
    assert rebuilt["base"]["label"] == f"toy:{image}" and rebuilt["venv"] != kernel["venv"]
    assert json.loads(run_in_kernel("toy-toy-image", CODE, session))["shadow"] == "2.0"

    # The base gone for good: broken, in the kind's words.
    (image / "toy.id").unlink()
    shown = json.loads(toy_kernelctl("show", "toy-toy-image", "--json", env=session).stdout)
    assert shown["status"] == "broken"
    assert f"the toy image {image} is gone" in shown["problems"]


def test_a_toy_kind_in_recipes(toy, wheelhouse, tmp_path):
    image, session = toy
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "toybox.toml").write_text(
        f'name = "toybox"\nsite = "here"\n[base]\nkind = "toy"\nimage = "{image}"\n')
    (recipes / "broken.toml").write_text('name = "broken"\n[base]\nkind = "toy"\n')
    env = {**session, "KERNELCTL_RECIPE_PATH": str(recipes)}
    listing = json.loads(toy_kernelctl("recipes", "list", "--json", env=env).stdout)
    entries = {r["name"]: r for r in listing["recipes"]}
    assert entries["toybox"]["kind"] == "toy" and entries["toybox"]["usable"] is True
    assert entries["toybox"]["loads"] == f"toy image {image}"
    assert "'base.image' is missing" in entries["broken"]["error"]
    elsewhere = {k: v for k, v in env.items() if k != "TOY_IMAGE"}
    shown = json.loads(toy_kernelctl("recipes", "show", "toybox", "--json", env=elsewhere).stdout)
    assert shown["why_not"] == f"needs the toy image {image} active"
    done = toy_kernelctl("create", "--base", "toybox", "--json", "--no-index",
                         f"--find-links={wheelhouse}", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["base"]["recipe"] == "toybox"
    # An unknown kind stays an invalid recipe, naming the kinds there are.
    (recipes / "odd.toml").write_text('name = "odd"\n[base]\nkind = "odd"\n')
    listing = json.loads(toy_kernelctl("recipes", "list", "--json", env=env).stdout)
    odd = next(r for r in listing["recipes"] if r["name"] == "odd")
    assert "base.kind 'odd' is not one of" in odd["error"] and "'toy'" in odd["error"]
