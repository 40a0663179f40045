"""Filesystems as HPC users have them: a symlinked $HOME, a colleague's unreadable
directory, full disks, no free inodes, read-only mounts, relative paths. Real tmpfs
mounts (root, as in CI) and a root without its file capabilities stand in for nothing:
they are the real conditions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import OTHER_UID
from tests.helpers import (
    assert_user_error,
    created,
    foreign_spec,
    kernel_json,
    kernelctl,
    leftovers,
    listed,
    run_in_kernel,
    session_of,
    write_kernel,
)


def test_symlinked_home(prgenv_image, tmp_path, monkeypatch):
    """$HOME is a symlink on many clusters (/home/u -> /users/u): every path kernelctl
    sees is unresolved, every path Python reports is resolved."""
    real = tmp_path / "users" / "me"
    real.mkdir(parents=True)
    (tmp_path / "links").mkdir()
    home = tmp_path / "links" / "me"
    home.symlink_to(real)
    env = {**session_of(prgenv_image), "HOME": str(home),
           "KERNELCTL_HOME": str(home / ".local/share/kernelctl"),
           "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter")}
    monkeypatch.setenv("JUPYTER_DATA_DIR", env["JUPYTER_DATA_DIR"])
    kernel = created("--base", "prgenv-gnu", "--name", "linked", env=env)
    assert kernel["venv"].startswith(str(home))
    elsewhere = created("--base", "prgenv-gnu", "--name", "linked-venv", "--venv",
                        home / "envs" / "v", env=env)
    for name, made in (("linked", kernel), ("linked-venv", elsewhere)):
        printed = run_in_kernel(name, "import sys; print(sys.prefix)", dict(os.environ))
        assert os.path.realpath(printed.strip()) == os.path.realpath(made["venv"])
    assert listed(env=env)["linked"]["status"] == "ok"


def test_a_colleagues_unreadable_environment(prgenv_image, tmp_path, unprivileged):
    """A kernel on a shared JUPYTER_PATH whose venv sits in a directory this user cannot
    enter: every read-only command works and says so; nothing calls it deleted."""
    private = tmp_path / "colleague"
    venv = private / "venv"
    venv.mkdir(parents=True)
    shared = tmp_path / "shared"
    spec = {**foreign_spec(str(venv / "bin" / "python")),
            "metadata": {"kernelctl": {"kind": "python", "name": "system", "venv": str(venv)}}}
    write_kernel(shared / "kernels", "theirs", spec)
    os.chown(private, OTHER_UID, OTHER_UID)
    private.chmod(0o700)
    env = {**os.environ, "JUPYTER_PATH": str(shared)}
    for args in (["list"], ["list", "--json"], ["show", "theirs"], ["doctor"],
                 ["remove", "--dry-run", "theirs"]):
        done = kernelctl(*args, env=env, prefix=unprivileged)
        assert "Traceback" not in done.stderr, (args, done.stderr)
        assert done.returncode in (0, 1), (args, done.stderr)
    shown = kernelctl("list", "--json", env=env, prefix=unprivileged)
    theirs = json.loads(shown.stdout)["kernels"][0]
    assert theirs["status"] == "broken"
    assert "permission denied" in theirs["problems"][0]
    fixing = kernelctl("doctor", "--fix", "--yes", env=env, prefix=unprivileged)
    assert "Traceback" not in fixing.stderr
    assert (shared / "kernels" / "theirs" / "kernel.json").exists()


def test_prefix_that_is_not_the_users(prgenv_image, tmp_path, unprivileged):
    """--prefix /usr/local as a normal user: a clear error before any venv is built."""
    system = tmp_path / "usr-local"
    system.mkdir()
    os.chown(system, OTHER_UID, OTHER_UID)
    home = tmp_path / "home-of-user"
    home.mkdir()
    env = {**session_of(prgenv_image), "HOME": str(home),
           "KERNELCTL_HOME": str(home / "kernelctl"), "JUPYTER_DATA_DIR": str(home / "jupyter")}
    done = kernelctl("create", "--base", "prgenv-gnu", "--prefix", system, env=env,
                     prefix=unprivileged)
    assert_user_error(done, "permission denied", "--prefix")
    assert not (home / "kernelctl" / "venvs").exists() or not any((home / "kernelctl" / "venvs").iterdir())


@pytest.mark.parametrize("where", ["KERNELCTL_HOME", "JUPYTER_DATA_DIR", "--venv", "--prefix"])
def test_read_only_places(prgenv_image, isolated, filesystems, where):
    read_only = filesystems.mount("ro", read_only=True)
    env = session_of(prgenv_image)
    args = ["create", "--base", "prgenv-gnu", "--name", "ro"]
    if where.startswith("--"):
        args += [where, read_only / "x"]
    else:
        env[where] = str(read_only / "x")
    done = kernelctl(*args, env=env)
    assert_user_error(done, "read-only")
    assert leftovers(isolated) == []


def test_no_free_inodes(prgenv_image, isolated, filesystems):
    def fill(root: Path) -> None:
        for index in range(10_000):
            try:
                (root / f"f{index}").touch()
            except OSError:
                return

    full = filesystems.mount("inodes", inodes=64, fill=fill)
    done = kernelctl("create", "--base", "prgenv-gnu", "--venv", full / "venv",
                     env=session_of(prgenv_image))
    assert_user_error(done, "no free inodes", "quota")
    assert not (full / "venv").exists()
    assert leftovers(isolated) == []


def test_disk_fills_up_while_the_venv_is_built(prgenv_image, isolated, filesystems, test_wheels):
    small = filesystems.mount("small", size="2m")
    done = kernelctl("create", "--base", "prgenv-gnu", "--venv", small / "deep" / "venv",
                     "-p", "kctl_big", "--no-index", "--find-links", test_wheels,
                     env=session_of(prgenv_image))
    # The filesystem that is full is named: pip alone says only "No space left".
    assert_user_error(done, "disk space or quota", f"mounted at {small}")
    assert os.listdir(small) == []
    assert leftovers(isolated) == []


def test_disk_fills_up_while_the_kernelspec_is_staged(prgenv_image, filesystems, tmp_path):
    """The kernelspec is the last thing written: its files do not fit, the error names
    where it was writing (not the logo it copied), and no staging dir stays."""
    data = filesystems.mount("data", size="12k")
    env = {**session_of(prgenv_image), "JUPYTER_DATA_DIR": str(data)}
    done = kernelctl("create", "--base", "prgenv-gnu", "--name", "tight", env=env)
    assert_user_error(done, "disk space or quota", str(data))
    assert "site-packages" not in done.stderr
    assert [p for p in data.rglob("*") if p.is_file()] == []
    assert not [p for p in data.iterdir() if p.name.startswith(".kernelctl")]


def test_relative_prefix_and_data_dir(prgenv_image, tmp_path, monkeypatch):
    """A relative --prefix or JUPYTER_DATA_DIR is made absolute: the server's cwd is
    never the one create ran in."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = session_of(prgenv_image)
    by_prefix = kernelctl("create", "--json", "--base", "prgenv-gnu", "--name", "rel",
                          "--prefix", "pfx", env=env, cwd=workdir)
    assert by_prefix.returncode == 0, by_prefix.stderr
    by_data_dir = kernelctl("create", "--json", "--base", "prgenv-gnu", "--name", "reldata",
                            env={**env, "JUPYTER_DATA_DIR": "data"}, cwd=workdir)
    assert by_data_dir.returncode == 0, by_data_dir.stderr
    for done in (by_prefix, by_data_dir):
        spec = kernel_json(json.loads(done.stdout))
        assert all(os.path.isabs(part) for part in spec["argv"][:2]), spec["argv"]
    monkeypatch.setenv("JUPYTER_PATH", str(workdir / "pfx/share/jupyter"))
    assert run_in_kernel("rel", "print(1 + 1)", dict(os.environ)).strip() == "2"


def test_list_flags_a_relative_launcher(tmp_path, isolated):
    kernels = isolated / ".local/share/jupyter/kernels"
    write_kernel(kernels, "relative", {
        "argv": ["/bin/sh", "share/jupyter/kernels/relative/kernelctl-launch.sh", "-f",
                 "{connection_file}"],
        "display_name": "Relative", "language": "python",
        "metadata": {"kernelctl": {"kind": "python", "name": "system", "venv": str(tmp_path)}}})
    write_kernel(kernels, "relpython", foreign_spec("venv/bin/python"))
    found = listed()
    for name in ("relative", "relpython"):
        assert found[name]["status"] == "broken"
        assert "relative path" in found[name]["problems"][0]


def test_unreadable_server_log(tmp_path, isolated, unprivileged):
    log = isolated / "slurm-4242.out"
    log.write_text("kernel died\n")
    os.chown(log, OTHER_UID, OTHER_UID)
    log.chmod(0o600)
    done = kernelctl("doctor", env={**os.environ, "SLURM_JOB_ID": "4242"}, prefix=unprivileged)
    assert "Traceback" not in done.stderr
    assert "cannot be read" in done.stdout
