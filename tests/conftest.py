"""Fixtures: an isolated home per test, real interpreters, and a simulated uenv session.

The uenv is the one stand-in (a squashfs cannot be mounted here): a directory laid out
like a mounted image, with meta/env.json in the real format, a view whose bin/python3
links to a real interpreter, and site-packages exposed through PYTHONPATH, with
UENV_MOUNT_LIST and UENV_VIEW set exactly as uenv sets them. A stand-in `uenv` command
answers `uenv image inspect --json` the way the real one does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.modulefiles import module_tree  # noqa: F401 (a fixture)
from tests.wheels import build_wheel

ROOT = Path(__file__).resolve().parent.parent
# The real interpreter under the test venv: it has pip but no ipykernel. (Python < 3.11
# gives the venv's own python as sys._base_executable.)
BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
PY_MM = f"{sys.version_info[0]}.{sys.version_info[1]}"
DIGEST = "a" * 64
# The machine's own environment, before any test isolates itself: its pip configuration
# is what finds large packages (PyTorch) on these machines.
MACHINE_ENV = dict(os.environ)
NGC_VARIABLE = re.compile(r"^NVIDIA_[A-Z0-9]+_VERSION$|^NVIDIA_BUILD_ID$")
OTHER_DIGEST = "b" * 64


def wheelhouse_dir() -> Path:
    return Path(os.environ.get("KERNELCTL_TEST_WHEELHOUSE", ROOT / "build" / "wheelhouse"))


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """ipykernel and its dependencies as wheels (made by `make wheelhouse`)."""
    path = wheelhouse_dir()
    if not any(path.glob("ipykernel-*.whl")):
        pytest.fail(f"no ipykernel wheel in {path}: run `make wheelhouse` (make test does)")
    return path


@pytest.fixture(scope="session")
def test_wheels(tmp_path_factory) -> Path:
    """kctl_shadow 1.0 (in the image) and 2.0 (for the venv), kctl_extra, a big one."""
    dest = tmp_path_factory.mktemp("wheels")
    build_wheel(dest, "kctl_shadow", "1.0")
    build_wheel(dest, "kctl_shadow", "2.0")
    build_wheel(dest, "kctl_extra", "0.3")
    build_wheel(dest, "kctl_big", "1.0", payload_bytes=4 * 1024 * 1024)
    return dest


class Image:
    """A simulated uenv image, laid out as if mounted at `mount`."""

    def __init__(self, root: Path, name: str, version: str, tag: str, digest: str):
        self.name, self.version, self.tag, self.digest = name, version, tag, digest
        self.mount = root / "user-environment"
        self.squashfs = root / "repo" / "images" / digest / "store.squashfs"
        self.view_root = self.mount / "env" / "default"
        self.site_packages = self.view_root / "lib" / f"python{PY_MM}" / "site-packages"
        self.bin = root / "uenv-cli"

    def session_env(self, base: dict) -> dict:
        """The environment uenv gives a session: UENV_* and the view's PATH/PYTHONPATH."""
        return {
            **base,
            "UENV_MOUNT_LIST": f"{self.squashfs}:{self.mount}",
            "UENV_VIEW": f"{self.mount}:{self.name}:default",
            "PATH": f"{self.view_root / 'bin'}:{self.bin}:{base['PATH']}",
            "PYTHONPATH": str(self.site_packages),
        }


