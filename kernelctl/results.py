"""What commands answer: typed results, each of which is its own JSON document (the
versioned format of docs/json.md, `version` added by whoever prints or serves it) and
its own text. The CLI's renderer prints them; the JupyterLab panel's server serves the
same `to_json()`: no front end computes anything of its own.

A command over several kernels (remove, rebuild) answers for each: `status` is "ok",
"partial" (some done, some failed) or "failed", and `failed` names each failure with
its message and hint, so what was done is never lost in a later error.

Plain classes, not dataclasses: `list` imports this module on its hot path, and each
dataclass costs about a millisecond to define.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Callable, Iterable, List, Optional, Sequence, Tuple, TypeVar

from kernelctl.binding import PythonBinding
from kernelctl.errors import Interrupted, KernelctlError, as_user_error
from kernelctl.model import KernelInfo, Status
from kernelctl.redact import redact

if TYPE_CHECKING:  # the items a result holds; their modules are commands
    from kernelctl.bases.catalogue import RecipeEntry
    from kernelctl.doctor.report import CheckResult, Fix
    from kernelctl.engines import Engines
    from kernelctl.rebuild import Rebuilt
    from kernelctl.remove import Removal
    from kernelctl.submit import Submission

COLUMNS = (21, 26, 20, 9)
T = TypeVar("T")
R = TypeVar("R")  # fits an 80-column terminal with separators


class Result:
    """A command's answer. `exit_code` is what the CLI exits with after printing it."""

    exit_code = 0
    # Its document's schema: $defs/SCHEMA in docs/schema/kernelctl-v1.json.
    schema = ""

    def to_json(self) -> dict:
        raise NotImplementedError

    def to_text(self) -> str:
        raise NotImplementedError


class Failure:
    """One item a command over several could not do, and why."""

    def __init__(self, name: str, error: KernelctlError) -> None:
        self.name, self.error = name, error

    def to_json(self) -> dict:
        return {"name": self.name, "message": redact(self.error.message),
                "hint": redact(self.error.hint)}


class Several(Result):
    """A command over several kernels: what it did, and a Failure for each it could not."""

    failed: Sequence[Failure]

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return 1 if self.failed else 0

    def outcome(self, done: int) -> dict:
        return {"status": "ok" if not self.failed else "partial" if done else "failed",
                "failed": [failure.to_json() for failure in self.failed]}


def attempt_each(items: Iterable[T], action: Callable[[T], R], name_of: Callable[[T], str],
                 done_word: str, failure: Callable[[Failure], None] = lambda f: None
                 ) -> Tuple[List[R], List[Failure]]:
    """`action` on each item: a user error fails that item only (a Failure, which
    `failure` hears of at once) and the others go on; an interruption stops them all,
    and its message names the items already done."""
    done: List[R] = []
    done_names: List[str] = []
    failed: List[Failure] = []
    for item in items:
        try:
            done.append(action(item))
            done_names.append(name_of(item))
        except Interrupted as stop:
            if not done:
                raise
            raise Interrupted(f"{stop.message} ({name_of(item)}); already {done_word}: "
                              f"{', '.join(done_names)}", signum=stop.signum) from stop
        except (KernelctlError, OSError) as exc:
            error = as_user_error(exc)
            if error is None:
                raise
            failed.append(Failure(name_of(item), error))
            failure(failed[-1])
    return done, failed


# Kernels --------------------------------------------------------------------

class Created(Result):
    """create and adopt: the new kernel."""

    schema = "kernel"

    def __init__(self, kernel: KernelInfo) -> None:
        self.kernel = kernel

    def to_json(self) -> dict:
        return self.kernel.to_json()

    def to_text(self) -> str:
        kernel, venv = self.kernel, self.kernel.venv
        return (
            f"Created kernel '{kernel.name}': {kernel.display_name}\n"
            f"  built on:    {built_on(kernel)}\n"
            f"  environment: {venv}\n"
            f"  kernelspec:  {kernel.resource_dir / 'kernel.json'}\n"
            f"\n"
            f"Use it: in JupyterLab pick \"{kernel.display_name}\" in the Launcher or in\n"
            f"Kernel > Change Kernel (reload the page if it is not listed yet).\n"
            f"Add packages: `%pip install PKG` in a notebook on this kernel, or in a terminal\n"
            f"  source {venv}/bin/activate && pip install PKG\n"
            f"Its packages win over the base image's copies, in the kernel and in scripts\n"
            f"run with {venv}/bin/python (terminal, srun, batch jobs).\n")


