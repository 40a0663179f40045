"""The one place kernelctl writes to the terminal: results as text or JSON, progress, errors."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Optional, TextIO

from kernelctl.binding import PythonBinding
from kernelctl.errors import KernelctlError
from kernelctl.model import JSON_FORMAT_VERSION, KernelInfo, Status
from kernelctl.redact import redact

if TYPE_CHECKING:  # the results it renders; their modules load only when used
    from kernelctl.bases.catalogue import RecipeEntry
    from kernelctl.engines import Engines
    from kernelctl.rebuild import Rebuilt
    from kernelctl.submit import Submission

COLUMNS = (21, 26, 20, 9)  # fits an 80-column terminal with separators


class Renderer:
    def __init__(self, as_json: bool = False, out: Optional[TextIO] = None,
                 err: Optional[TextIO] = None) -> None:
        self.as_json = as_json
        self.out, self.err = out or sys.stdout, err or sys.stderr
        # Progress is for people watching a terminal; pipes and CI logs stay quiet.
        self._show_progress = self.err.isatty() and not as_json
        self._started = time.monotonic()

    def progress(self, step: str) -> None:
        if self._show_progress:
            self.err.write(f"[{time.monotonic() - self._started:5.1f}s] {redact(step)}...\n")
            self.err.flush()

    def notice(self, line: str) -> None:
        """One line the user must see (not progress): on stderr, JSON or not."""
        self.err.write(f"kernelctl: {redact(line)}\n")
        self.err.flush()

    def created(self, kernel: KernelInfo) -> None:
        if self.as_json:
            self._json(kernel.to_json())
            return
        venv = kernel.venv
        self.out.write(
            f"Created kernel '{kernel.name}': {kernel.display_name}\n"
            f"  built on:    {_built_on(kernel)}\n"
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

    def kernels(self, kernels: list) -> None:
        if self.as_json:
            self._json({"kernels": [k.to_json() for k in kernels]})
            return
        if not kernels:
            self.out.write("No Jupyter kernels found.\n")
            return
        self.out.write(_row("NAME", "DISPLAY NAME", "BASE", "STATUS"))
        for kernel in kernels:
            status = kernel.status if kernel.visible else f"{kernel.status}*"
            self.out.write(_row(kernel.name, kernel.display_name, _base_label(kernel), status))
        self._list_footer(kernels)

    def _list_footer(self, kernels: list) -> None:
        if any(not k.visible for k in kernels):
            self.out.write("* not offered by Jupyter (shadowed, or an entry Jupyter skips)\n")
        troubled = [k for k in kernels if k.status in (Status.BROKEN, Status.MISMATCH)]
        if troubled:
            self.out.write(f"\n{len(troubled)} kernel(s) need attention: "
                           "`kernelctl show NAME` says why;\n"
                           "`kernelctl remove --broken` removes broken kernelctl kernels.\n")

    def recipes(self, entries: list) -> None:
        if self.as_json:
            self._json({"recipes": [entry.to_json() for entry in entries]})
            return
        self.out.write(_recipe_row("NAME", "SITE", "KIND", "USABLE HERE", "LOADS"))
        for entry in entries:
            if entry.recipe is None:
                self.out.write(_recipe_row(entry.name, "?", "?", "invalid", entry.error))
                continue
            recipe = entry.recipe
            usable = "no" if entry.unusable else "yes"
            self.out.write(_recipe_row(recipe.name, recipe.site, recipe.kind, usable,
                                       entry.loads))
        if any(entry.unusable or entry.recipe is None for entry in entries):
            self.out.write("\n`kernelctl recipes show NAME` says why a recipe cannot be "
                           "used here.\n")

    def recipe_detail(self, entry: "RecipeEntry") -> None:
        if self.as_json:
            self._json(entry.to_json())
            return
        recipe = entry.recipe
        if recipe is None:
            self.out.write(f"recipe {entry.name} ({entry.path}) is invalid: {entry.error}\n")
            return
        lines = [("name", recipe.name), ("site", recipe.site or "-"), ("kind", recipe.kind),
                 ("description", recipe.description or "-"), ("loads", entry.loads),
                 ("packages", ", ".join(recipe.packages) or "-"),
                 ("offline", "yes (--no-index: the site's wheelhouse)" if recipe.no_index
                  else "no"),
                 ("file", str(entry.path)),
                 ("usable here", f"no: {entry.unusable}" if entry.unusable else "yes"),
                 ("use it", f"kernelctl create --base {recipe.name}")]
        self.out.write("".join(f"{key + ':':13}{value}\n" for key, value in lines))

    def kernel_detail(self, kernel: KernelInfo, record: Optional[dict]) -> None:
        if self.as_json:
            self._json({**kernel.to_json(), "spec": kernel.spec.to_dict() if kernel.spec else None,
                        "record": _redacted(record)})
            return
        lines = [("name", kernel.name), ("display name", kernel.display_name),
                 ("status", kernel.status), ("language", kernel.language),
                 ("kernelspec", str(kernel.resource_dir)),
                 ("made by", "kernelctl" if kernel.managed else "another tool"),
                 ("base", _base_label(kernel)), ("environment", str(kernel.venv or "-"))]
        if not kernel.visible:
            lines.append(("offered", "no (see problems)"))
        self.out.write("".join(f"{key + ':':14} {value}\n" for key, value in lines))
        for problem in kernel.problems:
            self.out.write(f"problem:       {problem}\n")
        if record:
            packages = redact(", ".join(record.get("packages", {}).get("requested", []))) or "-"
            self.out.write(f"packages:      {packages}\n")
        if kernel.spec is not None:
            self.out.write("kernel.json:\n" + json.dumps(kernel.spec.to_dict(), indent=2) + "\n")

    def removal_plan(self, removals: list, dry_run: bool) -> None:
        if self.as_json:
            if dry_run or not removals:
                self._json({"removed": [], "would_remove": _removals_json(removals)})
            return
        if not removals:
            self.out.write("Nothing to remove.\n")
            return
        self.out.write("Would remove:\n" if dry_run else "Will remove:\n")
        for removal in removals:
            self.out.write(f"  kernel {removal.kernel.name}: {removal.kernel.resource_dir}\n")
            if removal.venv:
                self.out.write(f"    and its environment {removal.venv}\n")
            if removal.venv_kept:
                self.out.write(f"    {removal.venv_kept}\n")

    def declined(self, what: str) -> None:
        self.err.write(f"kernelctl: {what}.\n")

    def confirm(self, question: str) -> bool:
        if not sys.stdin.isatty():
            raise KernelctlError("refusing to ask for confirmation: stdin is not a terminal",
                                 "Pass --yes to go ahead, or --dry-run to see what would go.")
        self.err.write(f"{question} [y/N] ")
        self.err.flush()
        return sys.stdin.readline().strip().lower() in ("y", "yes")

    def removed(self, removals: list) -> None:
        if self.as_json:
            self._json({"removed": _removals_json(removals), "would_remove": []})
            return
        self.out.write(f"Removed {len(removals)} kernel(s).\n")

    def submitted(self, submission: "Submission", dry_run: bool) -> None:
        if self.as_json:
            data = submission.to_json()
            self._json({**data, "script_text": submission.text} if dry_run else data)
            return
        if dry_run:
            for line in submission.notices:
                self.notice(line)
            self.out.write(submission.text)
            return
        shown = submission.to_json()
        self.out.write(f"Submitted job {shown['job_id']} (kernel '{submission.kernel}'); "
                       f"its script: {submission.script}\n")
        for what in ("log", "output"):
            if shown[what]:
                self.out.write(f"  {what}: {shown[what]}\n")
        if submission.exit_code is not None:
            self.out.write(f"Job {shown['job_id']} ended with exit code {submission.exit_code}.\n")

    def engines_started(self, engines: "Engines") -> None:
        if self.as_json:
            self._json(engines.to_json())
            return
        self.out.write(
            f"{engines.n} ipyparallel engines run in the environment of the kernel "
            f"'{engines.kernel}' (started by: {' '.join(engines.srun)}).\n"
            "In the notebook:\n"
            f"  import ipyparallel as ipp\n  rc = ipp.Client(profile=\"{engines.profile}\")\n"
            f"Stop them: kernelctl engines {engines.kernel} --stop\n")

    def engines_stopped(self, kernel: str, count: Optional[int]) -> None:
        if self.as_json:
            self._json({"kernel": kernel, "stopped": count})
            return
        self.out.write(f"Stopped the engines of the kernel '{kernel}' and their controller.\n")

    def rebuilt_one(self, rebuilt: "Rebuilt") -> None:
        if self.as_json:
            return
        kernel = rebuilt.kernel
        label = kernel.base.label if kernel.base else "its base"
        self.out.write(f"Rebuilt the kernel '{kernel.name}' on {label} (was "
                       f"{rebuilt.base_before}); its environment is now {kernel.venv}.\n")
        if rebuilt.packages:
            self.out.write(f"  reinstalled: {redact(', '.join(rebuilt.packages))}\n")
        if rebuilt.from_base:
            self.out.write(f"  from the base: {redact(', '.join(rebuilt.from_base))}\n")

    def rebuilt(self, done: list) -> None:
        if self.as_json:
            self._json({"rebuilt": [r.kernel.to_json() for r in done]})
            return
        self.out.write("Notebooks keep their kernel; restart running ones to use the new "
                       "environment.\n")

    def installed(self, kernel: KernelInfo, what: list) -> None:
        if self.as_json:
            self._json(kernel.to_json())
            return
        self.out.write(f"Installed {redact(', '.join(what))} into {kernel.venv} "
                       f"(kernel '{kernel.name}').\n"
                       "Restart the kernel in JupyterLab to import the new versions.\n")

    def julia_created(self, kernels: list) -> None:
        if self.as_json:
            self._json({"kernels": [k.to_json() for k in kernels]})
            return
        for kernel in kernels:
            self.out.write(f"Created kernel '{kernel.name}': {kernel.display_name}\n"
                           f"  kernelspec: {kernel.resource_dir / 'kernel.json'}\n")
        self.out.write(
            "\nUse it: pick it in JupyterLab's Launcher (reload the page if it is not listed).\n"
            "Add packages from a notebook with `import Pkg; Pkg.add(\"PKG\")`; the kernel\n"
            "activates the notebook's project (--project=@.) when there is one.\n")

    def doctor_report(self, results: list) -> None:
        if self.as_json:
            self._json({"ok": not any(r.status == "fail" for r in results),
                        "checks": [r.to_json() for r in results]})
            return
        # Quiet when healthy: only what needs attention, then one summary line.
        for result in (r for r in results if r.status != "ok"):
            about = f" [{result.kernel}]" if result.kernel else ""
            self.out.write(f"{result.status.upper():4}  {result.id}{about}: {result.message}\n")
            if result.hint:
                self.out.write(f"      hint: {result.hint}\n")
        counts = {s: sum(r.status == s for r in results) for s in ("ok", "warn", "fail")}
        if counts["warn"] == counts["fail"] == 0:
            self.out.write(f"All {len(results)} checks passed.\n")
        else:
            self.out.write(f"{len(results)} checks: {counts['ok']} ok, {counts['warn']} "
                           f"warn, {counts['fail']} fail.\n")

    def fix_plan(self, fixes: list, dry_run: bool = False) -> None:
        if self.as_json:
            return
        if not fixes:
            self.out.write("Nothing to repair safely.\n")
            return
        heading = "Would repair (--dry-run: nothing is changed):" if dry_run else "Repairs:"
        self.out.write(heading + "\n" + "".join(f"  - {f.description}\n" for f in fixes))

    def error(self, error: KernelctlError) -> None:
        # Every message passes the one redaction: pip's configuration, a URL the user
        # typed, a command line quoted in an error may all carry a token.
        self.err.write(f"kernelctl: error: {redact(error.message)}\n")
        if error.hint:
            self.err.write(f"  hint: {redact(error.hint)}\n")

    def _json(self, data: dict) -> None:
        """Every JSON document is an object that starts with the format version."""
        # Compact: the C encoder (indent= falls back to pure Python). Pretty-print with jq.
        self.out.write(json.dumps({"version": JSON_FORMAT_VERSION, **data}) + "\n")


def _row(*cells: str) -> str:
    return " ".join(_fit(cell, width) for cell, width in zip(cells, COLUMNS)).rstrip() + "\n"


def _removals_json(removals: list) -> list:
    return [{"name": r.kernel.name, "resource_dir": str(r.kernel.resource_dir),
             "venv": str(r.venv) if r.venv else None, "venv_kept": r.venv_kept or None}
            for r in removals]


def _recipe_row(name: str, site: str, kind: str, usable: str, loads: str) -> str:
    return (f"{_fit(name, 16)} {_fit(site, 9)} {_fit(kind, 9)} {_fit(usable, 11)} "
            f"{loads}\n")


def _fit(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def _built_on(kernel: KernelInfo) -> str:
    """The one line that says what the kernel is built on, layers included."""
    base = kernel.base
    return base.describe() if isinstance(base, PythonBinding) else _base_label(kernel)


def _base_label(kernel: KernelInfo) -> str:
    if not kernel.base:
        return "-"
    return kernel.base.label or kernel.base.name or "?"


def _redacted(record: Optional[dict]) -> Optional[dict]:
    """A record as stored, with credentials that older kernelctl versions kept removed."""
    if not record:
        return record
    packages = record.get("packages", {})
    requested = [redact(p) for p in packages.get("requested", [])]
    return {**record, "packages": {**packages, "requested": requested}}