def make_image(root: Path, name: str, version: str, tag: str, digest: str,
               site_packages_from: Path | None, install: list, find_links: list) -> Image:
    image = Image(root, name, version, tag, digest)
    image.squashfs.parent.mkdir(parents=True)
    image.squashfs.write_bytes(b"")
    (image.view_root / "bin").mkdir(parents=True)
    (image.view_root / "bin" / "python3").symlink_to(BASE_PYTHON)
    if site_packages_from:
        shutil.copytree(site_packages_from, image.site_packages, symlinks=True)
    else:
        image.site_packages.mkdir(parents=True)
    if install:
        subprocess.run(
            [BASE_PYTHON, "-m", "pip", "install", "--quiet", "--no-index", "--target",
             image.site_packages, *[f"--find-links={d}" for d in find_links], *install],
            check=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    _write_meta(image)
    _write_uenv_cli(image)
    return image


def _write_meta(image: Image) -> None:
    meta = {
        "name": image.name, "mount": str(image.mount),
        "description": f"simulated {image.name} for kernelctl tests",
        "views": {
            "default": {
                "description": "default view", "root": str(image.view_root),
                "env": {"version": 1, "type": "augment", "values": {
                    "list": {
                        "PATH": [{"op": "prepend", "value": [str(image.view_root / "bin")]}],
                        "PYTHONPATH": [{"op": "prepend", "value": [str(image.site_packages)]}],
                    },
                    "scalar": {"VIEW_NAME": "default"},
                }},
            },
            "modules": {"description": "modules", "root": str(image.mount / "modules"),
                        "env": {"version": 1, "type": "augment", "values": {"list": {}, "scalar": {}}}},
        },
    }
    (image.mount / "meta").mkdir(parents=True)
    (image.mount / "meta" / "env.json").write_text(json.dumps(meta, indent=2))


def _write_uenv_cli(image: Image) -> None:
    """A stand-in for `uenv image inspect --json`, answering for this image only."""
    info = {"name": image.name, "version": image.version, "tag": image.tag,
            "digest": image.digest, "system": "testsys", "uarch": "zen2",
            "mount": str(image.mount), "views": ["default", "modules"]}
    image.bin.mkdir(parents=True)
    script = image.bin / "uenv"
    script.write_text(
        "#!/bin/sh\n"
        f"if [ \"$1 $2 $3\" = 'image inspect --json' ] && "
        f"{{ [ \"$4\" = '{image.digest}' ] || [ \"$4\" = '{image.name}' ]; }}; then\n"
        f"  cat <<'EOF'\n{json.dumps(info)}\nEOF\n  exit 0\nfi\n"
        # `uenv run [--view=V] LABEL -- CMD`: what a mount gives a command (the image's
        # variables and its view's PATH/PYTHONPATH first), then CMD; refused inside a
        # uenv session, as the real one refuses. The squashfs mount itself is the part
        # that cannot exist here: the image is laid out at its mount point already.
        "if [ \"$1\" = run ]; then\n"
        "  shift; view=default\n"
        "  case \"$1\" in --view=*) view=${1#--view=}; shift ;; esac\n"
        "  label=$1; shift; [ \"$1\" = -- ] && shift\n"
        "  if [ -n \"$UENV_MOUNT_LIST\" ]; then\n"
        "    echo 'uenv: run cannot be used inside a uenv session' >&2; exit 1; fi\n"
        f"  case \"$label\" in {image.name}|{image.name}/*) ;; *)\n"
        "    echo \"uenv: no such image: $label\" >&2; exit 1 ;; esac\n"
        f"  export UENV_MOUNT_LIST='{image.squashfs}:{image.mount}'\n"
        f"  export UENV_VIEW=\"{image.mount}:{image.name}:$view\"\n"
        f"  export PATH=\"{image.view_root / 'bin'}:$PATH\"\n"
        f"  export PYTHONPATH=\"{image.site_packages}${{PYTHONPATH:+:$PYTHONPATH}}\"\n"
        "  exec \"$@\"\nfi\n"
        "echo \"uenv: no such image: $4\" >&2; exit 1\n")
    script.chmod(0o755)


@pytest.fixture(scope="session")
def prgenv_image(tmp_path_factory, wheelhouse, test_wheels) -> Image:
    """prgenv-gnu/24.11:v1 with ipykernel and kctl_shadow 1.0 in its view."""
    return make_image(tmp_path_factory.mktemp("prgenv"), "prgenv-gnu", "24.11", "v1", DIGEST,
                      None, ["ipykernel", "kctl_shadow==1.0"], [wheelhouse, test_wheels])


@pytest.fixture(scope="session")
def icon_image(tmp_path_factory) -> Image:
    """Another uenv, without ipykernel: for sessions that mount the wrong image."""
    return make_image(tmp_path_factory.mktemp("icon"), "icon", "25.2", "v3", OTHER_DIGEST,
                      None, [], [])


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A real single-node Slurm cluster, for srun and sbatch."""
    from tests.slurm import Slurm

    # Readable by every user, as a site's slurm.conf is: the hub's user submits too.
    root = Path(tempfile.mkdtemp(prefix="kernelctl-slurm-"))
    root.chmod(0o755)
    cluster = Slurm(root).start()
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def hub_process(slurm, wheelhouse):
    from tests.hub import Hub

    started = Hub(slurm, {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse)}).start()
    yield started
    started.stop()


@pytest.fixture
def hub(hub_process):
    """JupyterHub + batchspawner on the test Slurm, for the unprivileged user
    tests/hub.py creates; their pip installs offline from the site's wheelhouse. The
    user's server (a Slurm job) is stopped after each test."""
    yield hub_process
    hub_process.stop_server()


@pytest.fixture(scope="session")
def virtualenv_app_data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("virtualenv-app-data")


@pytest.fixture(autouse=True)
def isolated(no_leaks, tmp_path, monkeypatch, virtualenv_app_data):
    """Every test gets its own HOME, Jupyter and XDG dirs, and no ambient pip/uenv config."""
    home = tmp_path / "home"
    home.mkdir()
    for var in list(os.environ):
        if var.startswith(("PIP_", "UENV_", "JUPYTER_", "VIRTUAL_ENV", "KERNELCTL_", "LMOD",
                           "__LMOD", "_ModuleTable", "CONDA_", "APPTAINER_", "SINGULARITY_")) \
                or var in ("PYTHONPATH", "PYTHONHOME", "MODULEPATH", "LOADEDMODULES",
                           "_LMFILES_", "EBPYTHONPREFIXES") or NGC_VARIABLE.match(var):
            monkeypatch.delenv(var)
    settings = {
        "HOME": home, "KERNELCTL_HOME": home / ".local/share/kernelctl",
        "JUPYTER_DATA_DIR": home / ".local/share/jupyter", "JUPYTER_PATH": "",
        "JUPYTER_CONFIG_DIR": home / ".jupyter", "JUPYTER_RUNTIME_DIR": tmp_path / "runtime",
        "XDG_DATA_HOME": home / ".local/share", "XDG_CONFIG_HOME": home / ".config",
        "XDG_CACHE_HOME": home / ".cache", "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1", "VIRTUALENV_OVERRIDE_APP_DATA": virtualenv_app_data,
    }
    for var, value in settings.items():
        monkeypatch.setenv(var, str(value))
    # The Python on PATH is the base interpreter, not the test venv (as for a user).
    monkeypatch.setenv("PATH", os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != Path(sys.executable).parent))
    return home


