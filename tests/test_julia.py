"""kernelctl julia, against stand-ins for julia/IJulia, nsys and nvidia-smi (none can be
installed here; tests/standins/ says what each does). Kernels are launched through
jupyter_client to see the environment they really get."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import DIGEST
from tests.helpers import kernelctl, listed

STANDINS = Path(__file__).parent / "standins"


class JuliaSession:
    """A session started with the julia uenv and its `jupyter` view (CSCS)."""

    def __init__(self, root: Path, env: dict):
        self.scratch = root / "scratch"
        self.mount = root / "user-environment"
        self.view = self.mount / "env" / "jupyter"
        self.launcher = self.view / "bin" / "julia"
        self.log = root / "julia-calls.jsonl"
        self.gpu_bin = root / "gpu-bin"
        (self.view / "bin").mkdir(parents=True)
        shutil.copy(STANDINS / "julia", self.launcher)
        squashfs = root / "repo" / "images" / DIGEST / "store.squashfs"
        squashfs.parent.mkdir(parents=True)
        squashfs.touch()
        self.view_vars = {"JULIA_DEPOT_PATH": str(self.scratch / "julia-depot"),
                          "JULIAUP_DEPOT_PATH": str(self.scratch / "juliaup"),
                          "JULIA_LOAD_PATH": "@:@v#.#:@stdlib"}
        (self.mount / "meta").mkdir()
        (self.mount / "meta" / "env.json").write_text(json.dumps({
            "name": "julia", "mount": str(self.mount), "description": "simulated julia uenv",
            "views": {"jupyter": {"root": str(self.view), "env": {"version": 1, "values": {
                "list": {"PATH": [{"op": "prepend", "value": [str(self.view / "bin")]}]},
                "scalar": self.view_vars}}}}}))
        self.scratch.mkdir()
        self.env = {**env, **self.view_vars, "SCRATCH": str(self.scratch),
                    "UENV_MOUNT_LIST": f"{squashfs}:{self.mount}",
                    "UENV_VIEW": f"{self.mount}:julia:jupyter",
                    "PATH": f"{self.view / 'bin'}:{env['PATH']}",
                    "STANDIN_JULIA_LOG": str(self.log)}

    def with_gpu(self) -> dict:
        self.gpu_bin.mkdir(exist_ok=True)
        for tool in ("nsys", "nvidia-smi"):
            shutil.copy(STANDINS / tool, self.gpu_bin / tool)
        return {**self.env, "PATH": f"{self.gpu_bin}:{self.env['PATH']}"}

    def calls(self) -> list:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [json.loads(line)["argv"] for line in lines]


@pytest.fixture
def julia_session(tmp_path) -> JuliaSession:
    return JuliaSession(tmp_path / "julia", dict(os.environ))


def julia_kernels(*args, env: dict) -> list:
    done = kernelctl("julia", "--json", *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["kernels"]


def spec_of(kernel: dict) -> dict:
    return json.loads((Path(kernel["resource_dir"]) / "kernel.json").read_text())


def test_julia_uenv_kernel_is_robust_and_listed_ok(julia_session):
    [kernel] = julia_kernels(env=julia_session.env)
    assert (kernel["name"], kernel["display_name"]) == ("julia-1.10", "Julia 1.10.4")
    spec = spec_of(kernel)
    # The stable launcher of the view, not Sys.BINDIR's julia under purged $SCRATCH.
    assert spec["argv"][0] == str(julia_session.launcher)
    assert spec["argv"][1:3] == ["-i", "--color=yes"] and "--project=@." in spec["argv"]
    assert spec["argv"][-3:] == ["-e", "import IJulia; IJulia.run_kernel()", "{connection_file}"]
    assert spec["language"] == "julia" and spec["interrupt_mode"] == "signal"
    for var, value in julia_session.view_vars.items():
        assert spec["env"][var] == value
    binding = spec["metadata"]["kernelctl"]
    assert binding["kind"] == "julia" and binding["julia_version"] == "1.10.4"
    assert binding["ijulia_version"] == "1.29.0" and binding["uenv"] == "julia"
    assert binding["digest"] == DIGEST and binding["project"] == "@."
    assert binding["depot"] == julia_session.view_vars["JULIA_DEPOT_PATH"]
    assert (Path(kernel["resource_dir"]) / "logo-64x64.png").is_file()
    # IJulia was added once, into the depot; the second run finds it there.
    adds = [c for c in julia_session.calls() if "# kernelctl:add-ijulia" in " ".join(c)]
    assert len(adds) == 1
    julia_kernels("--force", env=julia_session.env)
    adds = [c for c in julia_session.calls() if "# kernelctl:add-ijulia" in " ".join(c)]
    assert len(adds) == 1
    seen = listed(env=julia_session.env)["julia-1.10"]
    assert seen["status"] == "ok" and seen["managed"]
    assert any("$SCRATCH" in p for p in seen["problems"])  # the depot is there: warned


def test_kernel_gets_its_environment_from_a_bare_server(julia_session, tmp_path):
    """A server started without the view's variables still gives the kernel all it needs."""
    julia_kernels("--threads", "8", env=julia_session.env)
    dump = tmp_path / "kernel-env.json"
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("JULIA")}
    server_env["STANDIN_KERNEL_DUMP"] = str(dump)
    from jupyter_client.manager import KernelManager
    manager = KernelManager(kernel_name="julia-1.10")
    manager.start_kernel(env=server_env, cwd=os.environ["HOME"])
    try:
        deadline = time.monotonic() + 30
        while not dump.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        seen = json.loads(dump.read_text())
    finally:
        manager.shutdown_kernel(now=True)
    assert seen["argv"][0] == str(julia_session.launcher)
    assert seen["env"]["JULIA_NUM_THREADS"] == "8"
    for var, value in julia_session.view_vars.items():
        assert seen["env"][var] == value
    assert seen["env"]["PATH"].split(":")[0] == str(julia_session.launcher.parent)


