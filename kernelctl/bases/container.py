"""`--base container`: the Python of the container image this session runs in (CSCS's
container engine with an NGC PyTorch image, Apptainer, Podman).

The kernel is bound to the image as far as the session reveals it (kernelctl.containers)
and is flagged, and explains itself, when opened in a session running another image.
The image's Python is used like `system`'s: a venv holding the image's packages is
layered on.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Mapping, Optional

from kernelctl import shell
from kernelctl.bases import Base
from kernelctl.binding import Binding, PythonBinding
from kernelctl.containers import session_container
from kernelctl.errors import KernelctlError

if TYPE_CHECKING:
    from kernelctl.inventory import Session
    from kernelctl.recipes import Recipe

SPEC = "container"


def claims(spec: str) -> bool:
    return spec == SPEC


def resolve(spec: str, env: Mapping[str, str]) -> Base:
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
        binding_extra={**base.binding_extra, "container": container.image or container.engine},
    )


def from_recipe(recipe: "Recipe", env: Mapping[str, str]) -> Base:
    """The session's container, which must run the recipe's image."""
    here = session_container(env)
    if here is None or not (here.image or "").startswith(recipe.image):
        from kernelctl.errors import BaseNotActive

        raise BaseNotActive(
            f"the recipe {recipe.name} needs a session in the container image {recipe.image}"
            f"; this session runs in {here.label if here else 'no container'}",
            f"Start JupyterLab in {recipe.image} (CSCS: the spawner's container option "
            "or an EDF naming it), then run this again.")
    return resolve(SPEC, env)


def unusable(recipe: "Recipe", env: Mapping[str, str]) -> Optional[str]:
    here = session_container(env)
    if here is None or not (here.image or "").startswith(recipe.image):
        return (f"needs a session in the container image {recipe.image}; this one runs in "
                f"{here.label if here else 'no container'}")
    return None


def missing(binding: Binding) -> Optional[str]:
    return None


def start_hint(binding: Binding) -> str:
    made_in = getattr(binding, "container", None) or binding.label
    return (f"Start JupyterLab in the container {made_in} to use it (the site's container "
            "option in the Hub's spawner form).")


def unavailable_message(base: Base, rebuild: str) -> str:
    return (f"kernelctl: this kernel was made in the container {base.label}, and this "
            f"session runs in another one (or in none). Start JupyterLab in {base.label}, "
            f"or rebuild the kernel for this session's container ({rebuild} --base container).")


def exact_spec(binding: Binding) -> str:
    return "container"


def mismatch(binding: Binding, session: "Session") -> Optional[str]:
    """Why this session's container is not the kernel's image."""
    if not isinstance(binding, PythonBinding) or binding.kind != "container":
        return None
    here = session.container
    made_in = binding.label or binding.container
    if here is None:
        return f"made in the container {made_in}, but this session runs in no container"
    if (here.image or here.engine) != binding.container or \
            (binding.version or "") != here.version:
        return f"made in the container {made_in}, but this session runs in {here.label}"
    if binding.digest and here.digest and binding.digest != here.digest:
        return (f"made in the container {made_in} (build {binding.digest}), but this "
                f"session's image is build {here.digest}: the image was replaced")
    return None


def launch_steps(markers: tuple) -> str:
    """The image check: each identifying variable must hold the value it held."""
    return "".join(f'[ "${{{shell.name(name, "the container marker")}-}}" = '
                   f'{shell.quote(value)} ] || base_here=no\n' for name, value in markers)
