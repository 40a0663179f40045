"""Each seed site's recipe, run as that site's user would in a JupyterLab terminal, and
its kernel booted from a real JupyterLab server whose environment has none of the base
loaded: the site's packages import, the kernel's own copy of a package wins."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import PY_MM
from tests.helpers import kernelctl, listed, make_venv
from tests.test_jupyterlab import run_cell_in_browser, start_lab

CODE = ("import json, kctl_extra, kctl_shadow; print('seen=' + json.dumps("
        "[kctl_extra.__file__, kctl_shadow.__version__]))")


def pip_config(tmp_path: Path, *links: Path) -> Path:
    """A site's pip configuration naming its wheelhouse (Alliance sets PIP_CONFIG_FILE)."""
    config = tmp_path / "site-pip.conf"
    config.write_text("[global]\nfind-links =\n" + "".join(f"    {link}\n" for link in links))
    return config


def cscs_container(tmp_path, test_wheels) -> tuple:
    import subprocess

    venv = tmp_path / "usr" / "local"
    make_venv(venv, sys.base_prefix + f"/bin/python{PY_MM}")
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-index",
                    "--find-links", test_wheels, "kctl_extra", "kctl_shadow==1.0"], check=True)
    session = {"NVIDIA_PYTORCH_VERSION": "24.05", "NVIDIA_BUILD_ID": "9001",
               "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    # The server runs in the container too: the kernel checks it is the same image.
    return session, session, str(venv)


SITES = {  # recipe: (site, what the site's packages live under)
    "ngc-pytorch": "CSCS",
    "scipy-stack": "Alliance",
    "dkrz-python3": "DKRZ",
    "dkrz-anaconda3": "DKRZ",
    "pdc-anaconda": "PDC",
}


@pytest.mark.parametrize("recipe", list(SITES))
def test_site_recipe_boots_in_jupyterlab(recipe, module_tree, wheelhouse, test_wheels, tmp_path):
    if recipe == "ngc-pytorch":
        session, server_extra, packages_root = cscs_container(tmp_path, test_wheels)
    else:
        session = {"LMOD_CMD": "/usr/share/lmod/lmod/libexec/lmod",
                   "MODULEPATH": str(module_tree.core)}
        server_extra = {}  # JupyterLab started with no module loaded
        packages_root = str({"scipy-stack": module_tree.stack_prefix,
                             "dkrz-python3": module_tree.dkrz_packages}.get(
                                 recipe, module_tree.anaconda_prefix))
    # Offline as on compute nodes: the site's pip configuration names the wheelhouse.
    env = {**os.environ, **session,
           "PIP_CONFIG_FILE": str(pip_config(tmp_path, wheelhouse, test_wheels))}
    listing = json.loads(kernelctl("recipes", "list", "--json", env=env).stdout)
    entry = next(r for r in listing["recipes"] if r["name"] == recipe)
    assert entry["site"] == SITES[recipe] and entry["usable"], entry
    done = kernelctl("create", "--base", recipe, "--name", "site", "-p", "kctl_shadow==2.0",
                     env=env)
    assert done.returncode == 0, done.stderr
    kernel = listed(env=env)["site"]
    assert kernel["status"] == "ok" and kernel["base"]["recipe"] == recipe
    server_env = {**os.environ, **server_extra}
    server_env["PATH"] = f"{Path(sys.executable).parent}:{server_env['PATH']}"
    lab, handle = start_lab(server_env, Path(os.environ["HOME"]))
    try:
        url = handle.write_notebook(recipe, "site", CODE)
        text = run_cell_in_browser(handle, url, "site", "seen=", tmp_path / "lab.png")
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    extra, shadow = json.loads(text.strip().split("seen=", 1)[1])
    assert extra.startswith(packages_root)  # the site's package
    assert shadow == "2.0"  # the kernel's own copy wins over the site's 1.0


def test_alliance_recipe_is_offline_and_says_so(module_tree, tmp_path):
    """Without the site's wheelhouse, an offline recipe fails naming what it lacks."""
    env = {**os.environ, "LMOD_CMD": "/usr/share/lmod/lmod/libexec/lmod",
           "MODULEPATH": str(module_tree.core), "PIP_CONFIG_FILE": os.devnull}
    done = kernelctl("create", "--base", "scipy-stack", env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "found no distribution of ipykernel; it looked in: nowhere" in done.stderr
    assert "pip download --dest WHEELHOUSE" in done.stderr
    wheelhouse = tmp_path / "empty-wheelhouse"
    wheelhouse.mkdir()
    done = kernelctl("create", "--base", "scipy-stack", "--find-links", wheelhouse, env=env)
    assert f"it looked in: {wheelhouse}" in done.stderr
    assert f"pip download --dest {wheelhouse}" in done.stderr
    assert not list((Path(os.environ["KERNELCTL_HOME"]) / "venvs").glob("*"))


def test_recipe_not_usable_here_says_why(module_tree):
    listing = json.loads(kernelctl("recipes", "list", "--json").stdout)  # no Lmod set up
    by_name = {r["name"]: r for r in listing["recipes"]}
    assert not by_name["prgenv-gnu"]["usable"]
    assert "no uenv is mounted" in by_name["prgenv-gnu"]["why_not"]
    assert not by_name["ngc-pytorch"]["usable"]
    shown = kernelctl("recipes", "show", "prgenv-gnu")
    assert shown.returncode == 0 and "usable here: no: no uenv is mounted" in shown.stdout


def test_recipe_override_order_and_invalid_files(tmp_path, isolated):
    """KERNELCTL_RECIPE_PATH beats the user's ~/.config/kernelctl/recipes, which beats
    the shipped recipes; an invalid file is named and breaks nothing else."""
    site_dir, user_dir = tmp_path / "site-recipes", isolated / ".config" / "kernelctl" / "recipes"
    for directory, description in ((site_dir, "the site's"), (user_dir, "the user's")):
        directory.mkdir(parents=True)
        (directory / "scipy-stack.toml").write_text(
            f'name = "scipy-stack"\ndescription = "{description}"\nsite = "X"\n'
            '[base]\nkind = "module"\nmodules = ["python"]\n')
    (user_dir / "mine.toml").write_text('name = "mine"\n[base]\nkind = "module"\nmodules = "python"\n')
    env = {**os.environ, "KERNELCTL_RECIPE_PATH": str(site_dir)}

    def recipes(env) -> dict:
        done = kernelctl("recipes", "list", "--json", env=env)
        assert done.returncode == 0, done.stderr
        return {r["name"]: r for r in json.loads(done.stdout)["recipes"]}

    assert recipes(env)["scipy-stack"]["description"] == "the site's"
    assert recipes(dict(os.environ))["scipy-stack"]["description"] == "the user's"
    mine = recipes(env)["mine"]
    assert not mine["valid"] and str(user_dir / "mine.toml") in mine["error"]
    assert "'base.modules' must be a list" in mine["error"]
    assert "prgenv-gnu" in recipes(env)  # the others are still there
    shown = kernelctl("recipes", "show", "mine", env=env)
    assert shown.returncode == 1 and "is invalid" in shown.stdout
    assert kernelctl("list", env=env).returncode == 0
    done = kernelctl("create", "--base", "mine", env=env)
    assert done.returncode == 1 and "'base.modules' must be a list" in done.stderr
    assert "Traceback" not in done.stderr
    missing = kernelctl("recipes", "show", "nope", env=env)
    assert missing.returncode == 1 and "no recipe named 'nope'" in missing.stderr
