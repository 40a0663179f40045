"""kernelctl doctor: each check made to fail for real, and seen healthy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BASE_PYTHON, PY_MM
from tests.helpers import (
    PROBE_CODE,
    created,
    foreign_spec,
    kernelctl,
    make_venv,
    run_in_kernel,
    write_kernel,
)


def doctor(*args, env: dict):
    """(exit code, {(check id, kernel): check}) of `kernelctl doctor --json ARGS`."""
    done = kernelctl("doctor", "--json", *args, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] == (done.returncode == 0)
    return done.returncode, {(c["id"], c["kernel"]): c for c in report["checks"]}


def only(checks: dict, check_id: str, kernel=None) -> dict:
    return checks[(check_id, kernel)]


@pytest.fixture
def session(prgenv_image, tmp_path) -> dict:
    """A healthy prgenv-gnu session with $SCRATCH linked from $HOME."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    os.symlink(scratch, Path(os.environ["HOME"]) / "scratch")
    return {**prgenv_image.session_env(dict(os.environ)), "SCRATCH": str(scratch)}


def bin_with(tmp_path: Path, name: str, script: str) -> Path:
    """A directory holding one stand-in command, to put first on PATH."""
    directory = tmp_path / f"bin-{name}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text("#!/bin/sh\n" + script)
    (directory / name).chmod(0o755)
    return directory


def test_healthy_session_is_quiet_and_passes(session):
    created("--base", "prgenv-gnu", "--name", "fine", env=session)
    done = kernelctl("doctor", env=session)
    assert done.returncode == 0, done.stdout
    assert done.stdout.startswith("All ") and done.stdout.count("\n") == 1, done.stdout
    code, checks = doctor(env=session)
    assert code == 0 and all(c["status"] == "ok" for c in checks.values()), checks
    assert {"session.base", "session.kernel-dirs", "kernel.health", "kernel.env-block",
            "kernel.shadowing", "kernel.ipykernel", "storage.quota", "storage.scratch-link",
            "logs.server", "pitfall.rank-env", "pitfall.gpu-busy", "pitfall.pythonpath"} \
        <= {check_id for check_id, _ in checks}


def test_session_base_names_uenv_modules_and_container(session):
    env = {**session, "LOADEDMODULES": "python/3.11:scipy-stack", "container": "podman"}
    message = only(doctor(env=env)[1], "session.base")["message"]
    assert "uenv prgenv-gnu/24.11:v1" in message and "views: default" in message
    assert "image aaaaaaaaaaaa" in message
    assert "modules python/3.11, scipy-stack" in message and "container podman" in message


