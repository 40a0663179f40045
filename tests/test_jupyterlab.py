"""The real user path: JupyterLab in headless Chromium opens a notebook on a kernelctl
kernel. A healthy kernel runs the cell; one whose environment is gone, or whose uenv is
not mounted, answers with why and what to do instead of a "kernel died" loop."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import created

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    def __init__(self, url: str, token: str, root: Path, log: Path):
        self.url, self.token, self.root, self.log = url, token, root, log

    def log_tail(self, lines: int = 40) -> str:
        """The server's own log (kept beside the test's home), for a failure message."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def write_notebook(self, name: str, kernel: str, code: str) -> str:
        (self.root / f"{name}.ipynb").write_text(notebook_text(kernel, code))
        # A workspace of its own: no other notebook restored beside it.
        return f"{self.url}/lab/workspaces/{name}/tree/{name}.ipynb?token={self.token}"

    def wait_for_kernel(self, name: str, timeout: float = 60) -> None:
        """Until a kernel `name` started by the page is idle (connected and ready)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                kernels = self.api("/api/kernels")
            except urllib.error.HTTPError as exc:  # a 5xx while a kernel starts: ask again
                if exc.code < 500:
                    raise
                kernels = []
            if any(k["name"] == name and k["execution_state"] == "idle" for k in kernels):
                return
            time.sleep(0.3)
        raise AssertionError(f"kernel {name} never became idle; server log:\n{self.log_tail()}")

    def api(self, path: str):
        with urllib.request.urlopen(f"{self.url}{path}?token={self.token}", timeout=10) as r:
            return json.loads(r.read())


def notebook_text(kernel: str, code: str) -> str:
    """A notebook of one code cell, on `kernel`."""
    return json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "id": "cell-1",
                   "metadata": {}, "outputs": [], "source": [code]}],
        "metadata": {"kernelspec": {"name": kernel, "display_name": kernel,
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5})


def start_lab(server_env: dict, root: Path):
    """A real JupyterLab server. Its log goes to a file beside `root` (a pipe nobody
    reads would fill up and stall the server), quoted in failure messages."""
    port, token = free_port(), secrets.token_hex(16)
    log = root.parent / f"jupyter-lab-{port}.log"
    with open(log, "wb") as log_file:
        lab = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyter-lab"), "--no-browser", "--allow-root",
             "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
             "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}"],
            env=server_env, stdout=log_file, stderr=subprocess.STDOUT)
    handle = Lab(f"http://127.0.0.1:{port}", token, root, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            handle.api("/api/status")
            return lab, handle
        except OSError:
            if lab.poll() is not None:
                pytest.fail(f"jupyter lab exited:\n{handle.log_tail()}")
            time.sleep(0.3)
    lab.kill()
    pytest.fail("jupyter lab did not answer within 60 s")


@pytest.fixture
def lab_session(prgenv_image, tmp_path):
    """A prgenv-gnu session's JupyterLab server: its own Python (with ipykernel) on PATH."""
    session = prgenv_image.session_env(dict(os.environ))
    server_env = {**session, "PATH": f"{Path(sys.executable).parent}:{session['PATH']}"}
    root = Path(os.environ["HOME"])
    return session, server_env, root


def run_cell_in_browser(lab: Lab, page_url: str, kernel: str, wanted: str,
                        screenshot: Path) -> str:
    """Open the notebook, wait until its kernel is up, run the first cell, return the
    output that contains `wanted`."""
    from playwright.sync_api import sync_playwright

    assert os.access(CHROMIUM, os.X_OK), "Chromium is missing: .ci/run installs it (apt)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"])
        try:
            page = browser.new_page()
            return run_cell_on_page(page, page_url, wanted, lambda: lab.wait_for_kernel(kernel),
                                    lab.log_tail)
        finally:
            page.screenshot(path=str(screenshot))
            browser.close()


