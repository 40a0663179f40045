"""`--base module:...` through the real Lmod, on a modulefile tree in the seed sites'
shapes (tests/modulefiles.py): the kernel loads its pinned modules when it starts, in a
server that has none of them loaded."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.helpers import (
    assert_user_error,
    created,
    execute_in_kernel,
    kernel_json,
    kernelctl,
    listed,
    run_in_kernel,
)

CODE = ("import json, os, sys, kctl_extra, kctl_shadow\n"
        "print(json.dumps({'executable': sys.executable, 'extra': kctl_extra.__file__,\n"
        "                  'shadow': kctl_shadow.__version__,\n"
        "                  'loaded': os.environ.get('LOADEDMODULES', ''),\n"
        "                  'root': os.environ.get('EBROOTSCIPYMINSTACK') or\n"
        "                          os.environ.get('DKRZ_PYTHON_ROOT'),\n"
        "                  'path0': os.environ['PATH'].split(os.pathsep)[0]}))")
ALLIANCE = "module:StdEnv/2023,python,scipy-stack"


def server_env() -> dict:
    """A Jupyter server's environment with no module loaded and no Lmod set up."""
    assert "MODULEPATH" not in os.environ and "LOADEDMODULES" not in os.environ
    return dict(os.environ)


def test_alliance_modules_with_ebpythonprefixes(module_tree, wheelhouse, test_wheels):
    env = module_tree.session_env(dict(os.environ))
    done = kernelctl("create", "--base", ALLIANCE, "--name", "alliance", "-p", "kctl_shadow==2.0",
                     "--no-index", "--find-links", wheelhouse, "--find-links", test_wheels,
                     env=env)
    assert done.returncode == 0, done.stderr
    pinned = "StdEnv/2023,python/3.11.5,scipy-stack/2023b"
    assert f"module:{pinned}" in done.stdout  # says what it built on, versions pinned
    kernel = listed(env=env)["alliance"]
    assert kernel["status"] == "ok"
    assert kernel["base"]["kind"] == "module" and kernel["base"]["modules"] == pinned
    seen = json.loads(run_in_kernel("alliance", CODE, server_env()))
    venv = Path(kernel["venv"])
    assert seen["executable"] == str(venv / "bin" / "python")
    assert seen["extra"].startswith(str(module_tree.stack_prefix))  # via EBPYTHONPREFIXES
    assert seen["shadow"] == "2.0"  # the venv's copy wins over scipy-stack's 1.0
    assert seen["loaded"] == pinned.replace(",", ":")
    assert seen["root"] == str(module_tree.stack_prefix)
    assert seen["path0"] == str(venv / "bin")
    # Nothing of the modules is frozen into kernel.json: they load at launch.
    assert "EBROOTSCIPYMINSTACK" not in kernel_json(kernel)["env"]
    doctor = kernelctl("doctor", "alliance", env=server_env())
    assert doctor.returncode == 0, doctor.stdout


def test_dkrz_module_on_pythonpath_is_shadow_fixed(module_tree, wheelhouse, test_wheels):
    env = module_tree.session_env(dict(os.environ))
    created("--base", "module:python3", "--name", "dkrz", "-p", "kctl_shadow==2.0",
            "--no-index", "--find-links", wheelhouse, "--find-links", test_wheels, env=env)
    seen = json.loads(run_in_kernel("dkrz", CODE, server_env()))
    assert seen["extra"].startswith(str(module_tree.dkrz_packages))
    assert seen["shadow"] == "2.0"  # PYTHONPATH's 1.0 would win without the guard
    assert seen["loaded"] == "python3/2023.01"


def test_unknown_module_names_close_ones_and_leaves_nothing(module_tree, isolated):
    env = module_tree.session_env(dict(os.environ))
    done = kernelctl("create", "--base", "module:StdEnv/2023,pyhton", env=env)
    assert_user_error(done, "Lmod does not know the module pyhton", "python/3.11.5")
    done = kernelctl("create", "--base", "module:pythn3", env=env)
    assert_user_error(done, "pythn3", "python3")
    assert not (isolated / ".local/share/jupyter/kernels").exists()
    assert not list((isolated / ".local/share/kernelctl").glob("venvs/*"))


def test_modules_without_python_are_refused(module_tree):
    env = module_tree.session_env(dict(os.environ))
    assert_user_error(kernelctl("create", "--base", "module:cdo", env=env),
                      "do not provide python3", "module:python")
    for bad in ("module:", "module:a b", "module:python//3", "module:-x"):
        assert_user_error(kernelctl("create", "--base", bad, env=env), "module")


