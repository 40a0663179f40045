"""The safety matrix: every command that changes state, on a zoo of states a user's
disk really has, with and without interruptions (SIGINT, SIGTERM, and SIGKILL at each
step of its transaction, reached deterministically through the fault hook
KERNELCTL_TEST_FAULT). After each run, the invariants docs/manage.md promises:

- every byte of every file kernelctl did not create is unchanged;
- the kernel that worked before still starts and runs code, or its replacement does
  (`remove`: the kernel, or nothing of it);
- `list` shows only kernel names create would accept, and no leftovers remain;
- no traceback, and the exit status matches what happened.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pytest

from tests.conftest import BASE_PYTHON
from tests.helpers import (
    created,
    execute_in_kernel,
    foreign_spec,
    kernel_json,
    kernelctl,
    listed,
    session_of,
    write_kernel,
)

NAME = "k"


@dataclass
class World:
    """A user's disk: the kernel under test, and what must survive whatever happens."""

    home: Path
    session: dict
    kernel: dict
    user_paths: list = field(default_factory=list)  # files the user made: never changed
    expect_refusal: str = ""  # what a mutating command must say instead of acting
    target: str = NAME  # the kernel the command acts on
    others_working: list = field(default_factory=list)  # their kernel dirs: must stay whole
    create_args: list = field(default_factory=list)  # where create --force must aim
    wheels: str = ""  # what install installs from

    @property
    def venv(self) -> Path:
        return Path(self.kernel["venv"])

    @property
    def kernel_dir(self) -> Path:
        return Path(self.kernel["resource_dir"])