def test_gpu_node_gets_an_nsight_systems_kernel(julia_session):
    kernels = julia_kernels(env=julia_session.with_gpu())
    assert [k["name"] for k in kernels] == ["julia-1.10", "julia-1.10-nsys"]
    nsys = str(julia_session.gpu_bin / "nsys")
    spec = spec_of(kernels[1])
    assert spec["display_name"] == "Julia 1.10.4 (Nsight Systems)"
    assert spec["argv"][:4] == [nsys, "launch", "--trace=cuda", str(julia_session.launcher)]
    assert spec["argv"][4:] == spec_of(kernels[0])["argv"][1:]
    assert spec["env"]["JULIA_CUDA_NSYS"] == nsys
    assert listed(env=julia_session.with_gpu())["julia-1.10-nsys"]["status"] == "ok"
    without = julia_kernels("--no-nsys", "--force", "--name", "plain", env=julia_session.with_gpu())
    assert [k["name"] for k in without] == ["plain"]


def test_nsys_asked_for_but_missing(julia_session):
    done = kernelctl("julia", "--nsys", env=julia_session.env)
    assert done.returncode == 1 and "nsys" in done.stderr and "Traceback" not in done.stderr


def test_project_and_names(julia_session, tmp_path):
    project = tmp_path / "myproject"
    project.mkdir()
    [kernel] = julia_kernels("--project", str(project), "--name", "jl", "--display-name",
                             "My Julia", env=julia_session.env)
    spec = spec_of(kernel)
    assert f"--project={project}" in spec["argv"] and spec["display_name"] == "My Julia"
    done = kernelctl("julia", "--project", str(tmp_path / "missing"), env=julia_session.env)
    assert done.returncode == 1 and "not a directory" in done.stderr
    done = kernelctl("julia", "--threads", "many", env=julia_session.env)
    assert done.returncode == 1 and "--threads" in done.stderr


def test_no_julia_says_how_to_get_it(tmp_path):
    done = kernelctl("julia")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "julia was not found" in done.stderr
    assert "view `jupyter`" in done.stderr and "juliaup" in done.stderr


