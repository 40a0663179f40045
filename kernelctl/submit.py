"""`kernelctl submit`: a script or notebook as a Slurm batch job, in a kernel's environment.

The batch script is plain sh and needs nothing of kernelctl: it asks Slurm for the
kernel's uenv, exports kernel.json's env and runs the file through the kernel's own
launcher (runner.RUN_FLAG), which loads the modules, activates conda and checks the
base on the compute node exactly as it does for the notebook's kernel.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

from kernelctl import shell
from kernelctl.bases import job_steps
from kernelctl.binding import Binding
from kernelctl.errors import CommandFailed, KernelctlError
from kernelctl.model import Status
from kernelctl.proc import completed
from kernelctl.record import write_atomically
from kernelctl.textfiles import load_json, parse_json
from kernelctl.runner import KernelCommand, kernel_command
from kernelctl.uenv import UenvLabel

NOTEBOOK_RUNNER = "kernelctl_notebook.py"
SUFFIXES = (".py", ".ipynb")


@dataclass(frozen=True)
class SubmitRequest:
    kernel: str
    file: Path
    sbatch_args: tuple = ()
    script_args: tuple = ()
    parameters: tuple = ()  # NAME=VALUE, notebooks only
    output: Optional[Path] = None  # the executed notebook (default FILE's stem-%j.ipynb)
    in_place: bool = False
    wait: bool = False
    dry_run: bool = False


@dataclass
class Submission:
    kernel: str
    script: Path
    text: str
    log: Optional[Path]
    output: Optional[Path]
    job_id: Optional[str] = None
    exit_code: Optional[int] = None
    notices: list = field(default_factory=list)

    def to_json(self) -> dict:
        def named(path: Optional[Path]) -> Optional[str]:
            if path is None:
                return None
            return str(path).replace("%j", self.job_id) if self.job_id else str(path)

        return {"kernel": self.kernel, "job_id": self.job_id,
                "script": str(self.script), "log": named(self.log),
                "output": named(self.output), "exit_code": self.exit_code,
                "notices": list(self.notices)}


def submit(request: SubmitRequest, env: Mapping[str, str], home: Path,
           notice: Callable[[str], None]) -> Submission:
    file = _checked_file(request)
    parameters = _parameters(request.parameters)
    if file.suffix == ".py" and (parameters or request.output or request.in_place):
        raise KernelctlError("-P/--parameter, --output and --in-place are for notebooks",
                             "Pass a script's arguments with --arg.")
    if request.output and request.in_place:
        raise KernelctlError("--output and --in-place exclude each other",
                             "Pass one: where the executed notebook goes, or into itself.")
    sbatch = shutil.which("sbatch", path=env.get("PATH"))
    if not sbatch and not request.dry_run:
        raise KernelctlError("sbatch is not on PATH: submit needs Slurm",
                             f"On a machine without Slurm, run it here: kernelctl run "
                             f"{request.kernel} -- python {shell.quote(str(file))}")
    # A uenv the session lacks is fine: the job asks Slurm for it.
    target = kernel_command(request.kernel, env, allow=(Status.OK, Status.MISMATCH))
    binding = target.kernel.base
    uenv = _uenv_of(binding)
    if target.kernel.status is Status.MISMATCH and not uenv:
        raise KernelctlError(f"the kernel '{target.kernel.name}' is mismatch: "
                             + "; ".join(target.kernel.problems),
                             "`kernelctl doctor` explains it.")
    jobs = home / "jobs"
    script = jobs / f"{target.kernel.name}--{file.stem}.sh"
    log = None if _names_output(request.sbatch_args) else file.parent / f"{file.stem}-%j.log"
    output = None
    if file.suffix == ".ipynb":
        output = file if request.in_place else Path(os.path.abspath(
            request.output or file.parent / f"{file.stem}-%j.ipynb"))
        command = [_python(target), str(jobs / NOTEBOOK_RUNNER), str(file), str(output)]
        if parameters:
            command += ["--parameters", json.dumps(parameters)]
    else:
        command = [_python(target), str(file), *request.script_args]
    uenv_lines, missing = _uenv_lines(uenv, binding, sbatch, env)
    text = batch_script(target, file, command, uenv_lines, log, request.sbatch_args, env)
    submission = Submission(target.kernel.name, script, text, log, output)
    if missing:
        submission.notices.append(missing)
    _check_output_dirs(request.sbatch_args, log, output, file)
    # Written for a dry run too: the printed script runs as printed (`sh SCRIPT`).
    jobs.mkdir(parents=True, exist_ok=True)
    write_atomically(jobs / NOTEBOOK_RUNNER, _runner_text())
    if request.dry_run:
        return submission
    for line in submission.notices:
        notice(line)
    write_atomically(script, text)
    submission.job_id, submission.exit_code = _sbatch(sbatch or "sbatch", request, script, file,
                                                      env)
    return submission


def _checked_file(request: SubmitRequest) -> Path:
    file = Path(os.path.abspath(os.path.expanduser(request.file)))
    if file.suffix not in SUFFIXES:
        raise KernelctlError(
            f"{request.file} is neither a Python script (.py) nor a notebook (.ipynb)",
            f"For anything else, put `kernelctl run {request.kernel} -- CMD` in your own "
            "batch script.")
    if not os.path.isfile(file):
        raise KernelctlError(f"{request.file} does not exist", "Check the path.")
    if file.suffix == ".ipynb":
        _check_notebook(file)
    return file


def _check_notebook(file: Path) -> None:
    try:
        notebook = load_json(file, max_bytes=0)  # notebooks with figures are big
    except (OSError, ValueError) as exc:
        raise KernelctlError(f"{file} is not a notebook: it does not parse as JSON ({exc})",
                             "Open it in JupyterLab and save it again.") from exc
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list) \
            or notebook.get("nbformat") != 4:
        raise KernelctlError(f"{file} is not a version 4 notebook (no 'cells' list or "
                             "nbformat 4)", "Open it in JupyterLab and save it again.")


def _parameters(pairs: Sequence[str]) -> dict:
    """NAME=VALUE pairs; VALUE is JSON when it parses (numbers, true, lists), else text."""
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier() or keyword.iskeyword(name):
            raise KernelctlError(f"'{pair}' is not NAME=VALUE with a Python name",
                                 "e.g. -P alpha=0.5 -P label=run1")
        try:
            values[name] = parse_json(value)
        except ValueError:
            if value.strip() in ("NaN", "Infinity", "-Infinity"):
                raise KernelctlError(f"-P {pair}: {value.strip()} cannot travel in a notebook's "
                                     "JSON", f"Pass it as text (-P {name}='\"{value.strip()}\"') "
                                     "and convert it in the notebook: float(x).") from None
            values[name] = value
    return values


def _python(target: KernelCommand) -> str:
    """The kernel's own interpreter, by its path in the venv: readable, and the same one."""
    venv = target.kernel.venv
    return str(venv / "bin" / "python") if venv else "python"


