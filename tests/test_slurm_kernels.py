"""Slurm kernels on the real single-node Slurm (8 CPUs, 4 stand-in GPUs from gres.conf):
a kernel as a job step of the server's allocation, or as its own job, started through
jupyter_client, JupyterLab, papermill and jupyter console. The test Slurm enforces no
cgroups, so what is asserted is what Slurm granted (scontrol, squeue, SLURM_* and
CUDA_VISIBLE_DEVICES in the kernel). docs/slurm-kernels.md."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import assert_user_error, created, kernelctl
from tests.test_create import offline

SHOW = ("import json, os, sys, kctl_shadow\n"
        "print('SEEN ' + json.dumps({'job': os.environ.get('SLURM_JOB_ID'),\n"
        "    'step': os.environ.get('SLURM_STEP_ID'), 'cpus': os.environ.get('SLURM_CPUS_PER_TASK'),\n"
        "    'gpus': os.environ.get('CUDA_VISIBLE_DEVICES'), 'prefix': sys.prefix,\n"
        "    'shadow': kctl_shadow.__version__, 'mark': os.environ.get('KCTL_MARK')}))\n")
GONE_WITHIN = 60  # seconds: what the issue allows for a job or step to be left


def seen(text: str) -> dict:
    lines = [line for line in text.splitlines() if line.startswith("SEEN ")]
    assert lines, text
    return json.loads(lines[-1][len("SEEN "):])


def squeue(slurm, *args: str) -> list:
    done = subprocess.run(["squeue", "-h", *args], capture_output=True, text=True,
                          env=slurm.env(dict(os.environ)))
    assert done.returncode == 0, done.stderr
    return [line.split("|") for line in done.stdout.splitlines() if line.strip()]


def kernel_jobs(slurm, name: str) -> list:
    """(job id, state, CPUs, time limit) of the jobs of kernel `name`."""
    return squeue(slurm, "-n", f"kernelctl-{name}", "-o", "%i|%T|%C|%l")


def kernel_steps(slurm, name: str) -> list:
    return [row for row in squeue(slurm, "-s", "-o", "%i|%j") if row[1] == f"kernelctl-{name}"]


def wait_until(what, condition, timeout: float = GONE_WITHIN) -> float:
    """Seconds until `condition()` held; fails after `timeout`."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"after {timeout} s: {what}"
        time.sleep(0.5)
    return time.monotonic() - start


def scontrol(slurm, *args: str) -> str:
    return subprocess.run(["scontrol", *args], capture_output=True, text=True,
                          env=slurm.env(dict(os.environ))).stdout


@pytest.fixture
def allocate(slurm, tmp_path):
    """The user's allocation, as JupyterLab on a compute node has one (CPUs and GPUs of
    the node): its job id."""
    jobs = []

    def allocation(cpus: int, gpus: int) -> str:
        made = subprocess.run(["sbatch", "--parsable", "-c", str(cpus), f"--gres=gpu:{gpus}",
                               "--mem=4000", "--wrap", "sleep 900"],
                              env=slurm.env(dict(os.environ)), capture_output=True, text=True,
                              cwd=tmp_path)
        job = made.stdout.strip()
        assert job.isdigit(), made.stderr
        jobs.append(job)
        wait_until(f"job {job} runs",
                   lambda: squeue(slurm, "-j", job, "-o", "%T") == [["RUNNING"]])
        return job

    yield allocation
    for job in jobs:
        subprocess.run(["scancel", job], env=slurm.env(dict(os.environ)))


@pytest.fixture
def whole_node(allocate):
    return allocate(8, 4)


@pytest.fixture
def blocker(slurm, tmp_path):
    """Fills the node (all its CPUs) until cancelled: kernels wait in the queue."""
    jobs = []

    def block() -> str:
        made = subprocess.run(["sbatch", "--parsable", "-c", "8", "--wrap", "sleep 600"],
                              env=slurm.env(dict(os.environ)), capture_output=True,
                              text=True, cwd=tmp_path)
        jobs.append(made.stdout.strip())
        wait_until("the blocker runs", lambda: squeue(slurm, "-j", jobs[-1], "-o", "%T")
                   == [["RUNNING"]])
        return jobs[-1]

    yield block
    for job in jobs:
        subprocess.run(["scancel", job], env=slurm.env(dict(os.environ)))


