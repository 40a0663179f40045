"""Build the virtual environment a kernel runs in, on top of a base interpreter."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

from kernelctl.bases import Base
from kernelctl.errors import CommandFailed, DiskFull, KernelctlError
from kernelctl.installers import PIP_VARIABLES, hide_credentials
from kernelctl.proc import run
from kernelctl.redact import has_credentials, redact
from kernelctl.venvs import Venv

GUARD_MODULE = "kernelctl_guard"
LAYERS_PTH = "kernelctl_layers.pth"
PIP_SHIM = """#!{python}
# Written by kernelctl: runs the base's pip inside this environment, so that
# `pip install` lands here (this environment seeds no pip of its own, to save files).
import sys
from pip._internal.cli.main import main
if __name__ == "__main__":
    sys.exit(main())
"""


def create_venv(root: Path, base: Base) -> Venv:
    """A virtualenv for the base's interpreter, seeing the base's packages.

    The venv seeds pip only when the base has none: the base's pip then serves it
    through small shims, which keeps the venv to a few dozen files (home quotas count).
    """
    from virtualenv import cli_run  # costs ~0.1 s; only `create` pays it

    args = [str(root), "--python", base.python, "--system-site-packages",
            "--no-periodic-update", "--activators", "bash,fish,cshell,python"]
    args += ["--no-seed"] if base.interpreter.pip else ["--no-setuptools", "--no-download"]
    try:
        session = cli_run(args, setup_logging=False)
    except (RuntimeError, SystemExit) as exc:
        raise KernelctlError(f"virtualenv could not create {root}: {exc}",
                             "Run again with --debug for virtualenv's own log.") from exc
    creator = session.creator
    venv = Venv(root=root, python=Path(creator.exe), site_packages=Path(creator.purelib))
    _install_guard(venv, base)
    if base.layers:
        _install_layers(venv, base)
    if base.interpreter.pip:
        _install_pip_shims(venv, base)
    return venv


def _install_guard(venv: Venv, base: Base) -> None:
    source = resources.files("kernelctl").joinpath("resources", f"{GUARD_MODULE}.py").read_text()
    roots = guard_roots(base.shadow_roots)
    source = source.replace("BASE_ROOTS = ()", f"BASE_ROOTS = {roots!r}", 1)
    (venv.site_packages / f"{GUARD_MODULE}.py").write_text(source)
    (venv.site_packages / f"{GUARD_MODULE}.pth").write_text(f"import {GUARD_MODULE}\n")


def guard_roots(roots: Iterable[str]) -> tuple:
    """Image roots as the path guard compares them (it normalises PYTHONPATH entries
    the same way)."""
    return tuple(os.path.normcase(os.path.normpath(root)) for root in roots)


def _install_layers(venv: Venv, base: Base) -> None:
    """The base venv's site-packages, after this venv's own and before the system's:
    site processes this venv's .pth files before it adds the system site-packages.
    addsitedir also runs the base venv's own .pth files (editable installs)."""
    lines = [f"import site; site.addsitedir({layer!r})\n" for layer in base.layers]
    (venv.site_packages / LAYERS_PTH).write_text("".join(lines))


def _install_pip_shims(venv: Venv, base: Base) -> None:
    for name in ("pip", "pip3", f"pip{base.interpreter.major_minor}"):
        shim = venv.bin / name
        shim.write_text(PIP_SHIM.format(python=venv.python))
        shim.chmod(0o755)


def pip_options(no_index: bool, find_links: Sequence[str]) -> list:
    """pip's offline options; anything else comes from pip's own configuration."""
    options = ["--no-index"] if no_index else []
    for link in find_links:
        options += ["--find-links", str(link)]
    return options


def check_pip_inputs(requirement_files: Sequence[Path], find_links: Sequence[str]) -> None:
    for requirements in requirement_files:
        if not os.path.isfile(requirements):
            raise KernelctlError(f"requirements file {requirements} does not exist",
                                 "Pass an existing file to -r.")
    for link in find_links:
        if "://" not in str(link) and not os.path.exists(link):
            raise KernelctlError(f"--find-links {link} does not exist",
                                 "Pass a directory of wheels or a URL.")


def install_packages(venv: Venv, requested: Sequence[str], requirement_files: Sequence[Path],
                     pip_options: Sequence[str], env: Mapping[str, str],
                     also: Sequence[str] = (), uv: Optional[str] = None) -> None:
    """Install into the venv so that what the user names lands here and wins: with uv
    when `uv` is given (kernelctl.installers), else with pip.

    Plain pip answers "Requirement already satisfied" when the base has a copy, so the
    named packages go in first with --force-reinstall --no-deps (a copy outside the venv
    is never touched: pip leaves it alone). A second, ordinary run then adds their
    dependencies and `also` (e.g. ipykernel), reusing whatever the base already has.
    """
    # --no-compile: as uv, no bytecode at install time; Python writes it on first import
    # (measured in bench/bench_install.py: installs take much less, a first import more).
    with tempfile.TemporaryDirectory(prefix="kernelctl-pip-") as private:
        # Credentials (a token in a URL) go to pip through a 0600 file or the
        # environment, never argv, which every user of the node can read.
        options, hidden = hide_credentials(pip_options, PIP_VARIABLES, env)
        secret = [r for r in requested if has_credentials(r)]
        if secret:
            requested = [r for r in requested if r not in secret]
            requirement_files = [*requirement_files, Path(private, "requirements.txt")]
            Path(private, "requirements.txt").write_text("".join(f"{r}\n" for r in secret))
        try:
            _install(venv, requested, requirement_files, options, {**env, **hidden}, also, uv)
        except DiskFull as exc:  # pip only says "No space left": name where the venv is
            if exc.where:
                raise
            raise exc.on(str(venv.root)) from exc


