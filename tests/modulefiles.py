"""A real Lmod modulefile tree, in the shapes the seed sites use (docs/testing.md).

- Alliance (EasyBuild): `StdEnv/2023` (Lua) opens a hierarchy holding `python/3.11.5`,
  whose installation has a `sitecustomize.py` honouring EBPYTHONPREFIXES, and
  `scipy-stack/2023b`, which adds its packages by EBPYTHONPREFIXES, not PYTHONPATH.
- DKRZ: `python3/2023.01` (Tcl), a Python with its packages on PYTHONPATH, and
  `anaconda3/2023.09` (Lua), an Anaconda installation (a conda prefix).
- PDC: `anaconda/2023.09` (Tcl), the same kind of installation.

The Python installations are real: a copy of the test Python's binary in a prefix of
its own, whose stdlib is linked to the original's (no squashfs or EasyBuild needed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

LMOD_CMD = "/usr/share/lmod/lmod/libexec/lmod"
PY_MM = f"{sys.version_info[0]}.{sys.version_info[1]}"
# Written the way EasyBuild's own does its job; kernelctl must not depend on its details.
SITECUSTOMIZE = """\
import os, site, sys
_postfix = os.path.join("lib", "python%d.%d" % sys.version_info[:2], "site-packages")
for _prefix in os.environ.get("EBPYTHONPREFIXES", "").split(os.pathsep):
    if _prefix and os.path.isdir(os.path.join(_prefix, _postfix)):
        site.addsitedir(os.path.join(_prefix, _postfix))
"""


@dataclass
class ModuleTree:
    root: Path
    core: Path  # MODULEPATH before anything is loaded
    python_prefix: Path  # what the python module installs
    stack_prefix: Path  # scipy-stack's packages (EBPYTHONPREFIXES)
    dkrz_packages: Path  # the DKRZ module's PYTHONPATH entry
    anaconda_prefix: Path  # what DKRZ's anaconda3 and PDC's anaconda modules provide

    def session_env(self, base: dict) -> dict:
        """A terminal where Lmod is set up and nothing is loaded."""
        return {**base, "LMOD_CMD": LMOD_CMD, "MODULEPATH": str(self.core)}


def python_installation(prefix: Path) -> Path:
    """A Python installed at `prefix`: the binary copied, the stdlib linked, its own
    empty site-packages (with EasyBuild's sitecustomize.py)."""
    real = Path(sys.base_prefix)
    lib = prefix / "lib" / f"python{PY_MM}"
    (prefix / "bin").mkdir(parents=True)
    (lib / "site-packages").mkdir(parents=True)
    binary = prefix / "bin" / f"python{PY_MM}"
    binary.write_bytes((real / "bin" / f"python{PY_MM}").read_bytes())
    binary.chmod(0o755)
    (prefix / "bin" / "python3").symlink_to(binary.name)
    for shared in (real / "lib").glob("libpython*"):
        (prefix / "lib" / shared.name).symlink_to(shared)
    for entry in (real / "lib" / f"python{PY_MM}").iterdir():
        if entry.name != "site-packages":
            (lib / entry.name).symlink_to(entry)
    (lib / "site-packages" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return prefix / "bin" / "python3"


def pip_target(target: Path, wheels, *packages: str) -> None:
    """Install `packages` into the directory `target`, offline from `wheels` (one
    directory or a list of them)."""
    links = [arg for directory in (wheels if isinstance(wheels, list) else [wheels])
             for arg in ("--find-links", str(directory))]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", *links,
                    "--target", str(target), *packages],
                   check=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def build_tree(root: Path, wheels: Path, wheelhouse: Path) -> ModuleTree:
    """Alliance's python comes without ipykernel (the venv installs it from the
    wheelhouse, as Alliance's docs do); DKRZ's module has it on PYTHONPATH."""
    software = root / "software"
    python_prefix = software / "python" / "3.11.5"
    python_installation(python_prefix)
    stack = software / "scipy-stack" / "2023b"
    pip_target(stack / "lib" / f"python{PY_MM}" / "site-packages", wheels,
               "kctl_extra", "kctl_shadow==1.0")
    dkrz_prefix = software / "python3-dkrz"
    python_installation(dkrz_prefix)
    dkrz_packages = dkrz_prefix / "packages"
    pip_target(dkrz_packages, [wheels, wheelhouse], "kctl_extra", "kctl_shadow==1.0",
               "ipykernel")

    anaconda = software / "anaconda3" / "2023.09"
    python_installation(anaconda)
    (anaconda / "conda-meta").mkdir()
    pip_target(anaconda / "lib" / f"python{PY_MM}" / "site-packages", [wheels, wheelhouse],
               "kctl_extra", "kctl_shadow==1.0", "ipykernel")

    core, hierarchy = root / "modules" / "core", root / "modules" / "gcccore"
    write(core / "StdEnv" / "2023.lua", f"""\
whatis("The standard environment, 2023")
prepend_path("MODULEPATH", "{hierarchy}")
setenv("CC_CLUSTER", "testcluster")
""")
    write(hierarchy / "python" / "3.11.5.lua", f"""\
whatis("Python 3.11.5")
local root = "{python_prefix}"
prepend_path("PATH", pathJoin(root, "bin"))
setenv("EBROOTPYTHON", root)
setenv("EBVERSIONPYTHON", "3.11.5")
""")
    write(hierarchy / "scipy-stack" / "2023b.lua", f"""\
whatis("NumPy, SciPy, pandas... for Python 3.11")
depends_on("python/3.11.5")
local root = "{stack}"
prepend_path("EBPYTHONPREFIXES", root)
setenv("EBROOTSCIPYMINSTACK", root)
""")
    write(core / "python3" / "2023.01", f"""\
#%Module1.0
## DKRZ style: a Python with its packages on PYTHONPATH (Tcl).
module-whatis "Python 3 with the DKRZ software stack"
prepend-path PATH {dkrz_prefix}/bin
prepend-path PYTHONPATH {dkrz_packages}
setenv DKRZ_PYTHON_ROOT {dkrz_prefix}
""")
    write(core / "anaconda3" / "2023.09.lua", f"""\
whatis("Anaconda 2023.09")
prepend_path("PATH", "{anaconda}/bin")
""")
    write(core / "anaconda" / "2023.09", f"""\
#%Module1.0
module-whatis "Anaconda 2023.09 (PDC)"
prepend-path PATH {anaconda}/bin
""")
    write(core / "cdo" / "2.2.0.lua", 'whatis("Climate data operators (no Python)")\n'
          'setenv("CDO_ROOT", "/nonexistent/cdo")\n')
    return ModuleTree(root=root, core=core, python_prefix=python_prefix, stack_prefix=stack,
                      dkrz_packages=dkrz_packages, anaconda_prefix=anaconda)


@pytest.fixture(scope="session")
def module_tree(tmp_path_factory, test_wheels, wheelhouse) -> ModuleTree:
    if not os.access(LMOD_CMD, os.X_OK):
        pytest.fail(f"Lmod is not installed ({LMOD_CMD}): `make test` installs Debian's lmod")
    return build_tree(tmp_path_factory.mktemp("lmod"), test_wheels, wheelhouse)
