"""The Kernels panel in JupyterLab, driven in Debian's Chromium: what a notebook user
does without a terminal. The server runs in a session with the uenv prgenv-gnu/25.04
mounted and Lmod set up, installing offline from the site's wheelhouse (pip's settings
in its environment)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import make_image
from tests.helpers import created, foreign_spec, kernelctl, write_kernel
from tests.test_jupyterlab import CHROMIUM, run_cell_on_page, start_lab

CODE = "import kctl_shadow, sys; print('seen', kctl_shadow.__version__, sys.prefix)"
# UPDATE_SCREENSHOTS=1 keeps the screenshots docs/lab.md shows (docs/images/).
DOC_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def snapshot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"))
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOC_IMAGES.mkdir(exist_ok=True)
        page.screenshot(path=str(DOC_IMAGES / f"{name}.png"))


@pytest.fixture
def image_b(tmp_path_factory, wheelhouse, test_wheels):
    return make_image(tmp_path_factory.mktemp("prgenv-b"), "prgenv-gnu", "25.04", "v1",
                      "c" * 64, None, ["ipykernel", "kctl_shadow==1.0"], [wheelhouse, test_wheels])


@pytest.fixture
def panel_session(prgenv_image, image_b, module_tree, wheelhouse, test_wheels, tmp_path):
    """A kernel made on the uenv's version A, a hand-made kernel with the user's notes,
    and a JupyterLab server whose session has version B: the user's morning."""
    created("--base", "prgenv-gnu", "--name", "work", "-p", "kctl_shadow==2.0", "--no-index",
            "--find-links", test_wheels, env=prgenv_image.session_env(dict(os.environ)))
    hand = write_kernel(Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels", "hand",
                        foreign_spec(sys.executable))
    (hand / "notes.txt").write_text("mine\n")
    session = module_tree.session_env(image_b.session_env(dict(os.environ)))
    server_env = {**session, "PATH": f"{Path(sys.executable).parent}:{session['PATH']}",
                  "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": f"{wheelhouse} {test_wheels}"}
    server, lab = start_lab(server_env, Path(os.environ["HOME"]))
    yield lab, server_env, hand
    server.terminate()
    server.wait(timeout=30)


def names_listed(env: dict) -> set:
    return {k["name"] for k in json.loads(kernelctl("list", "--json", env=env).stdout)["kernels"]}


def wait_for_operation(page, timeout_ms: int = 240_000) -> None:
    """Until the panel's operation has ended: its buttons answer again and the list is
    redrawn (the panel refreshes it when an operation ends)."""
    page.wait_for_function(
        "() => !document.querySelector('.kc-panel').dataset.busy", timeout=timeout_ms)


