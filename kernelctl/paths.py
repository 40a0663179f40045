"""Filesystem facts every command needs, asked in ways that never raise for a path the
user cannot read, and checks made before expensive work starts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Optional, Union

from kernelctl.errors import NOT_WRITABLE_HINT, KernelctlError, disk_full_error

StrPath = Union[str, "os.PathLike[str]"]


def path_list(value: Optional[str]) -> list:
    """The entries of a PATH-like value; empty entries dropped."""
    return [entry for entry in (value or "").split(os.pathsep) if entry]


def kernelctl_home(env: Mapping[str, str]) -> Path:
    """Where kernelctl keeps venvs, locks and its journal of leftovers."""
    if env.get("KERNELCTL_HOME"):
        return Path(os.path.abspath(env["KERNELCTL_HOME"]))
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".local" / "share" / "kernelctl"


def same_path(a: StrPath, b: StrPath) -> bool:
    """Whether two paths name the same place, through symlinks ($HOME often is one)."""
    return os.path.realpath(a) == os.path.realpath(b)


def is_within(path: StrPath, directory: StrPath) -> bool:
    inner, outer = os.path.realpath(path), os.path.realpath(directory)
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def missing(path: StrPath) -> bool:
    """Whether `path` is really not there; False when it merely cannot be reached (a
    colleague's directory): that is not the same as deleted, and nothing is removed."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def unreachable(path: StrPath) -> bool:
    try:
        os.stat(path)
    except PermissionError:
        return True
    except OSError:
        return False
    return False


def nearest_existing(path: Path) -> Path:
    for candidate in [path, *path.parents]:
        if os.path.lexists(candidate):
            return candidate
    return Path("/")


def check_writable(places: Iterable[Path], what: str) -> None:
    """Fail early, with the fix, when kernelctl could not write where it must: a
    read-only or full filesystem, no free inodes, or a directory not the user's."""
    for place in places:
        existing = nearest_existing(place)
        try:
            stats = os.statvfs(existing)
        except OSError:
            continue
        if stats.f_flag & os.ST_RDONLY:
            raise KernelctlError(f"{existing} is on a read-only filesystem ({what} needs to "
                                 f"write {place})", NOT_WRITABLE_HINT)
        if not os.access(existing, os.W_OK | os.X_OK):
            raise KernelctlError(f"permission denied: {what} needs to write {place}, and "
                                 f"{existing} is not writable for you", NOT_WRITABLE_HINT)
        if stats.f_files and stats.f_favail == 0:
            raise disk_full_error(what, f"no free inodes (files) left on the filesystem of "
                                        f"{existing}")
        if stats.f_blocks and stats.f_bavail == 0:
            raise disk_full_error(what, f"no free space left on the filesystem of {existing}")


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode a file created here gets (0o644 under the usual umask 022)."""
    return 0o666 & ~current_umask()


def new_dir_mode() -> int:
    return 0o777 & ~current_umask()
