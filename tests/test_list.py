"""kernelctl list / show: every kernelspec, Jupyter's precedence, health, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BASE_PYTHON
from tests.helpers import (
    created,
    foreign_spec,
    kernelctl,
    listed,
    make_venv,
    tool_venv,
    write_kernel,
)


def user_kernels() -> Path:
    return Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels"


def test_same_specs_and_precedence_as_jupyter_client(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    monkeypatch.setenv("JUPYTER_PATH", f"{first}:{second}")
    for directory in (first / "kernels", second / "kernels", user_kernels()):
        write_kernel(directory, "dup", foreign_spec(str(BASE_PYTHON), f"dup in {directory}"))
    write_kernel(second / "kernels", "only-second", foreign_spec(str(BASE_PYTHON)))
    write_kernel(user_kernels(), "Mixed.Case", foreign_spec(str(BASE_PYTHON)))
    write_kernel(user_kernels(), "only-user", foreign_spec(str(BASE_PYTHON)))
    ipython = Path(os.environ["HOME"]) / ".ipython" / "kernels"
    write_kernel(ipython, "from-ipython", foreign_spec(str(BASE_PYTHON)))

    from jupyter_client.kernelspec import KernelSpecManager
    expected = KernelSpecManager(ensure_native_kernel=False).find_kernel_specs()
    # --all: plain `list` also hides kernelctl's own environment's python3 where no
    # server runs from it (tested below); jupyter_client's search path has it.
    found = {name: k["resource_dir"] for name, k in listed("--all").items() if k["visible"]}
    assert found == expected
    assert found["dup"] == str(first / "kernels" / "dup")

    everything = listed("--all")
    shadowed = [k for k in everything.values() if k["name"] == "dup" and not k["visible"]]
    assert len(shadowed) == 2
    assert all(k["problems"][0].startswith("shadowed by") for k in shadowed)


def test_statuses_of_real_kernels(prgenv_image, icon_image, tmp_path):
    session = prgenv_image.session_env(dict(os.environ))
    created("--base", "prgenv-gnu", "--name", "ok", env=session)
    gone = created("--base", "prgenv-gnu", "--name", "gone", env=session)
    import shutil
    shutil.rmtree(gone["venv"])
    write_kernel(user_kernels(), "foreign", foreign_spec(str(BASE_PYTHON)))
    write_kernel(user_kernels(), "missing", foreign_spec("/nonexistent/bin/python"))
    write_kernel(user_kernels(), "bare", foreign_spec("python3"))

    kernels = listed(env=session)
    assert kernels["ok"]["status"] == "ok" and kernels["ok"]["managed"]
    assert kernels["gone"]["status"] == "broken"
    assert "was deleted" in kernels["gone"]["problems"][0]
    assert kernels["foreign"]["status"] == "unknown" and not kernels["foreign"]["managed"]
    assert kernels["missing"]["status"] == "broken"
    assert "interpreter /nonexistent/bin/python is missing" in kernels["missing"]["problems"][0]
    assert kernels["bare"]["status"] == "broken"
    assert "server's own Python" in kernels["bare"]["problems"][0]

    # The same kernels seen from sessions with another image, or none.
    replaced = {**session, "UENV_MOUNT_LIST": session["UENV_MOUNT_LIST"].replace(
        prgenv_image.digest, "c" * 64)}
    assert "image was replaced" in listed(env=replaced)["ok"]["problems"][0]
    assert listed(env=replaced)["ok"]["status"] == "mismatch"
    other = icon_image.session_env(dict(os.environ))
    assert "this session has icon" in listed(env=other)["ok"]["problems"][0]
    assert "no uenv is mounted" in listed()["ok"]["problems"][0]


def test_venv_whose_base_python_is_gone_is_broken(tmp_path):
    venv = tmp_path / "venv"
    make_venv(venv, BASE_PYTHON, "--no-seed")
    config = venv / "pyvenv.cfg"
    config.write_text(config.read_text().replace(f"home = {BASE_PYTHON.parent}",
                                                 "home = /gone/python/bin"))
    write_kernel(user_kernels(), "orphan", foreign_spec(str(venv / "bin" / "python")))
    kernel = listed()["orphan"]
    assert kernel["status"] == "broken"
    assert "/gone/python/bin" in kernel["problems"][0]


BAD_SPECS = {
    "corrupt": (b'{"argv": [', "not valid JSON"),
    "empty": (b"", "not valid JSON"),
    "latin1": ('{"display_name": "caf\xe9"}'.encode("latin-1"), "not UTF-8"),
    "huge": (b'{"argv": ["x"], "display_name": "' + b"x" * (2 << 20) + b'"}', "too big"),
    "list": (b"[1, 2]", "not a JSON object"),
    "argv-string": (json.dumps({"argv": "python", "display_name": "x"}).encode(), "argv"),
    "env-list": (json.dumps({"argv": ["/bin/sh"], "display_name": "x", "env": ["A"]}).encode(),
                 "env"),
    "no-display": (json.dumps({"argv": ["/bin/sh"]}).encode(), "display_name"),
}


def test_bad_kernelspecs_are_broken_never_a_crash(tmp_path):
    for name, (data, _) in BAD_SPECS.items():
        write_kernel(user_kernels(), name, data)
    write_kernel(user_kernels(), "Odd Name!", foreign_spec(str(BASE_PYTHON)))
    (user_kernels() / "no-json").mkdir()
    (user_kernels() / "dangling").symlink_to(tmp_path / "nowhere")
    (user_kernels() / "stray-file.txt").write_text("not a kernel")

    kernels = {k["resource_dir"].rsplit("/", 1)[1]: k for k in listed().values()}
    for name, (_, phrase) in BAD_SPECS.items():
        assert kernels[name]["status"] == "broken", name
        assert phrase in kernels[name]["problems"][0], (name, kernels[name]["problems"])
    for name, phrase in [("Odd Name!", "characters Jupyter does not accept"),
                         ("no-json", "no kernel.json"), ("dangling", "does not exist")]:
        assert kernels[name]["status"] == "broken" and not kernels[name]["visible"]
        assert phrase in kernels[name]["problems"][0]
    assert "stray-file.txt" not in kernels
    for name in [*BAD_SPECS, "dangling"]:
        done = kernelctl("show", name, "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "broken"
    human = kernelctl("list")
    assert human.returncode == 0 and "Traceback" not in human.stderr


def test_human_table_fits_80_columns(prgenv_image):
    session = prgenv_image.session_env(dict(os.environ))
    created("--base", "prgenv-gnu", "--name", "a-very-long-kernel-name-that-goes-on-and-on",
            "--display-name", "An equally long display name for this kernel, really", env=session)
    done = kernelctl("list", env=session)
    assert done.returncode == 0
    assert all(len(line) <= 80 for line in done.stdout.splitlines()), done.stdout
    assert "ok" in done.stdout and "prgenv-gnu/24.11:v1" in done.stdout


def test_show_has_spec_and_record(prgenv_image):
    session = prgenv_image.session_env(dict(os.environ))
    created("--base", "prgenv-gnu", "--name", "shown", env=session)
    done = kernelctl("show", "shown", "--json", env=session)
    shown = json.loads(done.stdout)
    assert shown["spec"]["metadata"]["kernelctl"]["name"] == "prgenv-gnu"
    assert shown["record"]["kernel"] == "shown"
    assert shown["record"]["base"]["digest"] == prgenv_image.digest
    text = kernelctl("show", "shown", env=session).stdout
    assert "status:" in text and "kernel.json:" in text


@pytest.mark.parametrize("command", [["show", "nope"], ["show", "../etc"]])
def test_unknown_names(command):
    done = kernelctl(*command)
    assert done.returncode == 1 and "no kernel named" in done.stderr
    assert "Traceback" not in done.stderr


def test_list_does_not_import_jupyter_client():
    code = ("import sys; from typer.testing import CliRunner; from kernelctl.cli import app; "
            "r = CliRunner().invoke(app, ['list', '--json']); assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jupyter_client', 'zmq')))")
    done = __import__("subprocess").run([sys.executable, "-c", code], capture_output=True,
                                        text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("settings", [
    {},
    {"JUPYTER_PREFER_ENV_PATH": "1"},
    {"JUPYTER_PREFER_ENV_PATH": "no"},
    {"JUPYTER_DATA_DIR": ""},
    {"JUPYTER_DATA_DIR": "", "XDG_DATA_HOME": ""},
    {"JUPYTER_PATH": "/a/b/:/c"},
    {"JUPYTER_PLATFORM_DIRS": "1"},
])
def test_search_path_agrees_with_jupyter_core(settings, monkeypatch):
    from jupyter_core.paths import jupyter_path

    from kernelctl.jupyter_paths import kernel_dirs
    for var, value in settings.items():
        monkeypatch.setenv(var, value)
    expected = [Path(p) for p in jupyter_path("kernels")]
    assert kernel_dirs(os.environ)[:-1] == expected
    assert kernel_dirs(os.environ)[-1] == Path(os.environ["HOME"]) / ".ipython" / "kernels"


def test_a_tool_environments_own_kernel_is_not_offered(tmp_path):
    """kernelctl in a venv of its own (pipx, uv tool) sees ipykernel's python3 in that
    venv: no Jupyter server offers it, so `list` leaves it out (`--all` marks it), and
    `remove` never deletes a Python environment's own kernel."""
    tool = tool_venv(tmp_path / "pipx-venv")
    own = tool / "share" / "jupyter" / "kernels" / "python3"
    write_kernel(own.parent, "python3", foreign_spec("python", "Python 3 (ipykernel)"))

    def kernelctl_in_tool(*args):
        return subprocess.run([tool / "bin" / "python", "-m", "kernelctl", *args],
                              capture_output=True, text=True, cwd=tmp_path)

    shown = json.loads(kernelctl_in_tool("list", "--json").stdout)["kernels"]
    assert not [k for k in shown if Path(k["resource_dir"]) == own]
    everything = json.loads(kernelctl_in_tool("list", "--all", "--json").stdout)["kernels"]
    mine = next(k for k in everything if Path(k["resource_dir"]) == own)
    assert mine["belongs_to"] == f"the Python environment {tool} that kernelctl itself runs in"
    refused = kernelctl_in_tool("remove", "python3", "--yes")
    assert refused.returncode == 1 and "does not remove it" in refused.stderr
    assert (own / "kernel.json").exists()
