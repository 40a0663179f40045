"""`kernelctl rebuild`: the base moves on (a uenv at version A, then B), the kernel is
made again with the user's packages, checked, and switched; failures change nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import make_image
from tests.helpers import assert_user_error, created, kernel_json, kernelctl, listed, run_in_kernel

CODE = ("import json, sys, kctl_shadow, kctl_extra\n"
        "print(json.dumps({'prefix': sys.prefix, 'shadow': kctl_shadow.__version__,\n"
        "                  'extra': kctl_extra.__file__}))")


@pytest.fixture(scope="module")
def image_b(tmp_path_factory, wheelhouse, test_wheels):
    """prgenv-gnu/25.04:v1: the next version, which also ships kctl_extra 0.3."""
    return make_image(tmp_path_factory.mktemp("prgenv-b"), "prgenv-gnu", "25.04", "v1",
                      "c" * 64, None, ["ipykernel", "kctl_shadow==1.0", "kctl_extra==0.3"],
                      [wheelhouse, test_wheels])


@pytest.fixture
def kernel_on_a(prgenv_image, test_wheels):
    """A kernel on version A with two user packages."""
    session_a = prgenv_image.session_env(dict(os.environ))
    kernel = created("--base", "prgenv-gnu", "--name", "work", "--display-name", "My analysis",
                     "-p", "kctl_shadow==2.0", "-p", "kctl_extra", "--no-index",
                     "--find-links", test_wheels, env=session_a)
    return kernel, session_a


def test_rebuild_on_the_next_base_keeps_packages_name_and_display_name(kernel_on_a, image_b,
                                                                        test_wheels):
    kernel, _ = kernel_on_a
    session_b = image_b.session_env(dict(os.environ))
    assert listed(env=session_b)["work"]["status"] == "mismatch"
    doctor = json.loads(kernelctl("doctor", "work", "--json", env=session_b).stdout)
    health = next(c for c in doctor["checks"] if c["id"] == "kernel.health")
    command = "kernelctl rebuild work --base uenv:prgenv-gnu/25.04:v1"
    assert command in health["hint"]

    done = kernelctl(*command.split()[1:], "--no-index", "--find-links", test_wheels, "--json",
                     env=session_b)
    assert done.returncode == 0, done.stderr
    assert "already has kctl_extra (0.3): not reinstalled" in done.stderr
    rebuilt = json.loads(done.stdout)["rebuilt"][0]
    assert rebuilt["name"] == "work" and rebuilt["display_name"] == "My analysis"
    assert rebuilt["base"]["label"] == "prgenv-gnu/25.04:v1"
    assert rebuilt["venv"] != kernel["venv"] and not os.path.exists(kernel["venv"])
    seen = json.loads(run_in_kernel("work", CODE, session_b))
    assert seen["prefix"] == rebuilt["venv"]
    assert seen["shadow"] == "2.0"  # the user's version, not B's 1.0
    assert seen["extra"].startswith(str(image_b.mount))  # B's copy, not reinstalled
    assert listed(env=session_b)["work"]["status"] == "ok"
    # The record still asks for kctl_extra: a later base without it gets it installed.
    record = (Path(rebuilt["venv"]) / "kernelctl.toml").read_text()
    assert "kctl_extra" in record and "kctl_shadow==2.0" in record
    leftovers = [p.name for p in Path(rebuilt["venv"]).parent.iterdir()]
    assert leftovers == [Path(rebuilt["venv"]).name]


def test_a_failed_rebuild_leaves_the_old_kernel_working_and_no_trace(kernel_on_a, image_b):
    kernel, session_a = kernel_on_a
    session_b = image_b.session_env(dict(os.environ))
    kernels = Path(os.environ["JUPYTER_DATA_DIR"])
    before = sorted(p.name for p in kernels.rglob("*"))
    spec_before = kernel_json(kernel)
    # Offline with no wheelhouse: kctl_shadow==2.0 cannot be installed on B.
    done = kernelctl("rebuild", "work", "--base", "uenv:prgenv-gnu/25.04:v1", "--no-index",
                     env=session_b)
    assert_user_error(done, "kctl_shadow")
    assert sorted(p.name for p in kernels.rglob("*")) == before
    assert kernel_json(kernel) == spec_before
    assert [p.name for p in Path(kernel["venv"]).parent.iterdir()] == ["work"]
    seen = json.loads(run_in_kernel("work", CODE, session_a))
    assert seen["prefix"] == kernel["venv"] and seen["shadow"] == "2.0"


def test_rebuild_without_base_follows_the_session_and_says_so(kernel_on_a, image_b,
                                                              test_wheels):
    session_b = image_b.session_env(dict(os.environ))
    done = kernelctl("rebuild", "--stale", "--no-index", "--find-links", test_wheels,
                     env=session_b)
    assert done.returncode == 0, done.stderr
    assert "is not here; rebuilding on what this session has: --base uenv:prgenv-gnu" \
        in done.stderr
    assert "Rebuilt the kernel 'work' on prgenv-gnu/25.04:v1 (was prgenv-gnu/24.11:v1)" \
        in done.stdout
    assert_user_error(kernelctl("rebuild", "--stale", env=session_b), "no kernelctl kernel is stale")


def test_rebuild_renames_only_the_display_name_kernelctl_wrote(prgenv_image, image_b,
                                                             test_wheels):
    """"Python 3.x (prgenv-gnu/24.11:v1)" would go on naming the old base after a rebuild
    on 25.04: kernelctl's own display name follows the base; the user's stays."""
    created("--base", "prgenv-gnu", "--name", "auto", env=prgenv_image.session_env(dict(os.environ)))
    session_b = image_b.session_env(dict(os.environ))
    done = kernelctl("rebuild", "auto", "--json", "--no-index", "--find-links", test_wheels,
                     env=session_b)
    assert done.returncode == 0, done.stderr
    assert "(prgenv-gnu/25.04:v1)" in json.loads(done.stdout)["rebuilt"][0]["display_name"]


def test_rebuild_refuses_what_is_not_its_own(kernel_on_a, tmp_path):
    from tests.helpers import foreign_spec, write_kernel
    import sys

    _, session_a = kernel_on_a
    write_kernel(Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels", "foreign",
                 foreign_spec(sys.executable))
    assert_user_error(kernelctl("rebuild", "foreign", env=session_a), "not made by kernelctl",
                      "kernelctl adopt foreign")
    assert_user_error(kernelctl("rebuild", "nope", env=session_a), "no kernel named 'nope'")
    assert_user_error(kernelctl("rebuild", env=session_a), "no kernel given")


def test_doctor_fix_rebuilds_a_mismatched_kernel(kernel_on_a, image_b, test_wheels):
    # The site's pip configuration (here in the environment) says where wheels are.
    session_b = {**image_b.session_env(dict(os.environ)), "PIP_NO_INDEX": "1",
                 "PIP_FIND_LINKS": str(test_wheels)}
    dry = kernelctl("doctor", "work", "--dry-run", env=session_b)
    assert "rebuild the kernel work on uenv:prgenv-gnu/25.04:v1" in dry.stdout
    fixed = kernelctl("doctor", "work", "--fix", "--yes", env=session_b)
    assert listed(env=session_b)["work"]["status"] == "ok", fixed.stdout + fixed.stderr
    seen = json.loads(run_in_kernel("work", CODE, session_b))
    assert seen["shadow"] == "2.0"


def test_export_then_create_from_on_another_home_reproduces_the_kernel(
        kernel_on_a, tmp_path, image_b, test_wheels, monkeypatch):
    kernel, session_a = kernel_on_a
    definition = tmp_path / "work.toml"
    done = kernelctl("export", "work", "-o", definition, env=session_a)
    assert done.returncode == 0, done.stderr
    text = definition.read_text()
    assert 'spec = "uenv:prgenv-gnu/24.11:v1"' in text and 'display_name = "My analysis"' in text
    assert kernelctl("export", "work", env=session_a).stdout == text  # stdout by default

    colleague = tmp_path / "colleague"
    colleague.mkdir()
    elsewhere = {**session_a, "HOME": str(colleague),
                 "KERNELCTL_HOME": str(colleague / ".local/share/kernelctl"),
                 "JUPYTER_DATA_DIR": str(colleague / ".local/share/jupyter")}
    done = kernelctl("create", "--from", definition, "--no-index", "--find-links", test_wheels,
                     "--json", env=elsewhere)
    assert done.returncode == 0, done.stderr
    copy = json.loads(done.stdout)
    assert copy["name"] == "work" and copy["display_name"] == "My analysis"
    assert copy["venv"].startswith(str(colleague)) and "differs from" not in done.stderr
    mine = os.environ["JUPYTER_DATA_DIR"]
    monkeypatch.setenv("JUPYTER_DATA_DIR", elsewhere["JUPYTER_DATA_DIR"])  # their Jupyter
    seen = json.loads(run_in_kernel("work", CODE, elsewhere))
    assert seen["shadow"] == "2.0" and seen["prefix"] == copy["venv"]
    monkeypatch.setenv("JUPYTER_DATA_DIR", mine)

    # On another base, with the name overridden: it says what came out differently.
    session_b = {**image_b.session_env(dict(os.environ))}
    done = kernelctl("create", "--from", definition, "--base", "uenv:prgenv-gnu/25.04:v1",
                     "--name", "work-b", "--no-index", "--find-links", test_wheels, env=session_b)
    assert done.returncode == 0, done.stderr
    assert "differs from" in done.stderr and "base: prgenv-gnu/25.04:v1 here" in done.stderr


def test_create_from_a_bad_definition_says_which_key(tmp_path, prgenv_image):
    session = prgenv_image.session_env(dict(os.environ))
    bad = tmp_path / "bad.toml"
    for text, phrase in [("format = 1\nname = 'x'\n", "'display_name' must be a string (it is missing)"),
                         ("format = 2\n", "format 2"),
                         ("not toml [", "is not a kernel definition"),
                         ('format = 1\nname = "x"\ndisplay_name = "x"\nflavour = "julia"\n'
                          '[base]\nspec = "julia"\n', "defines a Julia kernel")]:
        bad.write_text(text)
        assert_user_error(kernelctl("create", "--from", bad, env=session), phrase)
    assert_user_error(kernelctl("create", "--from", tmp_path / "none.toml", env=session),
                      "does not exist")
    assert not (Path(os.environ["KERNELCTL_HOME"]) / "venvs").exists() or \
        not list((Path(os.environ["KERNELCTL_HOME"]) / "venvs").iterdir())


def test_doctor_fix_never_rebuilds_away_the_users_files(kernel_on_a, image_b, test_wheels):
    """doctor --fix's rebuild repair meets NOTES.txt and mydata/ in the kernel dir:
    refused with the files named, the kernel and every file as they were."""
    kernel, _ = kernel_on_a
    resource_dir = Path(kernel["resource_dir"])
    (resource_dir / "NOTES.txt").write_text("mine")
    (resource_dir / "mydata").mkdir()
    (resource_dir / "mydata" / "x.csv").write_text("1\n")
    session_b = {**image_b.session_env(dict(os.environ)), "PIP_NO_INDEX": "1",
                 "PIP_FIND_LINKS": str(test_wheels)}
    fixed = kernelctl("doctor", "work", "--fix", "--yes", env=session_b)
    assert "Traceback" not in fixed.stderr
    assert "NOTES.txt" in fixed.stdout + fixed.stderr
    assert (resource_dir / "NOTES.txt").read_text() == "mine"
    assert (resource_dir / "mydata" / "x.csv").read_text() == "1\n"
    assert kernel_json(kernel)["metadata"]["kernelctl"]["venv"] == kernel["venv"]
    assert os.path.isdir(kernel["venv"])
