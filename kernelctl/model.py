"""The kernel object every command reports (see docs/json.md)."""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Mapping, Optional

from kernelctl.binding import Binding

# Jupyter's rule for kernel names (jupyter_client lower-cases them first).
KERNEL_NAME_RE = re.compile(r"^[a-z0-9._-]+$")
# kernelctl's own block in kernel.json metadata.
SLURM_KEY = "kernelctl_slurm"  # a Slurm kernel's request (kernelctl.slurm)
METADATA_KEY = "kernelctl"


# What runs a kernelctl launcher (kernel.json argv[0]): bash where a base's activation
# scripts need it (conda's activate.d), else /bin/sh.
LAUNCHER_SHELLS = ("/bin/sh", "/bin/bash")


class Status(str, Enum):
    """A kernel's health; the values are what JSON and the table show (docs/json.md)."""

    OK = "ok"  # kernelctl checked it: it will start
    BROKEN = "broken"  # it cannot start (the problems say why)
    MISMATCH = "mismatch"  # made for a base image this session does not have
    UNKNOWN = "unknown"  # another tool's kernel that looks startable

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


@dataclass(frozen=True)
class KernelInfo:
    name: str
    display_name: str
    language: str
    resource_dir: Path
    managed: bool  # made by kernelctl (its kernel.json carries metadata.kernelctl)
    status: Status
    problems: tuple = ()
    base: Optional[Binding] = None
    venv: Optional[Path] = None
    # False for what Jupyter does not offer: a same-named kernel earlier on the path
    # shadows it, or Jupyter skips the entry (no kernel.json, a name it rejects).
    visible: bool = True
    spec: Optional["KernelSpec"] = field(default=None, repr=False, compare=False)
    # A kernel that is a Python environment's own (ipykernel's python3 in PREFIX/share/
    # jupyter/kernels, kernelctl's own environment's): whose it is. Never removed.
    belongs_to: Optional[str] = None
    # A Slurm kernel's live jobs or steps, one per running notebook (kernelctl.slurm).
    slurm_runs: tuple = ()

    @property
    def slurm(self) -> Optional[dict]:
        """What a Slurm kernel asks of Slurm (kernel.json's metadata); None otherwise."""
        wanted = self.spec.metadata.get(SLURM_KEY) if self.spec is not None else None
        return wanted if isinstance(wanted, dict) else None

    def to_json(self) -> dict:
        return {
            "name": self.name, "display_name": self.display_name,
            "language": self.language, "resource_dir": str(self.resource_dir),
            "managed": self.managed, "status": self.status.value,
            "problems": list(self.problems),
            "base": self.base.public() if self.base else None,
            "venv": str(self.venv) if self.venv else None,
            "visible": self.visible,
            "belongs_to": self.belongs_to,
            "slurm": self._slurm_json(),
        }

    def _slurm_json(self) -> Optional[dict]:
        if not self.slurm:
            return None
        from kernelctl.slurm import summary_of  # only for Slurm kernels: list stays fast

        return {**self.slurm, "summary": summary_of(self.slurm), "runs": list(self.slurm_runs)}


@dataclass(frozen=True)
class KernelSpec:
    """A kernel.json, validated: the one place its shape is checked and `$` escaped.

    jupyter_client runs string.Template over env values, so kernel.json stores a
    literal `$` as `$$`. `env` holds the values as stored; `values()` gives what the
    kernel gets, and `with_values()` stores literal values.
    """

    argv: tuple
    display_name: str
    language: str = ""
    env: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    other: dict = field(default_factory=dict)  # interrupt_mode and any other key, kept

    @classmethod
    def from_dict(cls, data: object) -> "KernelSpec":
        """A KernelSpec, or ValueError saying what is wrong with `data`."""
        if not isinstance(data, dict):
            raise ValueError("kernel.json is not a JSON object")
        argv = data.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError("kernel.json has no argv list of strings")
        if any("\0" in a for a in argv):
            raise ValueError("kernel.json's argv has a NUL character")
        if not isinstance(data.get("display_name"), str):
            raise ValueError("kernel.json has no display_name string")
        env = data.get("env", {})
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise ValueError("kernel.json's env is not a mapping of strings")
        metadata = data.get("metadata", {})
        if not isinstance(metadata, dict):
            raise ValueError("kernel.json's metadata is not an object")
        _check_binding(metadata.get(METADATA_KEY))
        language = data.get("language", "")
        other = {k: v for k, v in data.items()
                 if k not in ("argv", "display_name", "language", "env", "metadata")}
        return cls(tuple(argv), data["display_name"], language if isinstance(language, str)
                   else str(language), dict(env), dict(metadata), other)

    def to_dict(self) -> dict:
        data = {"argv": list(self.argv), "display_name": self.display_name,
                "language": self.language, **self.other}
        if self.env:
            data["env"] = dict(self.env)
        if self.metadata:
            data["metadata"] = self.metadata
        return data

    def to_text(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @property
    def binding(self) -> Optional[Binding]:
        """kernelctl's block in the metadata; None for a kernel kernelctl did not make."""
        binding = self.metadata.get(METADATA_KEY)
        return Binding.from_metadata(binding) if isinstance(binding, dict) else None

    def values(self, server_env: Mapping[str, str] = {}) -> dict:
        """The env the kernel gets from a server whose environment is `server_env`:
        jupyter_client's substitution (`${VAR}`/`$VAR` replaced, unset ones left as
        text, `$$` a literal `$`)."""
        return {key: expand(value, server_env) for key, value in self.env.items()}

    def with_values(self, values: Mapping[str, str]) -> "KernelSpec":
        """The env set to literal values (kernelctl's own), escaped as stored."""
        return replace(self, env=escape_env(values))

    def with_literals(self, values: Mapping[str, str]) -> "KernelSpec":
        """Some entries set to literal values; the others kept as stored (a user's
        `${LD_LIBRARY_PATH}:/opt/lib` stays a template)."""
        return replace(self, env={**self.env, **escape_env(values)})

    def with_binding(self, binding: Binding) -> "KernelSpec":
        return replace(self, metadata={**self.metadata, METADATA_KEY: binding.to_metadata()})


def escape_env(values: Mapping[str, str]) -> dict:
    """Literal values as kernel.json must store them for jupyter_client."""
    return {key: value.replace("$", "$$") for key, value in values.items()}


def expand(stored: str, server_env: Mapping[str, str]) -> str:
    """A stored env value as jupyter_client gives it to the kernel."""
    return string.Template(stored).safe_substitute(server_env)


def is_template(stored: str) -> bool:
    """Whether a stored value refers to the server's variables (not only `$$`)."""
    return "$" in stored.replace("$$", "")


def env_digest(stored: str) -> str:
    import hashlib  # only where kernel.json is written or compared: not on --help's path

    return hashlib.sha256(stored.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def _check_binding(binding: object) -> None:
    if binding is None:
        return
    if not isinstance(binding, dict):
        raise ValueError(f"kernel.json's metadata.{METADATA_KEY} is not an object")
    for key, value in binding.items():
        # kernelctl writes only strings there; anything else was edited or damaged.
        if value is not None and not (isinstance(value, str) and "\0" not in value):
            raise ValueError(f"kernel.json's metadata.{METADATA_KEY}.{key} is not a string")
