"""A base interpreter that lives in a venv (PyTorch in /opt/torch/.venv, an activated
venv, `system` when python3 on PATH is a venv's): the kernel sees that venv's packages
after its own, installs never touch it, and list/doctor say when it is gone."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BASE_PYTHON, MACHINE_ENV
from tests.helpers import (
    created,
    execute_in_kernel,
    kernel_json,
    kernelctl,
    listed,
    make_venv,
    run_in_kernel,
    tomllib,
)
from tests.test_jupyterlab import run_cell_in_browser, start_lab

CODE = ("import json, sys, kctl_extra, kctl_shadow\n"
        "print(json.dumps({'executable': sys.executable, 'extra': kctl_extra.__file__,\n"
        "                  'shadow': kctl_shadow.__version__}))")


@pytest.fixture
def base_venv(tmp_path, test_wheels) -> Path:
    """A venv holding packages, as a site or container image ships one."""
    venv = tmp_path / "opt-torch" / ".venv"
    make_venv(venv, BASE_PYTHON)
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-index",
                    "--find-links", test_wheels, "kctl_extra", "kctl_shadow==1.0"],
                   check=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    return venv


def tree_digest(root: Path) -> str:
    """Everything in a directory tree, names and bytes: it must not change."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def how(form: str, venv: Path) -> tuple:
    """(--base, extra environment) for each way a user reaches a venv's python."""
    on_path = {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    return {"python": (f"python:{venv / 'bin' / 'python3'}", {}),
            "system": ("system", on_path),
            "activated": ("system", {**on_path, "VIRTUAL_ENV": str(venv)})}[form]


@pytest.mark.parametrize("form", ["python", "system", "activated"])
def test_venv_base_is_layered(base_venv, wheelhouse, test_wheels, form):
    base, extra = how(form, base_venv)
    env = {**os.environ, **extra}
    before = tree_digest(base_venv)
    done = kernelctl("create", "--base", base, "--name", "layered", "-p", "kctl_shadow==2.0",
                     "--no-index", "--find-links", wheelhouse, "--find-links", test_wheels,
                     env=env)
    assert done.returncode == 0, done.stderr
    assert f"the environment {base_venv}" in done.stdout  # says what it built on
    kernel = listed(env=env)["layered"]
    assert kernel["status"] == "ok" and kernel["base"]["base_env"] == str(base_venv)
    seen = json.loads(run_in_kernel("layered", CODE, dict(os.environ)))
    assert seen["executable"] == str(Path(kernel["venv"]) / "bin" / "python")
    assert seen["extra"].startswith(str(base_venv))  # the base venv's package
    assert seen["shadow"] == "2.0"  # the kernel's own copy wins over the base venv's 1.0
    installed = kernelctl("install", "layered", "kctl_big", "--no-index", "--find-links",
                          test_wheels, env=env)
    assert installed.returncode == 0, installed.stderr
    assert tree_digest(base_venv) == before, "the base venv was written to"
    record = tomllib.loads((Path(kernel["venv"]) / "kernelctl.toml").read_text())
    assert record["base"]["base_env"] == str(base_venv)
    assert kernel_json(kernel)["metadata"]["kernelctl"]["python"] != str(base_venv / "bin" / "python3")


def test_kernel_without_its_base_venv_says_so(base_venv, wheelhouse):
    created("--base", f"python:{base_venv / 'bin' / 'python3'}", "--name", "orphaned",
            "--no-index", "--find-links", wheelhouse)
    shutil.rmtree(base_venv)
    kernel = listed()["orphaned"]
    assert kernel["status"] == "broken"
    assert f"the environment it was built on ({base_venv}) is gone" in kernel["problems"][0]
    doctor = kernelctl("doctor", "orphaned")
    assert doctor.returncode == 1 and str(base_venv) in doctor.stdout
    reply, printed = execute_in_kernel("orphaned", "print(1)", dict(os.environ))
    assert reply["status"] == "error" and f"built on ({base_venv}) is gone" in printed


def test_layered_kernel_runs_in_jupyterlab(base_venv, wheelhouse, tmp_path):
    """The real server, started without the base venv anywhere in its environment."""
    created("--base", f"python:{base_venv / 'bin' / 'python3'}", "--name", "lab-layered",
            "--no-index", "--find-links", wheelhouse)
    import sys

    server_env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    lab, handle = start_lab(server_env, Path(os.environ["HOME"]))
    try:
        url = handle.write_notebook("layered", "lab-layered",
                                    "import kctl_extra; print('from=' + kctl_extra.__file__)")
        text = run_cell_in_browser(handle, url, "lab-layered", "from=", tmp_path / "lab.png")
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    assert f"from={base_venv}" in text


TORCH = "torch==2.13.0"  # a CPU build these machines install from a local file


@pytest.fixture(scope="session")
def torch_venv(tmp_path_factory) -> Path:
    """A venv holding real PyTorch, as on the GPU node where the defect was found."""
    venv = tmp_path_factory.mktemp("opt-torch") / ".venv"
    make_venv(venv, BASE_PYTHON)
    done = subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", TORCH],
                          capture_output=True, text=True, env=MACHINE_ENV)
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot install {TORCH}: {done.stderr[-2000:]}")
        pytest.skip(f"{TORCH} cannot be installed here")
    return venv


def test_real_pytorch_in_the_base_venv(torch_venv, wheelhouse):
    before = tree_digest(torch_venv / "bin")
    for form in ("python", "system"):
        base, extra = how(form, torch_venv)
        env = {**os.environ, **extra}
        created("--base", base, "--name", f"torch-{form}", "--no-index", "--find-links",
                wheelhouse, env=env)
        seen = json.loads(run_in_kernel(
            f"torch-{form}", "import json, torch\nprint(json.dumps({'file': torch.__file__, "
            "'sum': torch.ones(3).sum().item(), 'version': torch.__version__}))",
            dict(os.environ), timeout=120))
        assert seen["file"].startswith(str(torch_venv))
        assert seen["sum"] == 3.0 and seen["version"].startswith("2.13.0")
        assert listed(env=env)[f"torch-{form}"]["status"] == "ok"
    assert tree_digest(torch_venv / "bin") == before
