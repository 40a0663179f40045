"""The one place kernelctl writes to the terminal: any command's result (as text or as
its versioned JSON document), progress, notices and errors."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Optional, TextIO

from kernelctl.errors import KernelctlError
from kernelctl.redact import redact

if TYPE_CHECKING:  # results load with the command that makes them
    from kernelctl.results import Result

JSON_FORMAT_VERSION = 1  # docs/json.md, docs/schema/kernelctl-v1.json


def document(result: "Result") -> dict:
    """A result's JSON document, as printed and as the panel serves it: an object that
    starts with the format version."""
    return {"version": JSON_FORMAT_VERSION, **result.to_json()}


class Renderer:
    def __init__(self, as_json: bool = False, out: Optional[TextIO] = None,
                 err: Optional[TextIO] = None) -> None:
        self.as_json = as_json
        self.out, self.err = out or sys.stdout, err or sys.stderr
        # Progress is for people watching a terminal; pipes and CI logs stay quiet, unless
        # a front end that shows it asks (the panel's server runs commands so).
        self._show_progress = (self.err.isatty() and not as_json
                               or os.environ.get("KERNELCTL_PROGRESS") == "1")
        self._started = time.monotonic()

    def show(self, result: "Result") -> None:
        """The command's answer: its JSON document (compact: the C encoder; pretty-print
        with jq), or its text."""
        if self.as_json:
            self.out.write(json.dumps(document(result)) + "\n")
        else:
            self.out.write(result.to_text())

    def preview(self, result: "Result") -> None:
        """A step on the way (a plan before the question, each kernel rebuilt): text
        only, since --json prints one document, the answer."""
        if not self.as_json:
            self.out.write(result.to_text())

    def progress(self, step: str) -> None:
        if self._show_progress:
            self.err.write(f"[{time.monotonic() - self._started:5.1f}s] {redact(step)}...\n")
            self.err.flush()

    def notice(self, line: str) -> None:
        """One line the user must see (not progress): on stderr, JSON or not."""
        self.err.write(f"kernelctl: {redact(line)}\n")
        self.err.flush()

    def declined(self, what: str) -> None:
        self.err.write(f"kernelctl: {what}.\n")

    def confirm(self, question: str) -> bool:
        if not sys.stdin.isatty():
            raise KernelctlError("refusing to ask for confirmation: stdin is not a terminal",
                                 "Pass --yes to go ahead, or --dry-run to see what would go.")
        self.err.write(f"{question} [y/N] ")
        self.err.flush()
        return sys.stdin.readline().strip().lower() in ("y", "yes")

    def error(self, error: KernelctlError) -> None:
        # Every message passes the one redaction: pip's configuration, a URL the user
        # typed, a command line quoted in an error may all carry a token.
        self.err.write(f"kernelctl: error: {redact(error.message)}\n")
        if error.hint:
            self.err.write(f"  hint: {redact(error.hint)}\n")
