"""kernelctl create: real venvs, real pip, real kernels started through jupyter_client."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BASE_PYTHON, PY_MM
from tests.helpers import (
    PROBE_CODE,
    created,
    kernel_json,
    kernelctl,
    make_venv,
    run_in_kernel,
    session_of,
    tomllib,
)


def offline(*dirs) -> list:
    return ["--no-index", *[f"--find-links={d}" for d in dirs]]


def test_prgenv_kernel_runs_in_venv_and_venv_copy_wins(prgenv_image, test_wheels):
    session = prgenv_image.session_env(dict(os.environ))
    kernel = created("--base", "prgenv-gnu", "-p", "kctl_shadow==2.0", *offline(test_wheels),
                     env=session)
    assert kernel["name"] == "prgenv-gnu-24.11-v1"
    assert kernel["display_name"] == f"Python {PY_MM} (prgenv-gnu/24.11:v1)"
    venv = Path(kernel["venv"])
    # The JupyterLab server of that session has the uenv's PYTHONPATH (1.0 first).
    seen = json.loads(run_in_kernel(kernel["name"], PROBE_CODE, session))
    assert seen["prefix"] == str(venv)
    assert seen["executable"] == str(venv / "bin" / "python")
    assert seen["shadow"] == "2.0"
    assert seen["shadow_file"].startswith(str(venv))


def test_kernel_json_is_absolute_complete_and_bound_to_the_base(prgenv_image, test_wheels):
    session = prgenv_image.session_env(dict(os.environ))
    kernel = created("--base", "uenv:prgenv-gnu", env=session)
    spec = kernel_json(kernel)
    venv = Path(kernel["venv"])
    launcher = Path(kernel["resource_dir"]) / "kernelctl-launch.sh"
    assert spec["argv"] == ["/bin/sh", str(launcher), "-f", "{connection_file}"]
    # The launcher runs the venv's absolute interpreter (never a bare `python`).
    assert f"python={venv / 'bin' / 'python'}\n" in launcher.read_text()
    # -Xfrozen_modules=off (the debugger's wish) exists from Python 3.11 on.
    flags = "-Xfrozen_modules=off " if sys.version_info >= (3, 11) else ""
    assert f'exec "$python" {flags}-m ipykernel_launcher "$@"' in launcher.read_text()
    env = spec["env"]
    assert env["VIRTUAL_ENV"] == str(venv)
    assert env["PATH"].split(":")[0] == str(venv / "bin")
    site = str(venv / "lib" / f"python{PY_MM}" / "site-packages")
    assert env["PYTHONPATH"].split(":") == [site, str(prgenv_image.site_packages)]
    for value in env.values():
        assert "$" not in value and "" not in value.split(":")
    binding = spec["metadata"]["kernelctl"]
    assert binding["kind"] == "uenv" and binding["name"] == "prgenv-gnu"
    assert (binding["version"], binding["tag"], binding["view"]) == ("24.11", "v1", "default")
    assert binding["digest"] == prgenv_image.digest
    assert binding["mount"] == str(prgenv_image.mount)
    assert binding["python"] == str(prgenv_image.view_root / "bin" / "python3")
    assert binding["venv"] == str(venv) and binding["kernelctl_version"] and binding["created"]
    assert {p.name for p in Path(kernel["resource_dir"]).iterdir()} >= {
        "kernel.json", "logo-32x32.png", "logo-64x64.png"}
    assert kernel["base"]["digest"] == prgenv_image.digest


def test_venv_on_a_base_with_ipykernel_is_small_and_reuses_it(prgenv_image):
    session = prgenv_image.session_env(dict(os.environ))
    kernel = created("--base", "prgenv-gnu", env=session)
    venv = Path(kernel["venv"])
    files = [p for p in venv.rglob("*") if not p.is_dir()]
    assert len(files) <= 50, files
    assert not list(venv.rglob("ipykernel"))
    assert "1 + 1 = 2" in run_in_kernel(kernel["name"], "print('1 + 1 =', 1 + 1)", session)


def test_venv_python_and_pip_from_a_shell_prefer_the_venv(prgenv_image, test_wheels, tmp_path):
    session = prgenv_image.session_env(dict(os.environ))
    venv = Path(created("--base", "prgenv-gnu", "-p", "kctl_shadow==2.0",
                        *offline(test_wheels), env=session)["venv"])
    # Plain shell, srun or batch: the uenv's PYTHONPATH is set, nothing else is.
    shell = subprocess.run([venv / "bin" / "python", "-c", PROBE_CODE], env=session,
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert json.loads(shell.stdout)["shadow"] == "2.0"
    # pip in the activated venv installs into the venv (the venv has no pip of its own).
    script = (f". {venv}/bin/activate && pip install --quiet --no-index "
              f"--find-links {test_wheels} kctl_extra && "
              "python -c 'import kctl_extra; print(kctl_extra.__file__)'")
    done = subprocess.run(["bash", "-c", script], env=session, capture_output=True,
                          text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(venv / "lib"))


def test_user_pythonpath_entries_stay_first(prgenv_image, test_wheels, tmp_path):
    session = prgenv_image.session_env(dict(os.environ))
    venv = Path(created("--base", "prgenv-gnu", "-p", "kctl_shadow==2.0",
                        *offline(test_wheels), env=session)["venv"])
    mine = tmp_path / "mycode"
    (mine / "kctl_shadow").mkdir(parents=True)
    (mine / "kctl_shadow" / "__init__.py").write_text("__version__ = 'dev'\n")
    env = {**session, "PYTHONPATH": f"{mine}:{session['PYTHONPATH']}"}
    done = subprocess.run([venv / "bin" / "python", "-c", PROBE_CODE], env=env,
                          capture_output=True, text=True, check=True, cwd=tmp_path)
    assert json.loads(done.stdout)["shadow"] == "dev"


def test_python_base_without_ipykernel_installs_it_offline(wheelhouse):
    kernel = created("--base", f"python:{BASE_PYTHON}", "--name", "plain", *offline(wheelhouse))
    assert kernel["display_name"] == f"Python {PY_MM} ({BASE_PYTHON}) · plain"
    venv = Path(kernel["venv"])
    assert list(venv.glob("lib/python*/site-packages/ipykernel"))
    out = run_in_kernel("plain", "import sys; print(sys.prefix)", dict(os.environ))
    assert out.strip() == str(venv)


def test_kernel_does_not_depend_on_kernelctls_environment(prgenv_image):
    session = prgenv_image.session_env(dict(os.environ))
    kernel = created("--base", "prgenv-gnu", env=session)
    text = (Path(kernel["resource_dir"]) / "kernel.json").read_text()
    import sys
    if sys.prefix != sys.base_prefix:
        assert sys.prefix not in text
        assert sys.prefix not in (Path(kernel["resource_dir"]) / "kernelctl-launch.sh").read_text()
    out = run_in_kernel(kernel["name"],
                        "import importlib.util; print(importlib.util.find_spec('kernelctl'))",
                        session)
    assert out.strip() == "None"


def test_json_output_is_the_kernel_object(prgenv_image):
    session = prgenv_image.session_env(dict(os.environ))
    kernel = created("--base", "prgenv-gnu", "--name", "mine", "--display-name", "My env",
                     env=session)
    assert set(kernel) == {"version", "name", "display_name", "language", "resource_dir",
                           "managed", "status", "problems", "base", "venv", "visible",
                           "belongs_to", "slurm"}
    assert kernel["version"] == 1 and kernel["slurm"] is None  # a plain kernel
    assert (kernel["name"], kernel["display_name"], kernel["language"]) == (
        "mine", "My env", "python")
    assert kernel["managed"] is True and kernel["status"] == "ok" and kernel["problems"] == []


def test_human_output_says_how_to_use_it_and_stays_quiet_when_piped(prgenv_image):
    session = prgenv_image.session_env(dict(os.environ))
    done = kernelctl("create", "--base", "prgenv-gnu", env=session)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "pip install" in done.stdout and "Python" in done.stdout


def test_venv_and_prefix_options(prgenv_image, tmp_path):
    session = prgenv_image.session_env(dict(os.environ))
    kernel = created("--base", "prgenv-gnu", "--venv", tmp_path / "envs" / "a",
                     "--prefix", tmp_path / "prefix", env=session)
    assert kernel["venv"] == str(tmp_path / "envs" / "a")
    assert kernel["resource_dir"] == str(tmp_path / "prefix/share/jupyter/kernels/prgenv-gnu-24.11-v1")
    assert (tmp_path / "envs" / "a" / "kernelctl.toml").is_file()


def test_pip_config_is_honoured(prgenv_image, test_wheels, tmp_path):
    config = tmp_path / "pip.conf"
    config.write_text(f"[global]\nno-index = true\nfind-links = {test_wheels}\n")
    session = {**prgenv_image.session_env(dict(os.environ)), "PIP_CONFIG_FILE": str(config)}
    kernel = created("--base", "prgenv-gnu", "-p", "kctl_extra", env=session)
    assert list(Path(kernel["venv"]).glob("lib/python*/site-packages/kctl_extra"))


def test_requirements_file_and_record(prgenv_image, test_wheels, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("kctl_extra==0.3\n")
    session = prgenv_image.session_env(dict(os.environ))
    kernel = created("--base", "prgenv-gnu", "-r", requirements, "-p", "kctl_shadow==2.0",
                     *offline(test_wheels), env=session)
    venv = Path(kernel["venv"])
    assert list(venv.glob("lib/python*/site-packages/kctl_extra"))
    record = tomllib.loads((venv / "kernelctl.toml").read_text())
    assert record["packages"]["requested"] == ["kctl_shadow==2.0"]
    assert record["packages"]["requirement_files"] == [str(requirements)]
    assert record["base"]["digest"] == prgenv_image.digest
    assert not (venv / ".kernelctl-incomplete").exists()


def test_progress_is_shown_on_a_terminal(prgenv_image):
    import pty
    import sys

    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "kernelctl", "create", "--base", "prgenv-gnu"],
        env=prgenv_image.session_env(dict(os.environ)), stdout=subprocess.PIPE,
        stderr=secondary, stdin=subprocess.DEVNULL)
    os.close(secondary)
    process.wait(timeout=120)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    assert process.returncode == 0
    assert b"Inspecting the base prgenv-gnu" in shown and b"Creating the environment" in shown
    assert b"Writing the kernel" in shown


def test_kernel_survives_uninstalling_kernelctl(prgenv_image, tmp_path):
    """kernelctl installed in a tool venv of its own (as pipx or uv tool do), then that
    venv deleted: the kernel it made still starts and runs."""
    from tests.helpers import tool_venv

    tool = tool_venv(tmp_path / "pipx-venv")
    session = prgenv_image.session_env(dict(os.environ))
    session["PATH"] = f"{tool / 'bin'}:{session['PATH']}"
    done = subprocess.run([tool / "bin" / "python", "-m", "kernelctl", "create", "--json",
                           "--base", "prgenv-gnu", "--name", "outlives"],
                          env=session, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    kernel = json.loads(done.stdout)
    shutil.rmtree(tool)
    text = "".join(p.read_text() for p in Path(kernel["resource_dir"]).glob("*")
                   if p.suffix in (".json", ".sh"))
    assert str(tool) not in text
    out = run_in_kernel("outlives", "import sys; print(sys.prefix)", session)
    assert out.strip() == kernel["venv"]


def test_venv_copy_wins_under_srun_and_in_a_batch_job(prgenv_image, test_wheels, slurm,
                                                      tmp_path):
    """Shadowing is fixed in the venv itself: jobs get the uenv's PYTHONPATH, not the
    kernel's env, and still import the venv's 2.0 (a real single-node Slurm)."""
    session = slurm.env(prgenv_image.session_env(dict(os.environ)))
    venv = Path(created("--base", "prgenv-gnu", "-p", "kctl_shadow==2.0", "--no-index",
                        "--find-links", test_wheels, env=session)["venv"])
    probe = [str(venv / "bin" / "python"), "-c", PROBE_CODE]
    step = subprocess.run(["srun", "--export=ALL", *probe], env=session, capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert step.returncode == 0, step.stderr
    assert json.loads(step.stdout)["shadow"] == "2.0"
    output = tmp_path / "job.out"
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/sh\n{venv}/bin/python -c \"$PROBE_CODE\"\n")
    batch = subprocess.run(["sbatch", "--wait", f"--output={output}", "--export=ALL",
                            str(script)], env={**session, "PROBE_CODE": PROBE_CODE},
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert batch.returncode == 0, batch.stderr + batch.stdout
    assert json.loads(output.read_text())["shadow"] == "2.0"


def test_kernels_on_one_base_have_distinct_display_names(prgenv_image):
    """JupyterLab's launcher shows display names only: two kernels on one base must differ."""
    session = session_of(prgenv_image)
    first = created("--base", "prgenv-gnu", env=session)
    second = created("--base", "prgenv-gnu", "--name", "analysis", env=session)
    assert first["display_name"] == f"Python {PY_MM} (prgenv-gnu/24.11:v1)"
    assert second["display_name"] == f"Python {PY_MM} (prgenv-gnu/24.11:v1) · analysis"


