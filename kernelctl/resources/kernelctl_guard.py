"""Written by kernelctl into this virtual environment; it needs nothing of kernelctl.

A base image (a CSCS uenv view, Lmod modules) puts its Python packages on PYTHONPATH,
and Python puts PYTHONPATH ahead of this environment's site-packages, so the image's
copy of a package would win over the one installed here. This module, imported from
kernelctl_guard.pth at start-up, moves this site-packages just ahead of the first
PYTHONPATH entry that belongs to the base (under BASE_ROOTS, or any site-packages or
dist-packages directory). The user's own PYTHONPATH entries stay in front.
"""
import os
import sys

BASE_ROOTS = ()  # the base image's mount points, filled in by kernelctl


def _normal(entry: str) -> str:
    return os.path.normcase(os.path.normpath(os.path.abspath(entry)))


# String annotations: read by mypy only, never evaluated at every interpreter start.
def _belongs_to_base(entry: str, roots: "tuple | None" = None) -> bool:
    if os.path.basename(entry) in ("site-packages", "dist-packages"):
        return True
    roots = BASE_ROOTS if roots is None else roots
    return any(entry == root or entry.startswith(root + os.sep) for root in roots)


def _guard() -> None:
    pythonpath = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    from_pythonpath = {_normal(entry) for entry in pythonpath if entry}
    if not from_pythonpath:
        return
    here = _normal(os.path.dirname(__file__))
    entries = [_normal(entry) if entry else entry for entry in sys.path]
    if here not in entries:
        return
    mine = entries.index(here)
    for index, entry in enumerate(entries[:mine]):
        if entry in from_pythonpath and _belongs_to_base(entry):
            sys.path.insert(index, sys.path.pop(mine))
            return


# Runs at start-up in the venv (imported by kernelctl_guard.pth); kernelctl's doctor
# imports this file as kernelctl.resources.kernelctl_guard only for its rule.
if __name__ == "kernelctl_guard":
    _guard()