def slurm_kernel(prgenv_image, test_wheels, slurm, name: str, *options: str) -> dict:
    """A kernel on the uenv prgenv-gnu with the venv's kctl_shadow 2.0 over the uenv's
    1.0: the plain kernel's shadowing fix must hold in the step or job too."""
    session = slurm.env(prgenv_image.session_env(dict(os.environ)))
    return created("--base", "prgenv-gnu", "--name", name, "-p", "kctl_shadow==2.0",
                   *offline(test_wheels), *options, env=session)


class Running:
    """A kernel started by jupyter_client as a Jupyter server would."""

    def __init__(self, name: str, server_env: dict):
        from jupyter_client.manager import KernelManager

        self.manager = KernelManager(kernel_name=name)
        self.manager.start_kernel(env=server_env, cwd=os.environ["HOME"])
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 120) -> tuple:
        """(execute_reply content, what the cell printed, stdout and stderr)."""
        printed: list = []

        def on_output(message):
            content = message["content"]
            if message["msg_type"] == "stream":
                printed.append(content["text"])
            elif message["msg_type"] == "error":
                printed.append(f"ERROR {content['ename']}: {content['evalue']}")

        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=on_output)
        return reply["content"], "".join(printed)

    def stop(self) -> None:
        self.client.stop_channels()
        if self.manager.has_kernel:
            self.manager.shutdown_kernel()


@contextmanager
def running(name: str, server_env: dict):
    kernel = Running(name, server_env)
    try:
        yield kernel
    finally:
        kernel.stop()


def server_env_of(prgenv_image, slurm, **extra: str) -> dict:
    return {**slurm.env(prgenv_image.session_env(dict(os.environ))), **extra}


def test_two_step_kernels_run_side_by_side_with_their_own_cpus_and_gpus(
        prgenv_image, test_wheels, slurm, whole_node):
    kernel = slurm_kernel(prgenv_image, test_wheels, slurm, "steps", "--slurm", "step",
                          "--cpus", "2", "--gpus", "1")
    assert kernel["display_name"].endswith("· Slurm step: 2 CPUs, 1 GPU")
    assert kernel["slurm"]["mode"] == "step"
    # As under batchspawner: the server's job was submitted with --export=LIST, and every
    # srun applies SLURM_EXPORT_ENV; the kernel must still get its whole environment.
    server = server_env_of(prgenv_image, slurm, SLURM_JOB_ID=whole_node, KCTL_MARK="kept",
                           SLURM_EXPORT_ENV="HOME,PATH,SLURM_CONF")
    with running("steps", server) as first, running("steps", server) as second:
        one = seen(first.run(SHOW)[1])
        two = seen(second.run(SHOW)[1])
        for got in (one, two):
            assert got["job"] == whole_node and got["cpus"] == "2"
            assert got["prefix"] == kernel["venv"] and got["shadow"] == "2.0"
            assert got["mark"] == "kept"
            step = scontrol(slurm, "show", "step", f"{whole_node}.{got['step']}")
            assert "CPUs=2" in step and "gres:gpu:1" in step, step
        assert one["step"] != two["step"]
        assert one["gpus"] != two["gpus"] and len(one["gpus"].split(",")) == 1
        assert len(kernel_steps(slurm, "steps")) == 2
        listed = json.loads(kernelctl("show", "steps", "--json", env=server).stdout)
        assert sorted(run["step"] for run in listed["slurm"]["runs"]) == \
            sorted([one["step"], two["step"]])
        # Interrupt: srun does not forward one SIGINT; the message reaches the kernel.
        first.run("x = 42")
        first.client.execute("import time; time.sleep(600)")
        time.sleep(2)
        first.manager.interrupt_kernel()
        reply = first.client.get_shell_msg(timeout=30)["content"]
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
        assert first.run("print(x)")[1] == "42\n"
    wait_until("no step left after shutdown", lambda: not kernel_steps(slurm, "steps"))


def test_a_step_kernel_outside_an_allocation_says_what_it_needs(prgenv_image, test_wheels,
                                                                 slurm):
    slurm_kernel(prgenv_image, test_wheels, slurm, "nostep", "--slurm", "step")
    with running("nostep", server_env_of(prgenv_image, slurm)) as kernel:
        pid = kernel.manager.provisioner.pid
        reply, printed = kernel.run("print('never')")
        assert reply["status"] == "error"
        assert "not in a Slurm allocation" in printed and "never" not in printed
        assert "kernelctl slurm nostep --mode job" in printed
        time.sleep(3)  # no restart loop: the same process answers
        assert kernel.manager.is_alive() and kernel.manager.provisioner.pid == pid
        assert kernel.run("1")[0]["status"] == "error"


