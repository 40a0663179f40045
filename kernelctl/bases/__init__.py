"""What a new environment is built on (`--base`): one module per kind of base.

A kind is a `kernelctl.bases.kind.BaseKind` (its module's KIND) and a line in the
registry (`kind.KINDS`); this module is what commands ask: resolve a --base, find the
base that fits a session, and what a kernel's base means here (mismatch, missing, the
notebook's words, the --base a rebuild uses). Base.binding() is what a kernel records
of its base. Only what `list` needs is imported here; resolving imports the probe and
the recipes when it runs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional, Tuple

from kernelctl.bases.kind import MAKE_ONE, claimer, in_detect_order, kind, known, spec_forms
from kernelctl.binding import Binding, PythonBinding
from kernelctl.errors import KernelctlError

if TYPE_CHECKING:
    from kernelctl.inventory import Session
    from kernelctl.probe import Interpreter

__all__ = ["Base", "resolve_base", "default_base", "base_of_environment", "mismatch",
           "missing", "start_hint", "unavailable_message", "exact_spec", "current_spec",
           "job_steps", "image_view", "checked_probe", "spec_forms"]
# A uenv is the one base any kernel may need besides its own (a Julia kernel in a
# uenv's view, a container kernel started in a uenv): `binding.image` names it.
IMAGE_KIND = "uenv"
# Any Python kernel may be layered on a venv: this kind says what that needs.
LAYER_KIND = "python"
BASE_FORMS = ("a recipe name (e.g. prgenv-gnu), uenv:NAME[/VERSION][:TAG], "
              "module:NAME[/VERSION][,NAME...], conda:PREFIX, container, python:PATH or system")


@dataclass(frozen=True)
class Base:
    kind: str  # its kind's name (kind.KINDS)
    name: str
    label: str  # what a human calls it: prgenv-gnu/24.11:v1, system, python:/opt/bin/python3
    python: str  # the interpreter as the user reaches it; never symlink-resolved
    interpreter: "Interpreter" = field(repr=False, compare=False)
    image: Optional[str] = None  # the uenv it lives in
    version: Optional[str] = None
    tag: Optional[str] = None
    view: Optional[str] = None
    digest: Optional[str] = None
    mount: Optional[str] = None
    recipe: Optional[str] = None
    # When the interpreter lives in a venv: that venv, and its site-packages, which the
    # new environment sees after its own (a venv cannot be made from a venv's python).
    base_env: Optional[str] = None
    layers: tuple = ()
    # What the base puts on PYTHONPATH: these copies would shadow the venv's.
    pythonpath: tuple = ()
    # PYTHONPATH entries under these directories belong to the base.
    shadow_roots: tuple = ()
    packages: tuple = ()
    # What the base sets in the environment (a module load's result, a conda env's
    # activation variables), for everything kernelctl runs in it while creating.
    session_env: dict = field(default_factory=dict, compare=False)
    # True: the launcher sets that up itself each start (`launch_steps`); else kernel.json
    # carries `kernel_vars` and `path_front` frozen.
    loads_at_launch: bool = False
    # What undoes the terminal's own set-up before the launcher does its part (the
    # modules loaded in the terminal, unloaded): kernel.json must not freeze them.
    unloaded: dict = field(default_factory=dict, compare=False)
    kernel_vars: dict = field(default_factory=dict, compare=False)
    path_front: tuple = ()
    # Shell lines the launcher runs before starting Python; they may set base_here=no.
    launch_steps: str = ""
    launcher_shell: str = "/bin/sh"
    kernel_name: str = ""  # the default kernel name, when not derived from the label
    binding_extra: dict = field(default_factory=dict, compare=False)  # kind's own fields
    no_index: bool = False  # its recipe says: install offline (the site's wheelhouse)

    def display_name(self, kernel_name: str) -> str:
        """What JupyterLab's launcher shows: the base, and the kernel's name unless it is
        the base's default one, so two kernels on one base never look the same."""
        shown = self.base_env or (self.python if self.kind == "python" and self.name != "system"
                                   else self.label)
        mine = "" if kernel_name == self.default_kernel_name else f" · {kernel_name}"
        return f"Python {self.interpreter.major_minor} ({shown}){mine}"

    @property
    def default_kernel_name(self) -> str:
        label = self.kernel_name or (f"python{self.interpreter.major_minor}"
                                     if self.label.startswith("python:") else self.label)
        return re.sub(r"[^a-z0-9._-]+", "-", label.lower()).strip("-.")

    def binding(self) -> PythonBinding:
        """What kernel.json metadata and the environment record keep of the base."""
        return PythonBinding(
            kind=self.kind, name=self.name, label=self.label, image=self.image,
            version=self.version, tag=self.tag, view=self.view, digest=self.digest,
            mount=self.mount, recipe=self.recipe, python=self.python,
            python_version=self.interpreter.version, base_env=self.base_env,
            layers=os.pathsep.join(self.layers) or None,
            extra={k: v for k, v in self.binding_extra.items() if v is not None})

    def frozen(self, env: Mapping[str, str]) -> dict:
        """What kernel.json's environment is made from: the launcher loads the base
        itself (modules) or the activated environment is kept (conda)."""
        if not self.loads_at_launch:
            return self.activated(env)
        clean = {**env, **self.unloaded}
        return {key: value for key, value in clean.items() if value is not None}

    def activated(self, env: Mapping[str, str]) -> dict:
        """`env` with the base set up in it, as in a terminal after `module load`."""
        active = {**env, **self.session_env}
        return {key: value for key, value in active.items() if value is not None}

    @property
    def spec(self) -> str:
        """A --base that names this base again."""
        return kind(self.kind).exact_spec(self.binding())

    def describe(self) -> str:
        return self.binding().describe()