class Installed(Result):
    schema = "kernel"

    def __init__(self, kernel: KernelInfo, what: tuple) -> None:
        self.kernel = kernel
        self.what = what

    def to_json(self) -> dict:
        return self.kernel.to_json()

    def to_text(self) -> str:
        return (f"Installed {redact(', '.join(self.what))} into {self.kernel.venv} "
                f"(kernel '{self.kernel.name}').\n"
                "Restart the kernel in JupyterLab to import the new versions.\n")


class Kernels(Result):
    """list: every kernel, with its health."""

    schema = "kernels"

    def __init__(self, kernels: Sequence[KernelInfo]) -> None:
        self.kernels = kernels

    def to_json(self) -> dict:
        return {"kernels": [k.to_json() for k in self.kernels]}

    def to_text(self) -> str:
        if not self.kernels:
            return "No Jupyter kernels found.\n"
        lines = [row("NAME", "DISPLAY NAME", "BASE", "STATUS")]
        lines += [row(k.name, k.display_name, base_label(k),
                      k.status if k.visible else f"{k.status}*") + _runs_text(k)
                  for k in self.kernels]
        if any(not k.visible for k in self.kernels):
            lines.append("* not offered by Jupyter (shadowed, or an entry Jupyter skips)\n")
        troubled = [k for k in self.kernels if k.status in (Status.BROKEN, Status.MISMATCH)]
        if troubled:
            lines.append(f"\n{len(troubled)} kernel(s) need attention: "
                         "`kernelctl show NAME` says why;\n"
                         "`kernelctl remove --broken` removes broken kernelctl kernels.\n")
        return "".join(lines)


def _runs_text(kernel: KernelInfo) -> str:
    """A Slurm kernel's live jobs, under its row."""
    if not kernel.slurm_runs:
        return ""
    from kernelctl.slurm import describe_run

    return "".join(f"    {describe_run(run)}\n" for run in kernel.slurm_runs)


class JuliaKernels(Kernels):
    """julia: the kernels it made."""
    def to_text(self) -> str:
        made = "".join(f"Created kernel '{k.name}': {k.display_name}\n"
                       f"  kernelspec: {k.resource_dir / 'kernel.json'}\n" for k in self.kernels)
        return made + (
            "\nUse it: pick it in JupyterLab's Launcher (reload the page if it is not listed).\n"
            "Add packages from a notebook with `import Pkg; Pkg.add(\"PKG\")`; the kernel\n"
            "activates the notebook's project (--project=@.) when there is one.\n")


class KernelDetail(Result):
    """show: one kernel, its kernel.json and its environment record."""

    schema = "kernel_detail"

    def __init__(self, kernel: KernelInfo, record: Optional[dict]) -> None:
        self.kernel = kernel
        self.record = record

    def to_json(self) -> dict:
        kernel = self.kernel
        return {**kernel.to_json(), "spec": kernel.spec.to_dict() if kernel.spec else None,
                "record": _redacted(self.record)}

    def to_text(self) -> str:
        kernel = self.kernel
        lines = [("name", kernel.name), ("display name", kernel.display_name),
                 ("status", kernel.status), ("language", kernel.language),
                 ("kernelspec", str(kernel.resource_dir)),
                 ("made by", "kernelctl" if kernel.managed else "another tool"),
                 ("base", base_label(kernel)), ("environment", str(kernel.venv or "-"))]
        if not kernel.visible:
            lines.append(("offered", "no (see problems)"))
        text = "".join(f"{key + ':':14} {value}\n" for key, value in lines)
        text += "".join(f"problem:       {problem}\n" for problem in kernel.problems)
        if kernel.slurm is not None:
            from kernelctl.slurm import describe_run, summary_of

            text += f"slurm:         {summary_of(kernel.slurm)}\n"
            text += "".join(f"running:       {describe_run(run)}\n" for run in kernel.slurm_runs)
        if self.record:
            requested = self.record.get("packages", {}).get("requested", [])
            text += f"packages:      {redact(', '.join(requested)) or '-'}\n"
        if kernel.spec is not None:
            text += "kernel.json:\n" + json.dumps(kernel.spec.to_dict(), indent=2) + "\n"
        return text


# Removing and rebuilding ------------------------------------------------------

def _removals_json(removals: Sequence["Removal"]) -> list:
    return [{"name": r.kernel.name, "resource_dir": str(r.kernel.resource_dir),
             "venv": str(r.venv) if r.venv else None, "venv_kept": r.venv_kept or None}
            for r in removals]


