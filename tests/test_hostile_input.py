"""Arguments go to the program they were meant for, and odd input never runs past a
check into a traceback: the cases seen on main (c9e8433), one test each."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import BASE_PYTHON
from tests.helpers import assert_user_error, created, kernelctl, session_of


def test_debug_after_arg_and_in_runs_command_belongs_to_the_program(prgenv_image, tmp_path):
    session = session_of(prgenv_image)
    created("--base", "prgenv-gnu", "--name", "k", env=session)
    script = tmp_path / "j.py"
    script.write_text("import sys; print(sys.argv[1:])\n")
    ran = kernelctl("run", "k", "python", script, "--debug", env=session)
    assert ran.returncode == 0, ran.stderr
    assert "['--debug']" in ran.stdout and "running:" not in ran.stderr
    dry = kernelctl("submit", "k", script, "--arg", "--debug", "--dry-run", env=session)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.rstrip().endswith("--debug")


def test_engines_stop_takes_a_name_never_a_path(tmp_path, isolated):
    elsewhere = isolated / ".ipython" / "elsewhere"
    elsewhere.mkdir(parents=True)
    (elsewhere / "kernelctl-engines.json").write_text('{"controller": 1}')
    done = kernelctl("engines", "x/../../elsewhere", "--stop")
    assert_user_error(done, "not a kernel name")
    assert (elsewhere / "kernelctl-engines.json").exists()


def test_adopt_refuses_the_root_and_system_prefixes(isolated):
    for target in ("/", "/usr"):
        assert_user_error(kernelctl("adopt", target, "--install-ipykernel"),
                          "not a Python environment")
    assert not (isolated / ".local/share/jupyter/kernels").exists()


def test_export_to_a_directory_or_a_missing_one(prgenv_image, tmp_path):
    session = session_of(prgenv_image)
    created("--base", "prgenv-gnu", "--name", "k", env=session)
    assert_user_error(kernelctl("export", "k", "-o", tmp_path, env=session), "is a directory")
    assert_user_error(kernelctl("export", "k", "-o", tmp_path / "no" / "k.toml", env=session),
                      "does not exist")


def test_a_locks_path_that_is_a_file(isolated, wheelhouse):
    home = isolated / ".local/share/kernelctl"
    home.mkdir(parents=True)
    (home / "locks").write_text("not a directory")
    done = kernelctl("create", "--base", "system", "--name", "k", "--no-index",
                     "--find-links", wheelhouse)
    assert_user_error(done, "locks", "not a directory")


def test_a_notebook_parameter_that_json_cannot_hold(prgenv_image, tmp_path):
    session = session_of(prgenv_image)
    created("--base", "prgenv-gnu", "--name", "k", env=session)
    nb = tmp_path / "p.ipynb"
    nb.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert_user_error(kernelctl("submit", "k", nb, "-P", "x=NaN", "--dry-run", env=session),
                      "NaN")


def test_a_conda_variable_name_that_is_not_a_shell_name(tmp_path, isolated):
    prefix = tmp_path / "env"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "python3").symlink_to(BASE_PYTHON)
    (prefix / "bin" / "python").symlink_to("python3")
    (prefix / "conda-meta").mkdir()
    (prefix / "conda-meta" / "state").write_text(json.dumps({"env_vars": {"A;touch X;B": "v"}}))
    done = kernelctl("create", "--base", f"conda:{prefix}", cwd=tmp_path)
    assert_user_error(done, "A;touch X;B", "not an environment variable name",
                      str(prefix / "conda-meta" / "state"))
    assert not (tmp_path / "X").exists()
    assert not (isolated / ".local/share/jupyter/kernels").exists()


def test_a_hanging_base_is_said_to_be_waited_for_then_given_up(tmp_path, isolated):
    hang = tmp_path / "python3"
    hang.write_text("#!/bin/sh\nsleep 60\n")
    hang.chmod(0o755)
    done = kernelctl("create", "--base", f"python:{hang}", "--name", "h",
                     env={**os.environ, "KERNELCTL_PROBE_TIMEOUT": "6"})
    assert "still waiting for inspecting the interpreter" in done.stderr
    assert_user_error(done, "did not finish within 6 s", "KERNELCTL_PROBE_TIMEOUT")
    assert not Path(isolated, ".local/share/jupyter/kernels").exists()
