"""Recipes: one TOML file per base image a site offers (see docs/recipes.md)."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from kernelctl.errors import KernelctlError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.9/3.10 only
    import tomli as tomllib

log = logging.getLogger("kernelctl")
RECIPE_FORMAT = 1
BASE_KINDS = ("uenv",)


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    site: str
    kind: str
    uenv: str
    view: str
    python: str
    packages: tuple
    path: Path


def recipe_dirs(env: Mapping[str, str]) -> list:
    """$KERNELCTL_RECIPE_PATH first (a site's own recipes), then the built-in ones."""
    extra = [Path(p) for p in env.get("KERNELCTL_RECIPE_PATH", "").split(os.pathsep) if p]
    here = Path(__file__).resolve().parent
    # Installed wheels carry recipes/ inside the package; a source checkout beside it.
    return extra + [here / "recipes", here.parent / "recipes"]


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
    seen: dict = {}
    for directory in recipe_dirs(env):
        for path in sorted(directory.glob("*.toml")) if os.path.isdir(directory) else ():
            seen.setdefault(path.stem, path)
    found = []
    for path in seen.values():
        try:
            found.append(load_recipe(path))
        except KernelctlError as exc:
            log.warning("%s", exc.message)
    return found


def load_recipe(path: Path) -> Recipe:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return _from_dict(data, path)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
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
    packages = _get(_get(data, "packages", dict, {}), "default", list, [],
                    key="packages.default")
    if not all(isinstance(p, str) and p.strip() for p in packages):
        raise ValueError("packages.default must be a list of non-empty strings")
    return Recipe(
        name=name, description=_get(data, "description", str, ""),
        site=_get(data, "site", str, ""), kind=kind,
        uenv=_get(base, "uenv", str, key="base.uenv"),
        view=_get(base, "view", str, "default", key="base.view"),
        python=_get(base, "python", str, "bin/python3", key="base.python"),
        packages=tuple(packages), path=path,
    )


_REQUIRED = object()
TYPE_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "a table"}


def _get(data: dict, name: str, kind: type, default=_REQUIRED, key: str = ""):
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