def test_ijulia_install_failing_offline_leaves_nothing(julia_session):
    env = {**julia_session.env, "STANDIN_JULIA_OFFLINE": "1"}
    done = kernelctl("julia", env=env)
    assert done.returncode == 1 and "installing IJulia failed" in done.stderr
    assert "login node" in done.stderr
    kernels = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels"
    assert not kernels.exists() or list(kernels.iterdir()) == []


def test_julia_on_scratch_is_refused(julia_session):
    on_scratch = julia_session.scratch / "bin" / "julia"
    on_scratch.parent.mkdir(parents=True)
    shutil.copy(STANDINS / "julia", on_scratch)
    done = kernelctl("julia", "--julia", on_scratch, env=julia_session.env)
    assert done.returncode == 1 and "$SCRATCH" in done.stderr and "purged" in done.stderr


def test_existing_kernels_kept_unless_forced_and_failed_force_restores(julia_session):
    [kernel] = julia_kernels(env=julia_session.env)
    before = spec_of(kernel)
    done = kernelctl("julia", env=julia_session.env)
    assert done.returncode == 1 and "already exists" in done.stderr
    # IJulia fails to load inside the replacement: the old kernel survives a failed --force.
    env = {**julia_session.env, "STANDIN_IJULIA_BROKEN": "1"}
    done = kernelctl("julia", "--force", env=env)
    assert done.returncode == 1 and "IJulia.installkernel failed" in done.stderr
    assert spec_of(kernel) == before
    data_dir = Path(os.environ["JUPYTER_DATA_DIR"])
    assert [p.name for p in data_dir.iterdir()] == ["kernels"]  # no staging left behind


def test_juliaup_is_used_when_there_is_no_julia(tmp_path, monkeypatch):
    bin_dir = tmp_path / "juliaup-bin"
    bin_dir.mkdir()
    shutil.copy(STANDINS / "juliaup", bin_dir / "juliaup")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "STANDIN_JULIA": str(STANDINS / "julia")}
    [kernel] = julia_kernels(env=env)
    assert spec_of(kernel)["argv"][0] == str(bin_dir / "julia")
    assert kernel["base"]["label"] == "julia 1.10.4"


def test_julia_health_in_list_and_remove(julia_session, tmp_path):
    julia_kernels(env=julia_session.env)
    other = {**julia_session.env, "UENV_MOUNT_LIST": julia_session.env["UENV_MOUNT_LIST"]
             .replace(DIGEST, "d" * 64)}
    assert listed(env=other)["julia-1.10"]["status"] == "mismatch"
    shutil.rmtree(julia_session.view_vars["JULIA_DEPOT_PATH"])
    gone = listed(env=julia_session.env)["julia-1.10"]
    assert gone["status"] == "broken" and "purged" in gone["problems"][0]
    julia_session.launcher.unlink()
    missing = listed(env=julia_session.env)["julia-1.10"]
    assert missing["status"] == "broken" and "missing" in missing["problems"][0]
    assert kernelctl("remove", "--broken", "--yes", env=julia_session.env).returncode == 0
    assert "julia-1.10" not in listed(env=julia_session.env)


def test_install_points_julia_users_to_pkg(julia_session):
    julia_kernels(env=julia_session.env)
    done = kernelctl("install", "julia-1.10", "Plots", env=julia_session.env)
    assert done.returncode == 1 and "Pkg.add" in done.stderr


def test_julia_found_in_the_uenv_view_when_not_on_path(julia_session):
    """A session on another view of the julia uenv: kernelctl still finds the `jupyter`
    view's julia, and writes that view's JULIA_* settings into the kernel."""
    env = {k: v for k, v in julia_session.env.items() if not k.startswith("JULIA")}
    env["PATH"] = os.environ["PATH"]
    env["UENV_VIEW"] = f"{julia_session.mount}:julia:modules"
    [kernel] = julia_kernels(env=env)
    spec = spec_of(kernel)
    assert spec["argv"][0] == str(julia_session.launcher)
    for var, value in julia_session.view_vars.items():
        assert spec["env"][var] == value