def user_file(world: World, path: Path, text: str = "mine\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    world.user_paths.append(path)


def hashes(paths: list) -> dict:
    """Every file under the given paths (directories walked), by content."""
    found = {}
    for root in paths:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


# -- the zoo --------------------------------------------------------------------------

def plain(world: World) -> None:
    pass


def user_files_in_kernel_dir(world: World) -> None:
    user_file(world, world.kernel_dir / "NOTES.txt")
    user_file(world, world.kernel_dir / "mydata" / "results.csv", "1,2\n")
    world.expect_refusal = "NOTES.txt"


def user_files_in_venv(world: World) -> None:
    # What `pip install -e git+...` leaves: a checkout under VENV/src.
    user_file(world, world.venv / "src" / "mypkg" / "setup.py", "# my work\n")
    world.expect_refusal = "src"


def copied_with_cp_r(world: World) -> None:
    """A colleague's habit: `cp -r k k2`; the command then acts on the copy."""
    copy = world.kernel_dir.with_name("k2")
    shutil.copytree(world.kernel_dir, copy)
    world.target = "k2"
    world.others_working.append(str(world.kernel_dir))


def same_name_in_another_prefix(world: World) -> None:
    """A kernel of the same name in a --prefix on JUPYTER_PATH (it wins): the command
    acts on that one; the user's own k, now hidden behind it, must lose nothing."""
    mine = world.kernel
    world.user_paths.append(Path(mine["venv"]) / "kernelctl.toml")
    world.others_working.append(mine["resource_dir"])
    world.kernel = created("--base", "prgenv-gnu", "--name", NAME, "--prefix",
                           world.home / "prefix", "--venv", world.home / "othervenv",
                           env=world.session)
    world.create_args = ["--prefix", str(world.home / "prefix")]
    world.session["JUPYTER_PATH"] = str(world.home / "prefix" / "share" / "jupyter")


def shared_by_adopted_kernel(world: World) -> None:
    done = kernelctl("adopt", world.venv, "--name", "adopted", env=world.session)
    assert done.returncode == 0, done.stderr
    world.others_working.append(str(world.kernel_dir.with_name("adopted")))


def shared_by_hand_made_kernel(world: World) -> None:
    spec = foreign_spec(str(world.venv / "bin" / "python"), "Hand made")
    spec["env"] = {"PYTHONPATH": kernel_json(world.kernel)["env"]["PYTHONPATH"]}
    write_kernel(world.kernel_dir.parent, "handmade", spec)
    world.user_paths.append(world.kernel_dir.parent / "handmade")
    world.others_working.append(str(world.kernel_dir.parent / "handmade"))


def symlinked_kernel_dir(world: World) -> None:
    real = world.home / "mykernels" / NAME
    real.parent.mkdir()
    shutil.move(str(world.kernel_dir), real)
    world.kernel_dir.symlink_to(real)


def venv_deleted(world: World) -> None:
    shutil.rmtree(world.venv)


def kernel_json_edited(world: World) -> None:
    path = world.kernel_dir / "kernel.json"
    spec = json.loads(path.read_text())
    spec.setdefault("env", {})["MY_TEMPLATE"] = "${HOME}/mine"
    spec["env"]["MY_LITERAL"] = "cost: $$5"
    spec["argv"].append("--HistoryManager.enabled=False")
    spec.setdefault("metadata", {})["mine"] = {"keep": True}
    path.write_text(json.dumps(spec))


def colleagues_unreadable_kernel(world: World) -> None:
    shared = world.home / "shared-jupyter" / "kernels"
    colleague = write_kernel(shared, "colleague", foreign_spec("/nonexistent/python"))
    os.chmod(colleague / "kernel.json", 0)
    os.chmod(colleague, 0o300)
    world.session["JUPYTER_PATH"] = str(shared.parent)
    world.user_paths.append(colleague)


STATES = [plain, user_files_in_kernel_dir, user_files_in_venv, copied_with_cp_r,
          same_name_in_another_prefix, shared_by_adopted_kernel, shared_by_hand_made_kernel,
          symlinked_kernel_dir, venv_deleted, kernel_json_edited, colleagues_unreadable_kernel]

# -- the commands -----------------------------------------------------------------------

COMMANDS: dict = {
    "remove": lambda w: ["remove", "--yes", w.target],
    "remove --broken": lambda w: ["remove", "--yes", "--broken"],
    "create --force": lambda w: ["create", "--base", "prgenv-gnu", "--name", w.target, "--force",
                                 *w.create_args],
    "rebuild": lambda w: ["rebuild", w.target],
    "doctor --fix": lambda w: ["doctor", "--fix", "--yes", w.target],
    "install": lambda w: ["install", w.target, "-p", "kctl_extra", "--no-index",
                          "--find-links", w.wheels],
    "adopt": lambda w: ["adopt", w.target],  # a hand-made kernel, fixed in place
}
# adopt fixes a hand-made kernel (its environment is the user's, shared by all tests):
# the states that act on a kernelctl venv do not apply.
ADOPT_STATES = {"plain", "user_files_in_kernel_dir", "symlinked_kernel_dir",
                "kernel_json_edited", "colleagues_unreadable_kernel"}


def make_world(home: Path, image, state: Callable, hand_made_env: Optional[Path] = None,
               wheels: str = "") -> World:
    """The user's disk in `state`. With `hand_made_env`, the kernel under test is a
    hand-made one (ipykernel install's kind of kernel.json) running that environment."""
    session = session_of(image)
    kernel = created("--base", "prgenv-gnu", "--name", NAME, env=session)
    if hand_made_env is not None:
        spec = foreign_spec(str(hand_made_env / "bin" / "python"), "Hand made")
        resource_dir = write_kernel(Path(kernel["resource_dir"]).parent, "hm", spec)
        kernel = {"resource_dir": str(resource_dir), "venv": str(hand_made_env)}
    world = World(home, session, kernel, wheels=wheels,
                  target="hm" if hand_made_env is not None else NAME)
    state(world)
    return world


def run(world: World, args: list, fault: str = "") -> subprocess.CompletedProcess:
    env = {**world.session, **({"KERNELCTL_TEST_FAULT": fault} if fault else {})}
    return kernelctl(*args, env=env)


def kernel_works(name: str, world: World) -> str:
    """The kernel starts from a server without the base, and runs code; its sys.prefix."""
    server = {k: v for k, v in os.environ.items() if not k.startswith("UENV")}
    server["JUPYTER_PATH"] = world.session.get("JUPYTER_PATH", "")
    saved = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = server["JUPYTER_PATH"]  # what the test's client reads
    try:
        reply, printed = execute_in_kernel(name, "import sys; print(sys.prefix)", server,
                                           timeout=60)
    finally:
        if saved is None:
            del os.environ["JUPYTER_PATH"]
        else:
            os.environ["JUPYTER_PATH"] = saved
    assert reply["status"] == "ok", printed
    return printed.strip()


def check_invariants(world: World, before: dict, done: subprocess.CompletedProcess,
                     command: str, killed: bool) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert hashes(world.user_paths) == before, "a file kernelctl did not make was changed"
    present = listed("--all", env=world.session)  # also the recovery of a killed run
    for name in present:
        assert not name.split("@")[0].startswith("."), present
    by_dir = {k["resource_dir"]: k for k in present.values()}
    for other in world.others_working:
        assert other in by_dir, (other, present)
        if by_dir[other]["venv"]:  # its environment is still whole
            assert Path(by_dir[other]["venv"], "pyvenv.cfg").exists(), by_dir[other]
    target = world.target
    if target in present and present[target]["status"] != "broken":
        prefix = kernel_works(target, world)
        assert Path(prefix).is_dir()
        assert present[target]["venv"] in (None, prefix), (prefix, present[target])
    elif target in present:
        assert command in ("remove", "remove --broken", "doctor --fix") or \
            not (Path(world.kernel["venv"])).exists() or done.returncode != 0, present[target]
    leftovers = [str(p) for p in (world.home / ".local/share").rglob(".kernelctl*")]
    assert leftovers == [], leftovers
    journals = world.home / ".local/share/kernelctl/leftovers"
    assert not journals.exists() or list(journals.iterdir()) == []
    # doctor --fix and remove --broken act on broken kernels only; install deletes
    # nothing; adopt rewrites a kernel dir (refused with your files) but no venv.
    quiet = {"remove --broken", "doctor --fix", "install"} | (
        {"adopt"} if world.expect_refusal != "NOTES.txt" else set())
    if world.expect_refusal and not killed and command not in quiet:
        assert done.returncode == 1 and world.expect_refusal in done.stderr + done.stdout, \
            done.stderr + done.stdout


def broken_only(state: Callable) -> bool:
    return state is venv_deleted


def applies(command: str, state: Callable) -> bool:
    """remove --broken acts on broken kernels only; adopt takes a hand-made kernel, so
    the states about kernelctl's own venv are not its."""
    if command == "remove --broken":
        return broken_only(state)
    return command != "adopt" or state.__name__ in ADOPT_STATES


CASES = [pytest.param(command, state, id=f"{command}-{state.__name__}")
         for command in COMMANDS for state in STATES if applies(command, state)]


@pytest.mark.parametrize("command,state", CASES)
def test_matrix_without_interruption(command, state, prgenv_image, isolated, test_wheels,
                                     request):
    hand_made = request.getfixturevalue("hand_made_env") if command == "adopt" else None
    world = make_world(isolated, prgenv_image, state, hand_made, str(test_wheels))
    before = hashes(world.user_paths)
    done = run(world, COMMANDS[command](world))
    check_invariants(world, before, done, command, killed=False)
    if state is kernel_json_edited and command in ("rebuild", "adopt"):
        spec = json.loads((world.kernel_dir / "kernel.json").read_text())
        assert spec["env"]["MY_TEMPLATE"] == "${HOME}/mine"
        assert spec["env"]["MY_LITERAL"] == "cost: $$5"
        if command == "rebuild":  # adopt writes its own argv and block, by design
            assert spec["argv"][-1] == "--HistoryManager.enabled=False"
            assert spec["metadata"]["mine"] == {"keep": True}
    if state is symlinked_kernel_dir and command in ("rebuild", "create --force", "adopt"):
        assert world.kernel_dir.is_symlink()
        assert "kernelctl" in json.loads((world.kernel_dir / "kernel.json").read_text())[
            "metadata"] or done.returncode != 0


def steps_of(world: World, args: list, tmp_path: Path) -> list:
    """The step boundaries a run passes, in order (the fault hook's numbering)."""
    trace = tmp_path / "steps.txt"
    done = kernelctl(*args, env={**world.session, "KERNELCTL_TEST_STEPS": str(trace)})
    assert done.returncode == 0, done.stderr
    return trace.read_text().split("\n")[:-1] if trace.exists() else []


KILLED_COMMANDS = ["remove", "create --force", "rebuild", "adopt"]


def new_home(monkeypatch, home: Path) -> Path:
    """A fresh user for the next run (as the isolated fixture makes one per test)."""
    home.mkdir()
    for var, value in {"HOME": home, "KERNELCTL_HOME": home / ".local/share/kernelctl",
                       "JUPYTER_DATA_DIR": home / ".local/share/jupyter",
                       "XDG_DATA_HOME": home / ".local/share"}.items():
        monkeypatch.setenv(var, str(value))
    return home


@pytest.mark.parametrize("command", KILLED_COMMANDS)
def test_sigkill_at_every_step(command, prgenv_image, isolated, tmp_path, monkeypatch, request):
    """Each step boundary of the command's transaction, one SIGKILL each."""
    hand_made = request.getfixturevalue("hand_made_env") if command == "adopt" else None
    world = make_world(isolated, prgenv_image, plain, hand_made)
    steps = steps_of(world, COMMANDS[command](world), tmp_path)
    assert steps, "the command passed no step of the transaction"
    for number, name in (line.split(" ", 1) for line in steps):
        world = make_world(new_home(monkeypatch, tmp_path / f"home-{number}"), prgenv_image,
                           plain, hand_made)
        before = hashes(world.user_paths)
        done = run(world, COMMANDS[command](world), fault=number)
        assert done.returncode == -signal.SIGKILL, (name, done.stderr)
        check_invariants(world, before, done, command, killed=True)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("command", KILLED_COMMANDS)
def test_stop_signals_say_what_stands(command, sig, prgenv_image, isolated, tmp_path,
                                      monkeypatch, request):
    hand_made = request.getfixturevalue("hand_made_env") if command == "adopt" else None
    world = make_world(isolated, prgenv_image, plain, hand_made)
    steps = steps_of(world, COMMANDS[command](world), tmp_path)
    middle = steps[len(steps) // 2].split(" ", 1)[0]
    world = make_world(new_home(monkeypatch, tmp_path / "again"), prgenv_image, plain,
                       hand_made)
    before = hashes(world.user_paths)
    done = run(world, COMMANDS[command](world), fault=f"{middle}:{sig}")
    assert done.returncode == 128 + getattr(signal, sig), done.stderr
    if sig == "SIGTERM":
        assert "stopped by SIGTERM" in done.stderr
    assert "did not start" not in done.stderr
    check_invariants(world, before, done, command, killed=True)


def test_julia_force_killed_at_every_step(isolated, tmp_path, monkeypatch):
    """julia --force (the IJulia stand-in, tests/standins/julia): the old kernel or the
    new one, listed and whole, whatever step the run dies at."""
    from tests.test_julia import JuliaSession

    def julia_world(home: Path) -> dict:
        session = JuliaSession(home / "julia", dict(os.environ)).env
        assert kernelctl("julia", "--name", "jl", env=session).returncode == 0
        return session

    session = julia_world(isolated)
    trace = tmp_path / "steps.txt"
    done = kernelctl("julia", "--name", "jl", "--force",
                     env={**session, "KERNELCTL_TEST_STEPS": str(trace)})
    assert done.returncode == 0, done.stderr
    steps = trace.read_text().split()[::2]
    assert steps
    for number in steps:
        home = new_home(monkeypatch, tmp_path / f"home-{number}")
        session = julia_world(home)
        done = kernelctl("julia", "--name", "jl", "--force",
                         env={**session, "KERNELCTL_TEST_FAULT": number})
        assert done.returncode == -signal.SIGKILL and "Traceback" not in done.stderr
        present = listed(env=session)
        assert present["jl"]["status"] == "ok" and present["jl"]["managed"], present["jl"]
        assert [str(p) for p in (home / ".local/share").rglob(".kernelctl*")] == []