@pytest.fixture
def no_leaks():
    """Fail a test that changes the cwd or leaks environment variables past monkeypatch.

    Set up before monkeypatch (isolated asks for it first), so it checks after undoing."""
    def environment():
        return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}

    before_env, before_cwd = environment(), os.getcwd()
    yield
    assert os.getcwd() == before_cwd, "test changed the working directory"
    assert environment() == before_env, "test leaked environment variables"


class SlowIndex(BaseHTTPRequestHandler):
    """A package index that never answers in time: pip hangs in a real download."""

    asked = threading.Event()
    release = threading.Event()

    def do_GET(self):
        SlowIndex.asked.set()
        SlowIndex.release.wait(30)
        self.send_error(503)

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_index():
    SlowIndex.asked.clear()
    SlowIndex.release.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowIndex)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    SlowIndex.release.set()
    server.shutdown()
    server.server_close()


class Filesystems:
    """Real small filesystems (tmpfs) for disk-full, no-inodes and read-only cases.

    Mounting needs root, as in CI; elsewhere the tests that need it are skipped, and in
    CI (CI=true) a failed mount fails them."""

    def __init__(self, root: Path) -> None:
        self.root, self.mounted = root, []

    def mount(self, name: str, size: str = "16m", inodes: int = 10000,
              read_only: bool = False, fill=None) -> Path:
        target = self.root / name
        target.mkdir(parents=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},nr_inodes={inodes}",
                               "tmpfs", str(target)], capture_output=True, text=True)
        if done.returncode != 0:
            message = f"cannot mount a tmpfs (needs root): {done.stderr.strip()}"
            pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
        self.mounted.append(target)
        if fill:
            fill(target)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
        return target

    def unmount_all(self) -> None:
        for target in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.fixture
def filesystems(tmp_path):
    mounts = Filesystems(tmp_path / "mnt")
    yield mounts
    mounts.unmount_all()


# Root without the capabilities that let it ignore file permissions: it meets a
# directory of another user as any user would (CI runs the tests as root).
UNPRIVILEGED = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]
OTHER_UID = 65534  # nobody


@pytest.fixture(scope="session")
def unprivileged() -> list:
    done = subprocess.run([*UNPRIVILEGED, "true"], capture_output=True, text=True)
    if os.geteuid() != 0 or done.returncode != 0:
        message = f"cannot drop root's file capabilities with setpriv: {done.stderr.strip()}"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return UNPRIVILEGED


@pytest.fixture(scope="session")
def hand_made_env(tmp_path_factory, wheelhouse) -> Path:
    """A virtualenv with ipykernel, made by hand (as at DKRZ): what adopt takes over."""
    from tests.helpers import make_venv

    venv = tmp_path_factory.mktemp("hand-made") / "env"
    make_venv(venv, sys.executable)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--no-index", "--find-links", str(wheelhouse), "ipykernel"], check=True)
    return venv
