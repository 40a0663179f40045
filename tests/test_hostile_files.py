"""One corpus of hostile files, through every parser kernelctl has: deep nesting, wrong
types (a bool is no integer), huge, NaN, binary. Each is a one-line error that names
the file, a non-zero exit and nothing half-made; a file a command does not need never
breaks it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import BASE_PYTHON
from tests.helpers import kernelctl, listed

TOML = {
    "deep": "x = " + "[" * 20000 + "]" * 20000 + "\n",
    "wrong-type": "format = true\n",
    "huge": "# " + "x" * (2 << 20) + "\n",
    "nan": "format = nan\n",
    "binary": b"\xff\xfe\x00\x01garbage",
}
JSON = {
    "deep": "[" * 200000 + "]" * 200000,
    # Each parser's own wrong type: conda's env_vars, env.json's views, a notebook's cells.
    "wrong-type": '{"env_vars": {"A": true}, "views": 1, "cells": 1}',
    "huge": '{"A": "' + "x" * (17 << 20) + '"}',
    "nan": '{"A": NaN}',
    "binary": b"\xff\xfe\x00\x01garbage",
}


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def assert_one_line_error(done, path: Path) -> None:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, done.stderr
    assert str(path) in errors[0] or path.name in errors[0], done.stderr


@pytest.mark.parametrize("case", sorted(TOML))
def test_a_recipe(case, tmp_path, isolated):
    recipes = tmp_path / "recipes"
    bad = write(recipes / "bad.toml", TOML[case])
    env = {**os.environ, "KERNELCTL_RECIPE_PATH": str(recipes)}
    assert_one_line_error(kernelctl("create", "--base", "bad", env=env), bad)
    # One bad recipe never breaks the others.
    shown = kernelctl("recipes", "list", "--json", env=env)
    assert shown.returncode == 0 and "Traceback" not in shown.stderr
    entries = {r["name"]: r for r in json.loads(shown.stdout)["recipes"]}
    assert entries["bad"]["valid"] is False and entries["prgenv-gnu"]["valid"] is True


@pytest.mark.parametrize("case", sorted(TOML))
def test_a_definition(case, tmp_path, isolated):
    bad = write(tmp_path / "kernel.toml", TOML[case])
    assert_one_line_error(kernelctl("create", "--from", bad), bad)
    assert not (isolated / ".local/share/jupyter/kernels").exists()


def test_a_definition_cannot_smuggle_a_pip_option(tmp_path, isolated):
    bad = write(tmp_path / "kernel.toml", 'format = 1\nname = "x"\ndisplay_name = "X"\n'
                'flavour = "python"\n[base]\nspec = "system"\n[packages]\n'
                'requested = ["--index-url=http://evil.example/simple"]\n')
    assert_one_line_error(kernelctl("create", "--from", bad), bad)


@pytest.mark.parametrize("case", sorted(JSON))
def test_a_notebook(case, tmp_path, isolated):
    bad = write(tmp_path / "nb.ipynb", JSON[case])
    assert_one_line_error(kernelctl("submit", "any", bad, "--dry-run"), bad)


@pytest.mark.parametrize("case", sorted(JSON))
def test_conda_env_vars(case, tmp_path, isolated):
    prefix = tmp_path / "env"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "python3").symlink_to(BASE_PYTHON)
    (prefix / "bin" / "python").symlink_to("python3")
    bad = write(prefix / "conda-meta" / "state", JSON[case])
    assert_one_line_error(kernelctl("create", "--base", f"conda:{prefix}"), bad)
    assert not (isolated / ".local/share/jupyter/kernels").exists()


@pytest.mark.parametrize("case", sorted(TOML))
def test_an_environment_record(case, tmp_path, isolated, prgenv_image):
    from tests.helpers import created, session_of

    session = session_of(prgenv_image)
    kernel = created("--base", "prgenv-gnu", "--name", "k", env=session)
    bad = write(Path(kernel["venv"]) / "kernelctl.toml", TOML[case])
    shown = kernelctl("show", "k", env=session)
    assert "Traceback" not in shown.stderr
    assert_one_line_error(kernelctl("install", "k", "x", env=session), bad)


@pytest.mark.parametrize("case", sorted(JSON))
def test_a_kernel_json_is_listed_as_broken_with_the_reason(case, isolated):
    write(isolated / ".local/share/jupyter/kernels/bad/kernel.json", JSON[case])
    done = kernelctl("list", "--json")
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert listed()["bad"]["status"] == "broken"


@pytest.mark.parametrize("case", sorted(JSON))
def test_a_uenv_env_json(case, tmp_path, isolated, prgenv_image):
    from tests.helpers import session_of

    session = session_of(prgenv_image)
    meta = Path(prgenv_image.mount) / "meta" / "env.json"
    saved = meta.read_bytes()
    try:
        write(meta, JSON[case])
        done = kernelctl("create", "--base", "uenv:prgenv-gnu", "--name", "u", env=session)
        if done.returncode == 0:  # the view's python is found without env.json's help
            return
        assert_one_line_error(done, meta)
    finally:
        meta.write_bytes(saved)


def test_an_env_json_that_is_a_list_is_named(tmp_path, isolated, prgenv_image):
    from tests.helpers import session_of

    meta = Path(prgenv_image.mount) / "meta" / "env.json"
    saved = meta.read_bytes()
    try:
        meta.write_text("[]")
        done = kernelctl("create", "--base", "uenv:prgenv-gnu", "--name", "u",
                         env=session_of(prgenv_image))
        assert_one_line_error(done, meta)
        assert "not a JSON object" in done.stderr
    finally:
        meta.write_bytes(saved)
