"""`--base container` in a container session. The stand-in for the container is its
environment, as Apptainer and NVIDIA's NGC images set it (APPTAINER_CONTAINER,
NVIDIA_PYTORCH_VERSION, NVIDIA_BUILD_ID), with the image's packages in a venv on PATH
the way many images keep them (/opt/<name>/.venv)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kernelctl.containers import session_container
from tests.conftest import BASE_PYTHON
from tests.helpers import execute_in_kernel, kernelctl, listed, make_venv, run_in_kernel

IMAGE = "/capstor/images/pytorch-24.05.sif"


@pytest.fixture
def image_venv(tmp_path, test_wheels) -> Path:
    import subprocess

    venv = tmp_path / "opt" / "pytorch" / ".venv"
    make_venv(venv, BASE_PYTHON)
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-index",
                    "--find-links", test_wheels, "kctl_extra", "kctl_shadow==1.0"],
                   check=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    return venv


def in_container(venv: Path, version: str = "24.05", build: str = "9001") -> dict:
    return {**os.environ, "APPTAINER_CONTAINER": IMAGE, "APPTAINER_NAME": "pytorch-24.05.sif",
            "NVIDIA_PYTORCH_VERSION": version, "NVIDIA_BUILD_ID": build,
            "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}


def test_container_kernel_is_bound_to_its_image(image_venv, wheelhouse):
    session = in_container(image_venv)
    done = kernelctl("create", "--base", "container", "--no-index", "--find-links", wheelhouse,
                     env=session)
    assert done.returncode == 0, done.stderr
    assert f"{IMAGE}:24.05" in done.stdout
    name = "container-pytorch-24.05-24.05"
    kernel = listed(env=session)[name]
    assert kernel["status"] == "ok"
    assert kernel["base"]["kind"] == "container" and kernel["base"]["container"] == IMAGE
    assert kernel["base"]["base_env"] == str(image_venv)  # the image's venv, layered
    printed = run_in_kernel(name, "import kctl_extra; print(kctl_extra.__file__)", session)
    assert printed.startswith(str(image_venv))
    doctor = kernelctl("doctor", name, env=session)
    assert doctor.returncode == 0, doctor.stdout

    # Opened in a session running the next release of the image: flagged, and explained.
    upgraded = in_container(image_venv, version="24.07", build="9100")
    kernel = listed(env=upgraded)[name]
    assert kernel["status"] == "mismatch"
    assert f"made in the container {IMAGE}:24.05" in kernel["problems"][0]
    reply, printed = execute_in_kernel(name, "print(1)", upgraded)
    assert reply["status"] == "error" and "made in the container" in printed
    # doctor says what the container kind says: start in that container, never "the uenv".
    doctor = kernelctl("doctor", name, "--json", env=upgraded)
    health = next(c for c in json.loads(doctor.stdout)["checks"] if c["id"] == "kernel.health")
    assert "in the container" in health["hint"] and "uenv" not in health["hint"], health
    # The same release, rebuilt: the build id tells.
    rebuilt = listed(env=in_container(image_venv, build="9101"))[name]
    assert rebuilt["status"] == "mismatch" and "build 9001" in rebuilt["problems"][0]
    # Outside the image (this host's own session).
    outside = listed(env={**os.environ, "PATH": session["PATH"]})[name]
    assert outside["status"] == "mismatch"


def test_session_container_is_read_from_markers(tmp_path):
    assert session_container({}, root=str(tmp_path)) is None
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".containerenv").write_text(
        'engine="podman-4.3"\nname="lab"\nimage="docker.io/library/python:3.12"\nimageid="abc123"\n')
    podman = session_container({}, root=str(tmp_path))
    assert (podman.engine, podman.image, podman.digest) == \
        ("podman", "docker.io/library/python:3.12", "abc123")
    ngc = session_container({"NVIDIA_PYTORCH_VERSION": "24.05", "NVIDIA_DRIVER_CAPABILITIES": "all"},
                            root=str(tmp_path / "none"))
    assert ngc.label == "nvcr.io/nvidia/pytorch:24.05"


def test_no_container_is_a_clear_error(monkeypatch):
    """Outside any container (this test machine may itself be one: its marker is
    taken away here)."""
    from kernelctl.bases import container
    from kernelctl.errors import KernelctlError

    monkeypatch.setattr(container, "session_container", lambda env: None)
    with pytest.raises(KernelctlError) as raised:
        container.KIND.resolve("container", dict(os.environ))
    assert "does not run in a container" in raised.value.message
    assert "--base system" in raised.value.hint


def test_default_base_in_a_container_session(image_venv, wheelhouse):
    done = kernelctl("create", "--json", "--name", "fits", "--no-index", "--find-links",
                     wheelhouse, env=in_container(image_venv))
    assert done.returncode == 0, done.stderr
    assert f"this session runs in the container {IMAGE}:24.05" in done.stderr
    assert json.loads(done.stdout)["base"]["kind"] == "container"