def resolve_base(spec: str, env: Mapping[str, str]) -> Base:
    spec = spec.strip()
    its_kind = claimer(spec)
    if its_kind is not None:
        return its_kind.resolve(spec, env)
    from kernelctl.bases.catalogue import all_recipes, find_recipe

    recipe = find_recipe(spec, env) if re.fullmatch(r"[A-Za-z0-9_.-]+", spec) else None
    if recipe is None:
        names = ", ".join(r.name for r in all_recipes(env)) or "none"
        raise KernelctlError(f"unknown base '{spec}'",
                             f"--base takes {BASE_FORMS}. Recipes here: {names}.")
    base = kind(recipe.kind).from_recipe(recipe, env)
    return replace(base, recipe=recipe.name, no_index=recipe.no_index)


def default_base(env: Mapping[str, str]) -> Tuple[Base, str]:
    """The base that fits this session, and why: each kind looks for its own, in their
    order (a mounted uenv with a Python view, an identified container image, loaded Lmod
    modules that provide python3, an active conda env, an active venv, python3 on PATH).
    A base that is there and cannot be used is passed over, and the choice says so."""
    passed_over = []
    for each in in_detect_order():
        try:
            found = each.detect(env)
        except KernelctlError as exc:
            passed_over.append(exc.message)
            continue
        if found is not None:
            base, why = found
            return base, why + "".join(f" ({note})" for note in passed_over)
    raise KernelctlError("no base fits this session",
                         f"Name one with --base: {BASE_FORMS}.")


def base_of_environment(root: Path, interpreter: "Interpreter",
                        env: Mapping[str, str]) -> Base:
    """What an environment made by hand stands on (`adopt`): the first kind that
    recognises it (a conda env is its own base), else the interpreter under it."""
    for each in in_detect_order():
        base = each.environment_base(root, interpreter, env)
        if base is not None:
            return base
    raise KernelctlError(f"kernelctl cannot tell what {root} is built on",
                         "Say it with --base.")


def image_view(image: str, env: Mapping[str, str]) -> Optional[str]:
    """The view the recipe of a uenv image names (recipes/julia.toml: jupyter)."""
    from kernelctl.bases.catalogue import recipe_where

    recipe = recipe_where(env, IMAGE_KIND, uenv=image)
    return recipe.base["view"] if recipe else None


def _kinds_of(binding: Binding, also: str) -> list:
    """The kinds that may have something to say about a kernel: its own (when this
    kernelctl knows it) and `also`, in a stable order."""
    return [k for k in (known(name) for name in sorted({also, binding.kind})) if k]


def mismatch(binding: Binding, session: "Session") -> Optional[str]:
    """Why this session (its uenvs, its container) cannot run a kernel with `binding`."""
    for each in _kinds_of(binding, IMAGE_KIND):
        why = each.mismatch(binding, session)
        if why:
            return why
    return None


def missing(binding: Binding) -> Optional[str]:
    """What a kernel's base lost for good (a retired modulefile, a deleted layer)."""
    for each in _kinds_of(binding, LAYER_KIND):
        why = each.missing(binding)
        if why:
            return why
    return None




def bring_up(binding: Binding, env: Mapping[str, str]) -> Optional[list]:
    """The command that brings a mismatched kernel's image up from a plain shell
    (`uenv run --view=VIEW LABEL --`), or None; a KernelctlError says why it cannot."""
    for each in _kinds_of(binding, IMAGE_KIND):
        prefix = each.bring_up(binding, env)
        if prefix:
            return prefix
    return None


def start_hint(binding: Binding, session: "Session") -> str:
    """How to use a mismatched kernel as it is: the words of the kind that found the
    mismatch (start JupyterLab with that uenv, in that container)."""
    for each in _kinds_of(binding, IMAGE_KIND):
        if each.mismatch(binding, session):
            return each.start_hint(binding)
    return MAKE_ONE


def unavailable_message(base: Base, rebuild: str) -> str:
    """What the notebook says when this kernel's base cannot run in a session."""
    return kind(base.kind).unavailable_message(base, rebuild)


def exact_spec(binding: Binding) -> str:
    """The --base that names a kernel's base exactly (pinned versions)."""
    its_kind = known(binding.kind)
    return its_kind.exact_spec(binding) if its_kind else binding.label


def current_spec(binding: Binding) -> str:
    """The same base at what the site has now (a uenv's newest version, a module's
    default version), for a kernel whose own base is gone."""
    its_kind = known(binding.kind)
    return its_kind.current_spec(binding) if its_kind else binding.label


def job_steps(binding: Binding) -> str:
    """What a batch job's launcher does for the kernel's base, in words."""
    its_kind = known(binding.kind)
    return its_kind.job_steps(binding) if its_kind else ""


def checked_probe(python: Path, env: Mapping[str, str]) -> "Interpreter":
    """The interpreter's facts, from one probe; a Python older than 3.9 is refused."""
    from kernelctl.probe import probe

    interpreter = probe(python, env)
    if not interpreter.supported:
        raise KernelctlError(
            f"{python} is Python {interpreter.version}; kernelctl needs Python >= 3.9",
            "Choose a newer base (another uenv version, module or interpreter).",
        )
    return interpreter
