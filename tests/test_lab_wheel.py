"""The wheel carries the Kernels panel (prebuilt) and the file that enables its server
extension: installed into a fresh server environment with no Node.js on PATH, JupyterLab
serves the panel and the API with no further step."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

from tests.helpers import make_venv
from tests.test_jupyterlab import free_port

ROOT = Path(__file__).resolve().parents[1]


def built_wheel(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(ROOT)], check=True)
    return next(out.glob("kernelctl-*.whl"))


def without_node(path: str) -> str:
    return os.pathsep.join(p for p in path.split(os.pathsep)
                           if p and not os.access(os.path.join(p, "node"), os.X_OK))


def test_the_wheel_serves_the_panel_without_nodejs(tmp_path):
    wheel = built_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    data = [n.split(".data/data/", 1)[1] for n in names if ".data/data/" in n]
    assert "etc/jupyter/jupyter_server_config.d/kernelctl.json" in data
    assert "share/jupyter/labextensions/kernelctl-lab/package.json" in data
    assert any(n.startswith("share/jupyter/labextensions/kernelctl-lab/static/remoteEntry.")
               for n in data)

    # A server environment of its own: the wheel installed, JupyterLab seen through a
    # .pth (the same packages as the tests', not installed again); no Node.js anywhere.
    server = tmp_path / "server"
    make_venv(server, sys.executable)
    python = server / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    str(wheel)], check=True)
    site = next(server.glob("lib/python*/site-packages"))
    tests_site = next(Path(sys.prefix).glob("lib/python*/site-packages"))
    (site / "zz-server-packages.pth").write_text(f"{tests_site}\n")
    env = {**os.environ, "PATH": without_node(f"{server / 'bin'}:{os.environ['PATH']}")}
    assert shutil.which("node", path=env["PATH"]) is None

    listed = subprocess.run([python, "-m", "jupyterlab.labextensions", "list"], env=env,
                            capture_output=True, text=True)
    assert "kernelctl-lab" in listed.stdout + listed.stderr
    assert str(server) in listed.stdout + listed.stderr  # from the wheel, not the checkout

    port, token = free_port(), "t" * 32
    log = open(tmp_path / "lab.log", "wb")
    lab = subprocess.Popen(
        [python, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
         f"--ServerApp.root_dir={tmp_path}"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        page = _get(f"http://127.0.0.1:{port}/lab?token={token}", lab, tmp_path / "lab.log")
        assert '"name": "kernelctl-lab"' in page or '"name":"kernelctl-lab"' in page
        kernels = _get(f"http://127.0.0.1:{port}/kernelctl/api/kernels?token={token}", lab,
                       tmp_path / "lab.log")
        assert '"kernels"' in kernels
    finally:
        lab.terminate()
        lab.wait(timeout=30)
        log.close()


def _get(url: str, lab: subprocess.Popen, log: Path) -> str:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                return reply.read().decode()
        except OSError:
            if lab.poll() is not None:
                break
            time.sleep(0.3)
    raise AssertionError(f"no answer from {url}:\n{log.read_text(errors='replace')[-3000:]}")
