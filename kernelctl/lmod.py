"""The site's Lmod, driven without a login shell: find it, load modules, read the result.

`$LMOD_CMD python load ...` prints Python statements that set os.environ; kernelctl
reads them as data (ast), never executes them.
"""

from __future__ import annotations

import ast
import difflib
import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

from kernelctl.errors import CommandFailed, KernelctlError
from kernelctl.paths import path_list
from kernelctl.proc import run

# Where sites install Lmod, when the shell that runs kernelctl has no LMOD_CMD
# (a JupyterLab terminal is often not a login shell).
USUAL_PLACES = (
    "/usr/share/lmod/lmod/libexec/lmod",  # Debian, Ubuntu
    "/usr/share/lmod/*/libexec/lmod",
    "/opt/lmod/lmod/libexec/lmod",
    "/opt/apps/lmod/lmod/libexec/lmod",
    "/usr/local/lmod/lmod/libexec/lmod",
    "/cvmfs/soft.computecanada.ca/custom/software/lmod/lmod/libexec/lmod",  # Alliance
)
MODULE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-/]*$")
LOAD_TIMEOUT = 120.0


@dataclass(frozen=True)
class Loaded:
    """What loading modules did: the new values of the variables it changed (None for
    one it unset), each requested module with the version Lmod resolved, and the PATH
    and PYTHONPATH entries the modules themselves put there."""

    changes: Dict[str, Optional[str]]
    pinned: tuple  # "python/3.11.5", in the order requested
    modulefiles: tuple  # the pinned modules' files
    added_path: tuple = ()
    added_pythonpath: tuple = ()
    purged: Dict[str, Optional[str]] = field(default_factory=dict)  # the terminal's, unloaded

    def apply(self, env: Mapping[str, str]) -> dict:
        return _applied(env, self.changes)


def _applied(env: Mapping[str, str], changes: Mapping[str, Optional[str]]) -> dict:
    applied = dict(env)
    for key, value in changes.items():
        if value is None:
            applied.pop(key, None)
        else:
            applied[key] = value
    return applied


def find_lmod(env: Mapping[str, str]) -> Path:
    candidates = [env.get("LMOD_CMD", "")]
    if env.get("LMOD_DIR"):
        candidates.append(os.path.join(env["LMOD_DIR"], "lmod"))
    for pattern in USUAL_PLACES:
        candidates += sorted(glob.glob(pattern))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return Path(candidate)
    raise KernelctlError(
        "Lmod is not available here: no LMOD_CMD, and no lmod at the usual places",
        "Run kernelctl where `module` works (a login node's or JupyterLab's terminal), "
        "or set LMOD_CMD to the path of Lmod's libexec/lmod.")


def check_module_names(names: Sequence[str]) -> None:
    if not names:
        raise KernelctlError("no module named after 'module:'",
                             "Write --base module:NAME[/VERSION][,NAME...], e.g. "
                             "module:python/3.11,scipy-stack")
    for name in names:
        if not MODULE_NAME_RE.match(name) or "//" in name or name.endswith("/"):
            raise KernelctlError(f"'{name}' is not a module name",
                                 "Module names are like python, python/3.11 or "
                                 "gcc/12.3; separate several with commas.")


def load(lmod: Path, names: Sequence[str], env: Mapping[str, str]) -> Loaded:
    """Load `names` the way the kernel will when it starts: from a clean slate (what the
    terminal had loaded is purged first; a module already loaded would otherwise add
    nothing, and hide what it provides)."""
    clean, purged = dict(env), {}
    if env.get("LOADEDMODULES"):
        out = run([lmod, "python", "--force", "purge"], env=env, cwd=Path("/"),
                  timeout=LOAD_TIMEOUT, what="module --force purge")
        purged = parse_python_output(out)[0]
        clean = _applied(env, purged)
    try:
        out = run([lmod, "python", "load", *names], env=clean, cwd=Path("/"),
                  timeout=LOAD_TIMEOUT, what=f"module load {' '.join(names)}")
    except CommandFailed as exc:
        raise _load_error(lmod, names, clean, exc) from exc
    changes, status = parse_python_output(out)
    if status is False:
        raise _load_error(lmod, names, clean, None)
    final = _applied(clean, changes)
    pinned, modulefiles = _pin(names, path_list(final.get("LOADEDMODULES")),
                               path_list(final.get("_LMFILES_")))
    return Loaded(
        changes={key: final.get(key) for key in {*env, *final} if env.get(key) != final.get(key)},
        pinned=pinned, modulefiles=modulefiles, added_path=_added(clean, final, "PATH"),
        added_pythonpath=_added(clean, final, "PYTHONPATH"), purged=purged)


