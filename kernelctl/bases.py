"""Resolve `--base` into the interpreter and image a new environment is bound to."""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from kernelctl import recipes, uenv
from kernelctl.errors import BaseNotActive, KernelctlError
from kernelctl.paths import is_within, path_list
from kernelctl.probe import Interpreter, probe

BASE_FORMS = "a recipe name (e.g. prgenv-gnu), uenv:NAME[/VERSION][:TAG], python:PATH or system"


@dataclass(frozen=True)
class Base:
    kind: str  # "uenv" or "python"
    name: str
    label: str  # what a human calls it: prgenv-gnu/24.11:v1, system, python:/opt/bin/python3
    python: str  # the interpreter as the user reaches it; never symlink-resolved
    interpreter: Interpreter = field(repr=False, compare=False)
    version: Optional[str] = None
    tag: Optional[str] = None
    view: Optional[str] = None
    digest: Optional[str] = None
    mount: Optional[str] = None
    recipe: Optional[str] = None
    # What the base puts on PYTHONPATH: these copies would shadow the venv's.
    pythonpath: tuple = ()
    # PYTHONPATH entries under these directories belong to the base.
    shadow_roots: tuple = ()
    packages: tuple = ()

    @property
    def display_name(self) -> str:
        shown = self.python if self.kind == "python" and self.name != "system" else self.label
        return f"Python {self.interpreter.major_minor} ({shown})"

    @property
    def default_kernel_name(self) -> str:
        label = f"python{self.interpreter.major_minor}" if self.label.startswith("python:") else self.label
        return re.sub(r"[^a-z0-9._-]+", "-", label.lower()).strip("-.")

    def binding(self) -> dict:
        """The base binding stored in kernel.json metadata and the environment record."""
        fields = {
            "kind": self.kind, "name": self.name, "label": self.label,
            "version": self.version, "tag": self.tag, "view": self.view,
            "digest": self.digest, "mount": self.mount, "recipe": self.recipe,
            "python": self.python, "python_version": self.interpreter.version,
        }
        return {key: value for key, value in fields.items() if value is not None}


def resolve_base(spec: str, env: Mapping[str, str]) -> Base:
    spec = spec.strip()
    if spec == "system":
        return _python_base("system", _system_python(env), env)
    if spec.startswith("python:"):
        return _python_base(spec, spec[len("python:"):], env)
    if spec.startswith("uenv:"):
        label = uenv.UenvLabel.parse(spec[len("uenv:"):])
        return _uenv_base(label, recipes.recipe_for_uenv(label.name, env), env)
    recipe = recipes.find_recipe(spec, env) if re.fullmatch(r"[A-Za-z0-9_.-]+", spec) else None
    if recipe is None:
        known = ", ".join(r.name for r in recipes.all_recipes(env)) or "none"
        raise KernelctlError(
            f"unknown base '{spec}'",
            f"--base takes {BASE_FORMS}. Recipes here: {known}.",
        )
    return _uenv_base(uenv.UenvLabel(recipe.uenv), recipe, env)


def _system_python(env: Mapping[str, str]) -> str:
    return shutil.which("python3", path=env.get("PATH")) or sys.executable


def _python_base(label: str, python: str, env: Mapping[str, str]) -> Base:
    path = Path(python).expanduser()
    if not path.is_absolute() or not os.access(path, os.X_OK) or os.path.isdir(path):
        raise KernelctlError(
            f"'{python}' is not an executable file given by an absolute path",
            "Write --base python:/absolute/path/to/python3 (see `which python3`).",
        )
    interpreter = _checked_probe(path, env)
    if interpreter.in_venv:
        # A venv cannot sit on top of another venv: build on the interpreter under it.
        path = Path(interpreter.base_executable)
        interpreter = _checked_probe(path, env)
    # sys.executable, not `path`: a pyenv or conda shim is a script, not the interpreter.
    return Base(kind="python", name="system" if label == "system" else "python",
                label=label, python=interpreter.executable, interpreter=interpreter,
                pythonpath=tuple(path_list(env.get("PYTHONPATH", ""))))


