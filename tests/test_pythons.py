"""Every Python kernelctl claims as a base (3.9-3.13) makes a kernel that runs.

The interpreters come from the machine (pyenv's, or pythonX.Y on PATH); a version the
machine lacks is skipped, as docs/testing.md says. `make wheelhouses` downloads
ipykernel for each one with that Python's own pip.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import created, listed, run_in_kernel

VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13")


def interpreter(version: str):
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(f"{pyenv}/versions/{version}.*/bin/python{version}"))
    return found[-1] if found else shutil.which(f"python{version}")


@pytest.mark.parametrize("version", VERSIONS)
def test_each_python_as_a_base(version):
    python = interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine")
    wheels = ROOT / "build" / f"wheelhouse-{version}"
    assert any(wheels.glob("ipykernel-*.whl")), f"no ipykernel in {wheels}: make wheelhouses"
    name = f"py{version}"
    kernel = created("--base", f"python:{python}", "--name", name, "--no-index",
                     "--find-links", wheels)
    assert listed()[name]["status"] == "ok"
    printed = run_in_kernel(name, "import sys; print('%d.%d' % sys.version_info[:2]); "
                                  "print(sys.prefix)", dict(os.environ))
    assert printed.split() == [version, kernel["venv"]]
    assert Path(kernel["venv"], "bin", "python").exists()