class RemovalPlan(Several):
    """What remove will do (or, with --dry-run, would do), before it asks; `failed`:
    the kernels that must stay."""

    schema = "removal_result"

    def __init__(self, removals: Sequence["Removal"],
                 dry_run: bool,
                 failed: Sequence[Failure] = ()) -> None:
        self.removals = removals
        self.dry_run = dry_run
        self.failed = failed

    def to_json(self) -> dict:
        return {"removed": [], "would_remove": _removals_json(self.removals),
                **self.outcome(len(self.removals))}

    def to_text(self) -> str:
        if not self.removals:
            return "Nothing to remove.\n"
        lines = ["Would remove:\n" if self.dry_run else "Will remove:\n"]
        for removal in self.removals:
            lines.append(f"  kernel {removal.kernel.name}: {removal.kernel.resource_dir}\n")
            if removal.venv:
                lines.append(f"    and its environment {removal.venv}\n")
            if removal.venv_kept:
                lines.append(f"    {removal.venv_kept}\n")
        return "".join(lines)


class Removed(Several):
    schema = "removal_result"

    def __init__(self, removed: Sequence["Removal"],
                 failed: Sequence[Failure] = ()) -> None:
        self.removed = removed
        self.failed = failed

    def to_json(self) -> dict:
        return {"removed": _removals_json(self.removed), "would_remove": [],
                **self.outcome(len(self.removed))}

    def to_text(self) -> str:
        return f"Removed {len(self.removed)} kernel(s).\n"


class RebuiltOne(Result):
    """One kernel rebuilt: said as soon as it is done (text only)."""

    schema = "kernel"

    def __init__(self, rebuilt: "Rebuilt") -> None:
        self.rebuilt = rebuilt

    def to_json(self) -> dict:
        return self.rebuilt.kernel.to_json()

    def to_text(self) -> str:
        kernel = self.rebuilt.kernel
        label = kernel.base.label if kernel.base else "its base"
        text = (f"Rebuilt the kernel '{kernel.name}' on {label} (was "
                f"{self.rebuilt.base_before}); its environment is now {kernel.venv}.\n")
        if self.rebuilt.packages:
            text += f"  reinstalled: {redact(', '.join(self.rebuilt.packages))}\n"
        if self.rebuilt.from_base:
            text += f"  from the base: {redact(', '.join(self.rebuilt.from_base))}\n"
        return text


class RebuildReport(Several):
    """rebuild: every kernel rebuilt, and every one that could not be, with why."""

    schema = "rebuild"

    def __init__(self, done: Sequence["Rebuilt"], failed: Sequence[Failure] = ()) -> None:
        self.done = done
        self.failed = failed

    def to_json(self) -> dict:
        return {"rebuilt": [r.kernel.to_json() for r in self.done],
                **self.outcome(len(self.done))}

    def to_text(self) -> str:
        text = ("Notebooks keep their kernel; restart running ones to use the new "
                "environment.\n" if self.done else "")
        if self.failed:
            text += (f"Not rebuilt: {', '.join(f.name for f in self.failed)} (see the "
                     "errors above).\n")
        return text


# Jobs and engines ---------------------------------------------------------------

class Submitted(Result):
    schema = "submit"

    def __init__(self, submission: "Submission", dry_run: bool) -> None:
        self.submission = submission
        self.dry_run = dry_run

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return self.submission.exit_code or 0

    def to_json(self) -> dict:
        data = self.submission.to_json()
        return {**data, "script_text": self.submission.text} if self.dry_run else data

    def to_text(self) -> str:
        submission = self.submission
        if self.dry_run:
            return submission.text
        shown = submission.to_json()
        text = (f"Submitted job {shown['job_id']} (kernel '{submission.kernel}'); "
                f"its script: {submission.script}\n")
        text += "".join(f"  {what}: {shown[what]}\n" for what in ("log", "output")
                        if shown[what])
        if submission.exit_code is not None:
            text += f"Job {shown['job_id']} ended with exit code {submission.exit_code}.\n"
        return text


class EnginesStarted(Result):
    schema = "engines_started"

    def __init__(self, engines: "Engines") -> None:
        self.engines = engines

    def to_json(self) -> dict:
        return self.engines.to_json()

    def to_text(self) -> str:
        engines = self.engines
        return (f"{engines.n} ipyparallel engines run in the environment of the kernel "
                f"'{engines.kernel}' (started by: {' '.join(engines.srun)}).\n"
                "In the notebook:\n"
                f"  import ipyparallel as ipp\n  rc = ipp.Client(profile=\"{engines.profile}\")\n"
                f"Stop them: kernelctl engines {engines.kernel} --stop\n")


class EnginesStopped(Result):
    schema = "engines_stopped"

    def __init__(self, kernel: str, count: Optional[int]) -> None:
        self.kernel = kernel
        self.count = count

    def to_json(self) -> dict:
        return {"kernel": self.kernel, "stopped": self.count}

    def to_text(self) -> str:
        return f"Stopped the engines of the kernel '{self.kernel}' and their controller.\n"


# Recipes ------------------------------------------------------------------------

