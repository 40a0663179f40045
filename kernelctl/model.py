"""The kernel object every command reports (see docs/json.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

JSON_FORMAT_VERSION = 1
# kernelctl's own block in kernel.json metadata.
METADATA_KEY = "kernelctl"


@dataclass(frozen=True)
class KernelInfo:
    name: str
    display_name: str
    language: str
    resource_dir: Path
    managed: bool  # made by kernelctl (its kernel.json carries metadata.kernelctl)
    status: str  # ok | broken | mismatch | unknown
    problems: tuple = ()
    base: Optional[dict] = None
    venv: Optional[Path] = None
    # False for what Jupyter does not offer: a same-named kernel earlier on the path
    # shadows it, or Jupyter skips the entry (no kernel.json, a name it rejects).
    visible: bool = True
    spec: Optional[dict] = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        return {
            "name": self.name, "display_name": self.display_name,
            "language": self.language, "resource_dir": str(self.resource_dir),
            "managed": self.managed, "status": self.status,
            "problems": list(self.problems), "base": self.base,
            "venv": str(self.venv) if self.venv else None,
            "visible": self.visible,
        }
