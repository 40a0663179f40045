"""Credentials never leave: a password in pip's configuration, or in a package URL, is
not on the command line of any process kernelctl starts (every user of a node can read
/proc/PID/cmdline), nor in anything kernelctl prints or records."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import created, session_of

SECRET = "s3cr3t-pw-4711"


class EmptyIndex(BaseHTTPRequestHandler):
    """An index that has nothing (404 at once): pip and uv ask it, then use the wheels."""

    def do_GET(self):
        self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture
def empty_index():
    server = ThreadingHTTPServer(("127.0.0.1", 0), EmptyIndex)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://kctl-user:{SECRET}@127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()
    server.server_close()


class CommandLines:
    """Every process's argv, read from /proc while kernelctl runs."""

    def __init__(self) -> None:
        self.seen: set = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    self.seen.add(Path(f"/proc/{pid}/cmdline").read_bytes())
                except OSError:
                    pass
            time.sleep(0.005)

    def __enter__(self) -> "CommandLines":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_no_credential_on_any_command_line_or_output(installer, prgenv_image, empty_index,
                                                     test_wheels, isolated, tmp_path):
    config = tmp_path / "pip.conf"
    config.write_text(f"[global]\nextra-index-url = {empty_index}\nfind-links = {test_wheels}\n"
                      "retries = 0\ntimeout = 5\n")
    session = {**session_of(prgenv_image), "PIP_CONFIG_FILE": str(config)}
    kernel = created("--base", "prgenv-gnu", "--name", "k", env=session)
    with CommandLines() as watched:
        done = subprocess.run([sys.executable, "-m", "kernelctl", "install", "k", "kctl_extra",
                               "--installer", installer], env=session, capture_output=True,
                              text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert any(b"kctl_extra" in argv or b"install" in argv for argv in watched.seen)
    leaked = [argv.replace(b"\0", b" ").decode() for argv in watched.seen if SECRET.encode() in argv]
    assert leaked == []
    assert SECRET not in done.stdout + done.stderr
    record = Path(kernel["venv"], "kernelctl.toml").read_text()
    assert SECRET not in record


def test_a_token_in_a_package_url_is_not_printed_when_it_fails(prgenv_image, empty_index,
                                                                isolated, test_wheels):
    session = session_of(prgenv_image)
    created("--base", "prgenv-gnu", "--name", "k", env=session)
    with CommandLines() as watched:
        done = subprocess.run([sys.executable, "-m", "kernelctl", "install", "k",
                               "no-such-kctl", "--find-links", empty_index.replace(
                                   "/simple", "/links"), "--no-index", "--installer", "pip"],
                              env=session, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert SECRET not in done.stdout + done.stderr
    # The user's own command line is theirs; no child of it may repeat the token.
    children = [a for a in watched.seen if b"\0kernelctl\0install\0" not in a]
    assert [a for a in children if SECRET.encode() in a] == []
