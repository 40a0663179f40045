"""What doctor checks see (Context) and say (CheckResult, with an optional safe Fix)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Optional

from kernelctl.inventory import Session
from kernelctl.model import KernelInfo


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
    srun: bool = False  # also probe each kernel's environment in an srun step


Check = Callable[[Context], Iterator[CheckResult]]


def kernel_result(kernel: KernelInfo, check_id: str, status: str, message: str,
                  hint: str = "", fix: Optional[Fix] = None) -> CheckResult:
    return CheckResult(check_id, status, message, hint, kernel.name, fix)
