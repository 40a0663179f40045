"""The one module that writes shell: kernel launchers, batch scripts, dry-run output.

Every value goes through `quote`, every variable name through `name`, every comment
through `comment` and every Slurm directive through `directive`; no other module puts
text into a script by concatenation. What cannot be written safely (a NUL, a name that
is not a shell name, a newline in a directive) is refused with a KernelctlError that
says where it came from.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from typing import Iterable, Mapping

from kernelctl.errors import KernelctlError

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Characters sbatch's #SBATCH parser takes as they are; every other one is escaped.
SLURM_PLAIN = re.compile(r"[A-Za-z0-9_./=,@+%:~-]")


def quote(value: str, where: str = "a value") -> str:
    """`value` as one shell word, whatever it holds."""
    if "\0" in value:
        raise KernelctlError(f"{where} holds a NUL character, which no program can be given",
                             "Remove it.")
    return shlex.quote(value)


def words(values: Iterable[str], where: str = "a value") -> str:
    return " ".join(quote(v, where) for v in values)


def name(variable: str, where: str) -> str:
    """A variable name a shell can export (what every POSIX shell and env accept)."""
    if not NAME.match(variable):
        raise KernelctlError(
            f"{shown(variable)!s} from {where} is not an environment variable name a shell "
            "can set", "Names are letters, digits and '_', not starting with a digit: "
            "rename or remove it.")
    return variable


def check_names(variables: Mapping[str, str], where: str) -> None:
    for variable in variables:
        name(variable, where)


def export(variable: str, value: str, where: str) -> str:
    return f"export {name(variable, where)}={quote(value, f'the value of {variable}')}"


def shown(text: str) -> str:
    """`text` on one line, as a human reads it: control characters (newline, carriage
    return, line separators, escape sequences) written as escapes; the rest as is."""
    return "".join(ch if ch == " " or (ch.isprintable() and unicodedata.category(ch)[0] != "Z")
                   else ch.encode("unicode_escape").decode("ascii") for ch in text)


def comment(text: str) -> str:
    """A comment line that can never end early: nothing in `text` starts a new line."""
    return "# " + shown(text)


def directive(args: Iterable[str], prefix: str = "#SBATCH") -> str:
    """One `#SBATCH` line carrying `args` exactly as sbatch's own parser will split them
    (backslash escapes, quotes, `#` starts a comment there)."""
    return f"{prefix} " + " ".join(_slurm_word(arg) for arg in args)


def _slurm_word(arg: str) -> str:
    """One argument for a #SBATCH line: double-quoted (sbatch's parser groups quoted
    text, keeps `'`, `#`, `$` and spaces in it, and takes `\\"` for a quote, old
    versions and new alike), plain when nothing in it needs quoting."""
    if any(not ch.isprintable() for ch in arg):
        raise KernelctlError(f"the sbatch option {shown(arg)} has a control character (a "
                             "newline?), which a #SBATCH line cannot hold", "Remove it.")
    if "\\" in arg:  # Slurm 22.05 keeps a backslash as is, newer ones take it as an escape
        raise KernelctlError(f"the sbatch option {arg} contains a backslash, which Slurm "
                             "versions read differently in #SBATCH lines",
                             "Rename the file or directory without it.")
    if "packjob" in arg.lower():  # sbatch blanks this word anywhere on a directive line
        raise KernelctlError(f"the sbatch option {arg} contains 'packjob', which sbatch "
                             "erases from #SBATCH lines", "Rename the file or directory.")
    if all(SLURM_PLAIN.match(ch) for ch in arg) and not arg.startswith(":"):
        return arg
    return '"' + arg.replace('"', '\\"') + '"'


def slurm_filename(path: str) -> str:
    """A path for --output/--error with its `%` kept literal (sbatch expands %j, %u,
    %x...: a directory named `50%x` must stay that directory)."""
    return path.replace("%", "%%")