def test_a_job_kernel_has_its_own_job_and_restarts_never_overlap(prgenv_image, test_wheels,
                                                                  slurm):
    kernel = slurm_kernel(prgenv_image, test_wheels, slurm, "ownjob", "--slurm", "job",
                          "--cpus", "2", "--time", "10", "--gpus", "1")
    assert kernel["display_name"].endswith("· Slurm job: 2 CPUs, 1 GPU, 10 min")
    server = server_env_of(prgenv_image, slurm, KCTL_MARK="kept")
    most = []
    watching = threading.Event()

    def count_jobs():
        while not watching.is_set():
            most.append(len([j for j in kernel_jobs(slurm, "ownjob")
                             if j[1] in ("PENDING", "RUNNING")]))
            time.sleep(0.2)

    with running("ownjob", server) as job_kernel:
        got = seen(job_kernel.run(SHOW)[1])
        assert got["prefix"] == kernel["venv"] and got["shadow"] == "2.0"
        assert got["mark"] == "kept" and got["cpus"] == "2" and got["gpus"]
        assert kernel_jobs(slurm, "ownjob") == [[got["job"], "RUNNING", "2", "10:00"]]
        shown = json.loads(kernelctl("show", "ownjob", "--json", env=server).stdout)
        [run] = shown["slurm"]["runs"]
        assert run["job"] == got["job"] and run["state"] == "RUNNING" and run["node"]
        listed = kernelctl("list", env=server).stdout
        assert f"job {got['job']} RUNNING on {run['node']}" in listed, listed
        job_kernel.run("x = 42")
        job_kernel.client.execute("import time; time.sleep(600)")
        time.sleep(2)
        job_kernel.manager.interrupt_kernel()
        reply = job_kernel.client.get_shell_msg(timeout=30)["content"]
        assert reply["ename"] == "KeyboardInterrupt"
        assert job_kernel.run("print(x)")[1] == "42\n"
        watcher = threading.Thread(target=count_jobs)
        watcher.start()
        jobs = {got["job"]}
        try:
            for _ in range(3):
                job_kernel.manager.restart_kernel()
                job_kernel.client.wait_for_ready(timeout=60)
                jobs.add(seen(job_kernel.run(SHOW)[1])["job"])
        finally:
            watching.set()
            watcher.join()
        assert len(jobs) == 4, jobs
        assert max(most) == 1, "two live jobs for one kernel during a restart"
    wait_until("no job left after shutdown", lambda: not [
        j for j in kernel_jobs(slurm, "ownjob") if j[1] in ("PENDING", "RUNNING")])


SERVER = """
import os, sys, time
from jupyter_client.manager import KernelManager
manager = KernelManager(kernel_name=sys.argv[1])
manager.start_kernel(cwd=os.environ["HOME"])
client = manager.client()
client.start_channels()
client.wait_for_ready(timeout=60)
client.execute_interactive("import os; print(os.environ['SLURM_JOB_ID'])", timeout=120)
print("KERNEL", manager.provisioner.pid, flush=True)
time.sleep(3600)
"""


def test_a_killed_server_or_relay_leaves_no_job_or_step(prgenv_image, test_wheels, slurm,
                                                       allocate, tmp_path):
    half_node = allocate(4, 2)  # the other half is for the kernel's own jobs
    slurm_kernel(prgenv_image, test_wheels, slurm, "orphan-job", "--slurm", "job")
    slurm_kernel(prgenv_image, test_wheels, slurm, "orphan-step", "--slurm", "step")
    server_env = server_env_of(prgenv_image, slurm, SLURM_JOB_ID=half_node)
    (tmp_path / "server.py").write_text(SERVER)
    for name, running_now, kill in (
            ("orphan-job", lambda: kernel_jobs(slurm, "orphan-job"), "server"),
            ("orphan-step", lambda: kernel_steps(slurm, "orphan-step"), "server"),
            ("orphan-job", lambda: kernel_jobs(slurm, "orphan-job"), "relay")):
        server = subprocess.Popen([sys.executable, str(tmp_path / "server.py"), name],
                                  env=server_env, stdout=subprocess.PIPE, text=True)
        said = [server.stdout.readline()]  # the cell's output, then the relay's pid
        while not said[-1].startswith("KERNEL") and said[-1]:
            said.append(server.stdout.readline())
        assert said[-1].startswith("KERNEL"), said
        relay = int(said[-1].split()[1])
        assert running_now(), f"{name} is not running"
        if kill == "server":
            server.kill()  # the Jupyter server SIGKILLed: its kernels are orphans
        else:
            os.killpg(relay, signal.SIGKILL)  # jupyter_client's kill: the whole group
        took = wait_until(f"{name} gone after the {kill} was killed",
                          lambda: not running_now())
        print(f"{name}: nothing left {took:.1f} s after the {kill} was SIGKILLed")
        server.kill()
        server.wait()


