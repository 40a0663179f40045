"""What a CSCS uenv session looks like from the inside (see docs/create.md)."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from kernelctl.errors import CommandFailed, KernelctlError
from kernelctl.textfiles import parse_json

LABEL_RE = re.compile(
    r"^(?P<name>[A-Za-z0-9_.+-]+)(?:/(?P<version>[A-Za-z0-9_.+-]+))?"
    r"(?::(?P<tag>[A-Za-z0-9_.+-]+))?(?:@(?P<system>[A-Za-z0-9_.+-]+))?"
    r"(?:%(?P<uarch>[A-Za-z0-9_.+-]+))?$"
)
DIGEST_RE = re.compile(r"/images/([0-9a-f]{16,64})/[^/]*$")


@dataclass(frozen=True)
class UenvLabel:
    name: str
    version: Optional[str] = None
    tag: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> "UenvLabel":
        match = LABEL_RE.match(text)
        if not match:
            raise KernelctlError(
                f"'{text}' is not a uenv label",
                "Write it as NAME[/VERSION][:TAG], e.g. uenv:prgenv-gnu/24.11:v1.",
            )
        return cls(match["name"], match["version"], match["tag"])

    def __str__(self) -> str:
        text = self.name
        if self.version:
            text += "/" + self.version
        if self.tag:
            text += ":" + self.tag
        return text


MAX_META_BYTES = 16 << 20  # env.json lists a view's variables: kilobytes, not gigabytes


@dataclass(frozen=True)
class MountedUenv:
    """One image of UENV_MOUNT_LIST, with what UENV_VIEW and meta/env.json say of it."""

    name: str
    mount: Path
    squashfs: str
    digest: Optional[str]
    active_views: tuple
    meta: dict
    meta_problem: str = ""  # why meta/env.json could not be used, said where it matters

    def views(self) -> dict:
        views = self.meta.get("views")
        return views if isinstance(views, dict) else {}

    def view(self, view: str) -> dict:
        found = self.views().get(view)
        return found if isinstance(found, dict) else {}

    def view_root(self, view: str) -> Optional[Path]:
        root = self.view(view).get("root")
        return Path(root) if isinstance(root, str) and root else None

    def _view_values(self, view: str, kind: str) -> dict:
        """env.values.list or env.values.scalar of a view; {} where meta/env.json has
        something else (a damaged or foreign file must not break list or create)."""
        node: object = self.view(view)
        for key in ("env", "values", kind):
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}

    def view_list_var(self, view: str, var: str) -> list:
        """The value a view gives a path-list variable, applying its ops in order."""
        ops = self._view_values(view, "list").get(var)
        value: list = []
        for op in ops if isinstance(ops, list) else ():
            if not isinstance(op, dict):
                continue
            paths = op.get("value")
            paths = [p for p in paths if isinstance(p, str) and p] if isinstance(paths, list) else []
            kind = op.get("op")
            if kind == "prepend":
                value = paths + value
            elif kind == "append":
                value = value + paths
            elif kind == "set":
                value = paths
            elif kind == "unset":
                value = []
        return value

    def view_scalar(self, view: str, var: str) -> Optional[str]:
        value = self._view_values(view, "scalar").get(var)
        return value if isinstance(value, str) and value else None

    def view_value(self, view: str, var: str) -> Optional[str]:
        """What the view sets `var` to, as a scalar or a joined path list."""
        return self.view_scalar(view, var) or ":".join(self.view_list_var(view, var)) or None

    def contains(self, path: Path) -> bool:
        return path == self.mount or self.mount in path.parents


def session_uenvs(env: Mapping[str, str]) -> list:
    """The uenvs this session has mounted; empty unless UENV_MOUNT_LIST and UENV_VIEW are set."""
    mount_list, view_list = env.get("UENV_MOUNT_LIST"), env.get("UENV_VIEW")
    if not mount_list or not view_list:
        return []
    views_by_mount: dict = {}
    names_by_mount: dict = {}
    for entry in filter(None, view_list.split(",")):
        mount, _, rest = entry.partition(":")
        name, _, view = rest.partition(":")
        names_by_mount[mount] = name
        views_by_mount.setdefault(mount, []).append(view)
    mounted = []
    for entry in filter(None, mount_list.split(",")):
        squashfs, _, mount = entry.rpartition(":")
        meta, problem = _read_meta(Path(mount))
        own_name = meta.get("name") if isinstance(meta.get("name"), str) else None
        digest = DIGEST_RE.search(squashfs)
        mounted.append(MountedUenv(
            name=own_name or names_by_mount.get(mount) or Path(mount).name, mount=Path(mount), squashfs=squashfs,
            digest=digest.group(1) if digest else None,
            active_views=tuple(views_by_mount.get(mount, ())), meta=meta, meta_problem=problem,
        ))
    return mounted


def _read_meta(mount: Path) -> tuple:
    """(meta/env.json of a mounted image, why it is unusable): ({}, "") when the image
    has none; a damaged file never breaks list or create, but is named where needed."""
    path = mount / "meta" / "env.json"
    try:
        if os.path.getsize(path) > MAX_META_BYTES:
            return {}, f"{path} is too big to be a uenv's env.json"
        meta = parse_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, ""
    except (OSError, ValueError) as exc:
        return {}, f"{path} cannot be read: {exc}"[:300]
    if not isinstance(meta, dict):
        return {}, f"{path} is not a JSON object (it is {type(meta).__name__})"
    if not isinstance(meta.get("views"), dict):
        return meta, f"{path} has no 'views' object, so no view's Python can be found"
    return meta, ""


def inspect(ref: str, env: Mapping[str, str]) -> dict:
    """`uenv image inspect --json REF`, or {} where the uenv command is absent or fails."""
    uenv = shutil.which("uenv", path=env.get("PATH"))
    if not uenv:
        return {}
    from kernelctl.proc import run  # subprocess costs start-up time `list` need not pay

    try:
        info = json.loads(run([uenv, "image", "inspect", "--json", ref], env=env,
                              what="uenv image inspect", timeout=60))
    except (CommandFailed, ValueError, RecursionError):
        return {}
    # Only string fields are used; anything else is as good as absent.
    return {k: v for k, v in info.items() if isinstance(v, str)} if isinstance(info, dict) else {}
