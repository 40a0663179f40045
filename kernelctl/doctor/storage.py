"""Doctor checks of storage: quota (bytes and files) and the $HOME/scratch link."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Optional

from kernelctl.doctor.report import CheckResult, Context, Fix
from kernelctl.errors import CommandFailed
from kernelctl.proc import run

WARN_AT, FAIL_AT = 0.90, 0.98
DISK_IO_ERROR = ("JupyterLab's \"Unexpected error while saving file: disk I/O error\" "
                 "means exactly this: the quota is full.")


@dataclass(frozen=True)
class Usage:
    where: str
    used_bytes: int
    limit_bytes: int
    used_files: int
    limit_files: int

    def fullness(self) -> float:
        return max(_ratio(self.used_bytes, self.limit_bytes), _ratio(self.used_files, self.limit_files))

    def describe(self) -> str:
        return (f"{self.where}: {_size(self.used_bytes)} of {_size(self.limit_bytes)} "
                f"({_percent(self.used_bytes, self.limit_bytes)}), {self.used_files:,} of "
                f"{self.limit_files:,} files ({_percent(self.used_files, self.limit_files)})")


def quota(context: Context) -> Iterator[CheckResult]:
    usages = quota_usage(context.env) or filesystem_usage(context.env)
    for usage in usages:
        fullness = usage.fullness()
        status = "fail" if fullness >= FAIL_AT else "warn" if fullness >= WARN_AT else "ok"
        hint = "" if status == "ok" else (
            f"{DISK_IO_ERROR} Free space or files (old venvs: kernelctl list; caches: "
            "~/.cache/pip), or move environments to a larger filesystem (--venv).")
        yield CheckResult("storage.quota", status, usage.describe(), hint)


def quota_usage(env: Mapping[str, str]) -> list:
    """Usage from `quota -w` (Linux quota tools' layout), or [] when there is none."""
    command = shutil.which("quota", path=env.get("PATH", ""))
    if not command:
        return []
    try:
        out = run([command, "-w"], env=env, timeout=10, what="quota", any_exit=True)
    except CommandFailed:
        return []
    return parse_quota(out)


def parse_quota(text: str) -> list:
    """Usages from the lines of `quota -w` output (a `*` marks a value over quota)."""
    usages = []
    for line in text.splitlines():
        fields = line.split()
        numbers = [f.rstrip("*") for f in fields[1:] if re.fullmatch(r"\d+\*?", f)]
        if len(fields) >= 7 and len(numbers) == 6 and fields[0] != "Filesystem":
            blocks, soft, hard, files, files_soft, files_hard = map(int, numbers)
            usages.append(Usage(f"quota on {fields[0]}", blocks * 1024,
                                (hard or soft) * 1024, files, files_hard or files_soft))
    return usages


def filesystem_usage(env: Mapping[str, str]) -> list:
    usages = []
    for name in ("HOME", "SCRATCH"):
        where = env.get(name)
        if not where or not os.path.isdir(where):
            continue
        stats = os.statvfs(where)
        usages.append(Usage(
            f"${name} ({where}, filesystem)",
            (stats.f_blocks - stats.f_bfree) * stats.f_frsize, stats.f_blocks * stats.f_frsize,
            stats.f_files - stats.f_ffree, stats.f_files))
    return usages


def scratch_link(context: Context) -> Iterator[CheckResult]:
    scratch, home = context.env.get("SCRATCH"), context.env.get("HOME")
    if not scratch or not home:
        yield CheckResult("storage.scratch-link", "ok", "no $SCRATCH in this session")
        return
    link = Path(home) / "scratch"
    if os.path.islink(link) and os.path.realpath(link) == os.path.realpath(scratch):
        yield CheckResult("storage.scratch-link", "ok", f"{link} leads to $SCRATCH")
    elif os.path.lexists(link):
        yield CheckResult("storage.scratch-link", "warn",
                          f"{link} exists but is not a link to $SCRATCH ({scratch})",
                          "JupyterLab's file browser cannot go above $HOME; move that away "
                          f"and run: ln -s $SCRATCH {link}")
    else:
        yield CheckResult(
            "storage.scratch-link", "warn",
            f"$SCRATCH ({scratch}) is invisible in JupyterLab's file browser, which cannot go "
            "above $HOME", f"ln -s $SCRATCH {link} (or kernelctl doctor --fix)",
            fix=Fix(f"create the link {link} -> {scratch}", lambda: os.symlink(scratch, link)))


def _ratio(used: int, limit: int) -> float:
    return used / limit if limit else 0.0


def _percent(used: int, limit: int) -> str:
    return f"{_ratio(used, limit):.0%}" if limit else "no limit"


def _size(count: Optional[int]) -> str:
    value = float(count or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} TiB"