def test_scancel_is_said_in_the_notebook_without_a_restart_loop(prgenv_image, test_wheels,
                                                                 slurm):
    slurm_kernel(prgenv_image, test_wheels, slurm, "cancelled", "--slurm", "job")
    with running("cancelled", server_env_of(prgenv_image, slurm)) as kernel:
        job = seen(kernel.run(SHOW)[1])["job"]
        pid = kernel.manager.provisioner.pid
        subprocess.run(["scancel", job], env=slurm.env(dict(os.environ)), check=True)
        wait_until("the job ends", lambda: not kernel_jobs(slurm, "cancelled") or
                   kernel_jobs(slurm, "cancelled")[0][1] not in ("RUNNING", "COMPLETING"))
        time.sleep(3)  # the relay notices (it looks every 2 s)
        reply, printed = kernel.run("print('after')")
        assert reply["status"] == "error" and "after" not in printed
        assert f"Slurm job {job} ended: CANCELLED" in printed, printed
        time.sleep(3)
        assert kernel.manager.is_alive() and kernel.manager.provisioner.pid == pid
        assert not [j for j in kernel_jobs(slurm, "cancelled") if j[1] == "PENDING"]


def test_a_waiting_job_shows_its_reason_then_runs_or_gives_up(prgenv_image, test_wheels,
                                                              slurm, blocker):
    slurm_kernel(prgenv_image, test_wheels, slurm, "queued", "--slurm", "job", "--cpus", "2")
    slurm_kernel(prgenv_image, test_wheels, slurm, "impatient", "--slurm", "job",
                 "--start-timeout", "5")
    server = server_env_of(prgenv_image, slurm)
    blocking = blocker()
    with running("queued", server) as kernel:
        printed: list = []
        kernel.client.execute(SHOW)
        deadline = time.monotonic() + 60
        while "Resources" not in "".join(printed):
            assert time.monotonic() < deadline, printed
            message = kernel.client.get_iopub_msg(timeout=30)
            if message["msg_type"] == "stream":
                printed.append(message["content"]["text"])
        assert "PENDING (Resources)" in "".join(printed)
        time.sleep(2.5)  # the relay records what it saw
        [run] = json.loads(kernelctl("show", "queued", "--json", env=server).stdout)[
            "slurm"]["runs"]
        assert run["state"] == "PENDING" and run["reason"] == "Resources"
        assert "PENDING (Resources)" in kernelctl("list", env=server).stdout
        subprocess.run(["scancel", blocking], env=slurm.env(dict(os.environ)))
        reply = kernel.client.get_shell_msg(timeout=120)["content"]
        assert reply["status"] == "ok"
        assert kernel_jobs(slurm, "queued")[0][1] == "RUNNING"
    blocker()
    with running("impatient", server) as kernel:
        reply, printed = kernel.run("print('never')", timeout=60)
        assert reply["status"] == "error" and "never" not in printed
        assert "did not start within 5 s" in printed and "Resources" in printed, printed
        wait_until("the job given up on is cancelled",
                   lambda: not [j for j in kernel_jobs(slurm, "impatient")
                                if j[1] in ("PENDING", "RUNNING")])


