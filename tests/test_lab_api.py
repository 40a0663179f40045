"""The Kernels panel's REST API (kernelctl.lab) in a real Jupyter server: enabled by the
installed config file alone, behind the server's auth, every read equal to the CLI's
--json document, long actions as operations that never block the server."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import SlowIndex
from tests.helpers import foreign_spec, kernelctl, write_kernel
from tests.test_jupyterlab import start_lab


class Api:
    def __init__(self, lab) -> None:
        self.lab = lab

    def call(self, method: str, path: str, body=None, token: bool = True,
             raw: bytes = None) -> tuple:
        """(status, document) of METHOD /kernelctl/api/PATH."""
        url = f"{self.lab.url}/kernelctl/api{path}" + (f"?token={self.lab.token}" if token else "")
        data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                return exc.code, json.loads(text)
            except ValueError:
                return exc.code, text.decode(errors="replace")

    def finished(self, operation: str, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, state = self.call("GET", f"/operations/{operation}")
            assert status == 200, state
            if state["state"] != "running":
                return state
            time.sleep(0.3)
        raise AssertionError(f"operation {operation} still running; log:\n{self.lab.log_tail()}")


@pytest.fixture
def api(wheelhouse, tmp_path):
    """A Jupyter server on this user's kernels, installing offline from the wheelhouse."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse)}
    root = Path(os.environ["HOME"])
    server, lab = start_lab(env, root)
    try:
        yield Api(lab), env
    finally:
        server.terminate()
        server.wait(timeout=30)


def cli_document(*args, env: dict) -> dict:
    done = kernelctl(*args, "--json", env=env)
    return json.loads(done.stdout)


def test_reads_are_the_clis_documents(api, tmp_path):
    api, env = api
    made = cli_document("create", "--base", "system", "--name", "mine", env=env)
    assert made["name"] == "mine"
    for path, args in (("/kernels", ["list"]), ("/kernels/mine", ["show", "mine"]),
                       ("/recipes", ["recipes", "list"])):
        status, served = api.call("GET", path)
        assert status == 200, served
        assert served == cli_document(*args, env=env), path
    status, report = api.call("GET", "/doctor")
    assert status == 200 and report["version"] == 1
    assert {c["id"] for c in report["checks"]} == \
        {c["id"] for c in cli_document("doctor", env=env)["checks"]}
    status, missing = api.call("GET", "/kernels/nothing-here")
    assert status == 404 and missing["message"] == "no kernel named 'nothing-here'"


def test_no_token_no_access_and_nothing_changes(api):
    api, env = api
    for method, path, body in (("GET", "/kernels", None), ("POST", "/kernels", {"name": "x"}),
                               ("DELETE", "/kernels/x", None), ("GET", "/doctor", None)):
        status, _ = api.call(method, path, body, token=False)
        assert status in (401, 403), (method, path, status)
    time.sleep(1)
    assert "x" not in {k["name"] for k in cli_document("list", env=env)["kernels"]}


@pytest.mark.parametrize("body, problem", [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    ({"nmae": "typo"}, "unknown field 'nmae'"),
    ({"name": "Bad Name!"}, "is not a kernel name"),
    ({"name": "x", "packages": "numpy"}, "'packages' must be a list"),
    ({"name": "x", "packages": ["--index-url=http://evil"]}, "is not a package requirement"),
    ({"name": "x", "base": "system\nrm -rf ~"}, "one-line string"),
])
def test_bad_input_is_a_400_with_the_clis_words(api, body, problem):
    api, env = api
    raw = body if isinstance(body, bytes) else None
    status, reply = api.call("POST", "/kernels", None if raw else body, raw=raw)
    assert status == 400, reply
    assert problem in reply["message"] and "hint" in reply


def test_the_server_answers_while_an_operation_runs(wheelhouse, slow_index):
    """pip held by a package index that does not answer: the server still answers
    Jupyter's own API and the panel's while the operation is running."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PIP_INDEX_URL": slow_index, "PIP_FIND_LINKS": str(wheelhouse)}
    server, lab = start_lab(env, Path(os.environ["HOME"]))
    try:
        api = Api(lab)
        status, started = api.call("POST", "/kernels", {
            "name": "slow", "base": "system", "packages": ["kctl-never-there"]})
        assert status == 202, started
        assert SlowIndex.asked.wait(120), "pip never asked the index"
        for _ in range(3):
            assert "kernelspecs" in lab.api("/api/kernelspecs")
            assert api.call("GET", "/kernels")[0] == 200
            status, state = api.call("GET", f"/operations/{started['operation']}")
            assert state["state"] == "running", state
        SlowIndex.release.set()
        done = api.finished(started["operation"])
        assert done["state"] == "failed" and done["error"]["message"], done
        assert any(line.startswith("[") for line in done["progress"]), done["progress"]
        assert "slow" not in {k["name"] for k in cli_document("list", env=env)["kernels"]}
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_create_then_remove_through_the_api(api):
    api, env = api
    status, started = api.call("POST", "/kernels", {"name": "panel-made", "base": "system",
                                                    "display_name": "Made in the panel"})
    assert status == 202
    done = api.finished(started["operation"])
    assert done["state"] == "done", done
    assert done["result"]["name"] == "panel-made" and done["result"]["version"] == 1
    assert done["result"]["display_name"] == "Made in the panel"
    # The server itself offers it at once: Jupyter's own kernelspec API.
    specs = api.lab.api("/api/kernelspecs")["kernelspecs"]
    assert "panel-made" in specs
    status, started = api.call("DELETE", "/kernels/panel-made")
    done = api.finished(started["operation"])
    assert done["state"] == "done" and done["result"]["removed"][0]["name"] == "panel-made"
    assert "panel-made" not in api.lab.api("/api/kernelspecs")["kernelspecs"]


def test_remove_keeps_what_the_cli_keeps(api):
    api, env = api
    kernels = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels"
    spec_dir = write_kernel(kernels, "hand", foreign_spec(sys.executable))
    (spec_dir / "notes.txt").write_text("mine\n")
    status, started = api.call("DELETE", "/kernels/hand")
    done = api.finished(started["operation"])
    assert done["state"] == "failed"
    assert "notes.txt" in done["error"]["message"] + done["error"]["hint"]
    assert (spec_dir / "notes.txt").read_text() == "mine\n"
    assert done["result"]["status"] == "failed"
