"""Recipes: one TOML file per base image a site offers (see docs/recipes.md)."""

from __future__ import annotations

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
        if candidate.is_file():
            return load_recipe(candidate)
    return None


def recipe_for_uenv(uenv_name: str, env: Mapping[str, str]) -> Optional[Recipe]:
    for recipe in all_recipes(env):
        if recipe.kind == "uenv" and recipe.uenv == uenv_name:
            return recipe
    return None


def all_recipes(env: Mapping[str, str]) -> list:
    seen: dict = {}
    for directory in recipe_dirs(env):
        for path in sorted(directory.glob("*.toml")) if directory.is_dir() else ():
            seen.setdefault(path.stem, path)
    return [load_recipe(path) for path in seen.values()]


def load_recipe(path: Path) -> Recipe:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return _from_dict(data, path)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError,
            ValueError) as exc:
        raise KernelctlError(
            f"recipe {path} is invalid: {exc}",
            "Fix the file against docs/recipes.md, or remove it from KERNELCTL_RECIPE_PATH.",
        ) from exc


def _from_dict(data: dict, path: Path) -> Recipe:
    if data.get("format", RECIPE_FORMAT) != RECIPE_FORMAT:
        raise ValueError(f"format {data['format']!r} is not {RECIPE_FORMAT}")
    if data["name"] != path.stem:
        raise ValueError(f"name {data['name']!r} differs from the file name {path.stem!r}")
    base = data["base"]
    if base["kind"] not in BASE_KINDS:
        raise ValueError(f"base.kind {base['kind']!r} is not one of {BASE_KINDS}")
    packages = data.get("packages", {}).get("default", [])
    if not all(isinstance(p, str) for p in packages):
        raise ValueError("packages.default must be a list of strings")
    return Recipe(
        name=data["name"], description=data.get("description", ""),
        site=data.get("site", ""), kind=base["kind"], uenv=base["uenv"],
        view=base.get("view", "default"), python=base.get("python", "bin/python3"),
        packages=tuple(packages), path=path,
    )
