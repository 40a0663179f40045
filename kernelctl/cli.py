"""The command line: parse options, call the core once, hand the result to the renderer.

Heavy modules (virtualenv, jupyter_client) are imported inside commands, so that
`kernelctl --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, NoReturn, Optional, TypeVar

import typer

from kernelctl import __version__
from kernelctl.errors import KernelctlError, as_user_error
from kernelctl.quick import recover_dead_runs
from kernelctl.render import Renderer

if TYPE_CHECKING:
    from kernelctl.results import Result
    from kernelctl.slurm import SlurmRequest

app = typer.Typer(
    help="Jupyter kernels on HPC base images (uenv, containers, modules), done right.",
    no_args_is_help=True, pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts show [OPTIONAL] grammar literally
    context_settings={"help_option_names": ["-h", "--help"]},
)
_state = {"debug": False}


def complete_kernels(incomplete: str) -> List[str]:
    """Kernel names for shell completion (imported only when the shell asks)."""
    from kernelctl.inventory import find_kernels

    try:
        names = {kernel.name for kernel in find_kernels(os.environ)}
    except Exception:  # completion must never print a traceback into the shell
        return []
    return sorted(name for name in names if name.startswith(incomplete))


def complete_bases(incomplete: str) -> List[str]:
    """Recipe names and the base forms, for --base."""
    from kernelctl.bases.catalogue import all_recipes

    try:
        names = [recipe.name for recipe in all_recipes(os.environ)]
    except Exception:
        names = []
    from kernelctl.bases import spec_forms

    return [name for name in sorted(names) + spec_forms() if name.startswith(incomplete)]


def _base_forms() -> list:
    from kernelctl.bases import spec_forms

    return spec_forms()


def kernelctl_home() -> Path:
    from kernelctl.paths import kernelctl_home as home_of

    return home_of(os.environ)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kernelctl {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: bool = typer.Option(False, "--debug", help="Show commands run and full tracebacks."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    _state["debug"] = debug
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="kernelctl: %(message)s")


@app.command()
def create(
    base: Optional[str] = typer.Option(
        None, "--base", "-b", autocompletion=complete_bases,
        help="prgenv-gnu (a recipe), uenv:NAME[/VERSION][:TAG], "
        "module:NAME[/VER][,NAME...] (Lmod), conda:PREFIX, container (this session's "
        "image), python:PATH, or system (python3 on PATH). A python inside a venv is "
        "layered on: the venv's packages stay visible. Default: what fits this session "
        "(a mounted uenv, the container, loaded modules, the active conda env or venv, "
        "else system), said in one line."),
    name: Optional[str] = typer.Option(None, "--name", "-n",
                                       help="Kernel name (default: from the base label)."),
    display_name: Optional[str] = typer.Option(None, "--display-name",
                                               help="Name shown in JupyterLab."),
    venv: Optional[Path] = typer.Option(
        None, "--venv", help="Environment directory (default: $KERNELCTL_HOME/venvs/NAME)."),
    prefix: Optional[Path] = typer.Option(
        None, "--prefix", help="Install the kernelspec under PREFIX/share/jupyter/kernels."),
    package: List[str] = typer.Option([], "--package", "-p", help="Package to install (repeatable)."),
    requirement: List[Path] = typer.Option([], "--requirement", "-r",
                                           help="Requirements file (repeatable)."),
    no_index: bool = typer.Option(False, "--no-index", help="Do not use a package index (offline)."),
    find_links: List[str] = typer.Option([], "--find-links", help="Directory or URL of wheels."),
    force: bool = typer.Option(False, "--force", help="Replace a kernel/environment of that "
                               "name (the old one stays until the new one has started)."),
    delete_user_files: bool = typer.Option(
        False, "--delete-user-files", help="With --force: the old environment may go even "
        "though it holds files you put there."),
    installer: str = typer.Option("auto", "--installer", help="auto (uv when installed, "
                                  "else pip), pip or uv."),
    from_file: Optional[Path] = typer.Option(
        None, "--from", help="A kernel definition (kernelctl export): its base, names and "
        "packages; options given here override it."),
    slurm: Optional[str] = typer.Option(
        None, "--slurm", help="Run the kernel where the compute is: 'step' (a job step of "
        "the allocation JupyterLab runs in) or 'job' (a job of its own). "
        "docs/slurm-kernels.md."),
    cpus: Optional[int] = typer.Option(None, "--cpus", help="With --slurm: CPUs."),
    mem: Optional[str] = typer.Option(None, "--mem", help="With --slurm: memory (8G)."),
    gpus: Optional[str] = typer.Option(None, "--gpus", help="With --slurm: GPUs (1, a100:2)."),
    time_limit: Optional[str] = typer.Option(None, "--time",
                                             help="With --slurm: time limit (1:00:00)."),
    partition: Optional[str] = typer.Option(None, "--partition", help="With --slurm job."),
    account: Optional[str] = typer.Option(None, "--account", help="With --slurm job."),
    constraint: Optional[str] = typer.Option(None, "--constraint", help="With --slurm job."),
    slurm_arg: List[str] = typer.Option([], "--slurm-arg", help="With --slurm: another "
                                        "srun/sbatch option, whole (--slurm-arg=--qos=debug)."),
    start_timeout: Optional[int] = typer.Option(
        None, "--start-timeout", help="With --slurm: give up (and cancel) when the job has "
        "not started after this many seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print the created kernel as JSON."),
) -> None:
    """Create a virtualenv on top of a base image and a Jupyter kernel that uses it."""
    from kernelctl import api
    from kernelctl.create import CreateRequest

    renderer = Renderer(as_json)
    wanted = _run(renderer, lambda: _slurm_request(
        slurm, cpus=cpus, mem=mem, gpus=gpus, time=time_limit, partition=partition,
        account=account, constraint=constraint, args=tuple(slurm_arg),
        start_timeout=start_timeout))
    request = CreateRequest(
        base=base, name=name, display_name=display_name, venv=venv, prefix=prefix,
        packages=tuple(package), requirement_files=tuple(requirement), no_index=no_index,
        find_links=tuple(find_links), force=force, installer=installer,
        delete_user_files=delete_user_files, slurm=wanted)
    _answer(renderer, lambda: api.create(request, os.environ, kernelctl_home(),
                                         renderer.progress, renderer.notice, from_file))


def _slurm_request(mode: Optional[str], **resources: object) -> "Optional[SlurmRequest]":
    """The Slurm request of --slurm and the resource options; resources without a mode
    are an error, not silently dropped."""
    from kernelctl.slurm import SlurmRequest

    given = {key: value for key, value in resources.items() if value not in (None, ())}
    if mode is None:
        if given:
            options = ", ".join(f"--{key.replace('_', '-')}" for key in given)
            raise KernelctlError(f"{options} only apply to Slurm kernels",
                                 "Add --slurm job (a job of its own) or --slurm step (a "
                                 "step of JupyterLab's allocation).")
        return None
    return SlurmRequest(mode=mode, **given).checked()  # type: ignore[arg-type]


@app.command("slurm")
def slurm_command(
    name: str = typer.Argument(..., autocompletion=complete_kernels),
    mode: Optional[str] = typer.Option(
        None, "--mode", help="step, job, or off (a plain kernel again). Default: the "
        "kernel's mode; a kernel that is not a Slurm kernel yet needs it."),
    cpus: Optional[int] = typer.Option(None, "--cpus", help="CPUs."),
    mem: Optional[str] = typer.Option(None, "--mem", help="Memory (8G)."),
    gpus: Optional[str] = typer.Option(None, "--gpus", help="GPUs (1, a100:2)."),
    time_limit: Optional[str] = typer.Option(None, "--time", help="Time limit (1:00:00)."),
    partition: Optional[str] = typer.Option(None, "--partition", help="For --mode job."),
    account: Optional[str] = typer.Option(None, "--account", help="For --mode job."),
    constraint: Optional[str] = typer.Option(None, "--constraint", help="For --mode job."),
    slurm_arg: List[str] = typer.Option([], "--slurm-arg", help="Another srun/sbatch option, "
                                        "whole (--slurm-arg=--qos=debug)."),
    start_timeout: Optional[int] = typer.Option(
        None, "--start-timeout", help="Give up (and cancel) when the job has not started "
        "after this many seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print the kernel as `show` does."),
) -> None:
    """Run an existing kernel as a Slurm job step or job, change what it asks for, or
    make it a plain kernel again (--mode off). Its environment is not touched."""
    from kernelctl import api

    changes = dict(cpus=cpus, mem=mem, gpus=gpus, time=time_limit, partition=partition,
                   account=account, constraint=constraint, args=tuple(slurm_arg),
                   start_timeout=start_timeout)
    _answer(Renderer(as_json), lambda: api.slurm(name, mode, changes, os.environ,
                                                 kernelctl_home()))


@app.command("list")
def list_kernels(
    show_all: bool = typer.Option(False, "--all", "-a",
                                  help="Also show kernels shadowed by a same-named one."),
    as_json: bool = typer.Option(False, "--json", help="Print {version, kernels} as JSON."),
) -> None:
    """List every kernel on Jupyter's search path, with its health."""
    from kernelctl import api

    recover_dead_runs()
    _answer(Renderer(as_json), lambda: api.list_kernels(os.environ, show_all))


