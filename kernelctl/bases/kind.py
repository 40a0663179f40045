"""What a kind of base is (`BaseKind`), and the registry of kinds.

A kind is one module of kernelctl/bases/ that defines `KIND`, an instance of a
`BaseKind` subclass, and one line in `KINDS`. Every method but `resolve` has a
default, so a kind writes only what differs. Nothing outside kernelctl/bases/ knows
which kinds exist: commands ask `kernelctl.bases`, which asks the kind.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple

from kernelctl.errors import KernelctlError

if TYPE_CHECKING:
    from pathlib import Path

    from kernelctl.bases import Base
    from kernelctl.binding import Binding
    from kernelctl.inventory import Session
    from kernelctl.probe import Interpreter
    from kernelctl.recipes import Recipe

MAKE_ONE = "Make a kernel for this session with kernelctl create."


class BaseKind:
    """One kind of base: how `--base` names it, how it is found and set up, and what a
    kernel bound to it needs, and says, when the base is not there."""

    name = ""  # set from the registry: the `kind` a binding and a recipe record
    forms: Tuple[str, ...] = ()  # the --base forms it claims: "uenv:" (a prefix), "system"
    # default_base asks the kinds in this order; the first that finds its base wins.
    detect_order = 50

    def resolve(self, spec: str, env: Mapping[str, str]) -> "Base":
        """The base `--base SPEC` names, checked in this session; a KernelctlError
        (BaseNotActive when another session would have it) says why not."""
        raise NotImplementedError

    # Recipes (a kind that takes them sets takes_recipes and defines the three) --
    takes_recipes = False

    def recipe_fields(self, table: Mapping[str, Any]) -> Dict[str, Any]:
        """The kind's own keys of a recipe's [base] table, checked: a ValueError names
        the key (kernelctl.recipes.get and strings do)."""
        return dict(table)

    def from_recipe(self, recipe: "Recipe", env: Mapping[str, str]) -> "Base":
        raise NotImplementedError

    def unusable(self, recipe: "Recipe", env: Mapping[str, str]) -> Optional[str]:
        """Why this session cannot use a recipe of this kind (`kernelctl recipes`)."""
        return None

    def recipe_loads(self, recipe: "Recipe") -> str:
        """What a recipe of this kind loads, in words."""
        return ", ".join(f"{key} {value}" for key, value in recipe.base.items())

    # Finding a base without --base -------------------------------------------
    def detect(self, env: Mapping[str, str]) -> Optional[Tuple["Base", str]]:
        """This session's base of this kind and why (a mounted image, loaded modules),
        or None; a KernelctlError says why one that is there cannot be used."""
        return None

    def environment_base(self, root: "Path", interpreter: "Interpreter",
                         env: Mapping[str, str]) -> Optional["Base"]:
        """What an environment made by hand (`adopt`) stands on, when it is this kind."""
        return None

    # A kernel bound to this kind ----------------------------------------------
    def mismatch(self, binding: "Binding", session: "Session") -> Optional[str]:
        """Why this session cannot run the kernel although its base still exists
        (another image mounted): status mismatch."""
        return None

    def missing(self, binding: "Binding") -> Optional[str]:
        """What the base lost for good (a retired modulefile): status broken."""
        return None

    def bring_up(self, binding: "Binding", env: Mapping[str, str]) -> Optional[list]:
        """The command that brings a mismatched kernel's base up from a plain shell, the
        way the site does (`uenv run ... --`), for `run` and `shell` to put in front;
        None when this kind has none. A KernelctlError says why it cannot be brought up."""
        return None

    def unavailable_message(self, base: "Base", rebuild: str) -> str:
        """What the notebook says when the kernel's base cannot run in a session."""
        return (f"kernelctl: this kernel's base ({base.label}) cannot be used in this "
                f"session. Rebuild the kernel on what is here, with its packages: {rebuild}")

    def start_hint(self, binding: "Binding") -> str:
        """How to use a mismatched kernel as it is."""
        return MAKE_ONE

    def exact_spec(self, binding: "Binding") -> str:
        """The --base that names the kernel's base exactly (pinned versions)."""
        return binding.label

    def current_spec(self, binding: "Binding") -> str:
        """The same base at what the site has now, for a kernel whose own base is gone."""
        return self.exact_spec(binding)

    def job_steps(self, binding: "Binding") -> str:
        """What the launcher does for this base in a batch job, in words (`submit`)."""
        return ""


@dataclass(frozen=True)
class Registered:
    module: str  # defines KIND
    forms: Tuple[str, ...]  # what it claims, known without importing it (completion)


# The registry. Adding a kind: its module, and one line here.
KINDS: Dict[str, Registered] = {
    "uenv": Registered("kernelctl.bases.uenv", ("uenv:",)),
    "container": Registered("kernelctl.bases.container", ("container",)),
    "module": Registered("kernelctl.bases.module", ("module:",)),
    "conda": Registered("kernelctl.bases.conda", ("conda:",)),
    "python": Registered("kernelctl.bases.python", ("system", "python:")),
}
_loaded: Dict[str, BaseKind] = {}


def register(name: str, module: str, forms: Tuple[str, ...]) -> None:
    """Add a kind at run time (a site's own kind, a test's); it is asked after the
    built-in ones where order matters."""
    KINDS[name] = Registered(module, tuple(forms))
    _loaded.pop(name, None)


def kind(name: str) -> BaseKind:
    """The kind called `name`; its module is imported on first use."""
    found = _loaded.get(name)
    if found is not None:
        return found
    if name not in KINDS:
        raise KernelctlError(f"unknown base kind '{name}'", f"Base kinds: {', '.join(KINDS)}.")
    entry = KINDS[name]
    found = importlib.import_module(entry.module).KIND
    if not isinstance(found, BaseKind):
        raise TypeError(f"{entry.module}.KIND is not a BaseKind")
    found.name, found.forms = name, entry.forms
    _loaded[name] = found
    return found


def known(name: str) -> Optional[BaseKind]:
    """The kind, or None for a name no registered kind has (a newer kernelctl's)."""
    return kind(name) if name in KINDS else None


def claimer(spec: str) -> Optional[BaseKind]:
    """The kind whose --base form `spec` is written in; only that kind is imported."""
    for name, entry in KINDS.items():
        # "system" is a whole spec; "uenv:" a prefix.
        if any(spec == form or form.endswith(":") and spec.startswith(form)
               for form in entry.forms):
            return kind(name)
    return None


def spec_forms() -> list:
    return [form for entry in KINDS.values() for form in entry.forms]


def in_detect_order() -> list:
    return sorted((kind(name) for name in KINDS), key=lambda k: k.detect_order)