def test_kernel_dir_not_writable(session, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where Jupyter's data dir should be")
    env = {**session, "JUPYTER_DATA_DIR": str(blocker / "jupyter")}
    code, checks = doctor(env=env)
    assert code == 1 and only(checks, "session.kernel-dirs")["status"] == "fail"
    assert "JUPYTER_DATA_DIR" in only(checks, "session.kernel-dirs")["hint"]


def test_deleted_venv_fails_and_fix_removes_the_kernel(session):
    kernel = created("--base", "prgenv-gnu", "--name", "gone", env=session)
    shutil.rmtree(kernel["venv"])
    code, checks = doctor(env=session)
    assert code == 1 and "was deleted" in only(checks, "kernel.health", "gone")["message"]
    refused = kernelctl("doctor", "--fix", env=session, stdin=subprocess.DEVNULL)
    assert refused.returncode == 1 and "stdin is not a terminal" in refused.stderr
    assert Path(kernel["resource_dir"]).exists()
    fixed = kernelctl("doctor", "--fix", "--yes", env=session)
    assert "remove the kernel gone" in fixed.stdout and fixed.returncode == 0, fixed.stdout
    assert not Path(kernel["resource_dir"]).exists()


def test_mismatch_names_the_uenv_and_view_to_start(session, prgenv_image):
    created("--base", "prgenv-gnu", "--name", "other", env=session)
    replaced = {**session, "UENV_MOUNT_LIST": session["UENV_MOUNT_LIST"].replace(
        prgenv_image.digest, "f" * 64)}
    code, checks = doctor(env=replaced)
    health = only(checks, "kernel.health", "other")
    assert code == 0 and health["status"] == "warn" and "image was replaced" in health["message"]
    assert "uenv prgenv-gnu/24.11:v1 and the view default" in health["hint"]


def test_shadowed_kernelspec(session, tmp_path):
    early = tmp_path / "early"
    write_kernel(early / "kernels", "twin", foreign_spec(str(BASE_PYTHON), "early twin"))
    write_kernel(Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels", "twin",
                 foreign_spec(str(BASE_PYTHON), "late twin"))
    code, checks = doctor(env={**session, "JUPYTER_PATH": str(early)})
    shadowed = only(checks, "kernel.shadowed", "twin")
    assert shadowed["status"] == "warn" and "is hidden" in shadowed["message"]
    assert str(early / "kernels") in shadowed["message"]


def test_stale_env_block_is_found_fixed_and_then_the_venv_wins(session, test_wheels):
    kernel = created("--base", "prgenv-gnu", "--name", "stale", "-p", "kctl_shadow==2.0",
                     "--no-index", "--find-links", test_wheels, env=session)
    spec_path = Path(kernel["resource_dir"]) / "kernel.json"
    spec = json.loads(spec_path.read_text())
    spec["env"]["PYTHONPATH"] = session["PYTHONPATH"] + "::${NOT_SET}"
    spec_path.write_text(json.dumps(spec))
    code, checks = doctor(env=session)
    stale = only(checks, "kernel.env-block", "stale")
    assert stale["status"] == "warn" and "empty entry" in stale["message"]
    assert "${VAR}" in stale["message"] and "does not start with the venv" in stale["message"]
    # The venv's own path guard still lets its copy win, so nothing fails yet.
    assert code == 0 and only(checks, "kernel.shadowing", "stale")["status"] == "ok"
    assert kernelctl("doctor", "--fix", "--yes", env=session).returncode == 0
    code, checks = doctor(env=session)
    assert code == 0 and only(checks, "kernel.env-block", "stale")["status"] == "ok"
    assert json.loads(run_in_kernel("stale", PROBE_CODE, session))["shadow"] == "2.0"


def seed_recipe_kernel(name: str, image, wheels: Path, tmp_path: Path, packages=()) -> Path:
    """A venv and kernel made the documented way, without kernelctl (no guard)."""
    venv = tmp_path / f"venv-{name}"
    make_venv(venv, BASE_PYTHON, "--no-seed", "--system-site-packages")
    site = venv / "lib" / f"python{PY_MM}" / "site-packages"
    if packages:
        subprocess.run([BASE_PYTHON, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--no-index", "--find-links", wheels, "--target", site, *packages],
                       check=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    spec = foreign_spec(str(venv / "bin" / "python"), name)
    spec["env"] = {"PYTHONPATH": str(image.site_packages)}
    write_kernel(Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels", name, spec)
    return venv


def test_base_copy_winning_in_kernel_and_terminal(session, prgenv_image, test_wheels, tmp_path):
    seed_recipe_kernel("seeded", prgenv_image, test_wheels, tmp_path, ["kctl_shadow==2.0"])
    created("--base", "prgenv-gnu", "--name", "guarded", "-p", "kctl_shadow==2.0",
            "--no-index", "--find-links", test_wheels, env=session)
    code, checks = doctor(env=session)
    assert code == 1
    seeded = only(checks, "kernel.shadowing", "seeded")
    assert seeded["status"] == "fail"
    assert "the base's kctl-shadow 1.0" in seeded["message"] and "venv's 2.0" in seeded["message"]
    terminal = only(checks, "pitfall.pythonpath", "seeded")
    assert terminal["status"] == "warn" and "export PYTHONPATH=" in terminal["hint"]
    assert only(checks, "kernel.shadowing", "guarded")["status"] == "ok"
    assert only(checks, "pitfall.pythonpath", "guarded")["status"] == "ok"


def test_ipykernel_missing_from_the_environment(session, prgenv_image, test_wheels, tmp_path):
    venv = seed_recipe_kernel("no-ipykernel", prgenv_image, test_wheels, tmp_path)
    spec_path = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels" / "no-ipykernel" / "kernel.json"
    spec = json.loads(spec_path.read_text())
    spec["env"] = {"PYTHONPATH": str(venv / "lib")}  # nothing with ipykernel
    spec_path.write_text(json.dumps(spec))
    (venv / "pyvenv.cfg").write_text((venv / "pyvenv.cfg").read_text().replace(
        "include-system-site-packages = true", "include-system-site-packages = false"))
    created("--base", "prgenv-gnu", "--name", "has-it", env=session)
    code, checks = doctor(env=session)
    assert only(checks, "kernel.ipykernel", "no-ipykernel")["status"] == "fail"
    assert only(checks, "kernel.ipykernel", "has-it")["status"] == "ok"


QUOTA = """cat <<'QUOTA_END'
Disk quotas for user someone (uid 1000):
     Filesystem   blocks   quota   limit   grace   files   quota   limit   grace
      /dev/home  %s  10000000 10000000  6days  %s  500000  500000
QUOTA_END
"""


def test_quota_near_full_explains_disk_io_error(session, tmp_path):
    full = bin_with(tmp_path, "quota", QUOTA % ("9950000*", "1000"))
    code, checks = doctor(env={**session, "PATH": f"{full}:{session['PATH']}"})
    quota = only(checks, "storage.quota")
    assert code == 1 and quota["status"] == "fail" and "/dev/home" in quota["message"]
    assert "disk I/O error" in quota["hint"] and "9.5 GiB of 9.5 GiB" in quota["message"]
    files = bin_with(tmp_path / "files", "quota", QUOTA % ("100", "460000"))
    quota = only(doctor(env={**session, "PATH": f"{files}:{session['PATH']}"})[1], "storage.quota")
    assert quota["status"] == "warn" and "460,000 of 500,000 files (92%)" in quota["message"]
    fine = bin_with(tmp_path / "fine", "quota", QUOTA % ("100", "10"))
    assert only(doctor(env={**session, "PATH": f"{fine}:{session['PATH']}"})[1],
                "storage.quota")["status"] == "ok"


def test_without_quota_filesystem_figures_are_used(session):
    report = json.loads(kernelctl("doctor", "--json", env=session).stdout)
    messages = [c["message"] for c in report["checks"] if c["id"] == "storage.quota"]
    assert [m.split(" ")[0] for m in messages] == ["$HOME", "$SCRATCH"]
    assert all("files" in m and "%" in m for m in messages)


def test_scratch_link_missing_is_fixed(session):
    link = Path(os.environ["HOME"]) / "scratch"
    link.unlink()
    check = only(doctor(env=session)[1], "storage.scratch-link")
    assert check["status"] == "warn" and "file browser" in check["message"]
    assert kernelctl("doctor", "--fix", "--yes", env=session).returncode == 0
    assert link.is_symlink() and os.readlink(link) == session["SCRATCH"]


LOG = """[I 2026-11-22 10:00:01.000 ServerApp] Jupyter Server 2.14 is running
[I 2026-11-22 10:05:12.000 ServerApp] Kernel started: 1234
[W 2026-11-22 10:05:20.000 ServerApp] AsyncIOLoopKernelRestarter: restarting kernel (1/5), new random ports
[E 2026-11-22 10:05:30.000 ServerApp] KernelRestarter: restart failed
"""


def test_server_log_and_its_kernel_errors(session):
    env = {**session, "SLURM_JOB_ID": "4242"}
    missing = only(doctor(env=env)[1], "logs.server")
    assert missing["status"] == "warn" and "jupyterhub_4242.log" in missing["message"]
    log = Path(session["SCRATCH"]) / "jupyterhub_4242.log"
    log.write_text(LOG)
    found = only(doctor(env=env)[1], "logs.server")
    assert found["status"] == "warn" and "restarting kernel (1/5)" in found["message"]
    assert str(log) in found["message"] and "restart failed" in found["message"]
    log.write_text(LOG.splitlines()[0] + "\n")
    assert only(doctor(env=env)[1], "logs.server")["status"] == "ok"
    slurm_out = Path(os.environ["HOME"]) / "slurm-77.out"
    slurm_out.write_text("ok\n")
    assert str(slurm_out) in only(doctor(env={**session, "SLURM_JOB_ID": "77"})[1],
                                  "logs.server")["message"]


def test_torchrun_outside_the_venv(session, prgenv_image, tmp_path):
    from tests.wheels import build_wheel
    wheels = tmp_path / "torch-wheel"
    build_wheel(wheels, "torch", "2.9.0")  # a stand-in torch: only its location matters
    kernel = created("--base", "prgenv-gnu", "--name", "ml", "-p", "torch==2.9.0", "--no-index",
                     "--find-links", wheels, env=session)
    base_bin = bin_with(tmp_path, "torchrun", "exit 0\n")
    spec_path = Path(kernel["resource_dir"]) / "kernel.json"
    spec = json.loads(spec_path.read_text())
    spec["env"]["PATH"] = f"{kernel['venv']}/bin:{base_bin}:{spec['env']['PATH']}"
    spec_path.write_text(json.dumps(spec))
    check = only(doctor(env=session)[1], "pitfall.torchrun", "ml")
    assert check["status"] == "warn" and str(base_bin / "torchrun") in check["message"]
    assert "python -m torch.distributed.run" in check["hint"]
    shutil.copy(base_bin / "torchrun", Path(kernel["venv"]) / "bin" / "torchrun")
    assert only(doctor(env=session)[1], "pitfall.torchrun", "ml")["status"] == "ok"


def test_rank_variables(session):
    check = only(doctor(env={**session, "RANK": "0", "LOCAL_RANK": "0"})[1], "pitfall.rank-env")
    assert check["status"] == "warn" and "notebook_launcher" in check["message"]
    assert "os.environ.pop('RANK', None)" in check["hint"]


def test_gpu_held_by_another_process_of_mine(session, tmp_path):
    holder = subprocess.Popen(["sleep", "60"])
    try:
        smi = bin_with(tmp_path, "nvidia-smi",
                       f"echo '{holder.pid}, /usr/bin/python3, 40213'\n")
        check = only(doctor(env={**session, "PATH": f"{smi}:{session['PATH']}"})[1],
                     "pitfall.gpu-busy")
        assert check["status"] == "warn" and f"pid {holder.pid}" in check["message"]
        assert "40213 MiB" in check["message"]
        idle = bin_with(tmp_path / "idle", "nvidia-smi", "exit 0\n")
        assert only(doctor(env={**session, "PATH": f"{idle}:{session['PATH']}"})[1],
                    "pitfall.gpu-busy")["status"] == "ok"
    finally:
        holder.kill()
        holder.wait()


def test_julia_depot_on_scratch_is_warned(session, tmp_path):
    from tests.test_julia import JuliaSession
    julia = JuliaSession(tmp_path / "julia", dict(os.environ))
    assert kernelctl("julia", env=julia.env).returncode == 0
    check = only(doctor("julia-1.10", env=julia.env)[1], "kernel.health", "julia-1.10")
    assert check["status"] == "warn" and "$SCRATCH" in check["message"]


def test_deep_starts_kernels_and_reports_what_really_happens(session, prgenv_image,
                                                            test_wheels, tmp_path):
    created("--base", "prgenv-gnu", "--name", "deep-ok", "-p", "kctl_shadow==2.0",
            "--no-index", "--find-links", test_wheels, env=session)
    seed_recipe_kernel("deep-seeded", prgenv_image, test_wheels, tmp_path, ["kctl_shadow==2.0"])
    gone = created("--base", "prgenv-gnu", "--name", "deep-gone", env=session)
    shutil.rmtree(gone["venv"])
    code, checks = doctor("--deep", "deep-ok", "deep-seeded", "deep-gone", env=session)
    assert code == 1
    ok = only(checks, "kernel.deep", "deep-ok")
    assert ok["status"] == "ok" and "started in" in ok["message"] and "kctl_shadow" in ok["message"]
    losing = only(checks, "kernel.deep", "deep-seeded")
    assert losing["status"] == "fail" and "kctl_shadow comes from" in losing["message"]
    assert str(prgenv_image.site_packages) in losing["message"]
    broken = only(checks, "kernel.deep", "deep-gone")
    assert broken["status"] == "fail" and "KernelUnavailable" in broken["message"]
    assert _running_kernels_under(os.environ["HOME"]) == []


def _running_kernels_under(home: str) -> list:
    """Processes still running a kernel from this test's home (there must be none)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_text().replace("\0", " ")
        except OSError:
            continue
        if home in cmdline and ("ipykernel_launcher" in cmdline or "kernelctl-" in cmdline):
            found.append(cmdline)
    return found


def test_unknown_kernel_name():
    done = kernelctl("doctor", "nope")
    assert done.returncode == 1 and "no kernel named 'nope'" in done.stderr


def test_deep_gives_up_on_a_kernel_that_never_answers(session, tmp_path):
    marker = f"kctl-hang-{os.getpid()}"
    hanging = {"argv": ["/usr/bin/python3", "-c", "import time; time.sleep(600)", marker,
                        "{connection_file}"],
               "display_name": "Hangs", "language": "python"}
    write_kernel(Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels", "hangs", hanging)
    code, checks = doctor("--deep", "--timeout", "3", "hangs", env=session)
    check = only(checks, "kernel.deep", "hangs")
    assert code == 1 and check["status"] == "fail" and "did not start" in check["message"]
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit()
                and marker in _cmdline(p)], "the hanging kernel was left running"


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_text()
    except OSError:
        return ""
