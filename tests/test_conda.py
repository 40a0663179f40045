"""`--base conda:PREFIX` (and a conda env's python reached by `python:` or `system`): the
kernel starts with the env's full activation, and is still the process Jupyter
interrupts. The conda env is a real interpreter in a prefix with conda's activation
files (conda-meta/state, env_vars.d, activate.d); conda itself is not needed."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import assert_user_error, created, kernelctl, listed, run_in_kernel
from tests.modulefiles import PY_MM, pip_target, python_installation
from tests.test_jupyterlab import run_cell_in_browser, start_lab

CODE = ("import json, os, sys, kctl_extra, kctl_shadow\n"
        "print(json.dumps({'executable': sys.executable, 'extra': kctl_extra.__file__,\n"
        "                  'shadow': kctl_shadow.__version__,\n"
        "                  'env': {k: os.environ.get(k) for k in ('CONDA_PREFIX', 'GDAL_DATA',\n"
        "                          'FROM_STATE', 'FROM_ENV_VARS_D', 'BOTH')},\n"
        "                  'path': os.environ['PATH'].split(os.pathsep)[:2]}))")
# A real activate.d script, as packages ship them: written for bash, not POSIX sh.
GDAL_ACTIVATE = """\
#!/bin/bash
if [[ -n "$GDAL_DATA" ]]; then
    export _CONDA_SET_GDAL_DATA=$GDAL_DATA
fi
export GDAL_DATA=$CONDA_PREFIX/share/gdal
"""


@pytest.fixture(scope="session")
def conda_env(tmp_path_factory, test_wheels, wheelhouse) -> Path:
    """A conda env with ipykernel, as DKRZ's recipe makes them."""
    prefix = tmp_path_factory.mktemp("conda") / "envs" / "geo"
    python_installation(prefix)
    pip_target(prefix / "lib" / f"python{PY_MM}" / "site-packages", [test_wheels, wheelhouse],
               "kctl_extra", "kctl_shadow==1.0", "ipykernel")
    (prefix / "conda-meta").mkdir()
    (prefix / "conda-meta" / "history").write_text("")
    (prefix / "conda-meta" / "state").write_text(json.dumps(
        {"env_vars": {"FROM_STATE": "state", "BOTH": "state wins"}}))
    env_vars_d = prefix / "etc" / "conda" / "env_vars.d"
    env_vars_d.mkdir(parents=True)
    (env_vars_d / "geo.json").write_text(json.dumps({"FROM_ENV_VARS_D": "1", "BOTH": "d"}))
    activate_d = prefix / "etc" / "conda" / "activate.d"
    activate_d.mkdir(parents=True)
    (activate_d / "gdal-activate.sh").write_text(GDAL_ACTIVATE)
    return prefix


def how(form: str, prefix: Path) -> tuple:
    """(--base, extra environment) for each way a user names a conda env."""
    activated = {"PATH": f"{prefix / 'bin'}:{os.environ['PATH']}", "CONDA_PREFIX": str(prefix)}
    return {"conda": (f"conda:{prefix}", {}),
            "python": (f"python:{prefix / 'bin' / 'python3'}", {}),
            "system": ("system", activated)}[form]


@pytest.mark.parametrize("form", ["conda", "python", "system"])
def test_conda_env_is_activated_in_the_kernel(conda_env, wheelhouse, test_wheels, form):
    base, extra = how(form, conda_env)
    env = {**os.environ, **extra}
    done = kernelctl("create", "--base", base, "--name", "geo", "-p", "kctl_shadow==2.0",
                     "--no-index", "--find-links", wheelhouse, "--find-links", test_wheels,
                     env=env)
    assert done.returncode == 0, done.stderr
    kernel = listed(env=env)["geo"]
    assert kernel["status"] == "ok"
    assert kernel["base"]["kind"] == "conda" and kernel["base"]["conda_prefix"] == str(conda_env)
    seen = json.loads(run_in_kernel("geo", CODE, dict(os.environ)))  # server: no conda
    venv = Path(kernel["venv"])
    assert seen["executable"] == str(venv / "bin" / "python")
    assert seen["extra"].startswith(str(conda_env))
    assert seen["shadow"] == "2.0"
    assert seen["env"] == {"CONDA_PREFIX": str(conda_env), "GDAL_DATA": f"{conda_env}/share/gdal",
                           "FROM_STATE": "state", "FROM_ENV_VARS_D": "1", "BOTH": "state wins"}
    assert seen["path"] == [str(venv / "bin"), str(conda_env / "bin")]
    doctor = kernelctl("doctor", "geo")
    assert doctor.returncode == 0, doctor.stdout


