"""What kernelctl writes for a shell (kernelctl/shell.py) is safe for any input.

- Golden files: the launcher for every base kind and the batch script, with paths that
  hold spaces, quotes, `%`, `$`, backticks and non-ASCII (tests/golden/; set
  UPDATE_GOLDEN=1 to rewrite them after a deliberate change, and read the
  diff). Each passes `dash -n`, `bash -n` and shellcheck.
- Fuzzing (hypothesis): arbitrary text in every field that reaches a script, then the
  script is *run*: no injected command ever runs (a marker file never appears), and
  what cannot be represented is refused with a KernelctlError.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernelctl import shell
from kernelctl.bases import conda, container, module
from kernelctl.binding import PythonBinding
from kernelctl.errors import KernelctlError
from kernelctl.kernelspec import RUN_FLAG, launcher_script
from kernelctl.model import KernelInfo, Status, escape_env
from kernelctl.runner import KernelCommand
from kernelctl.submit import batch_script

GOLDEN = Path(__file__).parent / "golden"
HOSTILE = "/tmp/it's a \"dir\" $HOME `id` 50%x ünï"
IN_CI = os.environ.get("CI") == "true"


def launchers() -> dict:
    """One launcher per base kind, all built from hostile paths."""
    python = Path(HOSTILE, "venv", "bin", "python")
    venv = Path(HOSTILE, "venv")

    def made(steps: str = "", layers: tuple = (), digest: str = "", slurm: bool = False) -> str:
        return launcher_script(python, "3.11.7", venv, digest, f"gone: {HOSTILE}",
                               f"unavailable: {HOSTILE}; $(id)", layers, steps, slurm=slurm)

    return {
        "plain": made(),
        "layered": made(layers=(f"{HOSTILE}/base/lib/python3.11/site-packages",)),
        "uenv": made(digest="a" * 64),
        "module": made(module.launch_steps(Path(HOSTILE, "lmod"), f"{HOSTILE}/modules",
                                           ["python/3.11.5", "it's/1"])),
        "conda": made(conda.launch_steps(f"{HOSTILE}/conda")),
        "container": made(container.launch_steps((("CONTAINER_NAME", HOSTILE),))),
        "slurm": made(digest="a" * 64, slurm=True),
    }


def job_script(env: dict, command: list, sbatch_args: tuple = (), display: str = "Job $(id)",
               launcher: tuple = ("/bin/sh", f"{HOSTILE}/kernelctl-launch.sh", RUN_FLAG)) -> str:
    binding = PythonBinding(kind="python", label=f"python:{HOSTILE}", python=HOSTILE)
    kernel = KernelInfo(name="job", display_name=display, language="python",
                        resource_dir=Path(HOSTILE), managed=True, status=Status.OK,
                        base=binding, venv=Path(HOSTILE, "venv"))
    target = KernelCommand(kernel, launcher, env)
    return batch_script(target, Path(HOSTILE, "train.py"), command,
                        [shell.directive([f"--uenv=prgenv-gnu/24.11:v1:{HOSTILE}"])],
                        Path(HOSTILE, "train-%j.log"), sbatch_args)


def scripts() -> dict:
    found = {f"launcher-{kind}": text for kind, text in launchers().items()}
    found["batch"] = re.sub(r"on \d{4}-\d\d-\d\d \d\d:\d\d UTC", "on DATE", job_script(
        {**escape_env({"PATH": f"{HOSTILE}/bin:/usr/bin"}), "PRICE": "$$5",
         "LD_LIBRARY_PATH": "/opt/lib"},
        [f"{HOSTILE}/venv/bin/python", f"{HOSTILE}/train.py", "--epochs=3", "; id"],
        ("--time=00:05:00", "-o", f"{HOSTILE}/out-%j.log", "--comment=a b#c")))
    return found


@pytest.mark.parametrize("name", sorted(scripts()))
def test_golden_scripts(name):
    text = scripts()[name]
    golden = GOLDEN / f"{name}.sh"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}: run with UPDATE_GOLDEN=1"
    assert text == golden.read_text()


@pytest.mark.parametrize("name", sorted(scripts()))
def test_scripts_parse_and_pass_shellcheck(name, tmp_path):
    path = tmp_path / f"{name}.sh"
    path.write_text(scripts()[name])
    for checker in (["dash", "-n"], ["bash", "-n"]):
        done = subprocess.run([*checker, str(path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    if shutil.which("shellcheck") is None:
        assert not IN_CI, "shellcheck is missing (make test installs Debian's package)"
        pytest.skip("shellcheck is not installed here")
    # SC2016, SC2089, SC2090: a `$` or a quote character inside a single-quoted path is
    # data, never expanded: exactly what quoting is for.
    done = subprocess.run(["shellcheck", "--shell=sh", "--severity=warning",
                           "--exclude=SC2016,SC2089,SC2090", str(path)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout


# -- fuzzing: no input ever runs a command ----------------------------------------------

PAYLOADS = ["$(touch {m})", "`touch {m}`", "; touch {m}", "\ntouch {m}\n", "\rtouch {m}",
            "' ; touch {m} ; '", "\" ; touch {m} ; \"", "$$(touch {m})", "|| touch {m}",
            "${{IFS}}touch${{IFS}}{m}", "\\\ntouch {m}", "#SBATCH --wrap='touch {m}'"]


def hostile_text(marker: Path):
    payload = st.sampled_from(PAYLOADS).map(lambda p: p.format(m=marker))
    text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
    return st.tuples(text, payload, text).map("".join)


def run_script(text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "script.sh"
    script.write_text(text)
    return subprocess.run(["sh", str(script)], env={"PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30)


FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.data())
def test_no_field_of_a_batch_script_runs_a_command(data, tmp_path):
    marker = tmp_path / "INJECTED"
    hostile = hostile_text(marker)
    key = data.draw(st.one_of(st.just("MY_VAR"), hostile))
    env = {key: data.draw(hostile), "PLAIN": data.draw(hostile)}
    command = ["/bin/true", data.draw(hostile)]
    sbatch = (f"--comment={data.draw(hostile)}",)
    try:
        text = job_script(env, command, sbatch, display=data.draw(hostile), launcher=())
    except KernelctlError:
        assert not shell.NAME.match(key) or any("\0" in v for v in (*env.values(), *command)) \
            or any(not ch.isprintable() for ch in sbatch[0]) or "packjob" in sbatch[0].lower() \
            or "\\" in sbatch[0]
        return
    run_script(text, tmp_path)
    assert not marker.exists(), text


@FUZZ
@given(data=st.data())
def test_no_path_in_a_launcher_runs_a_command(data, tmp_path):
    marker = tmp_path / "INJECTED"
    hostile = hostile_text(marker)
    try:
        text = launcher_script(
            Path("/nonexistent", data.draw(hostile)), "3.11.7", Path(data.draw(hostile)), "",
            data.draw(hostile), data.draw(hostile), (data.draw(hostile),),
            module.launch_steps(Path(data.draw(hostile)), data.draw(hostile),
                                [data.draw(hostile)]) + conda.launch_steps(data.draw(hostile)))
    except KernelctlError:
        return  # a NUL: refused
    script = tmp_path / "launcher.sh"
    script.write_text(text)
    # Run mode: with the base missing it says why and exits, never starting a kernel.
    subprocess.run(["sh", str(script), RUN_FLAG, "/bin/true"], env={"PATH": "/usr/bin:/bin"},
                   capture_output=True, text=True, timeout=30)
    assert not marker.exists(), text


def test_a_display_name_with_a_newline_stays_a_comment(tmp_path):
    marker = tmp_path / "INJECTED"
    text = job_script({}, ["/bin/true"], display=f"Nice\ntouch {marker}", launcher=())
    assert f"Nice\\ntouch {marker}" in text
    run_script(text, tmp_path)
    assert not marker.exists()


def test_a_variable_name_that_is_not_a_shell_name_is_refused():
    with pytest.raises(KernelctlError, match="not an environment variable name"):
        job_script({"A;touch X;B": "v"}, ["/bin/true"], launcher=())
