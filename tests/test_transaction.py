"""The journal of leftovers: a dead run's are swept, a live run's are not, and nothing
but what kernelctl names is ever deleted from a journal."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from kernelctl.transaction import LEFTOVERS, sweep_leftovers

HOLD = """
import sys, time
from pathlib import Path
from kernelctl.transaction import Transaction
with Transaction(Path(sys.argv[1])) as tx:
    tx.leftover(Path(sys.argv[2]))
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_live_run_keeps_its_leftovers_and_a_dead_one_loses_them(tmp_path):
    home, aside = tmp_path / "home", tmp_path / ".kernelctl-old-k-1-0"
    aside.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(home), str(aside)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert sweep_leftovers(home) == [] and aside.exists()
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while aside.exists() and time.monotonic() < deadline:
        sweep_leftovers(home)
        time.sleep(0.1)
    assert not aside.exists()
    assert list((home / LEFTOVERS).iterdir()) == []


def test_a_damaged_journal_deletes_nothing_of_the_users(tmp_path):
    home = tmp_path / "home"
    (home / LEFTOVERS).mkdir(parents=True)
    mine, theirs = tmp_path / ".kernelctl-k-abc", tmp_path / "thesis"
    mine.mkdir()
    theirs.mkdir()
    (home / LEFTOVERS / "1-0.json").write_text(json.dumps([str(mine), str(theirs), 5]))
    (home / LEFTOVERS / "2-0.json").write_text(json.dumps({str(theirs): 1}))
    (home / LEFTOVERS / "3-0.json").write_text("not json")
    assert sweep_leftovers(home) == [str(mine)]
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
