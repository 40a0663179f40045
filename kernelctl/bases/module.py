"""`--base module:NAME[/VERSION][,NAME...]` and module recipes: the python3 that Lmod
modules provide (Alliance, DKRZ, PDC).

The kernel loads the same modules, at the versions Lmod resolved at create time, each
time it starts (docs/bases.md says why: loading follows the site's fixes to a version's
modulefile, where a copy of the environment would go stale; it costs ~0.05 s).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence, Tuple

from kernelctl import shell
from kernelctl.bases import Base
from kernelctl.bases.kind import BaseKind
from kernelctl.binding import Binding
from kernelctl.errors import KernelctlError
from kernelctl.paths import is_within, path_list
from kernelctl.recipes import strings

if TYPE_CHECKING:
    from kernelctl.lmod import Loaded
    from kernelctl.recipes import Recipe

PREFIX = "module:"


class ModuleKind(BaseKind):
    detect_order = 30
    takes_recipes = True

    def resolve(self, spec: str, env: Mapping[str, str]) -> Base:
        names = [name.strip() for name in spec[len(PREFIX):].split(",") if name.strip()]
        return modules_base(names, env)

    def detect(self, env: Mapping[str, str]) -> Optional[Tuple[Base, str]]:
        """The modules loaded in this terminal, when they provide python3."""
        loaded = path_list(env.get("LOADEDMODULES"))
        if not loaded:
            return None
        try:
            base = modules_base(loaded, env)
        except KernelctlError as exc:
            raise KernelctlError(f"the loaded modules were passed over: {exc.message}") from exc
        return base, f"these modules are loaded and provide python3: {', '.join(loaded)}"

    def recipe_fields(self, table: Mapping[str, Any]) -> Dict[str, Any]:
        modules = strings(table, "modules", "base.modules")
        if not modules:
            raise ValueError("'base.modules' must name at least one module")
        return {"modules": tuple(modules)}

    def recipe_loads(self, recipe: "Recipe") -> str:
        return "modules " + ", ".join(recipe.base["modules"])

    def from_recipe(self, recipe: "Recipe", env: Mapping[str, str]) -> Base:
        return modules_base(list(recipe.base["modules"]), env, recipe)

    def unusable(self, recipe: "Recipe", env: Mapping[str, str]) -> Optional[str]:
        """Why this session cannot use a module recipe: no Lmod, or modules it lacks."""
        from kernelctl import lmod

        try:
            command = lmod.find_lmod(env)
        except KernelctlError as exc:
            return exc.message
        known = lmod.every_module(command, env)
        absent = [name for name in recipe.base["modules"]
                  if lmod.find_loaded(name, known) is None]
        if absent:
            return (f"Lmod here has no module {', '.join(absent)} "
                    f"(MODULEPATH={env.get('MODULEPATH', '')})")
        return None

    def unavailable_message(self, base: Base, rebuild: str) -> str:
        return (f"kernelctl: this kernel's modules ({base.label}) cannot be loaded in this "
                "session: a version was retired, or Lmod is not reachable. In a terminal, "
                "`module load` them to see why, or rebuild the kernel on what the site has "
                f"now, with its packages: {rebuild}")

    def current_spec(self, binding: Binding) -> str:
        """The same modules at the site's default versions."""
        modules = binding.extra.get("modules") or ""
        return PREFIX + ",".join(m.split("/")[0] for m in modules.split(",") if m)

    def missing(self, binding: Binding) -> Optional[str]:
        """Modulefiles that are gone: the site retired the version the kernel was pinned to."""
        modulefiles = binding.extra.get("modulefiles")
        gone = [f for f in path_list(modulefiles) if not os.path.isfile(f)]
        if not gone:
            return None
        return (f"its modules ({binding.extra.get('modules')}) can no longer be loaded: "
                f"the modulefile {gone[0]} is gone (the site retired that version?)")

    def job_steps(self, binding: Binding) -> str:
        return f"loads the modules {(binding.extra.get('modules') or '').replace(',', ' ')}"


KIND = ModuleKind()


def modules_base(names: Sequence[str], env: Mapping[str, str],
                 recipe: Optional["Recipe"] = None) -> Base:
    from kernelctl import lmod
    from kernelctl.bases.interpreters import interpreter_layers

    lmod.check_module_names(names)
    command = lmod.find_lmod(env)
    loaded = lmod.load(command, names, env)
    active = loaded.apply(env)
    python = _modules_python(names, loaded, env, active)
    interpreter, build_on, base_env, layers = interpreter_layers(python, active)
    added = loaded.added_pythonpath
    label = PREFIX + ",".join(loaded.pinned)
    return Base(
        kind="module", name="module", label=label, python=build_on, interpreter=interpreter,
        recipe=recipe.name if recipe else None, base_env=base_env, layers=layers,
        pythonpath=tuple(added), shadow_roots=tuple(added),
        packages=recipe.packages if recipe else (),
        session_env={k: v for k, v in loaded.changes.items()},
        loads_at_launch=True, unloaded=dict(loaded.purged),
        kernel_name=recipe.name if recipe else "-".join(loaded.pinned),
        launch_steps=launch_steps(command, env.get("MODULEPATH", ""), loaded.pinned),
        binding_extra={"modules": ",".join(loaded.pinned), "lmod": str(command),
                       "modulepath": env.get("MODULEPATH") or None,
                       "modulefiles": os.pathsep.join(loaded.modulefiles) or None},
    )


def _modules_python(names: Sequence[str], loaded: "Loaded", env: Mapping[str, str],
                    active: Mapping[str, str]) -> Path:
    """The python3 the modules put on PATH; one from outside them would be missing
    when the kernel starts with only these modules loaded."""
    python = shutil.which("python3", path=active.get("PATH"))
    pinned = loaded.pinned
    if python and any(is_within(python, entry) for entry in loaded.added_path):
        return Path(python)
    already = [m for m in path_list(env.get("LOADEDMODULES")) if "python" in m.lower()]
    hint = (f"Name the module that provides it too, e.g. --base module:{already[0]},"
            f"{','.join(names)}" if already else
            "Add the module that provides Python, e.g. --base module:python,"
            f"{','.join(names)} (`module spider python` lists them).")
    raise KernelctlError(f"the modules {', '.join(pinned)} do not provide python3"
                         + (f" (python3 here is {python}, from outside them)" if python else ""),
                         hint)


# Run by kernelctl-launch.sh before it starts Python: `python` is the venv's python.
LAUNCH_STEPS = """\
# The modules this kernel was built on, at the versions pinned when it was made.
lmod={lmod}
[ -x "$lmod" ] || lmod=${{LMOD_CMD:-$lmod}}
{modulepath}if loaded=$("$lmod" sh --quiet load {modules} 2>/dev/null); then
  eval "$loaded"
  PATH="${{python%/*}}:$PATH"; export PATH  # the environment's own bin stays first
else
  base_here=no
fi
"""


def launch_steps(lmod: Path, modulepath: str, pinned: Sequence[str]) -> str:
    # The MODULEPATH they were loaded from first, then the server's own (a site's
    # JupyterLab may have modules loaded).
    search = (f"MODULEPATH={shell.quote(modulepath)}${{MODULEPATH:+:$MODULEPATH}}; "
              "export MODULEPATH\n" if modulepath else "")
    return LAUNCH_STEPS.format(lmod=shell.quote(str(lmod)), modulepath=search,
                               modules=" ".join(shell.quote(m) for m in pinned))
