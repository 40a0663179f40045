"""Installing packages into a kernel's venv with uv, when it is there (pip is the fallback).

uv is an order of magnitude faster than pip, but it does not count what a base outside
the venv already has (`--system-site-packages`): a plain `uv pip install` would copy
the base's numpy into every venv, shadowing the site's build. So kernelctl resolves
once with `uv pip compile`, preferring the versions the base has (uv keeps the pins of
an existing output file), and installs only what the base lacks or has at another
version, plus every package the user named (which must land in the venv and win).

uv does not read pip's configuration, which sites rely on (an offline wheelhouse, a
mirror): kernelctl reads it with `pip config list` and passes it on (`pip_settings`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Mapping, Optional, Sequence

from kernelctl.errors import KernelctlError
from kernelctl.proc import run
from kernelctl.venvs import Venv

CHOICES = ("auto", "pip", "uv")
# uv's words for a distribution that no index or wheelhouse has.
NOT_FOUND_RE = re.compile(r"Because (\S+) was not found in the (?:package registry|provided "
                          r"package locations)|No solution found when resolving dependencies:"
                          r"\s*[^A-Za-z]*Because there is no version of (\S+?)[=<>!~ ]")

# Every distribution the venv's Python sees: its own, the base's, a view's PYTHONPATH.
SEEN = """
import importlib.metadata as m, json
print(json.dumps({d.metadata["Name"]: d.version for d in m.distributions()
                  if d.metadata["Name"]}))
"""


def find_uv(env: Mapping[str, str]) -> Optional[str]:
    """The uv binary: $KERNELCTL_UV, the `uv` package beside kernelctl, or uv on PATH."""
    if "KERNELCTL_UV" in env:
        given = env["KERNELCTL_UV"]
        return given if given and os.access(given, os.X_OK) else None
    try:
        import uv  # type: ignore[import-not-found,unused-ignore]

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv", path=env.get("PATH"))


def choose(installer: str, env: Mapping[str, str]) -> Optional[str]:
    """The uv binary to install with, or None for pip."""
    if installer not in CHOICES:
        raise KernelctlError(f"unknown installer '{installer}'", "Use auto, pip or uv.")
    if installer == "pip":
        return None
    uv = find_uv(env)
    if installer == "uv" and uv is None:
        raise KernelctlError(
            "--installer uv, but uv is not installed where kernelctl can find it",
            "Install it beside kernelctl (pip install 'kernelctl[fast]', or uv on PATH), or "
            "use --installer pip.")
    return uv


def pip_settings(python: Path, env: Mapping[str, str]) -> list:
    """pip's index, wheelhouse, offline and constraint settings (config files and
    PIP_* variables, as `pip config list` reports them) as uv options."""
    try:
        listed = run([str(python), "-m", "pip", "config", "list"], env=env,
                     what="pip config list", timeout=60)
    except KernelctlError:
        return []
    # pip's precedence: environment variables, then site, user and global files.
    rank = {":env:": 0, "site": 1, "user": 2, "global": 3}
    best: dict = {}
    for line in listed.splitlines():
        key, sep, value = line.partition("=")
        if not sep or "." not in key:
            continue
        level, name = key.split(".", 1)
        # Multi-line values (find-links = one per line) are listed with "\n" escapes.
        value = value.strip().strip("'\"").replace("\\n", " ").replace("\\t", " ")
        order = rank.get(level, 4)
        if name not in best or order <= best[name][0]:  # a later file overrides
            best[name] = (order, value)
    values = {name: value for name, (_, value) in best.items()}
    options = []
    if values.get("no-index", "").lower() in ("1", "true", "yes", "on"):
        options.append("--no-index")
    if values.get("index-url"):
        options += ["--index-url", values["index-url"]]
    for flag, name in (("--extra-index-url", "extra-index-url"), ("--find-links", "find-links"),
                       ("--constraint", "constraint")):
        for value in values.get(name, "").split():
            options += [flag, value]
    return options


def uv_install(uv: str, venv: Venv, requested: Sequence[str], requirement_files: Sequence[Path],
               options: Sequence[str], env: Mapping[str, str], also: Sequence[str] = (),
               compile_bytecode: bool = False) -> list:
    """Resolve once, preferring the base's versions; install what the base lacks and all
    that was named. Returns what was installed (name==version)."""
    from packaging.utils import canonicalize_name

    listed = json.loads(run([str(venv.python), "-c", SEEN], env=env, what="listing packages",
                            timeout=120))
    seen: dict = {str(canonicalize_name(name)): version for name, version in listed.items()}
    named = {_name(r) for r in [*requested, *also]}
    settings = [*pip_settings(venv.python, env), *options]
    with tempfile.TemporaryDirectory(prefix="kernelctl-uv-") as work:
        wanted = Path(work, "requirements.in")
        wanted.write_text("".join(f"{r}\n" for r in [*requested, *also])
                          + "".join(f"-r {os.path.abspath(f)}\n" for f in requirement_files))
        resolved = Path(work, "requirements.txt")
        # Pins in the output file are uv's preferences: the base's versions win unless a
        # request needs another one.
        resolved.write_text("".join(f"{name}=={version}\n" for name, version in seen.items()
                                    if name not in named))
        uv_env = {**env, "VIRTUAL_ENV": str(venv.root)}
        try:
            run([uv, "pip", "compile", str(wanted), "-o", str(resolved), "--python",
                 str(venv.python), "--quiet", "--no-header", "--no-annotate", *settings],
                env=uv_env, what="uv pip compile", hint=_HINT)
        except KernelctlError as exc:
            missing = NOT_FOUND_RE.search(exc.message)
            if missing is None:
                raise
            from kernelctl.environment import not_found

            name = _name(missing.group(1) or missing.group(2))
            asked = next((r for r in [*requested, *also] if _name(r) == name), name)
            raise not_found(asked, venv, options, env, tool="uv") from exc
        pins = [line.strip() for line in resolved.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith(("#", "-"))]
        needed = [pin for pin in pins if _name(pin) in named or "==" not in pin
                  or seen.get(_name(pin)) != pin.split("==", 1)[1].split(";")[0].strip()]
        if needed:
            run([uv, "pip", "install", "--python", str(venv.python), "--no-deps",
                 *[arg for name in sorted(named) for arg in ("--reinstall-package", name)],
                 *(["--compile-bytecode"] if compile_bytecode else []),
                 *settings, *needed], env=uv_env, what="uv pip install", hint=_HINT)
    return needed


_HINT = ("Check the package names and versions. Offline (compute nodes): use --no-index "
         "--find-links DIR with a directory of wheels, or --installer pip.")


def _name(requirement: str) -> str:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        return str(canonicalize_name(Requirement(requirement).name))
    except InvalidRequirement:
        return str(canonicalize_name(requirement.split("==")[0].strip()))
