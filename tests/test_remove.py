"""kernelctl remove: deletes what was asked and kernelctl owns, nothing else."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import BASE_PYTHON
from tests.helpers import (
    created,
    foreign_spec,
    kernelctl,
    listed,
    make_venv,
    write_kernel,
)


def user_kernels() -> Path:
    return Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels"


@pytest.fixture
def session(prgenv_image) -> dict:
    return prgenv_image.session_env(dict(os.environ))


def test_removes_kernel_and_its_venv(session):
    kernel = created("--base", "prgenv-gnu", "--name", "doomed", env=session)
    done = kernelctl("remove", "doomed", "--yes", env=session)
    assert done.returncode == 0, done.stderr
    assert not Path(kernel["resource_dir"]).exists() and not Path(kernel["venv"]).exists()
    assert "doomed" not in listed(env=session)


def test_keep_venv_and_dry_run(session):
    kernel = created("--base", "prgenv-gnu", "--name", "kept", env=session)
    dry = kernelctl("remove", "kept", "--dry-run", env=session)
    assert dry.returncode == 0 and "Would remove" in dry.stdout and kernel["venv"] in dry.stdout
    assert Path(kernel["resource_dir"]).exists() and Path(kernel["venv"]).exists()
    assert kernelctl("remove", "kept", "--keep-venv", "--yes", env=session).returncode == 0
    assert not Path(kernel["resource_dir"]).exists() and Path(kernel["venv"]).exists()


def test_refuses_to_prompt_without_a_terminal(session):
    kernel = created("--base", "prgenv-gnu", "--name", "asked", env=session)
    done = kernelctl("remove", "asked", env=session, stdin=open(os.devnull))
    assert done.returncode == 1 and "stdin is not a terminal" in done.stderr
    assert Path(kernel["resource_dir"]).exists() and Path(kernel["venv"]).exists()


def test_foreign_kernel_goes_its_environment_stays(tmp_path):
    venv = tmp_path / "their-venv"
    make_venv(venv, BASE_PYTHON, "--no-seed")
    spec_dir = write_kernel(user_kernels(), "theirs", foreign_spec(str(venv / "bin/python")))
    assert kernelctl("remove", "theirs", "--yes").returncode == 0
    assert not spec_dir.exists() and (venv / "bin" / "python").exists()


def test_venv_without_record_or_of_another_kernel_is_kept(session):
    first = created("--base", "prgenv-gnu", "--name", "first", env=session)
    second = created("--base", "prgenv-gnu", "--name", "second", "--venv", first["venv"] + "-2",
                     env=session)
    # A kernel.json edited to point at another kernel's venv must not take it along.
    spec_path = Path(second["resource_dir"]) / "kernel.json"
    spec_path.write_text(spec_path.read_text().replace(second["venv"], first["venv"]))
    done = kernelctl("remove", "second", "--yes", env=session)
    assert done.returncode == 0 and "kept" in done.stdout
    assert Path(first["venv"]).exists() and Path(first["resource_dir"]).exists()


def test_broken_kernels_are_removable_and_remove_broken(session):
    healthy = created("--base", "prgenv-gnu", "--name", "healthy", env=session)
    for name in ("broken-a", "broken-b"):
        shutil.rmtree(created("--base", "prgenv-gnu", "--name", name, env=session)["venv"])
    foreign = write_kernel(user_kernels(), "foreign-broken", foreign_spec("/nonexistent/python"))
    done = kernelctl("remove", "--broken", "--yes", env=session)
    assert done.returncode == 0, done.stderr
    kernels = listed(env=session)
    assert "broken-a" not in kernels and "broken-b" not in kernels
    assert kernels["healthy"]["status"] == "ok" and Path(healthy["venv"]).exists()
    assert foreign.exists()


@pytest.mark.parametrize("name", ["..", "/", "../kernels", "a/b"])
def test_names_never_escape_the_kernels_directory(name):
    write_kernel(user_kernels(), "bystander", foreign_spec(str(BASE_PYTHON)))
    done = kernelctl("remove", name, "--yes")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert (user_kernels() / "bystander" / "kernel.json").exists()


def test_symlinked_kernel_is_unlinked_not_followed(tmp_path):
    target = write_kernel(tmp_path / "elsewhere", "real", foreign_spec(str(BASE_PYTHON)))
    user_kernels().mkdir(parents=True)
    (user_kernels() / "linked").symlink_to(target)
    assert kernelctl("remove", "linked", "--yes").returncode == 0
    assert not (user_kernels() / "linked").is_symlink()
    assert (target / "kernel.json").exists()


def test_directory_with_foreign_files_is_refused():
    spec_dir = write_kernel(user_kernels(), "mixed", foreign_spec(str(BASE_PYTHON)))
    (spec_dir / "thesis.tex").write_text("precious")
    done = kernelctl("remove", "mixed", "--yes")
    assert done.returncode == 1 and "thesis.tex" in done.stderr
    assert (spec_dir / "thesis.tex").exists()


def test_unknown_and_missing_names():
    assert "no kernel named 'ghost'" in kernelctl("remove", "ghost", "--yes").stderr
    done = kernelctl("remove")
    assert done.returncode == 1 and "--broken" in done.stderr


def test_confirmation_at_a_terminal(session):
    """A person at a terminal answers the question: 'n' keeps, 'y' removes."""
    import pty
    import subprocess
    import sys

    kernel = created("--base", "prgenv-gnu", "--name", "asked-tty", env=session)
    for answer, removed in ((b"n\n", False), (b"y\n", True)):
        primary, secondary = pty.openpty()
        process = subprocess.Popen([sys.executable, "-m", "kernelctl", "remove", "asked-tty"],
                                   env=session, stdin=secondary, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        os.close(secondary)
        os.write(primary, answer)
        process.communicate(timeout=60)
        os.close(primary)
        assert process.returncode == (0 if removed else 1)
        assert Path(kernel["resource_dir"]).exists() is not removed
        assert Path(kernel["venv"]).exists() is not removed