def _uenv_of(binding: Optional[Binding]) -> Optional[str]:
    # A kernel of any kind that needs a uenv names it (binding.image) and its digest.
    if binding is None or not (binding.image or binding.digest):
        return None
    return str(UenvLabel(binding.image or binding.name, binding.version, binding.tag))


def _uenv_lines(uenv: Optional[str], binding: Optional[Binding], sbatch: Optional[str],
                env: Mapping[str, str]) -> tuple:
    """The #SBATCH lines that mount the kernel's uenv, and a notice when this Slurm has
    no uenv plugin (then they are written commented out, and the job only works where
    the image is mounted anyway)."""
    if not uenv or binding is None:
        return [], ""
    mount = binding.mount and binding.mount != "/user-environment"
    options = [f"--uenv={uenv}" + (f":{binding.mount}" if mount else "")]
    if binding.view:
        options.append(f"--view={binding.view}")
    if sbatch and not _knows_uenv(sbatch, env):
        return ([shell.directive([option], "##SBATCH") + "  # no uenv plugin in this Slurm"
                 for option in options],
                f"this Slurm has no --uenv option (no uenv plugin): the job script asks for "
                f"{uenv} in comments only, and runs only where the image is already mounted")
    return [shell.directive([option]) for option in options], ""


def _knows_uenv(sbatch: str, env: Mapping[str, str]) -> bool:
    """CSCS's uenv Slurm plugin adds --uenv and --view to sbatch's options."""
    try:
        done = completed([sbatch, "--help"], env=env, what="sbatch --help", timeout=30)
    except CommandFailed:
        return False
    return "--uenv" in done.stdout


