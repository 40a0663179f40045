"""The Kernels panel where users are: JupyterLab spawned by JupyterHub as a Slurm job
(batchspawner), as an unprivileged Unix user, driven in Chromium from the hub's login
page. Everything the panel does runs as that user: the kernel it makes is theirs."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import time

from tests.hub import USER
from tests.test_jupyterlab import CHROMIUM


def test_a_user_makes_and_uses_a_kernel_from_the_panel_in_a_hub_job(hub, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                            "--disable-background-networking"])
        context = browser.new_context()  # one login for every page of the test
        page = context.new_page()
        try:
            hub.login(page)
            jobs = hub.slurm_jobs()
            assert len(jobs) == 1 and jobs[0]["user"] == USER, jobs

            page.locator(".jp-SideBar .lm-TabBar-tab[data-id='kernelctl-kernels']").click()
            page.get_by_role("button", name="New kernel").click()
            page.get_by_label("Name", exact=True).fill("from-the-hub")
            page.get_by_label("Base", exact=True).fill("system")
            page.get_by_label("Packages", exact=True).fill("tqdm")
            page.get_by_label("Display name", exact=True).fill("Hub kernel")
            page.get_by_role("button", name="Create").click()
            page.wait_for_selector(".kc-kernel[data-name='from-the-hub'] .kc-status-ok",
                                   timeout=300_000)
            page.wait_for_selector(".jp-LauncherCard:has-text('Hub kernel')", timeout=30_000)
            page.screenshot(path=str(tmp_path / "hub-panel.png"))

            # The kernel is the user's: made by their server, in their home.
            made = hub.home / ".local" / "share" / "jupyter" / "kernels" / "from-the-hub"
            assert made.stat().st_uid == pwd.getpwnam(USER).pw_uid

            # Open terminal (a login shell: PATH reset by /etc/profile) in its environment.
            page.locator(".kc-kernel[data-name='from-the-hub']").click()
            page.wait_for_selector(".kc-details h3:has-text('Hub kernel')", timeout=30_000)
            page.get_by_role("button", name="Open terminal").click()
            terminal = page.locator(".jp-Terminal").last
            terminal.wait_for(timeout=30_000)
            time.sleep(2)
            terminal.click()
            page.keyboard.type("echo $VIRTUAL_ENV > ~/terminal-venv.txt\n")
            seen = hub.home / "terminal-venv.txt"
            deadline = time.monotonic() + 30
            while not (seen.exists() and seen.read_text().strip()) and \
                    time.monotonic() < deadline:
                time.sleep(0.3)
            listed = json.loads(hub.as_user("/usr/bin/env", str(hub.kernelctl()), "list",
                                             "--json").stdout)
            venv = next(k["venv"] for k in listed["kernels"] if k["name"] == "from-the-hub")
            assert seen.read_text().strip() == venv

            # A notebook on it imports the package the panel installed.
            notebooks = context.new_page()
            text = hub.run_cell(notebooks, "from-the-hub", "import tqdm, sys; print('seen', "
                                "tqdm.__name__, sys.prefix)", "seen")
            assert f"seen tqdm {venv}" in text, text
            notebooks.close()

            # Remove: the kernel and its venv go, the Launcher follows without a reload.
            page.locator(".kc-kernel[data-name='from-the-hub']").click()
            page.get_by_role("button", name="Remove").click()
            page.wait_for_selector(".jp-LauncherCard:has-text('Hub kernel')", state="detached",
                                   timeout=120_000)
            page.wait_for_selector(".kc-kernel[data-name='from-the-hub']", state="detached",
                                   timeout=30_000)
            assert not made.exists() and not os.path.exists(venv)
        finally:
            page.screenshot(path=str(tmp_path / "hub-last.png"))
            browser.close()


def test_slurm_kernels_of_a_hub_server_get_their_own_step_and_job(hub, slurm, tmp_path):
    """The user's server is a batchspawner job step (srun inside sbatch --export=LIST):
    a step kernel must share its allocation (--overlap) and get the kernel's whole
    environment despite SLURM_EXPORT_ENV; a job kernel gets a job of its own. When the
    user stops their server, nothing of either is left."""
    from playwright.sync_api import sync_playwright

    for name, options in (("hub-step", ["--slurm", "step", "--cpus", "2", "--gpus", "1"]),
                          ("hub-job", ["--slurm", "job", "--cpus", "2", "--time", "10"])):
        made = hub.as_user("/usr/bin/env", str(hub.kernelctl()), "create", "--base", "system",
                           "--name", name, *options, on_cluster=True)
        assert made.returncode == 0, made.stderr
    code = ("import os, sys; print('SEEN', os.environ.get('SLURM_JOB_ID'), "
            "os.environ.get('SLURM_STEP_ID'), os.environ.get('SLURM_CPUS_PER_TASK'), "
            "os.environ.get('CUDA_VISIBLE_DEVICES'), sys.prefix)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                            "--disable-background-networking"])
        context = browser.new_context()
        page = context.new_page()
        try:
            hub.login(page)
            [server_job] = hub.slurm_jobs()
            pages = {name: context.new_page() for name in ("hub-step", "hub-job")}
            seen = {name: hub.run_cell(pages[name], name, code, "SEEN").split()
                    for name in pages}
            steps = subprocess.run(["squeue", "-h", "-s", "-o", "%i|%j"], capture_output=True,
                                   text=True, env=slurm.env(dict(os.environ))).stdout
        finally:
            for name, notebook in locals().get("pages", {}).items():
                notebook.screenshot(path=str(tmp_path / f"hub-{name}.png"))
            browser.close()
    _, job, step, cpus, gpus, prefix = seen["hub-step"][:6]
    assert f"{job}.{step}|kernelctl-hub-step" in steps, (seen, steps)
    assert job == server_job["id"] and cpus == "2" and gpus != "None"
    assert prefix.endswith("/hub-step")
    _, job, step, cpus, _, prefix = seen["hub-job"][:6]
    assert job != server_job["id"] and cpus == "2" and prefix.endswith("/hub-job")
    kernel_jobs = [j for j in hub.slurm_jobs() if j["name"].startswith("kernelctl-")]
    assert [j["id"] for j in kernel_jobs] == [job], kernel_jobs
    hub.stop_server_gently()
    deadline = time.monotonic() + 60
    while [j for j in hub.slurm_jobs() if j["state"] in ("PENDING", "RUNNING")]:
        assert time.monotonic() < deadline, hub.slurm_jobs()
        time.sleep(1)
