"""Which container image this session runs in, as far as the session reveals it.

Apptainer/Singularity set APPTAINER_CONTAINER / SINGULARITY_CONTAINER (the image) and
APPTAINER_NAME; NVIDIA's NGC images set NVIDIA_<FRAMEWORK>_VERSION (the release) and
NVIDIA_BUILD_ID; Podman leaves /run/.containerenv (image name and id), Docker /.dockerenv.
Cheap (environment and two files): `list` asks it for every session.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping, Optional

NGC_VERSION_RE = re.compile(r"^NVIDIA_([A-Z0-9]+)_VERSION$")
PODMAN_MARKER = "/run/.containerenv"
DOCKER_MARKER = "/.dockerenv"


@dataclass(frozen=True)
class Container:
    engine: str  # apptainer, singularity, podman, docker, or "ngc" when only NGC's vars say
    image: str  # a path (.sif), a name (nvcr.io/nvidia/pytorch), or "" when unknown
    version: str = ""
    digest: str = ""
    # (variable, value) pairs that identify the image: a kernel made here checks them
    # when it starts (its /bin/sh launcher cannot read anything richer).
    markers: tuple = ()

    @property
    def label(self) -> str:
        shown = self.image or self.engine
        return f"{shown}:{self.version}" if self.version else shown


def session_container(env: Mapping[str, str], root: str = "/") -> Optional[Container]:
    markers = []
    image, engine = "", ""
    for variable, name in (("APPTAINER_CONTAINER", "apptainer"),
                           ("SINGULARITY_CONTAINER", "singularity")):
        if env.get(variable):
            image, engine = env[variable], name
            markers.append((variable, env[variable]))
            break
    version, digest = "", ""
    for key in sorted(env):
        framework = NGC_VERSION_RE.match(key)
        if framework and env[key] and framework.group(1) not in ("DRIVER", "REQUIRE"):
            image = image or f"nvcr.io/nvidia/{framework.group(1).lower()}"
            engine = engine or "ngc"
            version = env[key]
            markers.append((key, env[key]))
            break
    if env.get("NVIDIA_BUILD_ID"):
        digest = env["NVIDIA_BUILD_ID"]
        markers.append(("NVIDIA_BUILD_ID", digest))
    if not engine:
        podman = _containerenv(os.path.join(root, PODMAN_MARKER.lstrip("/")))
        if podman is not None:
            engine, image, digest = "podman", podman.get("image", ""), podman.get("imageid", "")
        elif os.path.exists(os.path.join(root, DOCKER_MARKER.lstrip("/"))):
            engine = "docker"
    if not engine:
        return None
    return Container(engine=engine, image=image, version=version, digest=digest,
                     markers=tuple(markers))


def _containerenv(path: str) -> Optional[dict]:
    """/run/.containerenv: `key="value"` lines (Podman)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(65536)
    except OSError:
        return None
    return {key: value.strip().strip('"') for key, sep, value in
            (line.partition("=") for line in text.splitlines()) if sep}