def _check_output_dirs(sbatch_args: Sequence[str], log: Optional[Path],
                       output: Optional[Path], file: Path) -> None:
    """Where the job writes must exist and be writable now, not after its queue wait."""
    places = [p.parent for p in (log, output) if p is not None]
    # A user's Slurm pattern (%u, %x) in a path: only the job knows where that is.
    places += [Path(file.parent, value).parent for value in _output_values(sbatch_args)
               if "%" not in str(Path(value).parent)]
    for place in places:
        if not os.path.isdir(place):
            raise KernelctlError(f"the job would write into {shell.shown(str(place))}, which "
                                 "does not exist", f"Create it first (mkdir -p "
                                 f"{shell.quote(str(place))}), or point -o/--output elsewhere.")
        if not os.access(place, os.W_OK | os.X_OK):
            raise KernelctlError(f"the job could not write into {shell.shown(str(place))} "
                                 "(permission denied)", "Point -o/--output at a directory "
                                 "of yours.")


def _output_values(sbatch_args: Sequence[str]) -> list:
    """The paths given to sbatch's -o/--output and -e/--error, in any spelling."""
    values, args = [], list(sbatch_args)
    for i, arg in enumerate(args):
        for long, short in (("--output", "-o"), ("--error", "-e")):
            if arg in (long, short) and i + 1 < len(args):
                values.append(args[i + 1])
            elif arg.startswith(long + "="):
                values.append(arg[len(long) + 1:])
            elif arg.startswith(short) and not arg.startswith("--") and len(arg) > 2:
                values.append(arg[2:].lstrip("="))
    return values


def _names_output(sbatch_args: Sequence[str]) -> bool:
    return any(arg in ("-o", "--output") or arg.startswith(("--output=", "-o"))
               for arg in sbatch_args)


SCRIPT = """#!/bin/sh
{comments}
{directives}
# kernel.json's environment, as Jupyter gives it to the kernel:
{exports}
exec {command}
"""


def batch_script(target: KernelCommand, file: Path, command: Sequence[str],
                 uenv_lines: Sequence[str], log: Optional[Path],
                 sbatch_args: Sequence[str] = (), session: Mapping[str, str] = {}) -> str:
    """The job script, every part written by kernelctl.shell: the sbatch options given
    after `--` are in it as #SBATCH lines, so the script alone is what is submitted."""
    kernel = target.kernel
    binding = kernel.base
    steps = job_steps(binding) if binding else ""
    comments = [
        f"Written by `kernelctl submit` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}.",
        f"Runs {' '.join(command[1:])}",
        f"in the environment of the Jupyter kernel '{kernel.name}' ({kernel.display_name}),",
        f"built on {binding.label if binding else 'its base'}. Needs nothing of kernelctl: "
        "the kernel's own launcher (last line)",
        f"{steps + ', ' if steps else ''}checks that the base is here, then runs the command."]
    job_name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{kernel.name}-{file.stem}")
    directives = [shell.directive([f"--job-name={job_name}"]), *uenv_lines]
    if log:
        directives.append(shell.directive([f"--output={shell.slurm_filename(str(log.parent))}"
                                           f"/{log.name}"]))
    if sbatch_args:
        directives.append(shell.directive(sbatch_args))
    where = f"the env of the kernel '{kernel.name}'"
    # Filled in from the submitting session, which sbatch hands the job too.
    exports = target.values(session)
    return SCRIPT.format(
        comments="\n".join(shell.comment(line) for line in comments),
        directives="\n".join(directives),
        exports="\n".join(shell.export(key, value, where) for key, value in exports.items()),
        command=shell.words([*target.launcher, *command], "the job's command"))


def _runner_text() -> str:
    return resources.files("kernelctl").joinpath("resources", NOTEBOOK_RUNNER).read_text()


def _sbatch(sbatch: str, request: SubmitRequest, script: Path, file: Path,
            env: Mapping[str, str]) -> tuple:
    """Submit; (job id, the job's exit code when --wait)."""
    # The options after `--` are #SBATCH lines of the script itself (batch_script).
    argv = [sbatch, "--parsable", *(["--wait"] if request.wait else []), str(script)]
    # With --wait, sbatch returns when the job ends: that wait is the point.
    done = completed(argv, env=env, cwd=file.parent, what="sbatch",
                     hint="Check Slurm's setup.", timeout=None if request.wait else 120)
    job_id = done.stdout.strip().splitlines()[0].split(";")[0] if done.stdout.strip() else None
    if not job_id:
        raise KernelctlError(f"sbatch failed: {done.stderr.strip() or done.returncode}",
                             f"The script is {script}; check the options passed after `--`.")
    return job_id, (done.returncode if request.wait else None)
