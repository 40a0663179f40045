"""Recipes: one TOML file per base image a site offers (see docs/recipes.md).

A file format only: which kinds exist, and what each puts in [base], is the kinds'
(kernelctl.bases.catalogue reads recipes with them)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping

from kernelctl.errors import KernelctlError
from kernelctl.textfiles import load_toml

RECIPE_FORMAT = 1
_REQUIRED = object()
# A kind's own keys of [base], checked by the kind (kernelctl.bases.catalogue passes
# it in): a ValueError naming the key, or the kind's name unknown.
BaseFields = Callable[[str, Mapping[str, Any]], Dict[str, Any]]


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    site: str
    kind: str
    path: Path
    packages: tuple = ()
    no_index: bool = False  # offline by default (the site's pip config names the wheelhouse)
    # The kind's own keys of [base] (a uenv's name and view, the modules to load).
    base: Mapping[str, Any] = field(default_factory=dict, compare=False)


def recipe_dirs(env: Mapping[str, str]) -> list:
    """$KERNELCTL_RECIPE_PATH first (a site's own recipes), then the user's
    (~/.config/kernelctl/recipes), then the built-in ones: the first NAME.toml wins."""
    extra = [Path(p) for p in env.get("KERNELCTL_RECIPE_PATH", "").split(os.pathsep) if p]
    config = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", "~"), ".config")
    here = Path(__file__).resolve().parent
    # Installed wheels carry recipes/ inside the package; a source checkout beside it.
    return extra + [Path(config) / "kernelctl" / "recipes", here / "recipes",
                    here.parent / "recipes"]


def recipe_files(env: Mapping[str, str]) -> dict:
    """{name: the file that wins}, in search order."""
    seen: dict = {}
    for directory in recipe_dirs(env):
        for path in sorted(directory.glob("*.toml")) if os.path.isdir(directory) else ():
            seen.setdefault(path.stem, path)
    return seen


def load_recipe(path: Path, base_fields: BaseFields) -> Recipe:
    try:
        return parse(load_toml(path), path, base_fields)
    except (OSError, ValueError) as exc:
        raise KernelctlError(
            f"recipe {path} is invalid: {exc}",
            "Fix the file against docs/recipes.md, or remove it from KERNELCTL_RECIPE_PATH.",
        ) from exc


def parse(data: dict, path: Path, base_fields: BaseFields) -> Recipe:
    """A Recipe from a parsed file; a ValueError naming the key for anything wrong."""
    if get(data, "format", int, RECIPE_FORMAT) != RECIPE_FORMAT:
        raise ValueError(f"format {data['format']!r} is not {RECIPE_FORMAT}")
    name = get(data, "name", str)
    if name != path.stem:
        raise ValueError(f"name {name!r} differs from the file name {path.stem!r}")
    base = get(data, "base", dict)
    kind = get(base, "kind", str, key="base.kind")
    packages = strings(get(data, "packages", dict, {}), "default", "packages.default", [])
    pip = get(data, "pip", dict, {})
    return Recipe(name=name, description=get(data, "description", str, ""),
                  site=get(data, "site", str, ""), kind=kind, path=path,
                  packages=tuple(packages),
                  no_index=get(pip, "no_index", bool, False, key="pip.no_index"),
                  base=base_fields(kind, {k: v for k, v in base.items() if k != "kind"}))


def strings(data: Mapping[str, Any], name: str, key: str, default: Any = _REQUIRED) -> list:
    values = get(data, name, list, default, key=key)
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise ValueError(f"'{key}' must be a list of non-empty strings")
    return values


TYPE_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "a table",
              bool: "true or false"}


def get(data: Mapping[str, Any], name: str, kind: type, default: Any = _REQUIRED, key: str = "") -> Any:
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
