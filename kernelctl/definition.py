"""Kernel definitions: `kernelctl export` writes one, `kernelctl create --from` reads it.

A small TOML file (docs/definitions.md): the base that names the kernel's base, the
user's package requests and the versions its environment held, the names, the flavour.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import tomli_w

from kernelctl.errors import KernelctlError
from kernelctl.model import KernelInfo
from kernelctl.record import read_record
from kernelctl.redact import redact
from kernelctl.textfiles import load_toml
from kernelctl.venvs import check_requirement, own_distributions, requirement_name

if TYPE_CHECKING:
    from kernelctl.create import CreateRequest


FORMAT = 1
KIND_WORDS = {str: "a string", int: "an integer", dict: "a table"}
PLUMBING = {"pip", "setuptools", "wheel"}


@dataclass(frozen=True)
class Definition:
    name: str
    display_name: str
    base: str  # a --base
    base_label: str
    flavour: str = "python"
    requested: tuple = ()
    resolved: dict = field(default_factory=dict)  # name -> version, in the venv itself

    def to_toml(self) -> str:
        header = ("# A kernelctl kernel definition: `kernelctl create --from THIS_FILE` makes "
                  "the kernel again\n# (add --base to build it on another base). "
                  "Format: docs/definitions.md\n")
        return header + tomli_w.dumps({
            "format": FORMAT, "name": self.name, "display_name": self.display_name,
            "flavour": self.flavour,
            "base": {"spec": self.base, "label": self.base_label},
            "packages": {"requested": list(self.requested), "resolved": dict(self.resolved)},
        })


def export(kernel: KernelInfo) -> Definition:
    from kernelctl.rebuild import exact_base

    binding = kernel.base
    if not kernel.managed or binding is None:
        raise KernelctlError(f"the kernel '{kernel.name}' was not made by kernelctl",
                             f"Let kernelctl take it over first: kernelctl adopt {kernel.name}")
    if binding.kind == "julia":
        flavour = "julia-nsys" if "nsys" in kernel.name else "julia"
        return Definition(kernel.name, kernel.display_name, binding.label or "julia",
                          binding.label or "", flavour)
    venv = Path(kernel.venv) if kernel.venv else None
    record = read_record(venv) if venv and os.path.isdir(venv) else None
    if venv is None or record is None:
        raise KernelctlError(f"the kernel '{kernel.name}' has no environment record "
                             f"({kernel.venv} is gone or not kernelctl's)",
                             f"Rebuild it first (kernelctl rebuild {kernel.name}), or adopt it.")
    requested = [p for p in record.packages if p != "ipykernel"]
    for requirements in record.requirement_files:
        requested += _requirement_lines(Path(requirements))
    return Definition(kernel.name, kernel.display_name, exact_base(kernel), binding.label,
                      "python", tuple(dict.fromkeys(requested)), venv_versions(venv))


def _requirement_lines(path: Path, seen: tuple = ()) -> list:
    """A requirements file's requirements, inlined (the definition travels without the
    file): comments dropped, nested `-r FILE` followed, any other pip option refused by
    name rather than silently left out."""
    if path.resolve() in seen:
        raise KernelctlError(f"the requirements file {path} includes itself (through -r)",
                             "Remove the loop of -r lines.")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KernelctlError(f"cannot read the requirements file {path}: {exc}",
                             "Put it back, or export after `kernelctl install` of its "
                             "packages.") from exc
    found: list = []
    for line in lines:
        text = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if not text:
            continue
        option, _, value = text.partition(" ") if text.startswith("-") else ("", "", "")
        if option in ("-r", "--requirement") or text.startswith("--requirement="):
            nested = value.strip() or text.split("=", 1)[1]
            found += _requirement_lines(path.parent / nested, (*seen, path.resolve()))
        elif text.startswith("-"):
            raise KernelctlError(
                f"{path} has the pip option line {text!r}, which a definition cannot carry",
                "Export lists requirements only: put the option in pip's configuration "
                "(pip config set) on the machine that recreates the kernel, and remove it "
                "from the file.")
        else:
            found.append(redact(text))  # a definition travels: no token goes with it
    return found


def venv_versions(venv: Path) -> dict:
    """{name: version} of the distributions in the venv itself (not the base's)."""
    return {name: dist.version for name, dist in sorted(own_distributions(venv).items())
            if name not in PLUMBING}


def read(path: Path) -> Definition:
    """A definition file, checked key by key."""
    try:
        data = load_toml(Path(path))
    except FileNotFoundError as exc:
        raise KernelctlError(f"{path} does not exist", "Check the path.") from exc
    except IsADirectoryError as exc:
        raise KernelctlError(f"{path} is a directory, not a kernel definition",
                             "Pass the file kernelctl export wrote.") from exc
    except (OSError, ValueError) as exc:
        raise KernelctlError(f"{path} is not a kernel definition: {exc}",
                             "Make one with kernelctl export NAME -o FILE.") from exc

    def get(table: Mapping, key: str, kind: type, where: str = "") -> Any:
        value = table.get(key)
        # A bool is an int to Python; `format = true` is no format number.
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise KernelctlError(
                f"{path}: '{where}{key}' must be {KIND_WORDS[kind]}"
                f"{' (it is missing)' if value is None else f', not {value!r}'}",
                "See docs/definitions.md, or export the kernel again.")
        return value

    if get(data, "format", int) != FORMAT:
        raise KernelctlError(f"{path} has format {data['format']}; this kernelctl reads {FORMAT}",
                             "Upgrade kernelctl, or export the kernel again.")
    name, display_name = get(data, "name", str), get(data, "display_name", str)
    flavour = get(data, "flavour", str)
    base = get(data, "base", dict)
    spec = get(base, "spec", str, "base.")
    packages = data.get("packages", {})
    if not isinstance(packages, dict):
        raise KernelctlError(f"{path}: 'packages' must be a table", "See docs/definitions.md.")
    requested = packages.get("requested", [])
    resolved = packages.get("resolved", {})
    if not isinstance(requested, list) or not all(isinstance(r, str) for r in requested):
        raise KernelctlError(f"{path}: 'packages.requested' must be a list of strings",
                             "See docs/definitions.md.")
    for requirement in requested:
        check_requirement(requirement, f"{path}: 'packages.requested'")
    if not isinstance(resolved, dict) or not all(isinstance(v, str) for v in resolved.values()):
        raise KernelctlError(f"{path}: 'packages.resolved' must map names to version strings",
                             "See docs/definitions.md.")
    return Definition(name, display_name, spec, str(base.get("label", "")), flavour,
                      tuple(requested), dict(resolved))


def differences(definition: Definition, kernel: KernelInfo) -> list:
    """What the kernel made from `definition` has that differs from it, one line each."""
    lines = []
    label = kernel.base.label if kernel.base else ""
    if definition.base_label and label != definition.base_label:
        lines.append(f"base: {label} here, {definition.base_label} in the definition")
    here = venv_versions(Path(kernel.venv)) if kernel.venv else {}
    asked = {requirement_name(r) for r in definition.requested}
    for name, version in definition.resolved.items():
        if name not in asked:
            continue  # dependencies follow the requests and the base
        if name not in here:
            lines.append(f"{name}: from the base here (not in the environment), "
                         f"{version} in the definition")
        elif here[name] != version:
            lines.append(f"{name}: {here[name]} here, {version} in the definition")
    return lines


def create_from(path: Path, request: "CreateRequest", env: Mapping[str, str], home: Path,
                progress: Callable[[str], None],
                notice: Callable[[str], None]) -> KernelInfo:
    """`create --from FILE`: the definition's base, names and requests, under what the
    command line overrides; then what came out differently, one notice each."""
    from dataclasses import replace

    from kernelctl.create import create

    definition = read(path)
    if definition.flavour != "python":
        raise KernelctlError(
            f"{path} defines a Julia kernel ('{definition.flavour}')",
            "Make it with kernelctl julia" + (" --nsys" if "nsys" in definition.flavour else "")
            + " on a system with that Julia.")
    request = replace(request, base=request.base or definition.base,
                      name=request.name or definition.name,
                      display_name=request.display_name or definition.display_name,
                      packages=(*definition.requested, *request.packages))
    kernel = create(request, env, home, progress, notice)
    for line in differences(definition, kernel):
        notice(f"differs from {path}: {line}")
    return kernel
