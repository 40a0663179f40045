"""Nothing kernelctl does loses what it does not own: one removal path with one set of
checks, --force only over kernelctl's own kernels, locks per kernel name and per venv,
removal that is all or nothing, and leftovers of killed runs cleaned by the next one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import BASE_PYTHON, SlowIndex
from tests.helpers import (
    assert_user_error,
    created,
    foreign_spec,
    kernel_json,
    kernelctl,
    listed,
    run_in_kernel,
    session_of,
    write_kernel,
)


def start(*args, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kernelctl", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kernels_dir(home: Path) -> Path:
    return home / ".local/share/jupyter/kernels"


def hidden_leftovers(home: Path) -> list:
    """What kernelctl moves aside or stages, anywhere under the user's data dirs."""
    return sorted(str(p) for p in (home / ".local/share").rglob("*")
                  if p.name.startswith((".kernelctl-", ".kernelctl~")))


def test_doctor_fix_never_deletes_user_files_in_a_kernel_dir(prgenv_image, isolated):
    session = session_of(prgenv_image)
    kernel = created("--base", "prgenv-gnu", "--name", "notes", env=session)
    resource_dir = Path(kernel["resource_dir"])
    (resource_dir / "notes.txt").write_text("mine")
    (resource_dir / "data").mkdir()
    (resource_dir / "data" / "results.csv").write_text("1,2\n")
    subprocess.run(["rm", "-rf", kernel["venv"]], check=True)
    done = kernelctl("doctor", "--fix", "--yes", env=session)
    assert "Traceback" not in done.stderr
    assert (resource_dir / "notes.txt").read_text() == "mine"
    assert (resource_dir / "data" / "results.csv").exists()
    assert "cannot be removed safely" in done.stdout and "notes.txt" in done.stdout
    # remove refuses the same way: one set of checks.
    assert_user_error(kernelctl("remove", "--yes", "notes", env=session), "notes.txt")


def test_doctor_fix_removes_a_plain_broken_kernel(prgenv_image, isolated):
    session = session_of(prgenv_image)
    kernel = created("--base", "prgenv-gnu", "--name", "plain", env=session)
    subprocess.run(["rm", "-rf", kernel["venv"]], check=True)
    done = kernelctl("doctor", "--fix", "--yes", env=session)
    assert "Traceback" not in done.stderr
    assert not Path(kernel["resource_dir"]).exists()
    assert hidden_leftovers(isolated) == []


@pytest.mark.parametrize("extra_file", [False, True])
def test_force_never_replaces_a_kernel_kernelctl_did_not_make(prgenv_image, isolated,
                                                               extra_file):
    theirs = write_kernel(kernels_dir(isolated), "f1", foreign_spec(str(BASE_PYTHON)))
    if extra_file:
        (theirs / "notes.txt").write_text("mine")
    before = sorted(p.name for p in theirs.iterdir())
    done = kernelctl("create", "--base", "prgenv-gnu", "--name", "f1", "--force",
                     env=session_of(prgenv_image))
    assert_user_error(done, "not made by kernelctl", "kernelctl remove f1")
    assert sorted(p.name for p in theirs.iterdir()) == before
    assert json.loads((theirs / "kernel.json").read_text())["display_name"] == "Foreign"


def test_force_keeps_user_files_in_a_kernelctl_kernel(prgenv_image):
    session = session_of(prgenv_image)
    kernel = created("--base", "prgenv-gnu", "--name", "mine", env=session)
    (Path(kernel["resource_dir"]) / "notes.txt").write_text("mine")
    done = kernelctl("create", "--base", "prgenv-gnu", "--name", "mine", "--force", env=session)
    assert_user_error(done, "notes.txt")
    assert (Path(kernel["resource_dir"]) / "notes.txt").read_text() == "mine"


def test_force_refuses_another_kernels_environment(prgenv_image, test_wheels):
    session = session_of(prgenv_image)
    a = created("--base", "prgenv-gnu", "--name", "a", "-p", "kctl_extra", "--no-index",
                "--find-links", test_wheels, env=session)
    for force in ([], ["--force"]):
        done = kernelctl("create", "--base", "prgenv-gnu", "--name", "b", "--venv", a["venv"],
                         *force, env=session)
        assert_user_error(done, "belongs to the kernel(s) a")
    assert list(Path(a["venv"]).glob("lib/python*/site-packages/kctl_extra"))
    assert listed(env=session)["a"]["status"] == "ok"
    assert "b" not in listed(env=session)