def test_the_panel_creates_fixes_removes_and_opens_a_terminal(panel_session, tmp_path):
    from playwright.sync_api import sync_playwright

    lab, server_env, hand = panel_session
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                            "--disable-background-networking"])
        page = browser.new_page()
        try:
            page.goto(f"{lab.url}/lab/workspaces/panel?token={lab.token}")
            page.locator(".jp-SideBar .lm-TabBar-tab[data-id='kernelctl-kernels']").click()
            page.wait_for_selector(".kc-kernel[data-name='work']", timeout=60_000)

            # The panel lists what `kernelctl list --json` lists, with its status words.
            shown = set(page.locator(".kc-kernel").evaluate_all(
                "rows => rows.map(r => r.dataset.name)"))
            assert shown == names_listed(server_env)
            work = page.locator(".kc-kernel[data-name='work']")
            assert work.locator(".kc-badge").inner_text() == "mismatch"

            # Its base went away (version A replaced by B): the finding says the fix, and
            # Fix makes it run again.
            work.click()
            page.wait_for_selector(".kc-findings .kc-hint", timeout=30_000)
            assert "kernelctl rebuild work --base uenv:prgenv-gnu/25.04:v1" in \
                page.locator(".kc-findings").inner_text()
            snapshot(page, tmp_path, "panel-finding")
            page.get_by_role("button", name="Fix").click()
            wait_for_operation(page)
            page.wait_for_function(
                "() => document.querySelector(\".kc-kernel[data-name='work'] .kc-badge\")"
                ".textContent === 'ok'", timeout=30_000)

            # New kernel on a module base with a package from the wheelhouse: progress
            # streams, and the Launcher offers the kernel without a reload.
            page.get_by_role("button", name="New kernel").click()
            page.get_by_label("Name", exact=True).fill("panel-made")
            page.get_by_label("Base", exact=True).fill("module:python3/2023.01")
            page.get_by_label("Packages", exact=True).fill("kctl_shadow==2.0")
            page.get_by_label("Display name", exact=True).fill("Made in the panel")
            page.get_by_role("button", name="Create").click()
            page.wait_for_function(  # shown while the operation still runs
                "() => document.querySelector('.kc-progress').textContent.length > 0"
                " && document.querySelector('.kc-panel').dataset.busy", timeout=60_000)
            snapshot(page, tmp_path, "panel-new-kernel")
            wait_for_operation(page)
            page.wait_for_selector(".kc-kernel[data-name='panel-made']", timeout=30_000)
            page.wait_for_selector(".jp-LauncherCard:has-text('Made in the panel')",
                                   timeout=30_000)
            snapshot(page, tmp_path, "panel-launcher")

            # A kernel made in a terminal shows up too (the panel asks every 10 s), and
            # the Launcher with it.
            made = kernelctl("create", "--base", "system", "--name", "from-terminal",
                             "--display-name", "Made in a terminal", env=server_env)
            assert made.returncode == 0, made.stderr
            page.wait_for_selector(".kc-kernel[data-name='from-terminal']", timeout=60_000)
            page.wait_for_selector(".jp-LauncherCard:has-text('Made in a terminal')",
                                   timeout=30_000)

            # Remove leaves a hand-made kernel and the user's files alone, and says why.
            page.locator(".kc-kernel[data-name='hand']").click()
            page.wait_for_selector(".kc-details h3", timeout=30_000)
            page.get_by_role("button", name="Remove").click()
            wait_for_operation(page)
            alert = page.locator(".kc-panel").get_by_role("alert").inner_text()
            assert "notes.txt" in alert, alert
            assert (hand / "notes.txt").read_text() == "mine\n"

            # Open terminal: a JupyterLab terminal in the kernel's environment.
            page.locator(".kc-kernel[data-name='panel-made']").click()
            page.wait_for_selector(".kc-details h3:has-text('Made in the panel')",
                                   timeout=30_000)
            page.get_by_role("button", name="Open terminal").click()
            terminal = page.locator(".jp-Terminal").last
            terminal.wait_for(timeout=30_000)
            time.sleep(2)  # the shell in the kernel's environment starts
            terminal.click()
            seen = tmp_path / "terminal-venv.txt"  # xterm draws on a canvas: ask the shell
            page.keyboard.type(f"echo $VIRTUAL_ENV > {seen}\n")
            venv = json.loads(kernelctl("show", "panel-made", "--json", env=server_env)
                              .stdout)["venv"]
            deadline = time.monotonic() + 30
            while not (seen.exists() and seen.read_text().strip()) and \
                    time.monotonic() < deadline:
                time.sleep(0.3)
            assert seen.read_text().strip() == venv

            # The kernels the panel made and fixed run in notebooks.
            notebooks = browser.new_page()
            for name in ("panel-made", "work"):
                url = lab.write_notebook(f"on-{name}", name, CODE)
                text = run_cell_on_page(notebooks, url, "seen",
                                        lambda: lab.wait_for_kernel(name), lab.log_tail)
                assert "seen 2.0" in text, text
            notebooks.close()

            # A kernel removed from the panel leaves the Launcher without a reload.
            page.locator(".kc-kernel[data-name='panel-made']").click()
            page.get_by_role("button", name="Remove").click()
            wait_for_operation(page)
            page.wait_for_selector(".kc-kernel[data-name='panel-made']", state="detached",
                                   timeout=30_000)
            page.wait_for_selector(".jp-LauncherCard:has-text('Made in the panel')",
                                   state="detached", timeout=30_000)
            assert not os.path.exists(venv)
        finally:
            page.screenshot(path=str(tmp_path / "panel.png"))
            browser.close()
