"""Run kernelctl as a user does, and run code in the kernels it makes, for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

if sys.version_info >= (3, 11):
    import tomllib
else:  # kernelctl depends on tomli there
    import tomli as tomllib  # noqa: F401 (re-exported for the tests)

if sys.version_info >= (3, 11):
    pass
else:  # kernelctl depends on tomli there
    pass


def kernelctl(*args, env: Optional[dict] = None, prefix: Sequence[str] = (),
              **kwargs) -> subprocess.CompletedProcess:
    """`kernelctl ARGS` in a subprocess: real exit codes, real stdout/stderr, no tty.
    `prefix` runs it under another command (setpriv, to drop privileges)."""
    return subprocess.run([*prefix, sys.executable, "-m", "kernelctl", *map(str, args)],
                          env=env if env is not None else dict(os.environ),
                          capture_output=True, text=True, timeout=300, **kwargs)


def make_venv(venv: Path, python, *options: str) -> None:
    """A virtualenv made by virtualenv, in a subprocess (in-process, virtualenv on
    Python 3.9 sets os.environ["PLAT"], which the leak guard rightly reports)."""
    subprocess.run([sys.executable, "-m", "virtualenv", str(venv), "--python", str(python),
                    "--no-periodic-update", *options], check=True, capture_output=True)


def created(*args, env: Optional[dict] = None) -> dict:
    """`kernelctl create --json ARGS`, asserting success; the created kernel object."""
    done = kernelctl("create", "--json", *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def session_of(image) -> dict:
    """The environment of a session with this simulated uenv mounted."""
    return image.session_env(dict(os.environ))


def kernel_json(kernel: dict) -> dict:
    return json.loads((Path(kernel["resource_dir"]) / "kernel.json").read_text())


def run_in_kernel(name: str, code: str, server_env: dict, timeout: float = 60) -> str:
    """Start kernel `name` through jupyter_client as a Jupyter server with `server_env`
    would, execute `code`, return what it printed. The kernel is always shut down."""
    reply, printed = execute_in_kernel(name, code, server_env, timeout)
    assert reply["status"] == "ok", printed
    return printed


def execute_in_kernel(name: str, code: str, server_env: dict, timeout: float = 60):
    """(execute_reply content, printed text) of `code` run in kernel `name`."""
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name=name)
    # Like a notebook in $HOME: not the repository, whose kernelctl/ would be importable.
    manager.start_kernel(env=server_env, cwd=os.environ["HOME"])
    client = manager.client()
    printed: list = []
    try:
        client.start_channels()
        client.wait_for_ready(timeout=timeout)

        def on_output(message):
            content = message["content"]
            if message["msg_type"] == "stream":
                printed.append(content["text"])
            elif message["msg_type"] == "error":
                printed.append("ERROR: " + content["ename"] + ": " + content["evalue"])

        reply = client.execute_interactive(code, timeout=timeout, output_hook=on_output)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return reply["content"], "".join(printed)


PROBE_CODE = (
    "import json, sys, kctl_shadow\n"
    "print(json.dumps({'prefix': sys.prefix, 'executable': sys.executable,\n"
    "                  'shadow': kctl_shadow.__version__, 'shadow_file': kctl_shadow.__file__}))"
)


def write_kernel(kernels_dir: Path, name: str, spec) -> Path:
    """A kernelspec written by hand, as other tools (or accidents) leave them."""
    resource_dir = kernels_dir / name
    resource_dir.mkdir(parents=True, exist_ok=True)
    data = spec if isinstance(spec, bytes) else json.dumps(spec).encode()
    (resource_dir / "kernel.json").write_bytes(data)
    return resource_dir


def foreign_spec(python: str, display_name: str = "Foreign") -> dict:
    return {"argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": display_name, "language": "python"}


def listed(*args, env: Optional[dict] = None) -> dict:
    """`kernelctl list --json ARGS` as {name: kernel}, asserting success."""
    done = kernelctl("list", "--json", *args, env=env)
    assert done.returncode == 0, done.stderr
    kernels = json.loads(done.stdout)["kernels"]
    return {k["name"] if k["visible"] else f"{k['name']}@{k['resource_dir']}": k for k in kernels}


def leftovers(home: Path) -> list:
    """Everything create may write: venvs and kernelspecs (locks are expected)."""
    places = [home / ".local/share/kernelctl/venvs", home / ".local/share/jupyter"]
    return sorted(str(p) for place in places if place.exists() for p in place.rglob("*"))


def assert_user_error(done: subprocess.CompletedProcess, *phrases: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "error:" in done.stderr and "hint:" in done.stderr
    for phrase in phrases:
        assert phrase in done.stderr, done.stderr


def tool_venv(root: Path) -> Path:
    """kernelctl installed in a venv of its own, as pipx or `uv tool` do: a venv whose
    site-packages reach this checkout and the test Python's packages (a .pth file)."""
    import site

    make_venv(root, sys.executable, "--no-seed")
    tool_site = next(root.glob("lib/python*/site-packages"))
    repo = Path(__file__).resolve().parent.parent
    (tool_site / "kernelctl-deps.pth").write_text(
        f"{repo}\n" + "\n".join(site.getsitepackages()) + "\n")
    return root
