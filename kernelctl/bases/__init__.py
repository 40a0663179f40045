"""What a new environment is built on (`--base`): one module per kind of base.

A kind module (KINDS) offers:
- `claims(spec) -> bool`: whether `--base SPEC` is written in its form (`uenv:...`);
- `resolve(spec, env) -> Base`, and `from_recipe(recipe, env) -> Base` for recipes of
  its kind: the interpreter, the image, what the base puts on PYTHONPATH;
- `mismatch(binding, session) -> str | None`: why a kernel bound to such a base cannot
  run in this session (another image mounted, another container), for `list` and
  `doctor`; `missing(binding) -> str | None`: what the base lost for good (a layered
  venv deleted, a modulefile retired), which makes the kernel broken.
Base.binding() is what a kernel records of its base. Only what `list` needs is imported
here; resolving imports the probe and the recipes when it runs.
"""

from __future__ import annotations

import importlib
import os
import re
from types import ModuleType
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Optional, Tuple

from kernelctl.binding import Binding, PythonBinding
from kernelctl.errors import KernelctlError

if TYPE_CHECKING:
    from kernelctl.inventory import Session
    from kernelctl.probe import Interpreter

# The registry: each kind's module name, and the --base forms it claims (what shell
# completion offers without importing the kinds).
KINDS = {"python": ("system", "python:"), "uenv": ("uenv:",), "module": ("module:",),
         "conda": ("conda:",), "container": ("container",)}


def spec_forms() -> list:
    return [form for forms in KINDS.values() for form in forms]
BASE_FORMS = ("a recipe name (e.g. prgenv-gnu), uenv:NAME[/VERSION][:TAG], "
              "module:NAME[/VERSION][,NAME...], conda:PREFIX, container, python:PATH or system")


@dataclass(frozen=True)
class Base:
    kind: str  # a module of KINDS
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
            layers=os.pathsep.join(self.layers) or None, **self.binding_extra)

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
        return {"uenv": f"uenv:{self.label}", "container": "container"}.get(self.kind, self.label)

    def describe(self) -> str:
        return self.binding().describe()


def kind_module(kind: str) -> ModuleType:
    if kind not in KINDS:
        raise KernelctlError(f"unknown base kind '{kind}'", f"Base kinds: {', '.join(KINDS)}.")
    return importlib.import_module(f"kernelctl.bases.{kind}")


def resolve_base(spec: str, env: Mapping[str, str]) -> Base:
    spec = spec.strip()
    for kind in KINDS:
        module = kind_module(kind)
        if module.claims(spec):
            return module.resolve(spec, env)
    from kernelctl import recipes

    recipe = recipes.find_recipe(spec, env) if re.fullmatch(r"[A-Za-z0-9_.-]+", spec) else None
    if recipe is None:
        known = ", ".join(r.name for r in recipes.all_recipes(env)) or "none"
        raise KernelctlError(f"unknown base '{spec}'",
                             f"--base takes {BASE_FORMS}. Recipes here: {known}.")
    base = kind_module(recipe.kind).from_recipe(recipe, env)
    return replace(base, recipe=recipe.name, no_index=recipe.no_index)


def default_base(env: Mapping[str, str]) -> Tuple[Base, str]:
    """The base that fits this session, and why, in this order: a mounted uenv with a
    Python view, an identified container image, loaded Lmod modules that provide
    python3, an active conda env, an active venv (layered), else python3 on PATH."""
    from kernelctl import uenv as uenv_facts
    from kernelctl.containers import session_container
    from kernelctl.paths import path_list

    for mounted in uenv_facts.session_uenvs(env):
        for view in mounted.active_views:
            root = mounted.view_root(view)
            if root is not None and os.access(root / "bin" / "python3", os.X_OK):
                return (resolve_base(f"uenv:{mounted.name}", env), f"the uenv {mounted.name} "
                        f"is mounted with the view {view}, which has python3")
    container = session_container(env)
    if container is not None and container.image:
        return (resolve_base("container", env),
                f"this session runs in the container {container.label}")
    passed_over = ""
    loaded = path_list(env.get("LOADEDMODULES"))
    if loaded:
        try:
            return (resolve_base("module:" + ",".join(loaded), env),
                    f"these modules are loaded and provide python3: {', '.join(loaded)}")
        except KernelctlError as exc:
            passed_over = f" (the loaded modules were passed over: {exc.message})"
    conda = env.get("CONDA_PREFIX")
    if conda and os.path.isdir(os.path.join(conda, "conda-meta")):
        return resolve_base(f"conda:{conda}", env), f"the conda env {conda} is active{passed_over}"
    venv = env.get("VIRTUAL_ENV")
    if venv and os.access(os.path.join(venv, "bin", "python"), os.X_OK):
        return (resolve_base(f"python:{os.path.join(venv, 'bin', 'python')}", env),
                f"the venv {venv} is active; its packages are layered on{passed_over}")
    return resolve_base("system", env), f"python3 on PATH (no uenv, container, modules or " \
        f"active environment in this session){passed_over}"


def mismatch(binding: Binding, session: "Session") -> Optional[str]:
    """Why this session (its uenvs, its container) cannot run a kernel with `binding`.
    A uenv may be needed by any kind of kernel (Julia too)."""
    kinds = {"uenv", binding.kind} & set(KINDS)
    for kind in sorted(kinds):
        why = kind_module(kind).mismatch(binding, session)
        if why:
            return why
    return None


MAKE_ONE = "Make a kernel for this session with kernelctl create."


def _hook(kind: str, name: str, default: Callable) -> Callable:
    """A kind's own function, or the default every kind gets: a kind module defines
    only what differs (start_hint, exact_spec, current_spec)."""
    return getattr(kind_module(kind), name, default)


def start_hint(binding: Binding, session: "Session") -> str:
    """How to use a mismatched kernel as it is: the words of the kind that found the
    mismatch (start JupyterLab with that uenv, in that container)."""
    for kind in sorted({"uenv", binding.kind} & set(KINDS)):
        if kind_module(kind).mismatch(binding, session):
            return _hook(kind, "start_hint", lambda b: MAKE_ONE)(binding)
    return MAKE_ONE


def unavailable_message(base: Base, rebuild: str) -> str:
    """What the notebook says when this kernel's base cannot run in a session."""
    return kind_module(base.kind).unavailable_message(base, rebuild)


def exact_spec(binding: Binding) -> str:
    """The --base that names a kernel's base exactly (pinned versions)."""
    if binding.kind not in KINDS:
        return binding.label
    return _hook(binding.kind, "exact_spec", lambda b: b.label)(binding)


def current_spec(binding: Binding) -> str:
    """The same base at what the site has now (a uenv's newest version, a module's
    default version), for a kernel whose own base is gone."""
    return exact_spec(binding) if binding.kind not in KINDS else \
        _hook(binding.kind, "current_spec", exact_spec)(binding)


def missing(binding: Binding) -> Optional[str]:
    """What a kernel's base lost for good (see the kind modules' `missing`)."""
    kinds = {"python", binding.kind} & set(KINDS)  # any Python kernel may be layered
    for kind in sorted(kinds):
        why = kind_module(kind).missing(binding)
        if why:
            return why
    return None


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
