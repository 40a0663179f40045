"""A kernel's environment outside the notebook: `kernelctl run` and `kernelctl shell`.

Commands go through the kernel's own launcher (kernelctl-launch.sh) in its run mode,
with kernel.json's env applied the way jupyter_client applies it. The launcher loads
the modules, sources the conda activation and checks the base exactly as it does for
the kernel, then execs the command instead of ipykernel: the two cannot differ.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from kernelctl.bases import bring_up as base_bring_up
from kernelctl.errors import KernelctlError
from kernelctl.kernelspec import LAUNCHER, RUN_FLAG
from kernelctl.model import KernelInfo, Status, expand


@dataclass(frozen=True)
class KernelCommand:
    kernel: KernelInfo
    launcher: tuple  # [shell, launcher, RUN_FLAG]: put the command after it
    spec_env: dict  # kernel.json's env as stored (jupyter_client's `$` syntax)
    # What brings the kernel's image up first (`uenv run --view=V LABEL --`); then
    # kernel.json's env is applied inside it, after the image's own, as in a session.
    bring_up: tuple = ()

    def values(self, session: Mapping[str, str]) -> dict:
        """kernel.json's env as Jupyter gives it to the kernel from `session` (`$$` a
        literal `$`, `${VAR}` filled in), plus KERNELCTL_KERNEL."""
        values = {key: expand(value, session) for key, value in self.spec_env.items()}
        return {**values, "KERNELCTL_KERNEL": self.kernel.name}

    def env(self, session: Mapping[str, str]) -> dict:
        """The session's environment updated with kernel.json's, as jupyter_client does."""
        if self.bring_up:
            return dict(session)  # kernel.json's env goes in after the image's (argv)
        return {**session, **self.values(session)}

    def argv(self, command: Sequence[str], session: Mapping[str, str] = {}) -> list:
        if self.bring_up:
            assignments = [f"{key}={value}" for key, value in self.values(session).items()]
            return [*self.bring_up, "/usr/bin/env", *assignments, *self.launcher, *command]
        return [*self.launcher, *command]


def kernel_command(name: str, env: Mapping[str, str], allow: Sequence[Status] = (Status.OK,)
                   ) -> KernelCommand:
    """How to run commands in the kernel `name`'s environment; a clear error when it has
    none that kernelctl can reproduce, or its health is not in `allow`."""
    from kernelctl.inventory import find_kernel

    kernel = find_kernel(name, env)
    launcher = kernel.resource_dir / LAUNCHER
    if not kernel.managed or kernel.spec is None:
        raise KernelctlError(
            f"the kernel '{kernel.name}' was not made by kernelctl, so kernelctl does not "
            "know its environment",
            f"Let kernelctl take it over first: kernelctl adopt {kernel.name}")
    if not os.path.isfile(launcher):
        raise KernelctlError(
            f"the kernel '{kernel.name}' ({kernel.language or 'no language'}) has no "
            "kernelctl launcher to run commands through",
            "run, submit and engines work with the Python kernels kernelctl makes; "
            f"`kernelctl show {kernel.name}` shows this one's command and environment.")
    if not _has_run_mode(launcher):
        raise KernelctlError(
            f"the kernel '{kernel.name}' was made by an older kernelctl whose launcher "
            "cannot run other commands",
            f"Rebuild it (same name and packages, a new launcher): kernelctl rebuild "
            f"{kernel.name}")
    bring_up: tuple = ()
    if kernel.status is Status.MISMATCH and Status.MISMATCH not in allow and kernel.base:
        bring_up = tuple(base_bring_up(kernel.base, env) or ())
    if kernel.status not in allow and not bring_up:
        problems = "; ".join(kernel.problems) or str(kernel.status)
        raise KernelctlError(f"the kernel '{kernel.name}' is {kernel.status}: {problems}",
                             f"`kernelctl doctor` explains it; `kernelctl show {kernel.name}` "
                             "shows what it was built on.")
    return KernelCommand(kernel, (kernel.spec.argv[0], str(launcher), RUN_FLAG),
                         dict(kernel.spec.env), bring_up)


def _has_run_mode(launcher: Path) -> bool:
    try:
        with open(launcher, encoding="utf-8", errors="replace") as text:
            return RUN_FLAG in text.read()
    except OSError:
        return False


def exec_in_kernel(name: str, command: Sequence[str], env: Mapping[str, str]) -> None:
    """Replace kernelctl with `command` in the kernel's environment: the same pid, so
    signals reach it and its exit status is kernelctl's."""
    if not command:
        raise KernelctlError("no command given",
                             f"Put it after `--`: kernelctl run {name} -- python script.py")
    target = kernel_command(name, env)
    argv = target.argv(command, env)
    os.execve(argv[0], argv, target.env(env))


def shell_command(env: Mapping[str, str]) -> list:
    """The user's shell (interactive when on a terminal, as shells decide themselves)."""
    return [env.get("SHELL") or "/bin/sh"]
