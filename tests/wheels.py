"""Build tiny but real wheels on the spot, so no test needs an index or the internet."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def build_wheel(dest: Path, name: str, version: str, payload_bytes: int = 0,
                requires: tuple = ()) -> Path:
    """A pure-Python wheel whose package reports its own version (and file location).

    payload_bytes adds a data file of that size, for tests that need a big write;
    `requires` are its Requires-Dist lines.
    """
    dest.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"__version__ = {version!r}\n".encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires)).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: kernelctl-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"),
    }
    if payload_bytes:
        files[f"{name}/payload.bin"] = bytes(range(256)) * (payload_bytes // 256 + 1)
    record = "".join(f"{path},sha256={_digest(data)},{len(data)}\n" for path, data in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
