"""`--base container`: the Python of the container image this session runs in (CSCS's
container engine with an NGC PyTorch image, Apptainer, Podman).

The kernel is bound to the image as far as the session reveals it (kernelctl.containers)
and is flagged, and explains itself, when opened in a session running another image.
The image's Python is used like `system`'s: a venv holding the image's packages is
layered on.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple

from kernelctl import shell
from kernelctl.bases import Base
from kernelctl.bases.kind import BaseKind
from kernelctl.binding import Binding
from kernelctl.containers import session_container
from kernelctl.errors import KernelctlError
from kernelctl.recipes import get

if TYPE_CHECKING:
    from kernelctl.inventory import Session
    from kernelctl.recipes import Recipe

SPEC = "container"


class ContainerKind(BaseKind):
    detect_order = 20
    takes_recipes = True

    def resolve(self, spec: str, env: Mapping[str, str]) -> Base:
        from kernelctl.bases.python import python_base, system_python

        container = session_container(env)
        if container is None:
            raise KernelctlError(
                "this session does not run in a container (no APPTAINER_CONTAINER, "
                "NVIDIA_*_VERSION, /run/.containerenv or /.dockerenv)",
                "Start JupyterLab in the container image (CSCS: the spawner's container "
                "option or an EDF), or use --base system for this session's Python.")
        base = python_base(SPEC, system_python(env), env)
        return replace(
            base, kind="container", name=container.engine, label=container.label,
            version=container.version or None, digest=container.digest or None,
            kernel_name="container-" + (container.image.rsplit("/", 1)[-1].rsplit(".", 1)[0]
                                        or container.engine) + (
                f"-{container.version}" if container.version else ""),
            launch_steps=launch_steps(container.markers) + base.launch_steps,
            binding_extra={**base.binding_extra,
                           "container": container.image or container.engine},
        )

    def detect(self, env: Mapping[str, str]) -> Optional[Tuple[Base, str]]:
        container = session_container(env)
        if container is None or not container.image:
            return None
        return (self.resolve(SPEC, env),
                f"this session runs in the container {container.label}")

    def recipe_fields(self, table: Mapping[str, Any]) -> Dict[str, Any]:
        return {"image": get(table, "image", str, key="base.image")}

    def recipe_loads(self, recipe: "Recipe") -> str:
        return f"container image {recipe.base['image']}"

    def from_recipe(self, recipe: "Recipe", env: Mapping[str, str]) -> Base:
        """The session's container, which must run the recipe's image."""
        why = self.unusable(recipe, env)
        if why:
            from kernelctl.errors import BaseNotActive

            raise BaseNotActive(
                f"the recipe {recipe.name} {why}",
                f"Start JupyterLab in {recipe.base['image']} (CSCS: the spawner's container "
                "option or an EDF naming it), then run this again.")
        return self.resolve(SPEC, env)

    def unusable(self, recipe: "Recipe", env: Mapping[str, str]) -> Optional[str]:
        here = session_container(env)
        if here is None or not (here.image or "").startswith(recipe.base["image"]):
            return (f"needs a session in the container image {recipe.base['image']}; this "
                    f"one runs in {here.label if here else 'no container'}")
        return None

    def start_hint(self, binding: Binding) -> str:
        made_in = binding.extra.get("container") or binding.label
        return (f"Start JupyterLab in the container {made_in} to use it (the site's "
                "container option in the Hub's spawner form).")

    def unavailable_message(self, base: Base, rebuild: str) -> str:
        return (f"kernelctl: this kernel was made in the container {base.label}, and this "
                f"session runs in another one (or in none). Start JupyterLab in "
                f"{base.label}, or rebuild the kernel for this session's container "
                f"({rebuild} --base container).")

    def exact_spec(self, binding: Binding) -> str:
        return SPEC

    def mismatch(self, binding: Binding, session: "Session") -> Optional[str]:
        """Why this session's container is not the kernel's image."""
        here = session.container
        image = binding.extra.get("container")
        made_in = binding.label or image
        if here is None:
            return f"made in the container {made_in}, but this session runs in no container"
        if (here.image or here.engine) != image or (binding.version or "") != here.version:
            return f"made in the container {made_in}, but this session runs in {here.label}"
        if binding.digest and here.digest and binding.digest != here.digest:
            return (f"made in the container {made_in} (build {binding.digest}), but this "
                    f"session's image is build {here.digest}: the image was replaced")
        return None

    def job_steps(self, binding: Binding) -> str:
        return f"checks that it runs in the container {binding.label}"


KIND = ContainerKind()


def launch_steps(markers: tuple) -> str:
    """The image check: each identifying variable must hold the value it held."""
    return "".join(f'[ "${{{shell.name(name, "the container marker")}-}}" = '
                   f'{shell.quote(value)} ] || base_here=no\n' for name, value in markers)
