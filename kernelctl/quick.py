"""What kernelctl answers before loading its CLI framework: `list` (the hot path: shell
prompts, scripts and the panel's polling ask it often) and the top-level `--help`.

Each form is recognised exactly; anything else (another option, `--debug`, a typo) goes
to the CLI, which parses it in full. The answers are the CLI's own: the same api call and
renderer for `list`, and for `--help` the text the CLI printed, kept in the user's cache
under a key of kernelctl's version, the CLI module's file and the terminal's width (the
help is formatted to it), so a new version or a wider terminal writes it afresh.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

LIST_FORMS = {"--json", "--all", "-a"}


def answer(args: List[str]) -> Optional[int]:
    """The exit status when `args` is a form answered here (it has been answered), else
    None."""
    if args and args[0] == "list" and set(args[1:]) <= LIST_FORMS:
        return list_kernels(as_json="--json" in args, show_all=bool({"--all", "-a"} & set(args)))
    if args in (["--help"], ["-h"]):
        return cached_help()
    return None


def printable_output() -> None:
    """Names from disk may hold anything (undecodable bytes, lone surrogates): show them
    escaped rather than fail to print them."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def list_kernels(as_json: bool, show_all: bool) -> int:
    from kernelctl import api
    from kernelctl.errors import KernelctlError, as_user_error
    from kernelctl.render import Renderer

    printable_output()
    renderer = Renderer(as_json)
    recover_dead_runs()
    try:
        result = api.list_kernels(os.environ, show_all)
    except (KernelctlError, OSError, KeyboardInterrupt) as exc:
        error = as_user_error(exc)
        if error is None:
            raise
        renderer.error(error)
        return error.exit_code
    renderer.show(result)
    return result.exit_code


def recover_dead_runs() -> None:
    """A kernelctl run killed mid-change (SIGKILL) left a journal: what it had moved
    aside is put back before kernels are listed, so a kernel is never missing."""
    from kernelctl.errors import KernelctlError
    from kernelctl.paths import kernelctl_home

    home = kernelctl_home(os.environ)
    try:
        # transaction.LEFTOVERS, not imported: the usual case (no journal) costs one call.
        with os.scandir(home / "leftovers") as journals:
            if next(journals, None) is None:
                return
        from kernelctl.transaction import sweep_leftovers

        sweep_leftovers(home)
    except (OSError, KernelctlError):
        pass  # listing matters more; the next change sweeps again


def cached_help() -> Optional[int]:
    path = _help_cache()
    try:
        text = path.read_text(encoding="utf-8") if path else None
    except (OSError, UnicodeDecodeError):
        text = None
    if text:
        sys.stdout.write(text)
        return 0
    return None  # the CLI prints it, and keep_help keeps it


def keep_help(text: str) -> None:
    """Called by the CLI with the top-level help it printed."""
    path = _help_cache()
    if path is None or not text:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError:
        pass  # a read-only home: the help is formatted each time, as without a cache


def _help_cache() -> Optional[Path]:
    import shutil

    from kernelctl import __version__

    cli = Path(__file__).with_name("cli.py")
    try:
        stat = cli.stat()
    except OSError:
        return None
    width = shutil.get_terminal_size().columns
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache, "kernelctl", f"help-{__version__}-{stat.st_mtime_ns}-{stat.st_size}-"
                f"{width}.txt")
