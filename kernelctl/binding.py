"""What a kernelctl kernel is bound to: its base, its environment, who made it.

Stored as `metadata.kernelctl` in kernel.json (docs/json.md). One vocabulary for every
kind of kernel: `image` is the uenv a kernel needs (stored as `uenv`; kernels made before
it was written carry it as `name`, with a `mount`), `venv` the environment kernelctl
made for it. Python and Julia kernels add their fields in a subclass; a base kind's own
fields (a module base's modulefiles) are `extra`, stored beside the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Mapping, Optional


@dataclass(frozen=True)
class Binding:
    kind: str  # the base kind (kernelctl.bases.kind.KINDS), or "julia"
    name: str = ""
    label: str = ""  # what a human calls the base: prgenv-gnu/24.11:v1, system, julia 1.11
    image: Optional[str] = None  # the uenv it needs, for any kind
    version: Optional[str] = None
    tag: Optional[str] = None
    view: Optional[str] = None
    digest: Optional[str] = None
    mount: Optional[str] = None
    venv: Optional[str] = None
    adopted: Optional[str] = None  # "yes": the environment is the user's, never deleted
    kernelctl_version: Optional[str] = None
    created: Optional[str] = None
    # The env entries kernelctl wrote, "KEY:digest,...": what a rebuild may set anew;
    # any other entry (or one whose digest no longer matches) is the user's, and carried.
    env_written: Optional[str] = None
    # The base kind's own fields, and any a newer kernelctl wrote: kept as they are.
    extra: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_metadata(cls, data: dict) -> "Binding":
        """The binding of `data` (string values, as KernelSpec checked): a Julia kernel's,
        or a Python kernel's on any kind of base."""
        kind = data.get("kind") or ""
        subclass = JuliaBinding if kind == JULIA else PythonBinding if kind else Binding
        known = {f.name for f in fields(subclass)} - {"image", "extra"}
        values = {key: value for key, value in data.items() if key in known}
        extra = {key: value for key, value in data.items()
                 if key not in known and key not in ("kind", "uenv")}
        # Before `uenv` was written, a uenv kernel's name was its image (and it had a mount).
        image = data.get("uenv") or (data.get("name") if data.get("mount") else None)
        return subclass(**{**values, "kind": kind, "image": image, "extra": extra})

    def to_metadata(self) -> dict:
        """As stored: no empty fields, `image` under its on-disk name `uenv`."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        data["uenv"] = data.pop("image")
        data.update({k: v for k, v in self.extra.items() if k not in data})
        return {key: value for key, value in data.items() if value is not None}

    def public(self) -> dict:
        """The `base` object of --json output: the binding without what is not the base."""
        data = self.to_metadata()
        for key in ("venv", "kernelctl_version", "created", "env_written"):
            data.pop(key, None)
        return data


@dataclass(frozen=True)
class PythonBinding(Binding):
    python: Optional[str] = None  # the interpreter as the user reaches it
    python_version: Optional[str] = None
    recipe: Optional[str] = None
    base_env: Optional[str] = None  # the venv the base interpreter lives in, if any
    layers: Optional[str] = None  # its site-packages, os.pathsep-joined: the kernel needs them

    def describe(self) -> str:
        """One line: what the environment is built on, never leaving out a layer."""
        on = f"Python {self.python_version} at {self.python}"
        if self.base_env:
            return (f"{self.label}: the environment {self.base_env} (its packages are seen, "
                    f"never changed), on {on}")
        return f"{self.label}: {on}"

    def layer_dirs(self) -> list:
        return [d for d in (self.layers or "").split(os.pathsep) if d]


@dataclass(frozen=True)
class JuliaBinding(Binding):
    julia: Optional[str] = None  # the stable launcher the kernel runs
    julia_version: Optional[str] = None
    julia_bindir: Optional[str] = None
    ijulia_version: Optional[str] = None
    depot: Optional[str] = None
    project: Optional[str] = None
    threads: Optional[str] = None
    nsys: Optional[str] = None


JULIA = "julia"  # the kind of a Julia kernel's binding (its base is julia itself)