def _uenv_base(label: uenv.UenvLabel, recipe: Optional[recipes.Recipe],
               env: Mapping[str, str]) -> Base:
    mounted = _mounted_uenv(label, recipe, env)
    image = uenv.inspect(mounted.digest or mounted.name, env)
    _check_version(label, image, recipe, mounted)
    view = _pick_view(label, recipe, mounted)
    root = mounted.view_root(view) or mounted.mount
    python = root / (recipe.python if recipe else "bin/python3")
    if not os.access(python, os.X_OK):
        raise KernelctlError(
            f"the view '{view}' of {mounted.name} has no Python at {python}",
            f"Pick a view that provides python3, e.g. --base uenv:{label.name} with the "
            "session started on that view.",
        )
    pythonpath = mounted.view_list_var(view, "PYTHONPATH") or [
        entry for entry in path_list(env.get("PYTHONPATH", ""))
        if is_within(entry, mounted.mount)]
    version = image.get("version") or label.version
    tag = image.get("tag") or label.tag
    return Base(
        kind="uenv", name=mounted.name, label=str(uenv.UenvLabel(mounted.name, version, tag)),
        python=str(python), interpreter=_checked_probe(python, env), version=version,
        tag=tag, view=view, digest=image.get("digest") or mounted.digest,
        mount=str(mounted.mount), recipe=recipe.name if recipe else None,
        pythonpath=tuple(pythonpath), shadow_roots=(str(mounted.mount),),
        packages=recipe.packages if recipe else (),
    )


def _start_hint(label: uenv.UenvLabel, view: str) -> str:
    return (
        f"Start JupyterLab with the uenv '{label}' and the view '{view}' (JupyterHub "
        f"spawner form, Advanced options), or outside Jupyter run: "
        f"uenv start {label} --view={view}"
    )


def _mounted_uenv(label, recipe, env) -> uenv.MountedUenv:
    view = recipe.view if recipe else "default"
    mounted = uenv.session_uenvs(env)
    if not mounted:
        raise BaseNotActive(f"no uenv is mounted in this session (wanted {label})",
                            _start_hint(label, view))
    for image in mounted:
        if image.name == label.name:
            return image
    have = ", ".join(f"{m.name} at {m.mount}" for m in mounted)
    raise BaseNotActive(f"this session has {have} mounted, not {label.name}",
                        _start_hint(label, view))


def _check_version(label, image: dict, recipe, mounted) -> None:
    for part in ("version", "tag"):
        wanted, have = getattr(label, part), image.get(part)
        if wanted and have and wanted != have:
            view = recipe.view if recipe else (mounted.active_views or ("default",))[0]
            raise BaseNotActive(
                f"the mounted {mounted.name} is {part} {have}, not {wanted}",
                _start_hint(label, view),
            )


def _pick_view(label, recipe, mounted) -> str:
    if recipe:
        if recipe.view in mounted.active_views:
            return recipe.view
        raise BaseNotActive(
            f"{mounted.name} is mounted with the view(s) "
            f"{', '.join(mounted.active_views) or 'none'}, not '{recipe.view}'",
            _start_hint(label, recipe.view),
        )
    for view in mounted.active_views:
        if mounted.view_root(view) and os.path.exists(mounted.view_root(view) / "bin" / "python3"):
            return view
    if mounted.active_views:
        return mounted.active_views[0]
    raise BaseNotActive(f"{mounted.name} is mounted without an active view",
                        _start_hint(label, "default"))


def _checked_probe(python: Path, env: Mapping[str, str]) -> Interpreter:
    interpreter = probe(python, env)
    if not interpreter.supported:
        raise KernelctlError(
            f"{python} is Python {interpreter.version}; kernelctl needs Python >= 3.9",
            "Choose a newer base (another uenv version, module or interpreter).",
        )
    return interpreter
