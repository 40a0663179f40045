"""`kernelctl adopt`: environments made by hand (DKRZ's `conda create --prefix` +
`ipykernel install`, a virtualenv) get kernelctl's kernel; the environment stays the
user's, byte for byte, and `remove` takes only the kernelspec."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BASE_PYTHON
from tests.helpers import assert_user_error, created, kernelctl, listed, make_venv, run_in_kernel
from tests.test_conda import conda_env  # noqa: F401 (a fixture)
from tests.test_layered import tree_digest


def kernel_json_of(kernel_dir: Path) -> dict:
    return json.loads((kernel_dir / "kernel.json").read_text())


@pytest.fixture
def hand_made_conda(conda_env, tmp_path) -> Path:  # noqa: F811
    """DKRZ's recipe: a conda prefix with ipykernel, registered by `ipykernel install`."""
    prefix = tmp_path / "kernels" / "your-kernel"
    shutil.copytree(conda_env, prefix, symlinks=True)
    subprocess.run([prefix / "bin" / "python3", "-m", "ipykernel", "install", "--user",
                    "--name", "new-kernel", "--display-name", "new kernel",
                    "--env", "MY_SETTING", "kept"],
                   check=True, capture_output=True)
    return prefix


def test_adopting_a_hand_made_kernel_fixes_it_in_place(hand_made_conda, isolated):
    kernel_dir = isolated / ".local/share/jupyter/kernels/new-kernel"
    # The hand-made kernel lacks the env's activation: GDAL_DATA is unset in it.
    code = "import os; print(json.dumps([os.environ.get('GDAL_DATA'), os.environ.get('CONDA_PREFIX')]))"
    code = "import json\n" + code
    assert json.loads(run_in_kernel("new-kernel", code, dict(os.environ))) == [None, None]
    before = tree_digest(hand_made_conda)
    done = kernelctl("adopt", "new-kernel")
    assert done.returncode == 0, done.stderr
    kernel = listed()["new-kernel"]
    assert kernel["status"] == "ok" and kernel["display_name"] == "new kernel"
    assert kernel["base"]["adopted"] == "yes" and kernel["base"]["kind"] == "conda"
    # What the hand-made kernel.json set stays; the fixes are added.
    fixed_env = kernel_json_of(kernel_dir)["env"]
    assert fixed_env["MY_SETTING"] == "kept" and fixed_env["CONDA_PREFIX"] == str(hand_made_conda)
    assert json.loads(run_in_kernel("new-kernel", code, dict(os.environ))) == \
        [f"{hand_made_conda}/share/gdal", str(hand_made_conda)]
    assert (kernel_dir / "kernel.json.before-kernelctl").is_file()
    assert (kernel_dir / "logo-64x64.png").is_file()  # the kernel's own files stay
    removed = kernelctl("remove", "new-kernel", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert "adopted" in removed.stdout
    assert not kernel_dir.exists()
    assert tree_digest(hand_made_conda) == before, "the adopted environment was changed"


def test_adopting_a_virtualenv_installs_ipykernel_only_when_asked(tmp_path, wheelhouse, isolated,
                                                                   test_wheels):
    venv = tmp_path / "my-venv"
    make_venv(venv, BASE_PYTHON, "--system-site-packages")
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-index",
                    "--find-links", test_wheels, "kctl_extra"], check=True)
    before = tree_digest(venv)
    assert_user_error(kernelctl("adopt", str(venv)), "ipykernel is not installed",
                      "--install-ipykernel")
    assert tree_digest(venv) == before
    assert not (isolated / ".local/share/jupyter/kernels").exists()
    done = kernelctl("adopt", str(venv), "--install-ipykernel", "--no-index", "--find-links",
                     wheelhouse)
    assert done.returncode == 0, done.stderr
    kernel = listed()["my-venv"]
    assert kernel["status"] == "ok" and kernel["venv"] == str(venv)
    printed = run_in_kernel("my-venv", "import sys, kctl_extra; print(sys.executable)",
                            dict(os.environ))
    assert printed.strip() == str(venv / "bin" / "python")
    assert kernelctl("remove", "my-venv", "--yes").returncode == 0
    assert (venv / "bin" / "python").exists() and (venv / "pyvenv.cfg").exists()


def test_adopt_refuses_what_it_cannot_adopt(tmp_path, wheelhouse):
    assert_user_error(kernelctl("adopt", str(tmp_path / "nope")), "is not a directory")
    assert_user_error(kernelctl("adopt", str(tmp_path)), "not a Python environment")
    assert_user_error(kernelctl("adopt", "no-such-kernel"), "no kernel named")
    created("--base", "system", "--name", "ours", "--no-index", "--find-links", wheelhouse)
    assert_user_error(kernelctl("adopt", "ours"), "already kernelctl's")
    # An environment's own kernel is not fixed in place (that would write into it).
    env_root = tmp_path / "an-env"
    make_venv(env_root, BASE_PYTHON)
    own = env_root / "share" / "jupyter" / "kernels" / "python3"
    own.mkdir(parents=True)
    (own / "kernel.json").write_text(json.dumps(
        {"argv": [str(env_root / "bin" / "python"), "-m", "ipykernel_launcher", "-f",
                  "{connection_file}"], "display_name": "Python 3", "language": "python"}))
    env = {**os.environ, "JUPYTER_PATH": str(env_root / "share" / "jupyter")}
    assert_user_error(kernelctl("adopt", "python3", env=env), "belongs to the Python environment",
                      f"kernelctl adopt {env_root}")
