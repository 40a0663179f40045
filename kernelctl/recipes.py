"""Recipes: one TOML file per base image a site offers (see docs/recipes.md)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from kernelctl.errors import KernelctlError
from kernelctl.textfiles import load_toml

log = logging.getLogger("kernelctl")
RECIPE_FORMAT = 1
_REQUIRED = object()
BASE_KINDS = ("uenv", "module", "container")


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    site: str
    kind: str
    path: Path
    packages: tuple = ()
    no_index: bool = False  # offline by default (the site's pip config names the wheelhouse)
    uenv: str = ""  # kind uenv: the uenv's name, its view, the python in the view
    view: str = "default"
    python: str = "bin/python3"
    modules: tuple = ()  # kind module: what to load, in order
    image: str = ""  # kind container: the image the session must run (a name's start)

    @property
    def loads(self) -> str:
        """What the recipe loads, in the words of its kind."""
        if self.kind == "uenv":
            return f"uenv {self.uenv}, view {self.view}"
        if self.kind == "module":
            return "modules " + ", ".join(self.modules)
        return f"container image {self.image}"


def recipe_dirs(env: Mapping[str, str]) -> list:
    """$KERNELCTL_RECIPE_PATH first (a site's own recipes), then the user's
    (~/.config/kernelctl/recipes), then the built-in ones: the first NAME.toml wins."""
    extra = [Path(p) for p in env.get("KERNELCTL_RECIPE_PATH", "").split(os.pathsep) if p]
    config = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", "~"), ".config")
    here = Path(__file__).resolve().parent
    # Installed wheels carry recipes/ inside the package; a source checkout beside it.
    return extra + [Path(config) / "kernelctl" / "recipes", here / "recipes",
                    here.parent / "recipes"]


def find_recipe(name: str, env: Mapping[str, str]) -> Optional[Recipe]:
    for directory in recipe_dirs(env):
        candidate = directory / f"{name}.toml"
        if os.path.isfile(candidate):
            return load_recipe(candidate)
    return None


def recipe_for_uenv(uenv_name: str, env: Mapping[str, str]) -> Optional[Recipe]:
    for recipe in all_recipes(env):
        if recipe.kind == "uenv" and recipe.uenv == uenv_name:
            return recipe
    return None


def all_recipes(env: Mapping[str, str]) -> list:
    """Every valid recipe; one broken file is logged and skipped, never fatal here."""
    found = []
    for path in recipe_files(env).values():
        try:
            found.append(load_recipe(path))
        except KernelctlError as exc:
            log.warning("%s", exc.message)
    return found


def recipe_files(env: Mapping[str, str]) -> dict:
    """{name: the file that wins}, in search order."""
    seen: dict = {}
    for directory in recipe_dirs(env):
        for path in sorted(directory.glob("*.toml")) if os.path.isdir(directory) else ():
            seen.setdefault(path.stem, path)
    return seen


def load_recipe(path: Path) -> Recipe:
    try:
        return _from_dict(load_toml(path), path)
    except (OSError, ValueError) as exc:
        raise KernelctlError(
            f"recipe {path} is invalid: {exc}",
            "Fix the file against docs/recipes.md, or remove it from KERNELCTL_RECIPE_PATH.",
        ) from exc


def _from_dict(data: dict, path: Path) -> Recipe:
    """A Recipe from a parsed file; a ValueError naming the key for anything wrong."""
    if _get(data, "format", int, RECIPE_FORMAT) != RECIPE_FORMAT:
        raise ValueError(f"format {data['format']!r} is not {RECIPE_FORMAT}")
    name = _get(data, "name", str)
    if name != path.stem:
        raise ValueError(f"name {name!r} differs from the file name {path.stem!r}")
    base = _get(data, "base", dict)
    kind = _get(base, "kind", str, key="base.kind")
    if kind not in BASE_KINDS:
        raise ValueError(f"base.kind {kind!r} is not one of {BASE_KINDS}")
    packages = _strings(_get(data, "packages", dict, {}), "default", "packages.default", [])
    pip = _get(data, "pip", dict, {})
    common = dict(name=name, description=_get(data, "description", str, ""),
                  site=_get(data, "site", str, ""), kind=kind, path=path,
                  packages=tuple(packages),
                  no_index=_get(pip, "no_index", bool, False, key="pip.no_index"))
    if kind == "uenv":
        return Recipe(**common, uenv=_get(base, "uenv", str, key="base.uenv"),
                      view=_get(base, "view", str, "default", key="base.view"),
                      python=_get(base, "python", str, "bin/python3", key="base.python"))
    if kind == "module":
        modules = _strings(base, "modules", "base.modules")
        if not modules:
            raise ValueError("'base.modules' must name at least one module")
        return Recipe(**common, modules=tuple(modules))
    return Recipe(**common, image=_get(base, "image", str, key="base.image"))


def _strings(data: dict, name: str, key: str, default: Any = _REQUIRED) -> list:
    values = _get(data, name, list, default, key=key)
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise ValueError(f"'{key}' must be a list of non-empty strings")
    return values


TYPE_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "a table",
              bool: "true or false"}


def _get(data: dict, name: str, kind: type, default: Any = _REQUIRED, key: str = "") -> Any:
    key = key or name
    if name not in data:
        if default is _REQUIRED:
            raise ValueError(f"'{key}' is missing")
        return default
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ValueError(f"'{key}' must be {TYPE_NAMES.get(kind, kind.__name__)}, "
                         f"not {type(value).__name__} {value!r}")
    return value
