"""The kernel's environment beyond the notebook: `kernelctl run`, `submit` to a real
single-node Slurm (scripts and notebooks), and ipyparallel engines started with srun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import (
    assert_user_error,
    created,
    foreign_spec,
    kernelctl,
    run_in_kernel,
    session_of,
    write_kernel,
)

# What a job must see: the venv's Python and its copy of kctl_shadow (2.0, not the
# base's 1.0), and the base's variables.
PROBE = ("import json, os, sys, kctl_shadow\n"
         "print('PROBE ' + json.dumps({'prefix': sys.prefix, 'shadow': kctl_shadow.__version__,\n"
         "    'uenv_view': os.environ.get('UENV_VIEW'), 'loaded': os.environ.get('LOADEDMODULES'),\n"
         "    'kernel': os.environ.get('KERNELCTL_KERNEL'), 'argv': sys.argv[1:]}))\n")


def probe_of(text: str) -> dict:
    lines = [line for line in text.splitlines() if line.startswith("PROBE ")]
    assert lines, text
    return json.loads(lines[-1][len("PROBE "):])


def notebook(path: Path, *cells: str, parameters: str = "") -> Path:
    """A version 4 notebook; `parameters` becomes a cell tagged "parameters"."""
    def cell(source, tags=()):
        return {"cell_type": "code", "execution_count": None, "id": f"c{len(source)}",
                "metadata": {"tags": list(tags)}, "outputs": [], "source": source}

    body = ([cell(parameters, ["parameters"])] if parameters else []) + [cell(c) for c in cells]
    body.insert(0, {"cell_type": "markdown", "id": "m", "metadata": {}, "source": "# job"})
    path.write_text(json.dumps({"cells": body, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))
    return path


def printed_by(executed: Path) -> str:
    cells = json.loads(executed.read_text())["cells"]
    return "".join(output.get("text", "") for cell in cells for output in cell.get("outputs", []))


@pytest.fixture
def uenv_kernel(prgenv_image, test_wheels):
    session = session_of(prgenv_image)
    kernel = created("--base", "prgenv-gnu", "--name", "job", "-p", "kctl_shadow==2.0",
                     "--no-index", "--find-links", test_wheels, env=session)
    return kernel, session


def test_run_is_the_kernels_environment_and_passes_exit_codes(uenv_kernel, tmp_path):
    kernel, session = uenv_kernel
    done = kernelctl("run", "job", "--", "python", "-c", PROBE + "sys.exit(7)", "a", "-b",
                     env=session, cwd=tmp_path)
    assert done.returncode == 7, done.stderr
    seen = probe_of(done.stdout)
    assert seen["prefix"] == kernel["venv"] and seen["shadow"] == "2.0"
    assert seen["uenv_view"] and seen["kernel"] == "job" and seen["argv"] == ["a", "-b"]
    # Same resolution as the notebook's kernel: what the kernel sees, run sees.
    in_kernel = probe_of(run_in_kernel("job", PROBE, session))
    assert {k: in_kernel[k] for k in ("prefix", "shadow", "uenv_view")} == \
        {k: seen[k] for k in ("prefix", "shadow", "uenv_view")}


def test_run_execs_so_signals_reach_the_command(uenv_kernel, tmp_path):
    _, session = uenv_kernel
    code = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
    process = subprocess.Popen([sys.executable, "-m", "kernelctl", "run", "job", "--", "python",
                                "-c", code], env=session, stdout=subprocess.PIPE, text=True,
                               cwd=tmp_path)
    pid = int(process.stdout.readline())
    assert pid == process.pid  # exec'd, not a child: Ctrl-C and kill reach it directly
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == -signal.SIGTERM


def test_run_refuses_what_it_cannot_reproduce(uenv_kernel, prgenv_image, tmp_path):
    _, session = uenv_kernel
    assert_user_error(kernelctl("run", "nope", "--", "true", env=session), "no kernel named 'nope'")
    assert_user_error(kernelctl("run", "job", env=session), "no command given", "--")
    kernels = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels"
    write_kernel(kernels, "foreign", foreign_spec(sys.executable))
    assert_user_error(kernelctl("run", "foreign", "--", "true", env=session),
                      "not made by kernelctl", "kernelctl adopt foreign")
    # The base image is not mounted, and nothing here can mount it: the command would
    # run on the wrong Python.
    assert_user_error(kernelctl("run", "job", "--", "true", env=dict(os.environ)),
                      "needs the uenv prgenv-gnu/24.11:v1", "no uenv command")


def test_run_and_shell_bring_a_uenv_up_from_a_plain_shell(uenv_kernel, prgenv_image,
                                                          icon_image, tmp_path):
    """On a login node no uenv is mounted; the `uenv` command is there. `run` and
    `shell` bring the kernel's image up as the site documents (uenv run --view=VIEW
    LABEL --), then apply kernel.json's env inside it: the venv's copy still wins."""
    kernel, session = uenv_kernel
    login_node = {**os.environ, "PATH": f"{prgenv_image.bin}:{os.environ['PATH']}"}
    done = kernelctl("run", "job", "--", "python", "-c", PROBE, env=login_node, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seen = probe_of(done.stdout)
    assert seen["prefix"] == kernel["venv"] and seen["shadow"] == "2.0"
    assert seen["uenv_view"].endswith(":prgenv-gnu:default") and seen["kernel"] == "job"
    shell = kernelctl("shell", "job", env={**login_node, "SHELL": "/bin/sh"}, cwd=tmp_path,
                      input='echo "venv=$VIRTUAL_ENV view=$UENV_VIEW"\n')
    assert shell.returncode == 0, shell.stderr
    assert f"venv={kernel['venv']} view=" in shell.stdout and ":prgenv-gnu:" in shell.stdout
    # uenv run cannot start inside another uenv session: said, not attempted.
    other = icon_image.session_env({**login_node})
    assert_user_error(kernelctl("run", "job", "--", "true", env=other),
                      "another uenv", "uenv run cannot start inside a uenv session")


def test_submit_a_script_and_a_notebook_on_a_uenv_base(uenv_kernel, slurm, tmp_path):
    kernel, session = uenv_kernel
    session = slurm.env(session)
    script = tmp_path / "train.py"
    script.write_text(PROBE)
    done = kernelctl("submit", "job", script, "--arg", "--epochs=3", "--wait", "--json",
                     env=session, cwd=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    job = json.loads(done.stdout)
    assert job["job_id"].isdigit() and job["exit_code"] == 0
    # No uenv plugin in this Slurm: said, and the #SBATCH lines are left as comments.
    assert "no --uenv option" in done.stderr
    text = Path(job["script"]).read_text()
    assert "##SBATCH --uenv=prgenv-gnu/24.11:v1:" in text
    assert text.strip().splitlines()[-1].startswith("exec /bin/sh ")  # no kernelctl in it
    seen = probe_of(Path(job["log"]).read_text())
    assert seen["prefix"] == kernel["venv"] and seen["shadow"] == "2.0"
    assert seen["uenv_view"] and seen["argv"] == ["--epochs=3"]

    nb = notebook(tmp_path / "analysis.ipynb", PROBE, "print('n is', n)", parameters="n = 1")
    done = kernelctl("submit", "job", nb, "-P", "n=3", "--wait", "--json", env=session,
                     cwd=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    job = json.loads(done.stdout)
    executed = Path(job["output"])
    assert executed == tmp_path / f"analysis-{job['job_id']}.ipynb"
    seen = probe_of(printed_by(executed))
    assert seen["prefix"] == kernel["venv"] and seen["shadow"] == "2.0" and seen["uenv_view"]
    assert "n is 3" in printed_by(executed)  # the injected parameters cell came after n = 1
    assert json.loads(nb.read_text())["cells"][2]["outputs"] == []  # the source is untouched


def test_submit_on_a_module_base_loads_the_modules_in_the_job(module_tree, wheelhouse,
                                                              test_wheels, slurm, tmp_path):
    session = module_tree.session_env(dict(os.environ))
    created("--base", "module:StdEnv/2023,python,scipy-stack", "--name", "alliance", "-p",
            "kctl_shadow==2.0", "--no-index", "--find-links", wheelhouse, "--find-links",
            test_wheels, env=session)
    # Submitted from a terminal with no module loaded: the job loads them itself.
    plain = slurm.env(dict(os.environ))
    nb = notebook(tmp_path / "fit.ipynb", PROBE)
    done = kernelctl("submit", "alliance", nb, "--in-place", "--wait", "--json", env=plain,
                     cwd=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    job = json.loads(done.stdout)
    assert job["output"] == str(nb)
    seen = probe_of(printed_by(nb))
    assert seen["loaded"] == "StdEnv/2023:python/3.11.5:scipy-stack/2023b"
    assert seen["shadow"] == "2.0" and seen["prefix"].endswith("/venvs/alliance")
    assert "loads the modules StdEnv/2023 python/3.11.5 scipy-stack/2023b" in \
        Path(job["script"]).read_text()
    script = tmp_path / "fit.py"
    script.write_text(PROBE)
    done = kernelctl("submit", "alliance", script, "--wait", "--json", env=plain, cwd=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    assert probe_of(Path(json.loads(done.stdout)["log"]).read_text()) == {**seen, "argv": []}


def test_a_failing_notebook_fails_the_job_with_the_cells_error(uenv_kernel, slurm, tmp_path):
    _, session = uenv_kernel
    nb = notebook(tmp_path / "bad.ipynb", "print('first')", "raise ValueError('boom 42')",
                  "print('never')")
    done = kernelctl("submit", "job", nb, "--wait", "--json", env=slurm.env(session),
                     cwd=tmp_path)
    job = json.loads(done.stdout)
    assert done.returncode != 0 and job["exit_code"] != 0
    log = Path(job["log"]).read_text()
    assert "ValueError: boom 42" in log and "never" not in log
    cells = json.loads(Path(job["output"]).read_text())["cells"]
    assert cells[2]["outputs"][0]["ename"] == "ValueError"  # the error is kept in the output
    assert cells[3]["outputs"] == []


def test_submit_bad_input_submits_nothing(uenv_kernel, slurm, tmp_path):
    kernel, session = uenv_kernel
    session = slurm.env(session)
    jobs = Path(os.environ["KERNELCTL_HOME"]) / "jobs"
    script = tmp_path / "x.py"
    script.write_text("print(1)\n")
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [')
    other = tmp_path / "x.txt"
    other.write_text("")
    no_slurm = {**session, "PATH": os.pathsep.join(
        p for p in session["PATH"].split(os.pathsep) if not os.path.exists(Path(p) / "sbatch"))}
    cases = [
        (("nope", script), session, "no kernel named 'nope'"),
        (("job", broken), session, "does not parse as JSON"),
        (("job", other), session, "neither a Python script"),
        (("job", tmp_path / "missing.py"), session, "does not exist"),
        (("job", script, "-P", "n=1"), session, "are for notebooks"),
        (("job", script), no_slurm, "sbatch is not on PATH"),
    ]
    for args, env, phrase in cases:
        assert_user_error(kernelctl("submit", *args, env=env, cwd=tmp_path), phrase)
    nb = notebook(tmp_path / "p.ipynb", "print(1)")
    assert_user_error(kernelctl("submit", "job", nb, "-P", "1x=2", env=session), "NAME=VALUE")
    assert_user_error(kernelctl("submit", "job", nb, "-o", tmp_path / "o.ipynb", "--in-place",
                                env=session), "exclude each other")
    import shutil
    shutil.rmtree(kernel["venv"])
    assert_user_error(kernelctl("submit", "job", script, env=session, cwd=tmp_path),
                      "the kernel 'job' is broken")
    assert not jobs.exists() and not list(tmp_path.glob("*.log"))


def test_dry_run_asks_slurm_for_the_uenv_where_it_can(uenv_kernel, prgenv_image, slurm,
                                                      tmp_path):
    _, session = uenv_kernel
    script = tmp_path / "x.py"
    script.write_text("print(1)\n")
    # A stand-in for CSCS's uenv plugin: sbatch --help lists --uenv (the real plugin adds
    # it); everything else goes to the real sbatch.
    plugin = tmp_path / "plugin-bin"
    plugin.mkdir()
    real = subprocess.run(["which", "sbatch"], capture_output=True, text=True).stdout.strip()
    (plugin / "sbatch").write_text(
        f'#!/bin/sh\n[ "$1" = --help ] && {{ {real} --help; echo "      --uenv=<uenv>"; '
        f'exit 0; }}\nexec {real} "$@"\n')
    (plugin / "sbatch").chmod(0o755)
    with_plugin = {**slurm.env(session), "PATH": f"{plugin}:{session['PATH']}"}
    done = kernelctl("submit", "job", script, "--dry-run", env=with_plugin, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # LABEL:MOUNT, as uenv writes it, since the test image is not at /user-environment.
    assert (f"#SBATCH --uenv=prgenv-gnu/24.11:v1:{prgenv_image.mount}\n"
            "#SBATCH --view=default\n") in done.stdout
    assert done.stdout.startswith("#!/bin/sh\n") and "no --uenv option" not in done.stderr
    done = kernelctl("submit", "job", script, "--dry-run", env=slurm.env(session), cwd=tmp_path)
    assert f"##SBATCH --uenv=prgenv-gnu/24.11:v1:{prgenv_image.mount}" in done.stdout
    # Dry: no job script is kept, only kernelctl's notebook runner, so that the printed
    # script runs as printed.
    jobs = Path(os.environ["KERNELCTL_HOME"]) / "jobs"
    assert [p.name for p in jobs.iterdir()] == ["kernelctl_notebook.py"]
    # The script needs nothing of kernelctl: it runs as plain sh with kernelctl gone.
    text = done.stdout
    (tmp_path / "job.sh").write_text(text)
    bare = {k: v for k, v in session.items() if k != "PYTHONPATH"}
    ran = subprocess.run(["/bin/sh", str(tmp_path / "job.sh")], env=bare, capture_output=True,
                         text=True, cwd=tmp_path)
    assert ran.returncode == 0 and ran.stdout == "1\n", ran.stderr


@pytest.fixture
def allocation(slurm, tmp_path):
    """The user's allocation, as JupyterLab on a compute node has one: its job id."""
    made = subprocess.run(["sbatch", "--parsable", "-n", "2", "--wrap", "sleep 600"],
                          env=slurm.env(dict(os.environ)), capture_output=True, text=True,
                          cwd=tmp_path)
    job_id = made.stdout.strip()
    assert job_id.isdigit(), made.stderr
    deadline = time.monotonic() + 60
    while _job_state(job_id, slurm) != "RUNNING":  # a step needs a running job
        assert time.monotonic() < deadline, f"job {job_id} is {_job_state(job_id, slurm)}"
        time.sleep(0.2)
    yield job_id
    subprocess.run(["scancel", job_id], env=slurm.env(dict(os.environ)))


