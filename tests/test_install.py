"""kernelctl install: packages land in the kernel's venv and win over the base's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import BASE_PYTHON
from tests.helpers import (
    PROBE_CODE,
    created,
    foreign_spec,
    kernelctl,
    run_in_kernel,
    tomllib,
    write_kernel,
)


@pytest.fixture
def session(prgenv_image) -> dict:
    return prgenv_image.session_env(dict(os.environ))


def test_newer_copy_lands_and_wins_in_the_kernel(session, test_wheels):
    kernel = created("--base", "prgenv-gnu", "--name", "work", env=session)
    done = kernelctl("install", "work", "kctl_shadow", "kctl_extra", "--no-index",
                     "--find-links", test_wheels, env=session)
    assert done.returncode == 0, done.stderr
    seen = json.loads(run_in_kernel("work", PROBE_CODE, session))
    assert seen["shadow"] == "2.0" and seen["shadow_file"].startswith(kernel["venv"])
    record = tomllib.loads((Path(kernel["venv"]) / "kernelctl.toml").read_text())
    assert record["packages"]["requested"] == ["kctl_shadow", "kctl_extra"]


def test_same_version_as_the_base_still_lands(session, test_wheels):
    kernel = created("--base", "prgenv-gnu", "--name", "pinned", env=session)
    done = kernelctl("install", "pinned", "kctl_shadow==1.0", "--no-index", "--find-links",
                     test_wheels, env=session)
    assert done.returncode == 0, done.stderr
    assert list(Path(kernel["venv"]).glob("lib/python*/site-packages/kctl_shadow-1.0.dist-info"))


def test_refusals(session, icon_image):
    created("--base", "prgenv-gnu", "--name", "elsewhere", env=session)
    write_kernel(Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels", "theirs",
                 foreign_spec(str(BASE_PYTHON)))
    cases = [
        (["install", "theirs", "x"], session, "not made by kernelctl"),
        (["install", "elsewhere", "x"], icon_image.session_env(dict(os.environ)), "mismatch"),
        (["install", "ghost", "x"], session, "no kernel named"),
        (["install", "elsewhere"], session, "nothing to install"),
    ]
    for args, env, phrase in cases:
        done = kernelctl(*args, env=env)
        assert done.returncode == 1 and phrase in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_pip_failure_is_reported_and_record_unchanged(session):
    kernel = created("--base", "prgenv-gnu", "--name", "steady", env=session)
    before = (Path(kernel["venv"]) / "kernelctl.toml").read_text()
    done = kernelctl("install", "steady", "no-such-package-kctl", "--no-index", env=session)
    assert done.returncode == 1 and "found no distribution of no-such" in done.stderr
    assert (Path(kernel["venv"]) / "kernelctl.toml").read_text() == before