@app.command()
def show(
    name: str = typer.Argument(..., help="Kernel name, as `kernelctl list` shows it.",
                               autocompletion=complete_kernels),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON (with spec and record)."),
) -> None:
    """Show everything known about one kernel: health, kernel.json, environment record."""
    from kernelctl import api

    recover_dead_runs()
    _answer(Renderer(as_json), lambda: api.show(name, os.environ))


@app.command()
def remove(
    names: List[str] = typer.Argument(None, help="Kernel names.",
                                      autocompletion=complete_kernels),
    keep_venv: bool = typer.Option(False, "--keep-venv", help="Keep the environments."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be removed."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    broken: bool = typer.Option(False, "--broken", help="Remove all broken kernelctl kernels."),
    delete_user_files: bool = typer.Option(
        False, "--delete-user-files", help="Also delete an environment that holds files you "
        "put there (pip's src/ checkouts, notes); without it, such a kernel is kept."),
    as_json: bool = typer.Option(False, "--json", help="Print {removed, would_remove} as JSON."),
) -> None:
    """Remove kernels, and the environments kernelctl made for them. A kernel that must
    stay (your files in it) is named and kept; the others still go."""
    from kernelctl import api
    from kernelctl.remove import RemovalOptions

    renderer = Renderer(as_json)
    options = RemovalOptions(keep_venv, delete_user_files)
    plan = _run(renderer, lambda: api.plan_removal(names or [], broken, options, os.environ,
                                                   dry_run))
    for refusal in plan.failed:
        renderer.error(refusal.error)
    if dry_run or not plan.removals:
        _answer(renderer, lambda: plan)
    renderer.preview(plan)
    if not yes and not _run(renderer, lambda: renderer.confirm("Remove these?")):
        renderer.declined("nothing was removed")
        raise typer.Exit(1)
    removed = _run(renderer, lambda: api.remove(plan, options, os.environ, kernelctl_home()))
    for failure in removed.failed[len(plan.failed):]:
        renderer.error(failure.error)
    _answer(renderer, lambda: removed)


@app.command()
def install(
    name: str = typer.Argument(..., help="A kernel made by kernelctl.",
                               autocompletion=complete_kernels),
    packages: List[str] = typer.Argument(None, help="Packages (pip requirement strings)."),
    package: List[str] = typer.Option([], "--package", "-p",
                                      help="Package to install (repeatable), as for create."),
    requirement: List[Path] = typer.Option([], "--requirement", "-r",
                                           help="Requirements file (repeatable)."),
    no_index: bool = typer.Option(False, "--no-index", help="Do not use a package index (offline)."),
    find_links: List[str] = typer.Option([], "--find-links", help="Directory or URL of wheels."),
    installer: str = typer.Option("auto", "--installer", help="auto (uv when installed, "
                                  "else pip), pip or uv."),
    as_json: bool = typer.Option(False, "--json", help="Print the kernel as JSON."),
) -> None:
    """Install packages into a kernelctl kernel's environment, winning over the base's."""
    from kernelctl import api

    renderer = Renderer(as_json)
    wanted = [*(packages or []), *package]
    _answer(renderer, lambda: api.install(name, wanted, requirement, no_index, find_links,
                                          os.environ, kernelctl_home(), renderer.progress,
                                          installer))


@app.command()
def adopt(
    target: str = typer.Argument(..., help="An environment's directory (a conda prefix or a "
                                 "virtualenv), or the name of a hand-made kernel to fix."),
    base: Optional[str] = typer.Option(
        None, "--base", "-b", help="What the environment was built on, when that is more "
        "than its Python: e.g. module:python3 for a virtualenv made after `module load`."),
    name: Optional[str] = typer.Option(None, "--name", "-n",
                                       help="Kernel name (default: the directory's name)."),
    display_name: Optional[str] = typer.Option(None, "--display-name",
                                               help="Name shown in JupyterLab."),
    prefix: Optional[Path] = typer.Option(
        None, "--prefix", help="Install the kernelspec under PREFIX/share/jupyter/kernels."),
    install_ipykernel: bool = typer.Option(
        False, "--install-ipykernel", help="pip-install ipykernel into the environment if it "
        "lacks it (otherwise kernelctl never writes into an adopted environment)."),
    no_index: bool = typer.Option(False, "--no-index", help="Do not use a package index (offline)."),
    find_links: List[str] = typer.Option([], "--find-links", help="Directory or URL of wheels."),
    as_json: bool = typer.Option(False, "--json", help="Print the kernel as JSON."),
) -> None:
    """Give an environment made by hand a working kernel, or fix a hand-made kernelspec.
    Removing the kernel later deletes only its kernelspec, never the environment."""
    from kernelctl import api
    from kernelctl.adopt import AdoptRequest

    renderer = Renderer(as_json)
    request = AdoptRequest(target=target, base=base, name=name, display_name=display_name,
                           prefix=prefix, install_ipykernel=install_ipykernel,
                           no_index=no_index, find_links=tuple(find_links))
    _answer(renderer, lambda: api.adopt(request, os.environ, kernelctl_home(), renderer.progress))


@app.command()
def julia(
    julia_path: Optional[Path] = typer.Option(None, "--julia", help="The julia to use."),
    name: Optional[str] = typer.Option(None, "--name", "-n",
                                       help="Kernel name (default: julia-MAJOR.MINOR)."),
    display_name: Optional[str] = typer.Option(None, "--display-name",
                                               help="Name shown in JupyterLab."),
    threads: Optional[str] = typer.Option(None, "--threads", help="JULIA_NUM_THREADS: N or auto."),
    project: str = typer.Option("@.", "--project", help="Julia project: DIR, or @. (the "
                                "notebook's directory upwards)."),
    nsys: Optional[bool] = typer.Option(None, "--nsys/--no-nsys", help="Also make a kernel "
                                        "under Nsight Systems (default: on NVIDIA systems)."),
    force: bool = typer.Option(False, "--force", help="Replace Julia kernels of that name."),
    as_json: bool = typer.Option(False, "--json", help="Print {version, kernels} as JSON."),
) -> None:
    """Install IJulia kernels that keep working when julia is updated."""
    from kernelctl import api
    from kernelctl.julia import JuliaRequest

    renderer = Renderer(as_json)
    request = JuliaRequest(julia=julia_path, name=name, display_name=display_name,
                           threads=threads, project=project, nsys=nsys, force=force)
    _answer(renderer, lambda: api.julia(request, os.environ, kernelctl_home(), renderer.progress))


@app.command()
def doctor(
    names: List[str] = typer.Argument(None, help="Kernels to check (default: all).",
                                      autocompletion=complete_kernels),
    deep: bool = typer.Option(False, "--deep", help="Also start each kernel and probe it."),
    srun: bool = typer.Option(False, "--srun", help="Inside a Slurm allocation, also check "
                              "that each kernel's environment is the same in an srun step."),
    fix: bool = typer.Option(False, "--fix", help="Apply the safe repairs found."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Only show the repairs --fix would apply."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before fixing."),
    timeout: float = typer.Option(60.0, "--timeout", min=1.0,
                                  help="Seconds for a kernel to start (--deep)."),
    as_json: bool = typer.Option(False, "--json", help="Print {ok, checks} as JSON."),
) -> None:
    """Find, explain and (with --fix) repair what breaks Jupyter kernels here."""
    from kernelctl import api
    from kernelctl.results import FixPlan

    renderer = Renderer(as_json)

    def approve(fixes: list) -> bool:
        renderer.preview(FixPlan(tuple(fixes), dry_run))
        if not fixes or dry_run:
            return False
        if yes or renderer.confirm("Apply these repairs?"):
            return True
        renderer.declined("nothing was repaired")
        return False

    _answer(renderer, lambda: api.doctor(names or [], os.environ, deep, timeout,
                                         approve if fix or dry_run else None,
                                         kernelctl_home(), srun))


@app.command()
def export(
    name: str = typer.Argument(..., help="Kernel name.", autocompletion=complete_kernels),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Write it here (default: print it)."),
) -> None:
    """Write a kernel's definition (base, package requests and versions, names) as TOML;
    `kernelctl create --from FILE` makes the kernel again, here or elsewhere."""
    from kernelctl.definition import export as export_kernel
    from kernelctl.inventory import find_kernel

    renderer = Renderer()
    text = _run(renderer, lambda: export_kernel(find_kernel(name, os.environ)).to_toml())
    if output is None:
        typer.echo(text, nl=False)
        return

    def write() -> None:
        from kernelctl.record import write_atomically

        target = Path(os.path.abspath(output))
        if os.path.isdir(target):
            raise KernelctlError(f"{output} is a directory",
                                 f"Name the file to write, e.g. -o {output}/{name}.toml")
        if not os.path.isdir(target.parent):
            raise KernelctlError(f"{target.parent} does not exist",
                                 "Create it first, or write the file elsewhere.")
        write_atomically(target, text)

    _run(renderer, write)
    renderer.notice(f"wrote the definition of '{name}' to {output}")


@app.command()
def rebuild(
    names: List[str] = typer.Argument(None, help="Kernels to rebuild.",
                                      autocompletion=complete_kernels),
    base: Optional[str] = typer.Option(
        None, "--base", "-b", autocompletion=complete_bases,
        help="The new base (as for create). Default: the kernel's own base, or, when that "
        "is gone, the same uenv or modules at the versions this session has."),
    stale: bool = typer.Option(False, "--stale", help="Every kernelctl kernel whose base "
                               "or environment is gone or mismatched here."),
    no_index: bool = typer.Option(False, "--no-index", help="Do not use a package index (offline)."),
    find_links: List[str] = typer.Option([], "--find-links", help="Directory or URL of wheels."),
    installer: str = typer.Option("auto", "--installer", help="auto (uv when installed, "
                                  "else pip), pip or uv."),
    delete_user_files: bool = typer.Option(
        False, "--delete-user-files", help="The old environment may go even though it "
        "holds files you put there (pip's src/ checkouts, notes)."),
    as_json: bool = typer.Option(False, "--json", help="Print {rebuilt: [KERNEL...]} as JSON."),
) -> None:
    """Make kernels' environments again (on a new base after the old one was retired),
    with the packages you asked for; the old kernel stays until the new one starts."""
    from kernelctl import api
    from kernelctl.rebuild import RebuildRequest

    renderer = Renderer(as_json)
    request = RebuildRequest("", base, no_index, tuple(find_links), installer,
                             delete_user_files)
    _answer(renderer, lambda: api.rebuild(names or [], stale, request, os.environ,
                                          kernelctl_home(), renderer.progress, renderer.notice,
                                          each=renderer.preview,
                                          failure=lambda failed: renderer.error(failed.error)))


@app.command(context_settings={"ignore_unknown_options": True})
def run(
    name: str = typer.Argument(..., help="Kernel name.", autocompletion=complete_kernels),
    command: List[str] = typer.Argument(None, help="The command, after `--`."),
) -> None:
    """Run a command in exactly the kernel's environment (its launcher's, with the
    modules, conda activation and base checks), e.g. kernelctl run NAME -- python x.py.
    Exec'd: signals reach it, and its exit status is kernelctl's."""
    from kernelctl.runner import exec_in_kernel

    _run(Renderer(), lambda: exec_in_kernel(name, command or [], os.environ))


@app.command()
def shell(
    name: str = typer.Argument(..., help="Kernel name.", autocompletion=complete_kernels),
) -> None:
    """Start your shell ($SHELL) in the kernel's environment; `exit` leaves it."""
    from kernelctl.runner import exec_in_kernel, shell_command

    renderer = Renderer()
    renderer.notice(f"a shell in the environment of the kernel '{name}' "
                    "($KERNELCTL_KERNEL is set); `exit` leaves it")
    _run(renderer, lambda: exec_in_kernel(name, shell_command(os.environ), os.environ))


@app.command(context_settings={"ignore_unknown_options": True})
def submit(
    name: str = typer.Argument(..., help="Kernel name.", autocompletion=complete_kernels),
    file: Path = typer.Argument(..., help="A Python script (.py) or a notebook (.ipynb)."),
    sbatch_args: List[str] = typer.Argument(None, help="sbatch options, after `--`."),
    arg: List[str] = typer.Option([], "--arg", help="An argument for the script (repeatable)."),
    parameter: List[str] = typer.Option([], "--parameter", "-P",
                                        help="NAME=VALUE for the notebook's parameters "
                                        "(papermill's 'parameters' cell; repeatable)."),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Where the executed notebook goes (default: "
        "STEM-JOBID.ipynb beside it)."),
    in_place: bool = typer.Option(False, "--in-place", help="Write the outputs into the notebook."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the job; exit with its status."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the batch script; submit nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print {job_id, script, log, output} as JSON."),
) -> None:
    """Run a script or a notebook as a Slurm batch job, in exactly the kernel's
    environment (its uenv via #SBATCH --uenv/--view, modules, conda, venv)."""
    from kernelctl import api
    from kernelctl.submit import SubmitRequest

    renderer = Renderer(as_json)
    request = SubmitRequest(name, file, tuple(sbatch_args or ()), tuple(arg), tuple(parameter),
                            output, in_place, wait, dry_run)
    submitted = _run(renderer, lambda: api.submit(request, os.environ, kernelctl_home(),
                                                  renderer.notice))
    if dry_run and not as_json:  # the script is stdout; what it cannot do, stderr
        for line in submitted.submission.notices:
            renderer.notice(line)
    _answer(renderer, lambda: submitted)


@app.command(context_settings={"ignore_unknown_options": True})
def engines(
    name: str = typer.Argument(..., help="Kernel name.", autocompletion=complete_kernels),
    srun_args: List[str] = typer.Argument(None, help="srun options, after `--`."),
    n: int = typer.Option(2, "-n", "--engines", help="How many engines (srun tasks)."),
    stop: bool = typer.Option(False, "--stop", help="Stop the kernel's engines and controller."),
    timeout: float = typer.Option(120.0, "--timeout", min=1.0,
                                  help="Seconds for all engines to register."),
    as_json: bool = typer.Option(False, "--json", help="Print {profile, engines, client} as JSON."),
) -> None:
    """Start ipyparallel engines with srun in the kernel's environment (ipcmagic's
    %ipcluster start); in the notebook: ipp.Client(profile="kernelctl-NAME")."""
    from kernelctl import api

    renderer = Renderer(as_json)
    if stop:
        _answer(renderer, lambda: api.stop_engines(name, os.environ))
    _answer(renderer, lambda: api.start_engines(name, n, srun_args or [], os.environ, timeout))


recipes_app = typer.Typer(help="The base images kernelctl knows by name (recipes).",
                          no_args_is_help=True, rich_markup_mode=None)
app.add_typer(recipes_app, name="recipes")


@recipes_app.command("list")
def list_recipes(
    as_json: bool = typer.Option(False, "--json", help="Print {version, recipes} as JSON."),
) -> None:
    """Every recipe: site, kind, what it loads, and whether this session can use it."""
    from kernelctl import api

    _answer(Renderer(as_json), lambda: api.recipes(os.environ))


@recipes_app.command("show")
def show_recipe(
    name: str = typer.Argument(..., help="Recipe name, as `kernelctl recipes list` shows it.",
                               autocompletion=lambda incomplete: [
                                   b for b in complete_bases(incomplete)
                                   if b not in _base_forms()]),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """One recipe in full: where its file is, what it loads, why it cannot be used here."""
    from kernelctl import api

    _answer(Renderer(as_json), lambda: api.recipe(name, os.environ))


T = TypeVar("T")


def _answer(renderer: Renderer, command: Callable[[], "Result"]) -> NoReturn:
    """Run the command, print its result, exit with the result's status."""
    result = _run(renderer, command)
    renderer.show(result)
    raise typer.Exit(result.exit_code)


def _run(renderer: Renderer, action: Callable[[], T]) -> T:
    """Call the core; a user error becomes a message and an exit code, not a traceback.
    So does a filesystem that is full, read-only or not the user's, wherever it hits."""
    try:
        return action()
    except (KernelctlError, KeyboardInterrupt, OSError) as exc:
        error = as_user_error(exc)
        if error is None:
            raise
        if _state["debug"]:
            import traceback

            traceback.print_exc()
    renderer.error(error)
    raise typer.Exit(error.exit_code)


def main() -> None:
    from kernelctl.quick import printable_output

    printable_output()
    args = global_options_first(sys.argv[1:])
    if args in (["--help"], ["-h"]):
        _help(args)
    app(args=args, prog_name="kernelctl")


def _help(args: List[str]) -> NoReturn:
    """The top-level help, printed and kept for kernelctl.quick to print next time."""
    import contextlib
    import io

    from kernelctl.quick import keep_help

    printed = io.StringIO()
    code = None
    with contextlib.redirect_stdout(printed):
        try:
            app(args=args, prog_name="kernelctl")
        except SystemExit as done:
            code = done.code
    sys.stdout.write(printed.getvalue())
    if not code:
        keep_help(printed.getvalue())
    sys.exit(code)


# Options whose value is the next argument, whatever it looks like: `--arg --debug`
# passes --debug to the user's script.
VALUE_OPTIONS = {"--arg", "--parameter", "-P", "--output", "-o", "--base", "-b", "--name",
                 "-n", "--display-name", "--venv", "--prefix", "--package", "-p",
                 "--requirement", "-r", "--find-links", "--installer", "--from", "--julia",
                 "--threads", "--project", "--timeout", "--engines", "--slurm", "--cpus",
                 "--mem", "--gpus", "--time", "--partition", "--account", "--constraint",
                 "--slurm-arg", "--start-timeout", "--mode"}
# Commands whose arguments after the kernel's name are a program's own (`run NAME CMD...`).
PROGRAM_COMMANDS = {"run"}


def global_options_first(args: List[str]) -> List[str]:
    """`kernelctl list --debug` means `kernelctl --debug list`: the global option is
    accepted in any position that is kernelctl's own: not after `--`, not as the value
    of an option (`--arg --debug`), not in the program `run` runs."""
    end = args.index("--") if "--" in args else len(args)
    debug, rest = [], []
    positional, i = 0, 0
    command = None
    while i < end:
        arg = args[i]
        if arg == "--debug":
            debug.append(arg)
        elif arg in VALUE_OPTIONS and i + 1 < end:
            rest += [arg, args[i + 1]]
            i += 2
            continue
        else:
            rest.append(arg)
            if not arg.startswith("-"):
                positional += 1
                command = command or arg
                if command in PROGRAM_COMMANDS and positional == 2:  # the kernel's name
                    rest += args[i + 1:end]
                    break
        i += 1
    return debug + rest + args[end:]
