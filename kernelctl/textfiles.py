"""Reading the small files kernelctl parses (recipes, definitions, records, conda's
env_vars, notebooks) so that no file, however hostile, gets past as a traceback: a size
limit, UTF-8, no NaN or Infinity, and nesting too deep for the parser said as such.
Each raises ValueError with a one-line reason; callers name the file and the fix."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

MAX_BYTES = 1 << 20  # kernelctl's own files are kilobytes


def read_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The file's text; OSError (missing, unreadable) passes through to the caller."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if max_bytes and size > max_bytes:
            raise ValueError(f"it is {size} bytes, more than such a file ever holds "
                             f"({max_bytes})")
        data = handle.read(max_bytes + 1 if max_bytes else -1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"it is not UTF-8 text (byte {exc.start})") from None


def parse_toml(text: str) -> dict:
    # Imported here: `list` reads JSON only, and pays nothing for TOML.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"it is not valid TOML ({exc})") from None
    except RecursionError:
        raise ValueError("it is nested too deeply to be read") from None


def parse_json(text: str) -> object:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("it is nested too deeply to be read") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"it is not valid JSON ({exc})") from None


def _no_constant(name: str) -> object:
    raise ValueError(f"it holds {name}, which JSON does not allow")


def load_toml(path: Path) -> dict:
    return parse_toml(read_text(path))


def load_json(path: Path, max_bytes: int = MAX_BYTES) -> object:
    return parse_json(read_text(path, max_bytes))