def _pin(names: Sequence[str], loaded: list, files: list) -> Tuple[tuple, tuple]:
    """Each requested name as the module Lmod loaded for it, and that module's file
    (LOADEDMODULES and _LMFILES_ run in parallel)."""
    pinned, modulefiles = [], []
    for name in names:
        index = find_loaded(name, loaded)
        if index is None:
            raise KernelctlError(f"Lmod loaded {', '.join(loaded) or 'nothing'}, which does "
                                 f"not include {name}",
                                 f"Check with `module load {name}; module list`.")
        pinned.append(loaded[index])
        if index < len(files):
            modulefiles.append(files[index])
    return tuple(pinned), tuple(modulefiles)


def _added(before: Mapping[str, str], after: Mapping[str, str], variable: str) -> tuple:
    had = set(path_list(before.get(variable)))
    return tuple(entry for entry in path_list(after.get(variable)) if entry not in had)


def find_loaded(name: str, loaded: Sequence[str]) -> Optional[int]:
    """Where the module `name` (NAME, NAME/VERSION, or a version's start: python/3.11
    loads python/3.11.5, Lmod's extended default) is in LOADEDMODULES; the last match,
    as a later load of the same name replaces an earlier one."""
    matches = [i for i, full in enumerate(loaded)
               if full == name or full.startswith((name + "/", name + "."))]
    return matches[-1] if matches else None


def parse_python_output(text: str) -> Tuple[dict, Optional[bool]]:
    """({variable: value or None}, _mlstatus) from Lmod's `python` shell output."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise KernelctlError(f"Lmod's output could not be read: {exc}",
                             "Run again with --debug and report it.") from exc
    changes: Dict[str, Optional[str]] = {}
    status = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            key = _environ_key(target)
            if key is not None and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, str):
                changes[key] = node.value.value
            elif isinstance(target, ast.Name) and target.id == "_mlstatus" \
                    and isinstance(node.value, ast.Constant):
                status = bool(node.value.value)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                key = _environ_key(target)
                if key is not None:
                    changes[key] = None
    return changes, status


def _environ_key(node: ast.AST) -> Optional[str]:
    """"PATH" for the expression os.environ["PATH"], else None."""
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
            and node.value.attr == "environ":
        index = node.slice  # Python >= 3.9: the expression itself
        if isinstance(index, ast.Constant) and isinstance(index.value, str):
            return index.value
    return None


def _load_error(lmod: Path, names: Sequence[str], env: Mapping[str, str],
                failure: Optional[CommandFailed]) -> KernelctlError:
    known = every_module(lmod, env)
    unknown = [name for name in names if known and find_loaded(name, known) is None]
    if unknown:
        choices = sorted(set(known) | {full.rsplit("/", 1)[0] for full in known})
        close = difflib.get_close_matches(unknown[0], choices, n=5, cutoff=0.5)
        hint = (f"Modules with close names: {', '.join(close)}." if close else
                "`module spider` lists every module there is.")
        return KernelctlError(f"Lmod does not know the module {unknown[0]} "
                              f"(MODULEPATH={env.get('MODULEPATH', '')})", hint)
    said = failure.message.strip() if failure else "Lmod refused"
    return KernelctlError(
        f"the modules {', '.join(names)} could not be loaded: {said}",
        "A module may need another loaded first (e.g. StdEnv or a compiler): "
        f"`module spider {names[-1]}` says which; name it first in --base module:...")


def every_module(lmod: Path, env: Mapping[str, str]) -> list:
    """Every module Lmod knows (NAME/VERSION), hierarchies included (`module spider`)."""
    try:
        out = run([lmod, "python", "-t", "spider"], env=env, cwd=Path("/"),
                  timeout=LOAD_TIMEOUT, what="module spider", with_stderr=True)
    except KernelctlError:
        return []
    names = []
    for line in out.splitlines():
        line = re.sub(r"\s*\(.*\)$", "", line.strip())  # "(default)", "(L)"
        if MODULE_NAME_RE.match(line) and not line.endswith("/"):
            names.append(line)
    return names