def test_two_creates_of_one_venv_under_two_names(prgenv_image, slow_index, isolated, tmp_path):
    session = {**session_of(prgenv_image), "PIP_INDEX_URL": slow_index}
    venv = tmp_path / "shared-venv"
    first = start("create", "--base", "prgenv-gnu", "--name", "a", "--venv", venv,
                  "-p", "kctl_extra", env=session)
    assert SlowIndex.asked.wait(60), "pip never reached the index"
    second = kernelctl("create", "--base", "prgenv-gnu", "--name", "b", "--venv", venv,
                       "--force", env=session)
    assert_user_error(second, f"another kernelctl is working on the environment {venv}")
    assert (venv / "pyvenv.cfg").exists(), "the second create touched the first's venv"
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode != 0 and "Traceback" not in stderr
    assert not venv.exists()


def test_remove_waits_for_a_running_install(prgenv_image, slow_index):
    session = session_of(prgenv_image)
    kernel = created("--base", "prgenv-gnu", "--name", "busy", env=session)
    installing = start("install", "busy", "kctl_extra", env={**session, "PIP_INDEX_URL": slow_index})
    try:
        assert SlowIndex.asked.wait(60), "pip never reached the index"
        done = kernelctl("remove", "--yes", "busy", env=session)
        assert_user_error(done, "another kernelctl is working on")
        assert Path(kernel["resource_dir"]).exists() and (Path(kernel["venv"]) / "pyvenv.cfg").exists()
    finally:
        installing.send_signal(signal.SIGINT)
        _, stderr = installing.communicate(timeout=60)
    assert "Traceback" not in stderr
    assert "nothing was left behind" not in stderr and "run the same" in stderr
    site = next(Path(kernel["venv"]).glob("lib/python*/site-packages"))
    assert not [p for p in site.iterdir() if p.name.startswith("~")]


def test_install_never_runs_pip_outside_the_venv(prgenv_image, test_wheels):
    """A venv that lost pyvenv.cfg (a remove raced it) makes its python the base
    interpreter: install must refuse, not pip-install into the base."""
    session = session_of(prgenv_image)
    kernel = created("--base", "prgenv-gnu", "--name", "halfgone", env=session)
    (Path(kernel["venv"]) / "pyvenv.cfg").unlink()
    done = kernelctl("install", "halfgone", "kctl_extra", "--no-index", "--find-links",
                     test_wheels, env=session)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    probe = subprocess.run([BASE_PYTHON, "-c", "import kctl_extra"], capture_output=True)
    assert probe.returncode != 0, "kctl_extra went into the base interpreter"


def bulk_up(venv: str, files: int = 30_000) -> None:
    """Make a venv as slow to delete as a real one with torch in it: many files."""
    bulk = next(Path(venv).glob("lib/python*/site-packages")) / "kctl_bulk"
    bulk.mkdir()
    for index in range(files):
        (bulk / f"m{index}.py").write_bytes(b"x = 1\n")


def signal_a_remove(name: str, session: dict, sig: int, delay: float):
    """Create a big kernel, start `remove --yes` on it, signal it after `delay` s;
    (the kernel, the remove's exit code, its stderr)."""
    kernel = created("--base", "prgenv-gnu", "--name", name, env=session)
    bulk_up(kernel["venv"])
    removing = start("remove", "--yes", name, env=session)
    time.sleep(delay)
    removing.send_signal(sig)
    _, stderr = removing.communicate(timeout=60)
    return kernel, removing.returncode, stderr


@pytest.mark.parametrize("delay", [0.4, 0.7, 1.0, 1.5])
def test_killed_remove_is_all_or_nothing(prgenv_image, isolated, delay):
    """SIGKILL at some moment of `remove`: the kernel is either whole or gone, never
    stuck, and the next command finishes the job."""
    session = session_of(prgenv_image)
    kernel, _, _ = signal_a_remove("big", session, signal.SIGKILL, delay)
    present = listed(env=session)
    if "big" in present:
        assert present["big"]["status"] == "ok", present["big"]
        assert (Path(kernel["venv"]) / "kernelctl.toml").exists()
    else:
        assert not os.path.lexists(kernel["venv"])
    again = created("--base", "prgenv-gnu", "--name", "big", "--force", env=session)
    assert hidden_leftovers(isolated) == []
    assert not [p for p in Path(again["venv"]).parent.iterdir() if "kernelctl" in p.name]