def test_doctor_srun_compares_the_environment_in_a_step(uenv_kernel, slurm, allocation):
    _, session = uenv_kernel
    in_job = {**slurm.env(session), "SLURM_JOB_ID": allocation}
    done = kernelctl("doctor", "job", "--srun", "--json", env=in_job)
    checks = [c for c in json.loads(done.stdout)["checks"] if c["id"] == "slurm.srun"]
    assert [c["status"] for c in checks] == ["ok"], checks
    # A site that sets SLURM_EXPORT_ENV=NONE: steps lose the kernel's environment.
    done = kernelctl("doctor", "job", "--srun", "--json",
                     env={**in_job, "SLURM_EXPORT_ENV": "NONE"})
    checks = [c for c in json.loads(done.stdout)["checks"] if c["id"] == "slurm.srun"]
    assert done.returncode == 1 and [c["status"] for c in checks] == ["fail"], checks
    outside = kernelctl("doctor", "job", "--srun", "--json", env=slurm.env(session))
    checks = [c for c in json.loads(outside.stdout)["checks"] if c["id"] == "slurm.srun"]
    assert checks[0]["status"] == "warn" and "not inside a Slurm allocation" in checks[0]["message"]


def test_engines_on_slurm_run_in_the_kernels_environment(prgenv_image, wheelhouse, test_wheels,
                                                         slurm, allocation, tmp_path):
    session = slurm.env(session_of(prgenv_image))
    kernel = created("--base", "prgenv-gnu", "--name", "par", "-p", "ipyparallel", "-p",
                     "kctl_shadow==2.0", "--no-index", "--find-links", wheelhouse,
                     "--find-links", test_wheels, env=session)
    in_job = {**session, "SLURM_JOB_ID": allocation}
    try:
        done = kernelctl("engines", "par", "-n", "2", "--json", env=in_job, cwd=tmp_path)
        assert done.returncode == 0, done.stderr + done.stdout
        started = json.loads(done.stdout)
        assert started["engines"] == 2 and "--overlap" in started["srun"]
        again = kernelctl("engines", "par", "-n", "2", env=in_job, cwd=tmp_path)
        assert_user_error(again, "already running", "--stop")
        code = ("import ipyparallel as ipp, json\n"
                f"rc = ipp.Client(profile={started['profile']!r})\n"
                "rc.wait_for_engines(2, timeout=60)\n"
                "def where():\n"
                "    import os, sys, kctl_shadow\n"
                "    return sys.prefix, kctl_shadow.__version__, os.environ.get('UENV_VIEW'), "
                "os.environ.get('SLURM_STEP_ID')\n"
                "print(json.dumps(rc[:].apply_sync(where)))\n"
                "rc.close()\n")
        # The notebook's kernel, in a server without the uenv's variables in its own env.
        seen = json.loads(run_in_kernel("par", code, session, timeout=120))
        assert len(seen) == 2
        for prefix, shadow, view, step in seen:
            assert prefix == kernel["venv"] and shadow == "2.0" and view and step is not None
        stopped = kernelctl("engines", "par", "--stop", env=in_job)
        assert stopped.returncode == 0, stopped.stderr
        deadline = time.monotonic() + 30
        while _engine_processes(kernel["venv"]) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _engine_processes(kernel["venv"])
        assert_user_error(kernelctl("engines", "par", "--stop", env=in_job), "no engines")
    finally:
        kernelctl("engines", "par", "--stop", env=in_job)


