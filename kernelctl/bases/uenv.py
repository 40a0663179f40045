"""`--base uenv:NAME[/VERSION][:TAG]` and uenv recipes: the Python of a CSCS uenv view.

The session must have the uenv mounted (UENV_MOUNT_LIST, UENV_VIEW); kernelctl never
mounts one. A kernel made here needs that image again (`mismatch`).
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple

from kernelctl import uenv
from kernelctl.bases import Base, checked_probe
from kernelctl.bases.kind import BaseKind
from kernelctl.binding import Binding
from kernelctl.errors import BaseNotActive, KernelctlError
from kernelctl.paths import is_within, path_list
from kernelctl.recipes import get

if TYPE_CHECKING:
    from kernelctl.inventory import Session
    from kernelctl.recipes import Recipe

PREFIX = "uenv:"


class UenvKind(BaseKind):
    detect_order = 10
    takes_recipes = True

    def resolve(self, spec: str, env: Mapping[str, str]) -> Base:
        from kernelctl.bases.catalogue import recipe_where

        label = uenv.UenvLabel.parse(spec[len(PREFIX):])
        return _uenv_base(label, recipe_where(env, "uenv", uenv=label.name), env)

    def detect(self, env: Mapping[str, str]) -> Optional[Tuple[Base, str]]:
        """A mounted uenv with a view that has python3."""
        for mounted in uenv.session_uenvs(env):
            for view in mounted.active_views:
                root = mounted.view_root(view)
                if root is not None and os.access(root / "bin" / "python3", os.X_OK):
                    return (self.resolve(PREFIX + mounted.name, env),
                            f"the uenv {mounted.name} is mounted with the view {view}, "
                            "which has python3")
        return None

    def recipe_fields(self, table: Mapping[str, Any]) -> Dict[str, Any]:
        return {"uenv": get(table, "uenv", str, key="base.uenv"),
                "view": get(table, "view", str, "default", key="base.view"),
                "python": get(table, "python", str, "bin/python3", key="base.python")}

    def recipe_loads(self, recipe: "Recipe") -> str:
        return f"uenv {recipe.base['uenv']}, view {recipe.base['view']}"

    def from_recipe(self, recipe: "Recipe", env: Mapping[str, str]) -> Base:
        return _uenv_base(uenv.UenvLabel(recipe.base["uenv"]), recipe, env)

    def unusable(self, recipe: "Recipe", env: Mapping[str, str]) -> Optional[str]:
        """Why this session cannot use a uenv recipe (`kernelctl recipes`), or None."""
        label = uenv.UenvLabel(recipe.base["uenv"])
        try:
            _pick_view(label, recipe, _mounted_uenv(label, recipe, env))
        except BaseNotActive as exc:
            return exc.message
        return None

    def start_hint(self, binding: Binding) -> str:
        view = f" and the view {binding.view}" if binding.view else ""
        label = binding.label or binding.image or binding.name
        return (f"Start JupyterLab with the uenv {label}{view} to use it (Hub spawner form, "
                "Advanced options); or make a kernel for this session with kernelctl create.")

    def unavailable_message(self, base: Base, rebuild: str) -> str:
        return (f"kernelctl: this kernel was made for the uenv {base.label} (view "
                f"{base.view}), which this session does not have. Start JupyterLab with the "
                f"uenv {base.label} and the view {base.view}, or rebuild the kernel for this "
                f"session's image, with its packages ({rebuild}).")

    def exact_spec(self, binding: Binding) -> str:
        return PREFIX + binding.label

    def bring_up(self, binding: Binding, env: Mapping[str, str]) -> Optional[list]:
        """`uenv run --view=VIEW LABEL --`: the image mounted for one command, as CSCS
        documents it for a plain shell (a login node)."""
        if not binding.image:
            return None
        label = binding.label or binding.image
        mounted = uenv.session_uenvs(env)
        if mounted:
            raise KernelctlError(
                f"this kernel needs the uenv {label}, and this shell has another uenv "
                f"({', '.join(u.name for u in mounted)}) mounted: uenv run cannot start "
                "inside a uenv session", f"Run it from a shell without a uenv (exit the "
                f"uenv session), or start one with {label}: uenv start --view="
                f"{binding.view or 'default'} {label}")
        tool = shutil.which("uenv", path=env.get("PATH"))
        if tool is None:
            raise KernelctlError(
                f"this kernel needs the uenv {label}, which is not mounted here, and there "
                "is no uenv command to bring it up", "Run it on a system with uenv (a CSCS "
                f"login or compute node), or in a session started with the uenv {label}.")
        return [tool, "run", f"--view={binding.view or 'default'}", label, "--"]

    def current_spec(self, binding: Binding) -> str:
        """The same uenv at the version this session has."""
        return PREFIX + binding.name

    def mismatch(self, binding: Binding, session: "Session") -> Optional[str]:
        """Why the uenv a kernel needs is not among this session's, or None when it is
        (or the kernel needs none). Any kind of kernel may need one: Python and Julia
        alike (bases.mismatch asks for every kernel with an image)."""
        if not binding.image:
            return None
        uenvs = session.uenvs
        label = binding.label or binding.image
        mounted = next((u for u in uenvs if u.name == binding.image), None)
        if not uenvs:
            return f"made for the uenv {label}, but no uenv is mounted in this session"
        if mounted is None:
            have = ", ".join(u.name for u in uenvs)
            return f"made for the uenv {label}, but this session has {have}"
        digest = binding.digest
        if digest and mounted.digest and digest != mounted.digest:
            return (f"made for the uenv {label} (image {digest[:12]}), but the mounted "
                    f"{mounted.name} is image {mounted.digest[:12]}: the image was replaced")
        if binding.mount and binding.mount != str(mounted.mount):
            return f"made for {label} mounted at {binding.mount}, not at {mounted.mount}"
        return None


KIND = UenvKind()


def _uenv_base(label: uenv.UenvLabel, recipe: Optional["Recipe"],
               env: Mapping[str, str]) -> Base:
    mounted = _mounted_uenv(label, recipe, env)
    image = uenv.inspect(mounted.digest or mounted.name, env)
    _check_version(label, image, recipe, mounted)
    view = _pick_view(label, recipe, mounted)
    root = mounted.view_root(view) or mounted.mount
    python = root / (recipe.base["python"] if recipe else "bin/python3")
    if not os.access(python, os.X_OK) and mounted.meta_problem:
        raise KernelctlError(f"the uenv {mounted.name} cannot be used: {mounted.meta_problem}",
                             "The image is damaged or not a uenv: ask its maintainers, or "
                             "start the session with another one.")
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
        kind="uenv", name=mounted.name, image=mounted.name, label=str(uenv.UenvLabel(mounted.name, version, tag)),
        python=str(python), interpreter=checked_probe(python, env), version=version,
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


def _mounted_uenv(label: uenv.UenvLabel, recipe: Optional["Recipe"],
                  env: Mapping[str, str]) -> uenv.MountedUenv:
    view = recipe.base["view"] if recipe else "default"
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


def _check_version(label: uenv.UenvLabel, image: dict, recipe: Optional["Recipe"],
                   mounted: uenv.MountedUenv) -> None:
    for part in ("version", "tag"):
        wanted, have = getattr(label, part), image.get(part)
        if wanted and have and wanted != have:
            view = recipe.base["view"] if recipe else (mounted.active_views or ("default",))[0]
            raise BaseNotActive(
                f"the mounted {mounted.name} is {part} {have}, not {wanted}",
                _start_hint(label, view),
            )


def _pick_view(label: uenv.UenvLabel, recipe: Optional["Recipe"],
               mounted: uenv.MountedUenv) -> str:
    if recipe:
        if recipe.base["view"] in mounted.active_views:
            return recipe.base["view"]
        raise BaseNotActive(
            f"{mounted.name} is mounted with the view(s) "
            f"{', '.join(mounted.active_views) or 'none'}, not '{recipe.base['view']}'",
            _start_hint(label, recipe.base["view"]),
        )
    for view in mounted.active_views:
        root = mounted.view_root(view)
        if root and os.path.exists(root / "bin" / "python3"):
            return view
    if mounted.active_views:
        return mounted.active_views[0]
    raise BaseNotActive(f"{mounted.name} is mounted without an active view",
                        _start_hint(label, "default"))
