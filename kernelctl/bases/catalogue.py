"""The recipes as this session sees them: each file read with its kind's own [base]
keys, found by name for `--base NAME`, and, for `kernelctl recipes list/show`, whether
each can be used here. Recipes themselves are a file format (kernelctl.recipes), which
knows no kinds."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

from kernelctl.bases.kind import KINDS, kind
from kernelctl.errors import KernelctlError, NotFound
from kernelctl.recipes import Recipe, load_recipe, recipe_dirs, recipe_files

log = logging.getLogger("kernelctl")


def base_fields(kind_name: str, table: Mapping[str, Any]) -> Dict[str, Any]:
    """The [base] keys of a recipe of `kind_name`, as that kind checks them."""
    if kind_name not in KINDS or not kind(kind_name).takes_recipes:
        named = tuple(name for name in KINDS if kind(name).takes_recipes)
        raise ValueError(f"base.kind {kind_name!r} is not one of {named}")
    return kind(kind_name).recipe_fields(table)


def load(path: Path) -> Recipe:
    return load_recipe(path, base_fields)


def find_recipe(name: str, env: Mapping[str, str]) -> Optional[Recipe]:
    """The recipe `--base NAME` means: the first NAME.toml on the recipe path."""
    path = recipe_files(env).get(name)
    return load(path) if path is not None else None


def all_recipes(env: Mapping[str, str]) -> list:
    """Every valid recipe; one broken file is logged and skipped, never fatal here."""
    found = []
    for path in recipe_files(env).values():
        try:
            found.append(load(path))
        except KernelctlError as exc:
            log.warning("%s", exc.message)
    return found


def recipe_where(env: Mapping[str, str], kind_name: str, **wanted: Any) -> Optional[Recipe]:
    """The first valid recipe of a kind whose [base] has these values (the recipe of a
    mounted image, say)."""
    for recipe in all_recipes(env):
        if recipe.kind == kind_name and all(recipe.base.get(k) == v for k, v in wanted.items()):
            return recipe
    return None


@dataclass(frozen=True)
class RecipeEntry:
    """One recipe file as `kernelctl recipes` shows it: the recipe, or why it is invalid;
    and whether this session can use it, or why not."""

    name: str
    path: Path
    recipe: Optional[Recipe] = None
    error: str = ""
    unusable: str = ""
    loads: str = ""  # what it loads, in its kind's words

    def to_json(self) -> dict:
        recipe = self.recipe
        data = {"name": self.name, "path": str(self.path), "valid": recipe is not None,
                "error": self.error or None}
        if recipe is not None:
            data.update(site=recipe.site, kind=recipe.kind, description=recipe.description,
                        loads=self.loads, usable=not self.unusable,
                        why_not=self.unusable or None)
        return data


def catalogue(env: Mapping[str, str], names: Sequence[str] = ()) -> list:
    """Every recipe file (the first of each name), valid or not, with whether this
    session can use it; only `names` when given."""
    entries = []
    for path in recipe_files(env).values():
        if names and path.stem not in names:
            continue
        try:
            recipe = load(path)
        except KernelctlError as exc:
            entries.append(RecipeEntry(path.stem, path, error=exc.message))
            continue
        its_kind = kind(recipe.kind)
        entries.append(RecipeEntry(recipe.name, path, recipe,
                                   unusable=its_kind.unusable(recipe, env) or "",
                                   loads=its_kind.recipe_loads(recipe)))
    missing = sorted(set(names) - {entry.name for entry in entries})
    if missing:
        raise NotFound(f"no recipe named '{missing[0]}'",
                             "`kernelctl recipes list` shows them; recipes are read from "
                             + ", ".join(str(d) for d in recipe_dirs(env)))
    return entries