def run_cell_on_page(page, page_url: str, wanted: str, ready=lambda: None,
                     log=lambda: "") -> str:
    """In an open browser: the notebook at `page_url`, its first cell run once `ready()`
    returns; the output that contains `wanted`."""
    from playwright.sync_api import TimeoutError as Timeout

    page.goto(page_url)
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
    ready()
    _wait_for_the_notebooks_kernel(page, page_url)
    editor = page.locator(".jp-Notebook .jp-Cell").first.locator(".cm-content")
    for _attempt in range(5):  # a run sent while the kernel connects can be dropped
        try:
            # Focus, not a click: a toolbar laid over the cell for a moment intercepts
            # clicks, never focus.
            editor.focus(timeout=10_000)
            page.keyboard.press("Control+Enter")  # run the cell, stay on it
            output = page.wait_for_selector(
                f".jp-OutputArea-output:has-text('{wanted}')", timeout=20_000)
            return output.inner_text()
        except Timeout:
            continue
    raise AssertionError(f"no output with {wanted!r} in the notebook; server log:\n{log()}")


# A GET of the server's API from the page, as JupyterLab makes it (a hub's single-user
# server wants the _xsrf cookie back as a header).
FETCH_JSON = """url => {
  const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1];
  const headers = xsrf ? {"X-XSRFToken": decodeURIComponent(xsrf)} : {};
  return fetch(url, {headers}).then(r => r.json()).catch(() => []);
}"""


def _wait_for_the_notebooks_kernel(page, page_url: str, timeout: float = 120) -> None:
    """Until the server has the page's notebook session with an idle kernel: a cell run
    before the session exists makes JupyterLab ask which kernel to start (a dialog the
    keys would then answer)."""
    base = page_url.split("/lab/")[0]
    notebook = page_url.split("?")[0].rsplit("/", 1)[-1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sessions = page.evaluate(FETCH_JSON, f"{base}/api/sessions")
        if isinstance(sessions, list) and any(
                s.get("path", "").endswith(notebook) and s.get("kernel") and
                s["kernel"].get("execution_state") == "idle" for s in sessions):
            time.sleep(1)  # the page's own connection to it
            return
        time.sleep(0.5)
    raise AssertionError(f"the notebook {notebook} never got an idle kernel: {sessions}")


def test_healthy_kernel_runs_in_jupyterlab(lab_session, tmp_path):
    session, server_env, root = lab_session
    kernel = created("--base", "prgenv-gnu", "--name", "fine", env=session)
    lab, handle = start_lab(server_env, root)
    try:
        specs = handle.api("/api/kernelspecs")["kernelspecs"]
        assert specs["fine"]["spec"]["display_name"] == kernel["display_name"]
        url = handle.write_notebook("fine", "fine", "import sys; print('prefix=' + sys.prefix)")
        text = run_cell_in_browser(handle, url, "fine", "prefix=", tmp_path / "fine.png")
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    assert f"prefix={kernel['venv']}" in text


def test_broken_kernel_explains_itself_in_the_notebook(lab_session, prgenv_image, tmp_path):
    session, server_env, root = lab_session
    gone = created("--base", "prgenv-gnu", "--name", "gone", env=session)
    shutil.rmtree(gone["venv"])
    created("--base", "prgenv-gnu", "--name", "elsewhere", env=session)
    # This server's session has another image of prgenv-gnu mounted.
    server_env["UENV_MOUNT_LIST"] = server_env["UENV_MOUNT_LIST"].replace(
        prgenv_image.digest, "9" * 64)
    lab, handle = start_lab(server_env, root)
    try:
        deleted = run_cell_in_browser(
            handle, handle.write_notebook("gone", "gone", "print(1 + 1)"), "gone",
            "KernelUnavailable", tmp_path / "gone.png")
        other = run_cell_in_browser(
            handle, handle.write_notebook("other", "elsewhere", "print(1 + 1)"), "elsewhere",
            "KernelUnavailable", tmp_path / "elsewhere.png")
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    assert f"environment {gone['venv']} no longer exists" in deleted
    assert "kernelctl create --base prgenv-gnu --name gone --force" in deleted
    assert "made for the uenv prgenv-gnu/24.11:v1 (view default)" in other
    assert "Start JupyterLab with the uenv prgenv-gnu/24.11:v1" in other
