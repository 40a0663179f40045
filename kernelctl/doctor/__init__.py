"""`kernelctl doctor`: find, explain and fix what breaks Jupyter kernels on HPC.

Checks are small functions registered with @check; each looks at a Context and yields
CheckResults (id, status, message, hint, and optionally a safe Fix). See
docs/troubleshooting.md for every check and the messages users actually see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Optional

from kernelctl.errors import KernelctlError
from kernelctl.inventory import Session
from kernelctl.model import KernelInfo

STATUSES = ("ok", "warn", "fail")


@dataclass(frozen=True)
class Fix:
    """A safe, reversible repair, shown to the user before it is applied."""

    description: str
    apply: Callable[[], None] = field(compare=False, repr=False)


@dataclass(frozen=True)
class CheckResult:
    id: str
    status: str  # ok | warn | fail
    message: str
    hint: str = ""
    kernel: Optional[str] = None
    fix: Optional[Fix] = field(default=None, compare=False)

    def to_json(self) -> dict:
        return {"id": self.id, "status": self.status, "kernel": self.kernel,
                "message": self.message, "hint": self.hint}


@dataclass(frozen=True)
class Context:
    env: Mapping[str, str]
    session: Session
    kernels: tuple  # the kernels to check: all, or the named ones
    shadowed: tuple  # same-named kernels hidden behind those
    deep: bool = False
    timeout: float = 60.0
    home: Optional[Path] = None  # $KERNELCTL_HOME: repairs take kernelctl's locks there


Check = Callable[[Context], Iterator[CheckResult]]
CHECKS: list = []


def check(function: Check) -> Check:
    CHECKS.append(function)
    return function


def kernel_result(kernel: KernelInfo, check_id: str, status: str, message: str,
                  hint: str = "", fix: Optional[Fix] = None) -> CheckResult:
    return CheckResult(check_id, status, message, hint, kernel.name, fix)


def examine(names: list, env: Mapping[str, str], deep: bool, timeout: float,
            approve: Optional[Callable[[list], bool]], home: Optional[Path] = None) -> list:
    """Diagnose; with `approve`, offer the safe fixes found, apply the approved ones, and
    diagnose again so the report shows what is left."""
    results = diagnose(names, env, deep, timeout, home)
    if approve is None:
        return results
    fixes = [result.fix for result in results if result.fix]
    if not approve(fixes):
        return results
    for fix in fixes:
        try:
            fix.apply()
        except OSError as exc:
            raise KernelctlError(f"could not {fix.description}: {exc.strerror}",
                                 "Check the permissions and free space there, then run "
                                 "kernelctl doctor --fix again.") from exc
    return diagnose(names, env, deep, timeout, home)


def diagnose(names: list, env: Mapping[str, str], deep: bool = False,
             timeout: float = 60.0, home: Optional[Path] = None) -> list:
    from kernelctl.inventory import find_kernel, find_kernels, is_shadowed

    _load_checks()

    everything = find_kernels(env, include_shadowed=True)
    if names:
        chosen = list({k.resource_dir: k for k in (find_kernel(n, env) for n in names)}.values())
    else:
        chosen = [k for k in everything if k.visible or not is_shadowed(k)]
    wanted = {k.name for k in chosen}
    shadowed = tuple(k for k in everything if is_shadowed(k) and k.name in wanted)
    context = Context(env, Session.current(env), tuple(chosen), shadowed, deep, timeout, home)
    return [result for function in CHECKS for result in function(context)]


CHECK_MODULES = ("session", "kernels", "storage", "logs", "pitfalls", "deep")


def _load_checks() -> None:
    """Import the check modules, in report order; importing registers their checks."""
    import importlib

    for module in CHECK_MODULES:
        importlib.import_module(f"kernelctl.doctor.{module}")


def failed(results: list) -> bool:
    return any(result.status == "fail" for result in results)
