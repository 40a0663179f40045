"""A kernelctl kernel that cannot run in this session says why in the notebook, instead
of Jupyter's silent "kernel died, restarting" loop (real kernels, via jupyter_client)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from tests.helpers import created, execute_in_kernel


def server_env(session: dict) -> dict:
    """The Jupyter server's environment: its own Python (with ipykernel) is on PATH."""
    return {**session, "PATH": f"{Path(sys.executable).parent}:{session['PATH']}"}


def test_deleted_environment_explains_itself(prgenv_image):
    session = prgenv_image.session_env(dict(os.environ))
    kernel = created("--base", "prgenv-gnu", "--name", "gone", env=session)
    shutil.rmtree(kernel["venv"])
    reply, printed = execute_in_kernel("gone", "print(1 + 1)", server_env(session))
    assert reply["status"] == "error" and reply["ename"] == "KernelUnavailable"
    assert kernel["venv"] in reply["evalue"] and "no longer exists" in reply["evalue"]
    assert "kernelctl create --base prgenv-gnu --name gone --force" in reply["evalue"]


def test_other_image_mounted_explains_itself(prgenv_image):
    session = prgenv_image.session_env(dict(os.environ))
    created("--base", "prgenv-gnu", "--name", "elsewhere", env=session)
    replaced = {**session, "UENV_MOUNT_LIST": session["UENV_MOUNT_LIST"].replace(
        prgenv_image.digest, "e" * 64)}
    reply, _ = execute_in_kernel("elsewhere", "print(1 + 1)", server_env(replaced))
    assert reply["status"] == "error" and reply["ename"] == "KernelUnavailable"
    assert "made for the uenv prgenv-gnu/24.11:v1 (view default)" in reply["evalue"]
    assert "Start JupyterLab with the uenv prgenv-gnu/24.11:v1" in reply["evalue"]


def test_healthy_kernel_is_not_affected(prgenv_image):
    session = prgenv_image.session_env(dict(os.environ))
    kernel = created("--base", "prgenv-gnu", "--name", "fine", env=session)
    reply, printed = execute_in_kernel("fine", "import sys; print(sys.prefix)", server_env(session))
    assert reply["status"] == "ok" and printed.strip() == kernel["venv"]
