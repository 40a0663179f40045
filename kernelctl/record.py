"""The environment record: kernelctl.toml inside every venv kernelctl made.

It holds the venv's base binding and packages, and its presence is what makes a
directory kernelctl's to delete.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import tomli_w

from kernelctl.errors import KernelctlError
from kernelctl.paths import new_file_mode
from kernelctl.textfiles import load_toml


RECORD_NAME = "kernelctl.toml"
RECORD_FORMAT = 1
# Present while a create is under way; a venv holding it and no record is a leftover.
INCOMPLETE_MARKER = ".kernelctl-incomplete"


@dataclass(frozen=True)
class EnvRecord:
    kernel: str
    kernelctl_version: str
    created: str
    base: dict
    packages: tuple = ()
    requirement_files: tuple = ()
    # The kernel directory (real path) this venv was made for: what makes it that
    # kernel's, where two prefixes each have a kernel of the same name. "" in old records.
    kernel_dir: str = ""
    format: int = RECORD_FORMAT

    def to_toml(self) -> dict:
        data = asdict(self)
        if not self.kernel_dir:
            del data["kernel_dir"]
        data["packages"] = {"requested": list(self.packages),
                            "requirement_files": list(self.requirement_files)}
        del data["requirement_files"]
        return data


def read_record(venv: Path) -> Optional[EnvRecord]:
    """The record of `venv`, or None when kernelctl did not make it."""
    try:
        data = load_toml(venv / RECORD_NAME)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise KernelctlError(f"the record {venv / RECORD_NAME} is unreadable: {exc}",
                             "Recreate the environment with `kernelctl create --force`.")
    try:
        return _migrate(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise KernelctlError(f"the record {venv / RECORD_NAME} is unreadable: {exc}",
                             "Recreate the environment with `kernelctl create --force`.")


def _migrate(data: dict) -> EnvRecord:
    """Every format kernelctl ever wrote, read into today's EnvRecord; a value of the
    wrong type is a ValueError naming its key."""
    if _typed(data, "format", int, RECORD_FORMAT) != RECORD_FORMAT:
        raise ValueError(f"format {data.get('format')!r} is newer than this kernelctl "
                         f"understands ({RECORD_FORMAT})")
    packages = _typed(data, "packages", dict, {})
    return EnvRecord(
        kernel=_typed(data, "kernel", str), kernelctl_version=_typed(data, "kernelctl_version", str, "?"),
        created=_typed(data, "created", str, ""), base=dict(_typed(data, "base", dict, {})),
        packages=_strings(packages, "requested"),
        requirement_files=_strings(packages, "requirement_files"),
        kernel_dir=_typed(data, "kernel_dir", str, ""),
    )


_MISSING = object()


def _typed(data: dict, key: str, kind: type, default: Any = _MISSING) -> Any:
    value = data.get(key, default)
    if value is _MISSING:
        raise ValueError(f"it has no '{key}'")
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ValueError(f"'{key}' is {type(value).__name__}, not {kind.__name__}")
    return value


def _strings(data: dict, key: str) -> tuple:
    values = _typed(data, key, list, [])
    if not all(isinstance(v, str) for v in values):
        raise ValueError(f"'{key}' is not a list of strings")
    return tuple(values)


def write_record(venv: Path, record: EnvRecord) -> None:
    write_atomically(venv / RECORD_NAME, tomli_w.dumps(record.to_toml()))


def write_atomically(target: Path, text: str) -> None:
    """Write to a temp file beside `target`, then rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        # mkstemp makes 0600: keep the mode the file had (a kernel shared with --prefix
        # stays readable for others), else what the umask gives a new file.
        try:
            mode = os.stat(target).st_mode & 0o7777
        except OSError:
            mode = new_file_mode()
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
