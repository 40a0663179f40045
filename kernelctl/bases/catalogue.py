"""The recipe catalogue as this session sees it (`kernelctl recipes list/show`): every
recipe file, valid or not, and whether each base kind can use it here. Recipes
themselves are a file format (kernelctl.recipes), which knows no kinds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from kernelctl.bases import kind_module
from kernelctl.errors import KernelctlError
from kernelctl.recipes import Recipe, load_recipe, recipe_dirs, recipe_files


@dataclass(frozen=True)
class RecipeEntry:
    """One recipe file as `kernelctl recipes` shows it: the recipe, or why it is invalid;
    and whether this session can use it, or why not."""

    name: str
    path: Path
    recipe: Optional[Recipe] = None
    error: str = ""
    unusable: str = ""

    def to_json(self) -> dict:
        recipe = self.recipe
        data = {"name": self.name, "path": str(self.path), "valid": recipe is not None,
                "error": self.error or None}
        if recipe is not None:
            data.update(site=recipe.site, kind=recipe.kind, description=recipe.description,
                        loads=recipe.loads, usable=not self.unusable,
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
            recipe = load_recipe(path)
        except KernelctlError as exc:
            entries.append(RecipeEntry(path.stem, path, error=exc.message))
            continue
        entries.append(RecipeEntry(recipe.name, path, recipe,
                                   unusable=kind_module(recipe.kind).unusable(recipe, env) or ""))
    missing = sorted(set(names) - {entry.name for entry in entries})
    if missing:
        raise KernelctlError(f"no recipe named '{missing[0]}'",
                             "`kernelctl recipes list` shows them; recipes are read from "
                             + ", ".join(str(d) for d in recipe_dirs(env)))
    return entries
