"""A base kind written the way docs/architecture.md says, for tests/test_toy_kind.py.

A "toy image" is a directory with bin/python3 (a real interpreter), site/ (packages
the image puts on PYTHONPATH, as a uenv does) and toy.id (its build). A session "runs"
it when TOY_IMAGE names it. Everything here uses only what a kind module may use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from kernelctl import shell
from kernelctl.bases import Base
from kernelctl.bases.interpreters import checked_path, interpreter_layers
from kernelctl.bases.kind import BaseKind
from kernelctl.binding import Binding
from kernelctl.errors import BaseNotActive
from kernelctl.recipes import get

PREFIX = "toy:"


class ToyKind(BaseKind):
    detect_order = 5  # before every built-in kind
    takes_recipes = True

    def resolve(self, spec: str, env: Mapping[str, str]) -> Base:
        image = Path(spec[len(PREFIX):])
        if env.get("TOY_IMAGE") != str(image):
            raise BaseNotActive(f"the toy image {image} is not active in this session",
                                f"Run it: export TOY_IMAGE={image}")
        interpreter, python, base_env, layers = interpreter_layers(
            checked_path(str(image / "bin" / "python3")), env)
        site = str(image / "site")
        return Base(
            kind="toy", name="toy", label=PREFIX + str(image), python=python,
            interpreter=interpreter, base_env=base_env, layers=layers,
            pythonpath=(site,), shadow_roots=(str(image),),
            kernel_name="toy-" + image.name,
            launch_steps=f'[ "${{TOY_IMAGE-}}" = {shell.quote(str(image))} ] || base_here=no\n',
            binding_extra={"toy_id": (image / "toy.id").read_text().strip()})

    def detect(self, env: Mapping[str, str]) -> Optional[Tuple[Base, str]]:
        image = env.get("TOY_IMAGE")
        if not image:
            return None
        return self.resolve(PREFIX + image, env), f"the toy image {image} is active"

    def recipe_fields(self, table: Mapping[str, Any]) -> Dict[str, Any]:
        return {"image": get(table, "image", str, key="base.image")}

    def recipe_loads(self, recipe: Any) -> str:
        return f"toy image {recipe.base['image']}"

    def from_recipe(self, recipe: Any, env: Mapping[str, str]) -> Base:
        return self.resolve(PREFIX + recipe.base["image"], env)

    def unusable(self, recipe: Any, env: Mapping[str, str]) -> Optional[str]:
        if env.get("TOY_IMAGE") != recipe.base["image"]:
            return f"needs the toy image {recipe.base['image']} active"
        return None

    def mismatch(self, binding: Binding, session: Any) -> Optional[str]:
        image = binding.label[len(PREFIX):]
        if session.env.get("TOY_IMAGE") != image:
            return f"made for the toy image {image}, which this session does not run"
        return None

    def missing(self, binding: Binding) -> Optional[str]:
        image = Path(binding.label[len(PREFIX):])
        if not (image / "toy.id").is_file():
            return f"the toy image {image} is gone"
        return None

    def start_hint(self, binding: Binding) -> str:
        return f"Start JupyterLab with TOY_IMAGE={binding.label[len(PREFIX):]}."

    def unavailable_message(self, base: Base, rebuild: str) -> str:
        return f"kernelctl: this kernel needs the toy image {base.label}; {rebuild}"

    def job_steps(self, binding: Binding) -> str:
        return f"checks the toy image {binding.extra.get('toy_id')}"


KIND = ToyKind()


def make_image(root: Path, python: str, build: str = "build-1") -> Path:
    """A toy image: a real python, a package only the image provides, its build id."""
    (root / "bin").mkdir(parents=True)
    os.symlink(python, root / "bin" / "python3")
    (root / "site").mkdir()
    (root / "site" / "toyprovided.py").write_text("WHERE = 'the toy image'\n")
    (root / "toy.id").write_text(build + "\n")
    return root
