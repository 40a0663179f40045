"""Where users are: a JupyterHub whose single-user servers are Slurm jobs
(batchspawner's SlurmSpawner on the test Slurm), for an unprivileged Unix user that the
tests create. As at the seed sites: the hub runs as root and submits `sudo -E -u USER
sbatch`; the job runs `srun --export=ALL jupyterhub-singleuser` as the user; JupyterLab
terminals are login shells (Debian's /etc/profile resets PATH).

The user's server runs from build/hub-user-venv (Debian's /usr/bin/python3 with
JupyterLab, JupyterHub, batchspawner and this checkout's kernelctl; `make test` makes
it): the tests' own Python lives under /root, which the user cannot enter. Reusable:
`hub.login(page)`, `hub.user_env()`, `hub.as_user(...)`, `hub.home`.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER = "kctest"
USER_VENV = ROOT / "build" / "hub-user-venv"
PROXY = ROOT / "build" / "hub-proxy" / "node_modules" / ".bin" / "configurable-http-proxy"

CONFIG = """\
c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.JupyterHub.db_url = "sqlite:///{root}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{root}/cookie_secret"
c.JupyterHub.pid_file = "{root}/hub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = {{{user!r}}}
c.JupyterHub.services = [{{"name": "tests", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "tests", "services": ["tests"],
    "scopes": ["admin:users", "admin:servers", "access:servers", "tokens", "read:hub"]}}]