@pytest.mark.parametrize("delay", [0.5, 1.0])
def test_interrupted_remove_says_what_happened(prgenv_image, isolated, delay):
    session = session_of(prgenv_image)
    kernel, returncode, stderr = signal_a_remove("sigint", session, signal.SIGINT, delay)
    assert "Traceback" not in stderr and "nothing was left behind" not in stderr
    if "sigint" in listed(env=session):
        assert returncode != 0 and "nothing was changed" in stderr
        assert (Path(kernel["venv"]) / "kernelctl.toml").exists()
    else:
        assert returncode == 0 or "change itself is done" in stderr
        assert not os.path.lexists(kernel["venv"])
        created("--base", "prgenv-gnu", "--name", "sigint", env=session)
        assert hidden_leftovers(isolated) == []


def test_sigkill_during_force_leaves_no_kernel_to_jupyter(prgenv_image, slow_index, isolated):
    session = session_of(prgenv_image)
    created("--base", "prgenv-gnu", "--name", "k", env=session)
    replacing = start("create", "--base", "prgenv-gnu", "--name", "k", "--force", "-p",
                      "kctl_extra", env={**session, "PIP_INDEX_URL": slow_index})
    assert SlowIndex.asked.wait(60), "pip never reached the index"
    replacing.send_signal(signal.SIGKILL)
    replacing.communicate(timeout=60)
    names = sorted(p.name for p in kernels_dir(isolated).iterdir())
    assert all(name == "k" for name in names), names  # nothing moved aside in there
    from jupyter_client.kernelspec import KernelSpecManager

    assert set(KernelSpecManager().find_kernel_specs()) <= {"k", "python3"}
    again = created("--base", "prgenv-gnu", "--name", "k", "--force", env=session)
    assert hidden_leftovers(isolated) == []
    printed = run_in_kernel("k", "import sys; print(sys.prefix)", dict(os.environ))
    assert printed.strip() == again["venv"]


def test_pip_dies_with_a_killed_create(prgenv_image, slow_index, tmp_path):
    session = {**session_of(prgenv_image), "PIP_INDEX_URL": slow_index}
    venv = tmp_path / "dies-with-parent"
    creating = start("create", "--base", "prgenv-gnu", "--venv", venv, "-p", "kctl_extra",
                     env=session)
    assert SlowIndex.asked.wait(60), "pip never reached the index"
    assert pip_processes(venv), "no pip found running for the venv"
    creating.send_signal(signal.SIGKILL)
    creating.communicate(timeout=60)
    deadline = time.monotonic() + 20
    while pip_processes(venv) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pip_processes(venv) == []


def pip_processes(venv: Path) -> list:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        # pip (VENV/bin/python -m pip ...) or uv (uv pip ... --python VENV/bin/python)
        if state != "Z" and b"pip" in cmdline and any(str(venv).encode() in a for a in cmdline):
            found.append(int(pid))
    return found


def test_a_failed_create_removes_the_directories_it_made(prgenv_image, tmp_path):
    venv = tmp_path / "made" / "for" / "it" / "venv"
    done = kernelctl("create", "--base", "prgenv-gnu", "--venv", venv, "-p",
                     "no-such-package-kctl", "--no-index", env=session_of(prgenv_image))
    assert_user_error(done, "found no distribution of no-such-package-kctl")
    assert not (tmp_path / "made").exists()


def test_kernel_json_and_record_keep_the_umask(prgenv_image, isolated):
    """Shared kernels stay readable: no 0600 from mkstemp, no forced 0755 either."""
    session = session_of(prgenv_image)
    kernel = created("--base", "prgenv-gnu", "--name", "shared", env=session)
    resource_dir = Path(kernel["resource_dir"])
    assert (resource_dir / "kernel.json").stat().st_mode & 0o777 == 0o644
    assert (Path(kernel["venv"]) / "kernelctl.toml").stat().st_mode & 0o777 == 0o644
    spec = kernel_json(kernel)
    spec["env"]["PATH"] = "/usr/bin"  # stale: doctor --fix rewrites it
    (resource_dir / "kernel.json").write_text(json.dumps(spec))
    done = kernelctl("doctor", "--fix", "--yes", env=session)
    assert "Traceback" not in done.stderr
    assert kernel_json(kernel)["env"]["PATH"].startswith(kernel["venv"])
    assert (resource_dir / "kernel.json").stat().st_mode & 0o777 == 0o644
    private = subprocess.run(
        ["sh", "-c", f"umask 077 && exec {sys.executable} -m kernelctl create --json "
                     "--base prgenv-gnu --name private"],
        env=session, capture_output=True, text=True)
    assert private.returncode == 0, private.stderr
    assert Path(json.loads(private.stdout)["resource_dir"]).stat().st_mode & 0o777 == 0o700