class Recipes(Result):
    schema = "recipes"

    def __init__(self, entries: Sequence["RecipeEntry"]) -> None:
        self.entries = entries

    def to_json(self) -> dict:
        return {"recipes": [entry.to_json() for entry in self.entries]}

    def to_text(self) -> str:
        lines = [_recipe_row("NAME", "SITE", "KIND", "USABLE HERE", "LOADS")]
        for entry in self.entries:
            recipe = entry.recipe
            if recipe is None:
                lines.append(_recipe_row(entry.name, "?", "?", "invalid", entry.error))
            else:
                lines.append(_recipe_row(recipe.name, recipe.site, recipe.kind,
                                         "no" if entry.unusable else "yes", entry.loads))
        if any(entry.unusable or entry.recipe is None for entry in self.entries):
            lines.append("\n`kernelctl recipes show NAME` says why a recipe cannot be "
                         "used here.\n")
        return "".join(lines)


class RecipeDetail(Result):
    schema = "recipe"

    def __init__(self, entry: "RecipeEntry") -> None:
        self.entry = entry

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return 1 if self.entry.recipe is None else 0

    def to_json(self) -> dict:
        return self.entry.to_json()

    def to_text(self) -> str:
        entry, recipe = self.entry, self.entry.recipe
        if recipe is None:
            return f"recipe {entry.name} ({entry.path}) is invalid: {entry.error}\n"
        lines = [("name", recipe.name), ("site", recipe.site or "-"), ("kind", recipe.kind),
                 ("description", recipe.description or "-"), ("loads", entry.loads),
                 ("packages", ", ".join(recipe.packages) or "-"),
                 ("offline", "yes (--no-index: the site's wheelhouse)" if recipe.no_index
                  else "no"),
                 ("file", str(entry.path)),
                 ("usable here", f"no: {entry.unusable}" if entry.unusable else "yes"),
                 ("use it", f"kernelctl create --base {recipe.name}")]
        return "".join(f"{key + ':':13}{value}\n" for key, value in lines)


# Doctor -------------------------------------------------------------------------

class DoctorReport(Result):
    schema = "doctor"

    def __init__(self, checks: Sequence["CheckResult"]) -> None:
        self.checks = checks

    @property
    def ok(self) -> bool:
        return not any(check.status == "fail" for check in self.checks)

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return 0 if self.ok else 1

    def to_json(self) -> dict:
        return {"ok": self.ok, "checks": [check.to_json() for check in self.checks]}

    def to_text(self) -> str:
        # Quiet when healthy: only what needs attention, then one summary line.
        lines = []
        for check in (c for c in self.checks if c.status != "ok"):
            about = f" [{check.kernel}]" if check.kernel else ""
            lines.append(f"{check.status.upper():4}  {check.id}{about}: {check.message}\n")
            if check.hint:
                lines.append(f"      hint: {check.hint}\n")
        counts = {s: sum(c.status == s for c in self.checks) for s in ("ok", "warn", "fail")}
        if counts["warn"] == counts["fail"] == 0:
            lines.append(f"All {len(self.checks)} checks passed.\n")
        else:
            lines.append(f"{len(self.checks)} checks: {counts['ok']} ok, {counts['warn']} "
                         f"warn, {counts['fail']} fail.\n")
        return "".join(lines)


class FixPlan(Result):
    """The repairs doctor --fix found, shown before it asks (text only: --json prints
    the report after the repairs)."""

    schema = "fix_plan"

    def __init__(self, fixes: Sequence["Fix"] = (),
                 dry_run: bool = False) -> None:
        self.fixes = fixes
        self.dry_run = dry_run

    def to_json(self) -> dict:
        return {"fixes": [fix.description for fix in self.fixes], "dry_run": self.dry_run}

    def to_text(self) -> str:
        if not self.fixes:
            return "Nothing to repair safely.\n"
        heading = ("Would repair (--dry-run: nothing is changed):" if self.dry_run
                   else "Repairs:")
        return heading + "\n" + "".join(f"  - {f.description}\n" for f in self.fixes)


# Text helpers ---------------------------------------------------------------------

def row(*cells: str) -> str:
    return " ".join(_fit(cell, width) for cell, width in zip(cells, COLUMNS)).rstrip() + "\n"


def _recipe_row(name: str, site: str, kind: str, usable: str, loads: str) -> str:
    return (f"{_fit(name, 16)} {_fit(site, 9)} {_fit(kind, 9)} {_fit(usable, 11)} "
            f"{loads}\n")


def _fit(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def built_on(kernel: KernelInfo) -> str:
    """The one line that says what the kernel is built on, layers included."""
    base = kernel.base
    return base.describe() if isinstance(base, PythonBinding) else base_label(kernel)


def base_label(kernel: KernelInfo) -> str:
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
