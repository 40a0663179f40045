"""Installing packages into a kernel's venv with uv, when it is there (pip is the fallback).

uv installs an order of magnitude faster than pip, but its resolver does not count what
a base outside the venv already has (`--system-site-packages`): a plain `uv pip install
pandas` copies the base's numpy into the venv, shadowing the site's build, and the
base's versions cannot even be preferred when the wheelhouse lacks them. So pip
resolves (`pip install --dry-run --report`, which sees the base's packages as installed)
and uv installs exactly that list with --no-deps, plus every package the user named
(which must land in the venv and win).

uv does not read pip's configuration, which sites rely on (an offline wheelhouse, a
mirror): kernelctl reads it with `pip config list` and passes it on (`pip_settings`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping, Optional, Sequence

from kernelctl.errors import KernelctlError
from kernelctl.proc import run
from kernelctl.redact import has_credentials
from kernelctl.venvs import Venv, requirement_name

CHOICES = ("auto", "pip", "uv")


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
               options: Sequence[str], env: Mapping[str, str], also: Sequence[str] = ()) -> list:
    """pip resolves (`--dry-run --report`: it counts what the base has, which uv cannot),
    uv installs that list plus every package named, without resolving again. Returns
    what uv installed."""
    named = [*requested, *also]
    with tempfile.TemporaryDirectory(prefix="kernelctl-uv-") as work:
        report = Path(work, "report.json")
        run([str(venv.python), "-m", "pip", "install", "--dry-run", "--quiet", "--report",
             str(report), *options, *named,
             *[arg for path in requirement_files for arg in ("-r", str(path))]],
            env=env, what="pip install --dry-run (resolving)", hint=_HINT)
        items = json.loads(report.read_text()).get("install", [])
        pins = [_pin(item) for item in items]
        resolved = {requirement_name(pin) for pin in pins}
        # Named packages the base already satisfies are not in pip's answer: they must
        # land in the venv all the same, so that its copy wins.
        needed = pins + [r for r in named if requirement_name(r) not in resolved]
        if needed:
            # In a file (the work dir is 0700), not argv: a URL may carry a token, and
            # every user of the node can read a process's argv.
            listed_needed = Path(work, "needed.txt")
            listed_needed.write_text("".join(f"{r}\n" for r in needed))
            settings, hidden = hide_credentials([*pip_settings(venv.python, env), *options],
                                                UV_VARIABLES, env)
            run([uv, "pip", "install", "--python", str(venv.python), "--no-deps",
                 *[arg for r in named for arg in ("--reinstall-package", requirement_name(r))],
                 *settings, "-r", str(listed_needed)],
                env={**env, **hidden, "VIRTUAL_ENV": str(venv.root)}, what="uv pip install",
                hint=_HINT)
    return needed


# Where pip and uv read an option from the environment (value separator): what carries
# a credential goes there, never on a command line that `ps` shows every user.
PIP_VARIABLES = {"--index-url": ("PIP_INDEX_URL", " "),
                 "--extra-index-url": ("PIP_EXTRA_INDEX_URL", " "),
                 "--find-links": ("PIP_FIND_LINKS", " ")}
UV_VARIABLES = {"--index-url": ("UV_INDEX_URL", " "),
                "--extra-index-url": ("UV_EXTRA_INDEX_URL", " "),
                "--find-links": ("UV_FIND_LINKS", ",")}


def hide_credentials(options: Sequence[str], variables: Mapping[str, tuple],
                     env: Mapping[str, str]) -> tuple:
    """(the options without those whose value holds a credential, the variables that
    carry those instead, added to what `env` already sets)."""
    kept: list = []
    hidden: dict = {}
    i = 0
    while i < len(options):
        flag = options[i]
        if flag in variables and i + 1 < len(options) and has_credentials(options[i + 1]):
            variable, separator = variables[flag]
            before = hidden.get(variable) or env.get(variable)
            hidden[variable] = f"{before}{separator}{options[i + 1]}" if before else options[i + 1]
            i += 2
            continue
        kept.append(flag)
        i += 1
    return kept, hidden


def _pin(item: dict) -> str:
    """One entry of pip's installation report as a requirement uv installs as is."""
    metadata, download = item.get("metadata", {}), item.get("download_info", {})
    if item.get("is_direct") and download.get("url"):
        return f"{metadata['name']} @ {download['url']}"
    return f"{metadata['name']}=={metadata['version']}"


_HINT = ("Check the package names and versions. Offline (compute nodes): use --no-index "
         "--find-links DIR with a directory of wheels, or --installer pip.")