def test_conda_kernel_is_interrupted_like_any_kernel(conda_env, wheelhouse):
    """The launcher execs Python after activation: Jupyter's SIGINT reaches the kernel."""
    from jupyter_client.manager import KernelManager

    created("--base", f"conda:{conda_env}", "--name", "geo-int", "--no-index",
            "--find-links", wheelhouse)
    manager = KernelManager(kernel_name="geo-int")
    manager.start_kernel(env=dict(os.environ), cwd=os.environ["HOME"])
    client = manager.client()
    try:
        client.start_channels()
        client.wait_for_ready(timeout=60)
        msg_id = client.execute("import time; time.sleep(120)")
        time.sleep(2)
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert manager.is_alive()
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_not_a_conda_env_is_refused(tmp_path, isolated):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert_user_error(kernelctl("create", "--base", f"conda:{plain}"),
                      "is not a conda environment", "conda env list")
    assert_user_error(kernelctl("create", "--base", f"conda:{tmp_path / 'nope'}"),
                      "does not exist")
    (plain / "conda-meta").mkdir()
    assert_user_error(kernelctl("create", "--base", f"conda:{plain}"), "has no Python")
    assert not (isolated / ".local/share/jupyter/kernels").exists()


def test_bad_env_vars_file_is_named(conda_env, tmp_path):
    broken = tmp_path / "broken-env"
    shutil.copytree(conda_env, broken, symlinks=True)
    (broken / "conda-meta" / "state").write_text("{not json")
    assert_user_error(kernelctl("create", "--base", f"conda:{broken}"),
                      str(broken / "conda-meta" / "state"))


def test_deleted_conda_env_is_broken(conda_env, tmp_path, wheelhouse):
    copy = tmp_path / "copy-env"
    shutil.copytree(conda_env, copy, symlinks=True)
    created("--base", f"conda:{copy}", "--name", "gone", "--no-index", "--find-links", wheelhouse)
    shutil.rmtree(copy)
    kernel = listed()["gone"]
    assert kernel["status"] == "broken"
    assert f"the conda environment it was built on ({copy}) is gone" in kernel["problems"][0]


def test_conda_kernel_runs_in_jupyterlab(conda_env, wheelhouse, tmp_path):
    created("--base", f"conda:{conda_env}", "--name", "lab-conda", "--no-index",
            "--find-links", wheelhouse)
    lab_env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    lab, handle = start_lab(lab_env, Path(os.environ["HOME"]))
    try:
        url = handle.write_notebook("conda", "lab-conda",
                                    "import os, kctl_extra; print('gdal=' + os.environ['GDAL_DATA'])")
        text = run_cell_in_browser(handle, url, "lab-conda", "gdal=", tmp_path / "lab.png")
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    assert f"gdal={conda_env}/share/gdal" in text


def test_unreadable_conda_env_is_a_clear_error(conda_env, tmp_path, unprivileged, isolated):
    """A colleague's env this user may not enter: refused, naming it, nothing left."""
    from tests.conftest import OTHER_UID

    private = tmp_path / "colleague-env"
    shutil.copytree(conda_env, private, symlinks=True)
    os.chown(private, OTHER_UID, OTHER_UID)
    private.chmod(0o700)
    done = kernelctl("create", "--base", f"conda:{private}", prefix=unprivileged)
    assert_user_error(done, f"{private} cannot be read (permission denied)")
    assert not (isolated / ".local/share/jupyter/kernels").exists()
