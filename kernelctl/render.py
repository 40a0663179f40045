"""The one place kernelctl writes to the terminal: results as text or JSON, progress, errors."""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from kernelctl.errors import KernelctlError
from kernelctl.model import KernelInfo


class Renderer:
    def __init__(self, as_json: bool = False, out: TextIO = sys.stdout,
                 err: TextIO = sys.stderr) -> None:
        self.as_json = as_json
        self.out, self.err = out, err
        # Progress is for people watching a terminal; pipes and CI logs stay quiet.
        self._show_progress = err.isatty() and not as_json
        self._started = time.monotonic()

    def progress(self, step: str) -> None:
        if self._show_progress:
            self.err.write(f"[{time.monotonic() - self._started:5.1f}s] {step}...\n")
            self.err.flush()

    def created(self, kernel: KernelInfo) -> None:
        if self.as_json:
            self._json(kernel.to_json())
            return
        venv = kernel.venv
        self.out.write(
            f"Created kernel '{kernel.name}': {kernel.display_name}\n"
            f"  environment: {venv}\n"
            f"  kernelspec:  {kernel.resource_dir / 'kernel.json'}\n"
            f"\n"
            f"Use it: in JupyterLab pick \"{kernel.display_name}\" in the Launcher or in\n"
            f"Kernel > Change Kernel (reload the page if it is not listed yet).\n"
            f"Add packages: `%pip install PKG` in a notebook on this kernel, or in a terminal\n"
            f"  source {venv}/bin/activate && pip install PKG\n"
            f"Its packages win over the base image's copies, in the kernel and in scripts\n"
            f"run with {venv}/bin/python (terminal, srun, batch jobs).\n"
        )

    def error(self, error: KernelctlError) -> None:
        self.err.write(f"kernelctl: error: {error.message}\n")
        if error.hint:
            self.err.write(f"  hint: {error.hint}\n")

    def _json(self, data: object) -> None:
        self.out.write(json.dumps(data, indent=2) + "\n")