def test_without_lmod_says_where_it_looked(module_tree):
    env = {**module_tree.session_env(dict(os.environ)), "LMOD_CMD": "/nonexistent/lmod"}
    # Debian's Lmod is at a usual place, so it is still found; a broken LMOD_CMD is no
    # reason to fail when Lmod is where sites put it.
    assert kernelctl("create", "--base", "module:cdo", env=env).returncode == 1
    from kernelctl import lmod

    lmod_places = lmod.USUAL_PLACES
    try:
        lmod.USUAL_PLACES = ()
        try:
            lmod.find_lmod({"LMOD_CMD": "/nonexistent/lmod"})
        except lmod.KernelctlError as exc:
            assert "Lmod is not available" in exc.message and "LMOD_CMD" in exc.hint
        else:
            raise AssertionError("no error without Lmod")
    finally:
        lmod.USUAL_PLACES = lmod_places


def test_retired_module_is_broken_and_explains_itself(module_tree, tmp_path, wheelhouse):
    tree_copy = tmp_path / "modules"
    (tree_copy / "mymod").mkdir(parents=True)
    modulefile = tree_copy / "mymod" / "1.0.lua"
    modulefile.write_text(f'prepend_path("PATH", "{module_tree.python_prefix / "bin"}")\n'
                          'setenv("MYMOD", "1")\n')
    env = {**dict(os.environ), "LMOD_CMD": "/usr/share/lmod/lmod/libexec/lmod",
           "MODULEPATH": str(tree_copy)}
    created("--base", "module:mymod", "--name", "retired", "--no-index", "--find-links",
            wheelhouse, env=env)
    assert run_in_kernel("retired", "import os; print(os.environ['MYMOD'])", server_env()) == "1\n"
    modulefile.unlink()
    kernel = listed(env=env)["retired"]
    assert kernel["status"] == "broken" and "mymod/1.0" in kernel["problems"][0]
    doctor = kernelctl("doctor", "retired", env=env)
    assert doctor.returncode == 1 and "modulefile" in doctor.stdout
    reply, printed = execute_in_kernel("retired", "print(1)", server_env())
    assert reply["status"] == "error" and "cannot be loaded" in printed


def test_modules_already_loaded_in_the_terminal(module_tree, wheelhouse):
    """A user who ran `module load ...` first: the same modules named again still give
    the base (kernelctl loads them from a clean slate, as the kernel will)."""
    from kernelctl import lmod

    env = module_tree.session_env(dict(os.environ))
    terminal = lmod.load(lmod.find_lmod(env), ["StdEnv/2023", "python", "python3"], env).apply(env)
    assert terminal["LOADEDMODULES"].startswith("StdEnv/2023:python/3.11.5")
    assert str(module_tree.dkrz_packages) in terminal["PYTHONPATH"]
    created("--base", ALLIANCE, "--name", "again", "--no-index", "--find-links", wheelhouse,
            env=terminal)
    kernel = listed(env=terminal)["again"]
    assert kernel["base"]["modules"] == "StdEnv/2023,python/3.11.5,scipy-stack/2023b"
    seen = json.loads(run_in_kernel("again", CODE, server_env()))
    assert "python3" not in seen["loaded"]  # only what the kernel names, not the terminal's
    assert seen["extra"].startswith(str(module_tree.stack_prefix))
    frozen = kernel_json(kernel)["env"]  # nothing of the terminal's other modules
    assert str(module_tree.dkrz_packages.parent) not in frozen["PYTHONPATH"] + frozen["PATH"]


def test_default_base_is_the_loaded_modules(module_tree, wheelhouse):
    from kernelctl import lmod

    env = module_tree.session_env(dict(os.environ))
    terminal = lmod.load(lmod.find_lmod(env), ["python3"], env).apply(env)
    done = kernelctl("create", "--json", "--name", "dkrz-default", "--no-index", "--find-links",
                     wheelhouse, env=terminal)
    assert done.returncode == 0, done.stderr
    assert "these modules are loaded and provide python3: python3/2023.01" in done.stderr
    assert json.loads(done.stdout)["base"]["modules"] == "python3/2023.01"
    # Loaded modules without a Python are passed over, and that is said.
    terminal = lmod.load(lmod.find_lmod(env), ["cdo"], env).apply(env)
    done = kernelctl("create", "--json", "--name", "no-python-modules", "--no-index",
                     "--find-links", wheelhouse, env=terminal)
    assert done.returncode == 0, done.stderr
    assert "the loaded modules were passed over" in done.stderr
    assert json.loads(done.stdout)["base"]["kind"] == "python"
