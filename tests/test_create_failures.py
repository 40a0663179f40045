"""kernelctl create when things go wrong: clear errors, and nothing left behind."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BASE_PYTHON, SlowIndex
from tests.helpers import assert_user_error, created, kernel_json, kernelctl, leftovers


def test_pip_failure_leaves_nothing(prgenv_image, isolated):
    session = prgenv_image.session_env(dict(os.environ))
    done = kernelctl("create", "--base", "prgenv-gnu", "-p", "no-such-package-kctl",
                     "--no-index", env=session)
    assert_user_error(done, "found no distribution of no-such-package-kctl", "pip download")
    assert leftovers(isolated) == []


def test_disk_full_mid_install_leaves_nothing(prgenv_image, test_wheels, isolated):
    """A 1 MiB file-size limit makes pip's write of a 4 MiB file fail (EFBIG), as a full
    quota would, halfway through the environment."""

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    session = prgenv_image.session_env(dict(os.environ))
    done = kernelctl("create", "--base", "prgenv-gnu", "-p", "kctl_big", "--no-index",
                     "--find-links", test_wheels, env=session, preexec_fn=small_files)
    assert_user_error(done, "disk space or quota", "quota")
    assert leftovers(isolated) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_interrupted_create_leaves_nothing(prgenv_image, slow_index, isolated, sig):
    session = {**prgenv_image.session_env(dict(os.environ)), "PIP_INDEX_URL": slow_index}
    process = subprocess.Popen(
        [sys.executable, "-m", "kernelctl", "create", "--base", "prgenv-gnu", "-p", "kctl_extra"],
        env=session, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert SlowIndex.asked.wait(60), "pip never reached the index"
    assert list((isolated / ".local/share/kernelctl/venvs").iterdir()), "no venv under way"
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "Traceback" not in stderr and "nothing was changed" in stderr
    assert leftovers(isolated) == []


def test_no_uenv_mounted(isolated):
    done = kernelctl("create", "--base", "prgenv-gnu")
    assert_user_error(done, "no uenv is mounted", "uenv start prgenv-gnu --view=default")
    assert leftovers(isolated) == []


def test_other_uenv_mounted(icon_image, isolated):
    done = kernelctl("create", "--base", "prgenv-gnu",
                     env=icon_image.session_env(dict(os.environ)))
    assert_user_error(done, "icon", "not prgenv-gnu", "uenv 'prgenv-gnu'")
    assert leftovers(isolated) == []


def test_other_version_mounted(prgenv_image, isolated):
    done = kernelctl("create", "--base", "uenv:prgenv-gnu/25.6:v1",
                     env=prgenv_image.session_env(dict(os.environ)))
    assert_user_error(done, "version 24.11, not 25.6", "uenv start prgenv-gnu/25.6:v1")


def test_view_without_python(prgenv_image):
    session = prgenv_image.session_env(dict(os.environ))
    session["UENV_VIEW"] = f"{prgenv_image.mount}:prgenv-gnu:modules"
    done = kernelctl("create", "--base", "prgenv-gnu", env=session)
    assert_user_error(done, "view(s) modules, not 'default'", "--view=default")


@pytest.mark.parametrize("name", ["Bad Name", "../escape", ".", "..", "a/b", "x" * 0 + "UPPER"])
def test_names_jupyter_would_reject(prgenv_image, isolated, name):
    done = kernelctl("create", "--base", "prgenv-gnu", "--name", name,
                     env=prgenv_image.session_env(dict(os.environ)))
    assert_user_error(done, "not a kernel name Jupyter accepts", "--name")
    assert leftovers(isolated) == []


@pytest.mark.parametrize("base, phrase", [
    ("no-such-recipe", "unknown base 'no-such-recipe'"),
    ("python:relative/python", "absolute path"),
    ("python:/nonexistent/python3", "absolute path"),
    ("python:/bin/true", "does not run as a Python interpreter"),
    ("uenv:bad label!", "not a uenv label"),
])
def test_bad_bases(base, phrase, isolated):
    assert_user_error(kernelctl("create", "--base", base), phrase)
    assert leftovers(isolated) == []


def test_missing_requirements_file(isolated, tmp_path):
    done = kernelctl("create", "--base", f"python:{BASE_PYTHON}", "-r", tmp_path / "nope.txt")
    assert_user_error(done, "nope.txt does not exist")


def test_existing_kernel_is_kept_unless_forced(prgenv_image, test_wheels):
    session = prgenv_image.session_env(dict(os.environ))
    first = created("--base", "prgenv-gnu", env=session)
    before = kernel_json(first)
    again = kernelctl("create", "--base", "prgenv-gnu", env=session)
    assert_user_error(again, "already exists", "--force")
    assert kernel_json(first) == before
    forced = created("--base", "prgenv-gnu", "--force", "-p", "kctl_extra", "--no-index",
                     "--find-links", test_wheels, env=session)
    assert kernel_json(forced)["metadata"]["kernelctl"]["created"]
    assert list(Path(forced["venv"]).glob("lib/python*/site-packages/kctl_extra"))
    assert not [p for p in Path(forced["venv"]).parent.iterdir() if "kernelctl-old" in p.name]


def test_failed_force_keeps_the_old_kernel_and_venv(prgenv_image):
    session = prgenv_image.session_env(dict(os.environ))
    first = created("--base", "prgenv-gnu", env=session)
    before = kernel_json(first)
    record = (Path(first["venv"]) / "kernelctl.toml").read_text()
    done = kernelctl("create", "--base", "prgenv-gnu", "--force", "-p", "no-such-package-kctl",
                     "--no-index", env=session)
    assert_user_error(done, "found no distribution of no-such-package-kctl")
    assert kernel_json(first) == before
    assert (Path(first["venv"]) / "kernelctl.toml").read_text() == record
    assert (Path(first["venv"]) / "bin" / "python").exists()


def test_foreign_directory_is_never_touched(prgenv_image, tmp_path):
    theirs = tmp_path / "their-env"
    theirs.mkdir()
    (theirs / "precious.txt").write_text("keep me")
    done = kernelctl("create", "--base", "prgenv-gnu", "--venv", theirs, "--force",
                     env=prgenv_image.session_env(dict(os.environ)))
    assert_user_error(done, "not made by kernelctl")
    assert sorted(p.name for p in theirs.iterdir()) == ["precious.txt"]


def test_leftover_of_a_killed_create_is_replaced(prgenv_image, isolated):
    venv = isolated / ".local/share/kernelctl/venvs/prgenv-gnu-24.11-v1"
    venv.mkdir(parents=True)
    (venv / ".kernelctl-incomplete").write_text("12345\n")
    (venv / "half-made").write_text("")
    kernel = created("--base", "prgenv-gnu", env=prgenv_image.session_env(dict(os.environ)))
    assert not (Path(kernel["venv"]) / "half-made").exists()


def test_concurrent_creates_of_one_name(prgenv_image):
    session = prgenv_image.session_env(dict(os.environ))
    argv = [sys.executable, "-m", "kernelctl", "create", "--base", "prgenv-gnu"]
    processes = [subprocess.Popen(argv, env=session, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(120), p.stderr.read()) for p in processes]
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0 and codes[1] != 0, results
    loser = next(err for code, err in results if code != 0)
    assert "right now" in loser or "already exists" in loser
    assert "Traceback" not in loser


def test_debug_shows_the_traceback(isolated):
    done = kernelctl("--debug", "create", "--base", "no-such-recipe")
    assert done.returncode == 1 and "Traceback" in done.stderr


def test_help_works_and_does_not_import_heavy_modules():
    code = ("import sys; from typer.testing import CliRunner; from kernelctl.cli import app\n"
            "for args in (['--help'], *[[c, '--help'] for c in "
            "('create', 'list', 'show', 'remove', 'install', 'julia')]):\n"
            "    result = CliRunner().invoke(app, args)\n"
            "    assert result.exit_code == 0 and 'Usage' in result.output, (args, result.output)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('jupyter_client', 'zmq', 'virtualenv', 'jupyter_core')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
