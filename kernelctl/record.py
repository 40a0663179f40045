"""The environment record: kernelctl.toml inside every venv kernelctl made.

It holds the venv's base binding and packages, and its presence is what makes a
directory kernelctl's to delete.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import tomli_w

from kernelctl.errors import KernelctlError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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
    format: int = RECORD_FORMAT

    def to_toml(self) -> dict:
        data = asdict(self)
        data["packages"] = {"requested": list(self.packages),
                            "requirement_files": list(self.requirement_files)}
        del data["requirement_files"]
        return data


def read_record(venv: Path) -> Optional[EnvRecord]:
    """The record of `venv`, or None when kernelctl did not make it."""
    try:
        data = tomllib.loads((venv / RECORD_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise KernelctlError(f"the record {venv / RECORD_NAME} is unreadable: {exc}",
                             "Recreate the environment with `kernelctl create --force`.")
    return _migrate(data)


def _migrate(data: dict) -> EnvRecord:
    """Every format kernelctl ever wrote, read into today's EnvRecord."""
    packages = data.get("packages", {})
    return EnvRecord(
        kernel=data["kernel"], kernelctl_version=data["kernelctl_version"],
        created=data["created"], base=dict(data.get("base", {})),
        packages=tuple(packages.get("requested", ())),
        requirement_files=tuple(packages.get("requirement_files", ())),
    )


def write_record(venv: Path, record: EnvRecord) -> None:
    write_atomically(venv / RECORD_NAME, tomli_w.dumps(record.to_toml()))


def write_atomically(target: Path, text: str) -> None:
    """Write to a temp file beside `target`, then rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
