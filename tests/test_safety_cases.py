"""The data-loss cases seen on main before the safety core (c9e8433), one test each
where the matrix (tests/test_safety_matrix.py) does not already spell them out."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

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


def test_remove_broken_keeps_going_past_a_kernel_it_must_keep(prgenv_image, isolated):
    session = session_of(prgenv_image)
    clean = created("--base", "prgenv-gnu", "--name", "clean", env=session)
    kept = created("--base", "prgenv-gnu", "--name", "kept", env=session)
    (Path(kept["resource_dir"]) / "NOTES.txt").write_text("mine")
    for kernel in (clean, kept):
        os.system(f"rm -rf '{kernel['venv']}'")
    done = kernelctl("remove", "--broken", "--yes", env=session)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "NOTES.txt" in done.stderr
    present = listed(env=session)
    assert "clean" not in present and "kept" in present
    assert (Path(kept["resource_dir"]) / "NOTES.txt").read_text() == "mine"


def test_adopt_keeps_the_users_templates(isolated, tmp_path, wheelhouse):
    """${LD_LIBRARY_PATH}:/opt/mylib stays a template, and the kernel gets it filled."""
    from tests.helpers import make_venv

    venv = tmp_path / "handmade-env"
    make_venv(venv, sys.executable)
    spec = foreign_spec(str(venv / "bin" / "python"), "Hand made")
    spec["env"] = {"LD_LIBRARY_PATH": "${LD_LIBRARY_PATH}:/opt/mylib", "PRICE": "$$5"}
    write_kernel(isolated / ".local/share/jupyter/kernels", "hand", spec)
    done = kernelctl("adopt", "hand", "--install-ipykernel", "--no-index", "--find-links",
                     wheelhouse)
    assert done.returncode == 0, done.stderr
    env = json.loads((isolated / ".local/share/jupyter/kernels/hand/kernel.json").read_text())["env"]
    assert env["LD_LIBRARY_PATH"] == "${LD_LIBRARY_PATH}:/opt/mylib"
    assert env["PRICE"] == "$$5"
    server = {**os.environ, "LD_LIBRARY_PATH": "/server/lib"}
    printed = run_in_kernel("hand", "import os; print(os.environ['LD_LIBRARY_PATH'], "
                                    "os.environ['PRICE'])", server)
    assert printed.split() == ["/server/lib:/opt/mylib", "$5"]


def test_doctor_env_rewrite_keeps_other_templates(prgenv_image, isolated):
    session = session_of(prgenv_image)
    kernel = created("--base", "prgenv-gnu", "--name", "k", env=session)
    path = Path(kernel["resource_dir"]) / "kernel.json"
    spec = json.loads(path.read_text())
    spec["env"]["VIRTUAL_ENV"] = "/elsewhere"  # stale: doctor rewrites it
    spec["env"]["LD_LIBRARY_PATH"] = "${LD_LIBRARY_PATH}:/opt/mylib"
    path.write_text(json.dumps(spec))
    done = kernelctl("doctor", "--fix", "--yes", "k", env=session)
    assert "Traceback" not in done.stderr
    env = kernel_json(kernel)["env"]
    assert env["VIRTUAL_ENV"] == kernel["venv"]
    assert env["LD_LIBRARY_PATH"] == "${LD_LIBRARY_PATH}:/opt/mylib"


def test_system_base_without_python3_on_path_names_what_to_pass(isolated, tmp_path):
    empty = tmp_path / "emptybin"
    empty.mkdir()
    done = kernelctl("create", "--base", "system", "--name", "s",
                     env={**os.environ, "PATH": str(empty)})
    assert_user_error(done, "none on PATH", "--base python:")
    assert not (isolated / ".local/share/jupyter/kernels/s").exists()


def test_remove_keeps_a_venv_with_the_users_files_unless_told(prgenv_image, isolated):
    session = session_of(prgenv_image)
    kernel = created("--base", "prgenv-gnu", "--name", "k", env=session)
    (Path(kernel["venv"]) / "src" / "mypkg").mkdir(parents=True)
    (Path(kernel["venv"]) / "src" / "mypkg" / "setup.py").write_text("# work\n")
    assert_user_error(kernelctl("remove", "--yes", "k", env=session), "src",
                      "--delete-user-files")
    assert "k" in listed(env=session)
    done = kernelctl("remove", "--yes", "--delete-user-files", "k", env=session)
    assert done.returncode == 0, done.stderr
    assert not os.path.exists(kernel["venv"])


def stopped_at_first_step(args: list, env: dict, tmp_path) -> "subprocess.Popen":
    """`kernelctl ARGS` started and frozen (SIGSTOP, through the fault hook) at its
    first journaled step: it holds its locks, as a run busy installing would."""
    import subprocess
    import time

    process = subprocess.Popen([sys.executable, "-m", "kernelctl", *map(str, args)],
                               env={**env, "KERNELCTL_TEST_FAULT": "1:SIGSTOP"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return process
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the first run never reached its first step")


def resume(process) -> "subprocess.CompletedProcess":
    import signal
    import subprocess

    process.send_signal(signal.SIGCONT)
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.parametrize("second", [["remove", "--yes", "k"], ["rebuild", "k"],
                                    ["create", "--base", "prgenv-gnu", "--name", "k", "--force"]])
def test_two_changes_to_one_kernel_one_wins(second, prgenv_image, isolated, tmp_path):
    session = session_of(prgenv_image)
    created("--base", "prgenv-gnu", "--name", "k", env=session)
    first = stopped_at_first_step(["rebuild", "k"], session, tmp_path)
    try:
        loser = kernelctl(*second, env=session)
    finally:
        winner = resume(first)
    assert_user_error(loser, "another kernelctl is working on")
    assert len([line for line in loser.stderr.splitlines() if "error:" in line]) == 1
    assert winner.returncode == 0, winner.stderr
    kernel = listed(env=session)["k"]
    assert kernel["status"] == "ok"
    printed = run_in_kernel("k", "import sys; print(sys.prefix)", dict(os.environ))
    assert printed.strip() == kernel["venv"]


def test_adopt_and_create_of_one_venv_one_wins(prgenv_image, isolated, tmp_path,
                                               hand_made_env):
    session = session_of(prgenv_image)
    first = stopped_at_first_step(["adopt", hand_made_env, "--name", "a"], session, tmp_path)
    try:
        loser = kernelctl("create", "--base", "prgenv-gnu", "--name", "b", "--venv",
                          hand_made_env, env=session)
    finally:
        winner = resume(first)
    assert_user_error(loser, "another kernelctl is working on the environment")
    assert winner.returncode == 0, winner.stderr
    assert "b" not in listed(env=session) and "a" in listed(env=session)
