"""The journal: a live run's steps are left alone; a dead run's are undone from what
the disk shows (what it moved aside comes back, what it made goes) or, after its
commit, finished; nothing but what kernelctl names is ever deleted from a journal."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from kernelctl.transaction import LEFTOVERS, Transaction, move_aside, sweep_leftovers

# Moves KERNEL aside and stages a replacement, then waits to be killed (commit=0) or
# commits and waits in its clean-up (commit=1, the clean-up made slow).
HOLD = """
import sys, time
from pathlib import Path
from kernelctl.transaction import Transaction, move_aside
home, kernel, commit = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
tx = Transaction(home, ["k"])
staged = kernel.parent / ".kernelctl-new-k-1"
tx.made(staged)
staged.mkdir()
(staged / "kernel.json").write_text("new")
move_aside(kernel, tx)
tx.placed(staged, kernel)
if commit:
    tx.after_success(lambda: (print("committed", flush=True), time.sleep(600)))
    tx.__exit__(None, None, None)
print("held", flush=True)
time.sleep(600)
"""


def hold(home: Path, kernel: Path, commit: bool) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(home), str(kernel),
                               "1" if commit else "0"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == ("committed" if commit else "held")
    return holder


def kill(holder: subprocess.Popen) -> None:
    holder.kill()
    holder.wait()


def test_a_dead_runs_aside_comes_back_and_what_it_made_goes(tmp_path):
    home, kernel = tmp_path / "home", tmp_path / "kernels" / "k"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text("{}")
    holder = hold(home, kernel, commit=False)
    try:
        assert (kernel / "kernel.json").read_text() == "new"
        assert sweep_leftovers(home) == []  # alive: untouched
    finally:
        kill(holder)
    sweep_leftovers(home)
    assert (kernel / "kernel.json").read_text() == "{}"
    assert sorted(p.name for p in kernel.parent.iterdir()) == ["k"]
    assert list((home / LEFTOVERS).iterdir()) == []


def test_a_dead_run_after_its_commit_is_finished(tmp_path):
    home, kernel = tmp_path / "home", tmp_path / "kernels" / "k"
    kernel.mkdir(parents=True)
    holder = hold(home, kernel, commit=True)
    kill(holder)
    sweep_leftovers(home)
    assert [p.name for p in kernel.parent.iterdir()] == ["k"]  # the old one went
    assert (kernel / "kernel.json").read_text() == "new"
    assert list((home / LEFTOVERS).iterdir()) == []


def test_an_interrupted_block_undoes_in_process(tmp_path):
    kernel = tmp_path / "k"
    kernel.mkdir()
    try:
        with Transaction(tmp_path / "home") as tx:
            move_aside(kernel, tx)
            raise KeyboardInterrupt
    except Exception as exc:
        assert "nothing was changed" in str(exc)
    assert kernel.is_dir() and [p.name for p in tmp_path.iterdir()] == ["home", "k"] or \
        sorted(p.name for p in tmp_path.iterdir()) == ["home", "k"]


def test_a_damaged_journal_deletes_nothing_of_the_users(tmp_path):
    home = tmp_path / "home"
    (home / LEFTOVERS).mkdir(parents=True)
    mine, theirs = tmp_path / ".kernelctl-k-abc", tmp_path / "thesis"
    mine.mkdir()
    theirs.mkdir()
    (home / LEFTOVERS / "1-0.json").write_text(json.dumps([str(mine), str(theirs), 5]))
    (home / LEFTOVERS / "2-0.json").write_text(json.dumps({"steps": [
        {"op": "made", "path": str(theirs)}, {"op": "aside", "path": str(theirs)},
        {"op": "made", "path": str(theirs), "venv": True}, "junk"]}))
    (home / LEFTOVERS / "3-0.json").write_text("not json")
    (home / LEFTOVERS / "4-0.json").write_text(json.dumps({"committed": True, "steps": [
        {"op": "aside", "path": str(theirs), "origin": str(tmp_path / "x")}]}))
    sweep_leftovers(home)
    assert theirs.exists() and not mine.exists()
    assert sorted(p.name for p in (home / LEFTOVERS).iterdir()) == []


LOCK = """
import sys
from pathlib import Path
from kernelctl.transaction import locks
with locks(Path(sys.argv[1]), ["k"]):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_locks_exclude_each_other_and_leave_no_files(tmp_path):
    from kernelctl.errors import Busy
    from kernelctl.transaction import locks

    home = tmp_path / "home"
    holder = subprocess.Popen([sys.executable, "-c", LOCK, str(home)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        try:
            with locks(home, ["k"]):
                raise AssertionError("two holders of one lock")
        except Busy:
            pass
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()
    assert list((home / "locks").iterdir()) == []  # no litter
    for _ in range(3):  # and it can be taken again, each time
        with locks(home, ["k"], [tmp_path / "venv"]):
            assert len(list((home / "locks").iterdir())) == 2
    assert list((home / "locks").iterdir()) == []


def test_an_older_kernelctls_journal_gives_back_what_it_had_moved_aside(tmp_path):
    """A run of kernelctl before the safety core, SIGKILLed after moving a kernel and its
    venv aside: the upgraded kernelctl restores both instead of deleting them."""
    home = tmp_path / "home"
    data = tmp_path / "share" / "jupyter"
    kernel_aside = data / ".kernelctl-old-work-4242-0"
    kernel_aside.mkdir(parents=True)
    (kernel_aside / "kernel.json").write_text("{}")
    (data / "kernels").mkdir()
    venvs = tmp_path / "venvs"
    venv_aside = venvs / ".kernelctl-old-work-4242-1"
    venv_aside.mkdir(parents=True)
    (venv_aside / "pyvenv.cfg").write_text("home = /usr/bin\n")
    replaced = data / ".kernelctl-old-other-4242-2"  # its replacement stands: it goes
    replaced.mkdir()
    (replaced / "kernel.json").write_text("{}")
    (data / "kernels" / "other").mkdir()
    (home / LEFTOVERS).mkdir(parents=True)
    (home / LEFTOVERS / "4242-0.json").write_text(json.dumps(
        [str(kernel_aside), str(venv_aside), str(replaced)]))
    sweep_leftovers(home)
    assert (data / "kernels" / "work" / "kernel.json").read_text() == "{}"
    assert (venvs / "work" / "pyvenv.cfg").exists()
    assert not replaced.exists() and (data / "kernels" / "other").is_dir()