@pytest.mark.parametrize("session_kind", ["uenv", "conda", "venv", "plain"])
def test_default_base_fits_the_session(session_kind, prgenv_image, tmp_path, wheelhouse,
                                       test_wheels):
    """No --base: kernelctl picks what the session has, and says which and why."""
    env = dict(os.environ)
    if session_kind == "uenv":
        env = session_of(prgenv_image)
        kind, why = "uenv", "the uenv prgenv-gnu is mounted with the view default"
    elif session_kind == "conda":
        from tests.modulefiles import python_installation

        prefix = tmp_path / "conda-env"
        python_installation(prefix)
        (prefix / "conda-meta").mkdir()
        env.update(CONDA_PREFIX=str(prefix), PATH=f"{prefix / 'bin'}:{env['PATH']}")
        kind, why = "conda", f"the conda env {prefix} is active"
    elif session_kind == "venv":
        venv = tmp_path / "active"
        make_venv(venv, BASE_PYTHON)
        env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}:{env['PATH']}")
        kind, why = "python", f"the venv {venv} is active; its packages are layered on"
    else:  # the test's Python first on PATH, so the wheelhouse fits it
        env.update(PATH=f"{BASE_PYTHON.parent}:{env['PATH']}")
        kind, why = "python", "python3 on PATH (no uenv, container, modules or active"
    done = kernelctl("create", "--json", "--name", "fits", *offline(wheelhouse), env=env)
    assert done.returncode == 0, done.stderr
    assert "no --base given: building on" in done.stderr and why in done.stderr
    assert json.loads(done.stdout)["base"]["kind"] == kind