def test_engines_bad_input(uenv_kernel, slurm):
    _, session = uenv_kernel
    session = slurm.env(session)
    assert_user_error(kernelctl("engines", "job", "-n", "2", env=session),
                      "ipyparallel cannot be imported", "kernelctl install job -p ipyparallel")
    assert_user_error(kernelctl("engines", "job", "-n", "0", env=session), "at least 1")
    assert_user_error(kernelctl("engines", "nope", env=session), "no kernel named 'nope'")


def _engine_processes(venv: str) -> list:
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
        except OSError:
            continue
        if any(b"ipyparallel" in a for a in argv) and argv[0].startswith(venv.encode()):
            found.append(pid)
    return found


def _job_state(job_id: str, slurm) -> str:
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True,
                          text=True, env=slurm.env(dict(os.environ))).stdout.strip()


def test_a_kernel_from_before_run_mode_is_told_to_rebuild_and_then_runs(uenv_kernel,
                                                                        test_wheels):
    kernel, session = uenv_kernel
    launcher = Path(kernel["resource_dir"]) / "kernelctl-launch.sh"
    # What an older kernelctl wrote: the same launcher without the run mode.
    launcher.write_text("\n".join(line for line in launcher.read_text().splitlines()
                                  if "--kernelctl-run" not in line) + "\n")
    assert_user_error(kernelctl("run", "job", "--", "true", env=session),
                      "older kernelctl", "kernelctl rebuild job")
    rebuilt = kernelctl("rebuild", "job", "--no-index", "--find-links", test_wheels,
                        env=session)
    assert rebuilt.returncode == 0, rebuilt.stderr
    done = kernelctl("run", "job", "--", "python", "-c", PROBE, env=session)
    assert done.returncode == 0, done.stderr
    assert probe_of(done.stdout)["shadow"] == "2.0"