c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
c.Spawner.cmd = [{singleuser!r}]
c.SlurmSpawner.batchspawner_singleuser_cmd = {batchspawner!r}
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 240
c.Spawner.http_timeout = 180
c.Spawner.environment = {environment!r}
c.SlurmSpawner.req_partition = "tests"
c.SlurmSpawner.req_runtime = "02:00:00"
# A small allocation, as at Alliance or DKRZ: step kernels take parts of it.
c.SlurmSpawner.req_nprocs = "4"
c.SlurmSpawner.req_gres = "gpu:2"
c.SlurmSpawner.req_srun = "srun --export=ALL"
# The test Slurm's configuration is not at /etc/slurm, and sudo drops SLURM_CONF.
c.SlurmSpawner.exec_prefix = "sudo -E -u {{username}} env SLURM_CONF={slurm_conf}"
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Hub:
    def __init__(self, slurm, environment: dict) -> None:
        self.slurm = slurm
        self.root = Path(tempfile.mkdtemp(prefix="kernelctl-hub-"))
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.password = secrets.token_hex(8)
        self.url = f"http://127.0.0.1:{self.port}"
        self.environment = environment
        self.process = None

    @property
    def home(self) -> Path:
        return Path(pwd.getpwnam(USER).pw_dir)

    def start(self) -> "Hub":
        for needed in (USER_VENV / "bin" / "jupyterhub-singleuser", PROXY):
            if not os.access(needed, os.X_OK):
                raise AssertionError(f"{needed} is missing: `make test` makes it")
        ensure_user()
        (self.root / "jupyterhub_config.py").write_text(CONFIG.format(
            port=self.port, hub_port=_free_port(), proxy=str(PROXY),
            proxy_api_port=_free_port(), root=self.root, password=self.password, user=USER,
            token=self.token, singleuser=str(USER_VENV / "bin" / "jupyterhub-singleuser"),
            batchspawner=str(USER_VENV / "bin" / "batchspawner-singleuser"),
            environment={**self.environment, "SLURM_CONF": str(self.slurm.conf)},
            slurm_conf=self.slurm.conf))
        env = self.slurm.env({**os.environ, "PATH": f"{Path(sys.executable).parent}:"
                              f"{os.environ['PATH']}"})
        self.log = open(self.root / "hub.log", "wb")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyterhub"), "-f",
             str(self.root / "jupyterhub_config.py")], cwd=self.root, env=env,
            stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self._wait(lambda: self.api("GET", "/info"), "the hub")
        except BaseException:
            self.stop()
            raise
        return self

    def api(self, method: str, path: str, body=None):
        request = urllib.request.Request(
            f"{self.url}/hub/api{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            text = reply.read()
            return json.loads(text) if text else None

    def start_server(self, timeout: float = 300) -> None:
        """The user's server, as a Slurm job; until it answers."""
        try:
            self.api("POST", f"/users/{USER}/server", {})
        except urllib.error.HTTPError as exc:
            if exc.code != 400:  # 400: already running
                raise
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            user = self.api("GET", f"/users/{USER}")
            server = user.get("servers", {}).get("", {})
            if server.get("ready"):
                return
            time.sleep(1)
        raise AssertionError(f"the user's server never became ready:\n{self.log_tail()}")

    def login(self, page) -> None:
        """Log the browser in as the user; the hub then opens their JupyterLab."""
        page.goto(f"{self.url}/hub/login")
        page.fill("#username_input", USER)
        page.fill("#password_input", self.password)
        page.click("#login_submit")
        page.wait_for_url(f"**/user/{USER}/lab**", timeout=300_000)
        page.wait_for_selector(".jp-LabShell", timeout=120_000)

    def user_env(self) -> dict:
        """What a login shell of the user has: their HOME and user, the site's PATH."""
        return {"HOME": str(self.home), "USER": USER, "LOGNAME": USER,
                "PATH": "/usr/local/bin:/usr/bin:/bin", **self.environment}

    def as_user(self, *args: str, on_cluster: bool = False,
                **kwargs) -> subprocess.CompletedProcess:
        """A command run as the user (setpriv: their uid, gids and nothing of root's);
        `on_cluster`: in a terminal of the cluster, where Slurm's commands work."""
        entry = pwd.getpwnam(USER)
        env = self.slurm.env(self.user_env()) if on_cluster else self.user_env()
        return subprocess.run(
            ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups",
             "--inh-caps=-all", *args], env=env, cwd=str(self.home),
            capture_output=True, text=True, timeout=300, **kwargs)

    def kernelctl(self) -> Path:
        """kernelctl as the user's server has it."""
        return USER_VENV / "bin" / "kernelctl"

    def slurm_jobs(self) -> list:
        """The user's Slurm jobs: {"id", "user", "state", "name"}."""
        out = subprocess.run(["squeue", "-h", "-u", USER, "-o", "%i|%u|%T|%j"],
                             env=self.slurm.env(dict(os.environ)), capture_output=True,
                             text=True).stdout
        return [dict(zip(("id", "user", "state", "name"), line.split("|")))
                for line in out.splitlines() if line]

    def run_cell(self, page, kernel: str, code: str, wanted: str) -> str:
        """A notebook on `kernel` in the user's home, opened in their JupyterLab; the
        output of its one cell that contains `wanted`."""
        from tests.test_jupyterlab import notebook_text, run_cell_on_page

        name = f"on-{kernel}"
        path = self.home / f"{name}.ipynb"
        path.write_text(notebook_text(kernel, code))
        entry = pwd.getpwnam(USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        return run_cell_on_page(
            page, f"{self.url}/user/{USER}/lab/workspaces/{name}/tree/{name}.ipynb", wanted,
            log=self.log_tail)

    def log_tail(self, lines: int = 60) -> str:
        text = (self.root / "hub.log").read_text(errors="replace").splitlines()[-lines:]
        jobs = sorted(self.home.glob("jupyterhub_slurmspawner_*.log"))
        job = jobs[-1].read_text(errors="replace").splitlines()[-lines:] if jobs else []
        return "\n".join(["== hub", *text, "== job", *job])

    def stop_server_gently(self, timeout: float = 120) -> None:
        """The user stops their server from the hub (its job is cancelled by
        batchspawner): nothing else is cancelled for them."""
        self.api("DELETE", f"/users/{USER}/server")
        deadline = time.monotonic() + timeout
        while self.api("GET", f"/users/{USER}").get("servers", {}):
            assert time.monotonic() < deadline, self.log_tail()
            time.sleep(1)

    def stop_server(self) -> None:
        """The user's server stops, and its Slurm job with it: the test node's CPUs are
        the other tests' too."""
        try:
            self.api("DELETE", f"/users/{USER}/server")
        except Exception:  # the hub may be gone already; scancel makes sure
            pass
        subprocess.run(["scancel", "-u", USER], env=self.slurm.env(dict(os.environ)),
                       capture_output=True)

    def stop(self) -> None:
        self.stop_server()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def _wait(self, probe, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                probe()
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.3)
        raise AssertionError(f"{what} did not answer:\n{self.log_tail()}")


MARK = ".kernelctl-test-user"  # in the home of a user these tests made, and only there


def ensure_user() -> None:
    """The unprivileged user, with an empty home (a fresh account for each run). A user
    of that name these tests did not make is never touched: the test fails instead."""
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", USER], check=True)
        entry = pwd.getpwnam(USER)
        (Path(entry.pw_dir) / MARK).write_text("made by kernelctl's tests (tests/hub.py)\n")
    home = Path(entry.pw_dir)
    if not (home / MARK).is_file():
        raise AssertionError(f"a user {USER} exists that kernelctl's tests did not make; "
                             "its home is left alone: remove the user or rename USER")
    for child in home.iterdir():
        if child.name not in (".bashrc", ".profile", ".bash_logout", MARK):
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