def _install(venv: Venv, requested: Sequence[str], requirement_files: Sequence[Path],
             pip_options: Sequence[str], env: Mapping[str, str], also: Sequence[str],
             uv: Optional[str]) -> None:
    pip = [str(venv.python), "-m", "pip", "install", "--no-warn-script-location", "--no-compile",
           *pip_options]
    requirements = [arg for path in requirement_files for arg in ("-r", str(path))]
    # PIP_REQUIRE_VIRTUALENV: should the venv's pyvenv.cfg vanish, its python is the base
    # interpreter, and pip must refuse rather than install into the base.
    pip_env = {**env, "PIP_DISABLE_PIP_VERSION_CHECK": env.get("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
               "PIP_REQUIRE_VIRTUALENV": "1"}
    hint = ("Check the package names and versions. Offline (compute nodes): use "
            "--no-index --find-links DIR with a directory of wheels.")
    try:
        if uv is not None and (requested or requirement_files or also):
            from kernelctl.installers import uv_install

            try:
                uv_install(uv, venv, requested, requirement_files, pip_options, pip_env, also)
                return
            except CommandFailed as exc:  # a pip before 22.2 cannot report: pip installs
                if "--report" not in exc.message:
                    raise
        if requested or requirement_files:
            run([*pip, "--force-reinstall", "--no-deps", *requested, *requirements],
                env=pip_env, what="pip install", hint=hint)
        if requested or requirement_files or also:
            run([*pip, *requested, *also, *requirements], env=pip_env, what="pip install",
                hint=hint)
    except CommandFailed as exc:
        missing = NOT_FOUND_RE.search(exc.message)
        if missing is None:
            raise
        raise _not_found(missing.group(1), venv, pip_options, pip_env) from exc


NOT_FOUND_RE = re.compile(r"No matching distribution found for ([^\s;]+)")


def _not_found(requirement: str, venv: Venv, pip_options: Sequence[str],
              env: Mapping[str, str]) -> KernelctlError:
    """The distribution pip could not find, where it looked (the options given and pip's
    own configuration), and how to fill a wheelhouse from a node that is online."""
    name = re.split(r"[<>=!~\[ ]", requirement, 1)[0]
    from kernelctl.installers import pip_settings

    places = [pip_options[i + 1] for i, option in enumerate(pip_options[:-1])
              if option == "--find-links"]
    # pip's configuration as pip applies it (variables over files, later files first).
    settings = pip_settings(venv.python, env)
    offline = "--no-index" in pip_options or "--no-index" in settings
    places += [f"{option[2:]} {value} (pip configuration)"
               for option, value in zip(settings, settings[1:])
               if option in ("--find-links", "--index-url", "--extra-index-url")]
    where = "; ".join(places) or ("the package index" if not offline else
                                  "nowhere (offline, and no wheelhouse was given by "
                                  "--find-links or pip's configuration)")
    wheelhouse = next((p for p in pip_options[1:] if os.path.isdir(p)), "WHEELHOUSE")
    version = ".".join(venv.python.resolve().name.replace("python", "").split(".")[:2]) \
        or "3.X"
    return KernelctlError(redact(
        f"pip found no distribution of {name}"
        + (f" ({requirement})" if requirement != name else "") + f"; it looked in: {where}"),
        redact(f"On a login node (online), put it in the wheelhouse: pip download --dest "
               f"{wheelhouse} --only-binary=:all: --python-version {version} {requirement!r}"
               + (" (ipykernel must be there when the base lacks it)" if name == "ipykernel"
                  else "")))


def kernel_env(venv: Venv, base: Base, env: Mapping[str, str], own_bin: Optional[Path]) -> dict:
    """The env block of kernel.json: absolute values only, venv first, no empty entries,
    and what the base must set (a conda env's activation variables).

    Values are frozen now rather than written as ${PATH}: jupyter_client leaves an unset
    variable as literal text. KernelSpec escapes `$` for jupyter_client.
    """
    path = _unique([str(venv.bin)] + [p for p in env.get("PATH", "").split(os.pathsep)
                                      if p and Path(p) != own_bin])
    pythonpath = _unique([str(venv.site_packages), *base.pythonpath])
    return {**base.kernel_vars, "VIRTUAL_ENV": str(venv.root), "PATH": os.pathsep.join(path),
            "PYTHONPATH": os.pathsep.join(pythonpath)}


def own_bin() -> Optional[Path]:
    """kernelctl's own venv bin dir, kept out of kernels' PATH (kernels outlive the tool)."""
    return Path(sys.executable).parent if sys.prefix != sys.base_prefix else None


def _unique(entries: Sequence[str]) -> list:
    return list(dict.fromkeys(entries))