@pytest.mark.parametrize("folder", ["Untitled Folder", "50%x of it's", "ünï $HOME"])
def test_submit_from_everyday_folders_writes_the_log_there(folder, uenv_kernel, slurm,
                                                            tmp_path):
    """JupyterLab's "Untitled Folder", a `%` that sbatch would expand, quotes, `$` and
    non-ASCII: the job runs and its log lands in that very folder."""
    _, session = uenv_kernel
    session = slurm.env(session)
    where = tmp_path / folder
    where.mkdir()
    script = where / "train.py"
    script.write_text("print('trained')\n")
    done = kernelctl("submit", "job", script, "--wait", "--json", env=session, cwd=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    job = json.loads(done.stdout)
    log = where / f"train-{job['job_id']}.log"
    assert "trained" in log.read_text()


def test_dry_run_prints_what_is_submitted_and_runs_as_printed(uenv_kernel, slurm, tmp_path):
    """The options after `--` are in the printed script (#SBATCH lines), and the script
    runs with plain sh, notebook runner included."""
    _, session = uenv_kernel
    session = slurm.env(session)
    nb = notebook(tmp_path / "p.ipynb", "print(6 * 7)")
    done = kernelctl("submit", "job", nb, "--dry-run", "--", "--time=00:05:00", "-J", "my job",
                     env=session, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '#SBATCH --time=00:05:00 -J "my job"' in done.stdout
    script = tmp_path / "printed.sh"
    script.write_text(done.stdout)
    ran = subprocess.run(["sh", str(script)], env=session, cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    executed = next(tmp_path.glob("p-*.ipynb"))
    assert "42" in printed_by(executed)


def test_submit_refuses_an_output_directory_that_does_not_exist(uenv_kernel, slurm, tmp_path):
    _, session = uenv_kernel
    script = tmp_path / "x.py"
    script.write_text("print(1)\n")
    done = kernelctl("submit", "job", script, "--", "-o", tmp_path / "missing" / "x-%j.log",
                     env=slurm.env(session), cwd=tmp_path)
    assert_user_error(done, "does not exist", "mkdir -p")