def test_papermill_and_jupyter_console_run_a_job_kernel_by_name(prgenv_image, test_wheels,
                                                                slurm, tmp_path):
    slurm_kernel(prgenv_image, test_wheels, slurm, "batchy", "--slurm", "job", "--cpus", "2")
    server = server_env_of(prgenv_image, slurm)
    notebook = tmp_path / "in.ipynb"
    notebook.write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {},
                   "outputs": [], "source": SHOW}],
        "metadata": {"kernelspec": {"name": "batchy", "display_name": "batchy",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}))
    bin_dir = Path(sys.executable).parent
    done = subprocess.run([str(bin_dir / "papermill"), str(notebook), str(tmp_path / "out.ipynb"),
                           "-k", "batchy"], env=server, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    outputs = json.loads((tmp_path / "out.ipynb").read_text())["cells"][0]["outputs"]
    got = seen("".join("".join(output.get("text", "")) for output in outputs))
    assert got["job"] and got["cpus"] == "2" and got["shadow"] == "2.0"
    console = subprocess.run(
        [str(bin_dir / "jupyter-console"), "--kernel", "batchy", "--simple-prompt"],
        input="import os; print('JOB=' + os.environ['SLURM_JOB_ID'])\nexit\n", env=server,
        capture_output=True, text=True, timeout=300)
    assert "JOB=" in console.stdout, console.stdout + console.stderr
    job = console.stdout.split("JOB=")[1].split()[0]
    assert job.isdigit() and job != got["job"]
    wait_until("no job left", lambda: not [j for j in kernel_jobs(slurm, "batchy")
                                           if j[1] in ("PENDING", "RUNNING")])


@pytest.mark.parametrize("options, phrase", [
    (["--slurm", "job", "--partition", "nope"], "invalid partition"),
    (["--slurm", "job", "--cpus", "64"], "More processors requested than permitted"),
    (["--slurm", "job", "--time", "soon"], "is not a Slurm time limit"),
    (["--slurm", "job", "--partition", "short", "--time", "2:00:00"], "time limit"),
    (["--slurm", "job", "--mem", "lots"], "is not a Slurm memory size"),
    (["--slurm", "job", "--gpus", "0"], "is not a GPU count"),
    (["--slurm", "job", "--slurm-arg=--export=NONE"], "kernelctl sets --export itself"),
    (["--slurm", "job", "--slurm-arg", "qos"], "is not a Slurm option"),
    (["--slurm", "later"], "is not a Slurm mode"),
    (["--cpus", "2"], "only apply to Slurm kernels"),
])
def test_bad_slurm_requests_are_one_line_and_make_nothing(prgenv_image, slurm, options,
                                                          phrase):
    session = slurm.env(prgenv_image.session_env(dict(os.environ)))
    done = kernelctl("create", "--base", "prgenv-gnu", "--name", "bad", *options, env=session)
    assert_user_error(done, phrase)
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("kernelctl:")]
    assert len(error_lines) == 1, done.stderr
    home = Path(os.environ["KERNELCTL_HOME"])
    assert not (home / "venvs" / "bad").exists()
    assert not (Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels" / "bad").exists()


def test_slurm_kernels_need_slurm(prgenv_image):
    session = prgenv_image.session_env(dict(os.environ))
    no_slurm = {**session, "PATH": "/nonexistent:" + os.path.dirname(sys.executable)}
    done = kernelctl("create", "--base", "prgenv-gnu", "--name", "bad", "--slurm", "job",
                     env={**no_slurm, "PATH": "/usr/local/bin:/nonexistent"})
    assert done.returncode != 0 and "sbatch is not on PATH" in done.stderr


def test_an_existing_kernel_becomes_a_slurm_kernel_and_doctor_checks_its_request(
        prgenv_image, test_wheels, slurm):
    kernel = slurm_kernel(prgenv_image, test_wheels, slurm, "later")
    server = server_env_of(prgenv_image, slurm)
    done = kernelctl("slurm", "later", "--mode", "job", "--cpus", "2", "--partition", "short",
                     "--time", "10", "--json", env=server)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["slurm"]["mode"] == "job" and shown["slurm"]["partition"] == "short"
    assert shown["spec"]["interrupt_mode"] == "message"
    assert shown["display_name"] == kernel["display_name"] + " · Slurm job: 2 CPUs, 10 min, short"
    with running("later", server) as job_kernel:
        got = seen(job_kernel.run(SHOW)[1])
        assert got["prefix"] == kernel["venv"] and got["cpus"] == "2"
        assert squeue(slurm, "-j", got["job"], "-o", "%P") == [["short"]]
    doctor = json.loads(kernelctl("doctor", "later", "--json", env=server).stdout)
    [check] = [c for c in doctor["checks"] if c["id"] == "slurm.request"]
    assert check["status"] == "ok", check
    # The site renames the partition: doctor says so before a notebook waits on it.
    scontrol(slurm, "delete", "PartitionName=short")
    try:
        doctor = json.loads(kernelctl("doctor", "later", "--json", env=server).stdout)
        [check] = [c for c in doctor["checks"] if c["id"] == "slurm.request"]
        assert check["status"] == "fail" and "invalid partition" in check["message"], check
    finally:
        scontrol(slurm, "create", "PartitionName=short", "Nodes=ALL", "MaxTime=00:30:00",
                 "State=UP")
    done = kernelctl("slurm", "later", "--mode", "off", "--json", env=server)
    assert done.returncode == 0, done.stderr
    plain = json.loads(done.stdout)
    assert plain["slurm"] is None and plain["display_name"] == kernel["display_name"]
    with running("later", server) as plain_kernel:
        got = seen(plain_kernel.run(SHOW)[1])
        assert got["job"] is None and got["shadow"] == "2.0"
    assert_user_error(kernelctl("slurm", "later", "--cpus", "2", env=server),
                      "is not a Slurm kernel yet")
    assert_user_error(kernelctl("slurm", "nosuch", "--mode", "job", env=server), "no kernel")


def test_jupyterlab_in_an_allocation_runs_step_and_job_kernels(prgenv_image, test_wheels,
                                                               slurm, allocate, tmp_path):
    """JupyterLab started inside the user's allocation (what salloc gives the command
    it runs: SLURM_JOB_ID and the rest), as at the sites; its notebooks on a step kernel
    and a job kernel, in the browser; nothing left once the server stops."""
    from playwright.sync_api import sync_playwright

    from tests.test_jupyterlab import CHROMIUM, run_cell_on_page, start_lab

    allocation = allocate(4, 2)  # the rest of the node is for the job kernel
    slurm_kernel(prgenv_image, test_wheels, slurm, "lab-step", "--slurm", "step", "--cpus", "2",
                 "--gpus", "1")
    slurm_kernel(prgenv_image, test_wheels, slurm, "lab-job", "--slurm", "job", "--cpus", "2",
                 "--gpus", "1", "--time", "10")
    session = server_env_of(prgenv_image, slurm, SLURM_JOB_ID=allocation,
                            SLURM_EXPORT_ENV="HOME,PATH,SLURM_CONF")
    server_env = {**session, "PATH": f"{Path(sys.executable).parent}:{session['PATH']}"}
    root = Path(os.environ["HOME"])
    lab, handle = start_lab(server_env, root)
    try:
        specs = handle.api("/api/kernelspecs")["kernelspecs"]
        assert specs["lab-job"]["spec"]["display_name"].endswith(
            "Slurm job: 2 CPUs, 1 GPU, 10 min")
        assert specs["lab-job"]["spec"]["interrupt_mode"] == "message"
        results = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                 args=["--no-sandbox", "--disable-gpu"])
            try:
                for name in ("lab-step", "lab-job"):
                    page = browser.new_page()
                    url = handle.write_notebook(name, name, SHOW)
                    results[name] = seen(run_cell_on_page(page, url, "SEEN", log=handle.log_tail))
                assert kernel_steps(slurm, "lab-step") and kernel_jobs(slurm, "lab-job")
                # The Kernels panel shows each kernel's live job or step.
                page.locator(".jp-SideBar .lm-TabBar-tab[data-id='kernelctl-kernels']").click()
                job = results["lab-job"]["job"]
                page.wait_for_selector(f".kc-kernel[data-name='lab-job'] .kc-slurm-run"
                                       f":has-text('job {job} RUNNING')", timeout=30_000)
                page.wait_for_selector(".kc-kernel[data-name='lab-step'] .kc-slurm-run"
                                       ":has-text('RUNNING')", timeout=30_000)
            finally:
                page.screenshot(path=str(tmp_path / "lab-slurm.png"))
                browser.close()
    finally:
        lab.terminate()
        lab.wait(timeout=60)
    step, job = results["lab-step"], results["lab-job"]
    assert step["job"] == allocation and step["cpus"] == "2" and step["gpus"]
    assert job["job"] != allocation and job["cpus"] == "2" and job["gpus"]
    assert step["shadow"] == job["shadow"] == "2.0"
    wait_until("nothing left after JupyterLab stopped", lambda: not kernel_steps(
        slurm, "lab-step") and not [j for j in kernel_jobs(slurm, "lab-job")
                                   if j[1] in ("PENDING", "RUNNING")])
