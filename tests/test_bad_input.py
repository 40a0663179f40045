"""Bad input, from the user or from disk: a clear error or an honest status, never a
traceback, never a wrong result."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import (
    assert_user_error,
    created,
    foreign_spec,
    kernelctl,
    leftovers,
    listed,
    write_kernel,
)

NO_TRACEBACK_COMMANDS = (["list"], ["list", "--json"], ["list", "--all"], ["doctor"],
                         ["doctor", "--json"])


def kernels_dir(home: Path) -> Path:
    return home / ".local/share/jupyter/kernels"


def managed_spec(**binding) -> dict:
    return {**foreign_spec("/usr/bin/python3"), "metadata": {"kernelctl": binding}}


BAD_SPECS = {
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "venv-type": json.dumps(managed_spec(kind="python", venv=5)).encode(),
    "venv-list": json.dumps(managed_spec(kind="python", venv=["/a"])).encode(),
    "julia-types": json.dumps({**managed_spec(kind="julia", julia=["/x"], depot={"a": 1}),
                               "language": "julia"}).encode(),
    "binding-type": json.dumps({**foreign_spec("/usr/bin/python3"),
                                "metadata": {"kernelctl": "yes"}}).encode(),
    "nul-argv": json.dumps(foreign_spec("/usr/bin/py\u0000thon")).encode(),
    "surrogate": b'{"argv": ["/usr/bin/python3"], "display_name": "bad \\ud800 name"}',
    "digest-type": json.dumps(managed_spec(kind="uenv", name="prgenv-gnu",
                                           digest=12345)).encode(),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_one_bad_kernel_json_breaks_nothing(isolated, case):
    write_kernel(kernels_dir(isolated), case, BAD_SPECS[case])
    write_kernel(kernels_dir(isolated), "good", foreign_spec(sys.executable))
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    for args in (*NO_TRACEBACK_COMMANDS, ["show", case], ["show", "--json", case],
                 ["remove", "--dry-run", case], ["doctor", case]):
        done = kernelctl(*args, env=env)
        assert "Traceback" not in done.stderr, (args, done.stderr)
        assert done.returncode in (0, 1), (args, done.stderr)
    found = listed()
    assert "good" in found
    if case != "surrogate":
        assert found[case]["status"] == "broken", found[case]


def test_undecodable_directory_name(isolated):
    kernels = kernels_dir(isolated)
    kernels.mkdir(parents=True)
    bad = os.fsencode(kernels) + b"/k\xff\xfe"
    os.mkdir(bad)
    with open(bad + b"/kernel.json", "w") as handle:
        json.dump(foreign_spec(sys.executable), handle)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "LC_ALL": "C.UTF-8"}
    for args in NO_TRACEBACK_COMMANDS:
        done = kernelctl(*args, env=env)
        assert "Traceback" not in done.stderr and done.returncode in (0, 1), (args, done.stderr)


@pytest.mark.parametrize("answer, phrase", [
    ("print(42)", "not a JSON object"),
    ("print('{}')", "'executable' is missing"),
    ("import json, sys; print(json.dumps({'executable': sys.executable, 'base_executable': "
     "sys.executable, 'version': 'abc', 'prefix': '/', 'base_prefix': '/', 'path': []}))",
     "version 'abc'"),
])
def test_base_that_answers_nonsense(tmp_path, isolated, answer, phrase):
    fake = tmp_path / "python3"
    fake.write_text(f"#!{sys.executable}\n{answer}\n")
    fake.chmod(0o755)
    done = kernelctl("create", "--base", f"python:{fake}")
    assert_user_error(done, "does not run as a Python interpreter", phrase)
    assert leftovers(isolated) == []


def test_base_that_hangs(tmp_path, isolated):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\nexec sleep 600\n")
    fake.chmod(0o755)
    started = time.monotonic()
    done = kernelctl("create", "--base", f"python:{fake}",
                     env={**os.environ, "KERNELCTL_PROBE_TIMEOUT": "2"})
    assert_user_error(done, "did not finish within 2 s", "KERNELCTL_PROBE_TIMEOUT")
    assert time.monotonic() - started < 60
    assert leftovers(isolated) == []


BAD_RECIPES = {
    "packages-list": ('packages = ["six"]', "'packages' must be a table"),
    "uenv-int": ("", "'base.uenv' must be a string"),
    "default-string": ('[packages]\ndefault = "six"', "'packages.default' must be a list"),
    "kind-missing": ("", "'base.kind' is missing"),
}


def recipe_text(name: str) -> str:
    top, _ = BAD_RECIPES[name]
    base = {"uenv-int": 'kind = "uenv"\nuenv = 5', "kind-missing": 'uenv = "x"'}.get(
        name, 'kind = "uenv"\nuenv = "prgenv-gnu"')
    before, after = (top, "") if top.startswith("packages =") else ("", top)
    return f'format = 1\nname = "{name}"\n{before}\n[base]\n{base}\n{after}\n'


@pytest.mark.parametrize("name", sorted(BAD_RECIPES))
def test_invalid_recipe_is_named_and_breaks_nothing_else(tmp_path, isolated, name):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / f"{name}.toml").write_text(recipe_text(name))
    env = {**os.environ, "KERNELCTL_RECIPE_PATH": str(recipes)}
    done = kernelctl("create", "--base", name, env=env)
    assert_user_error(done, f"recipe {recipes / name}.toml is invalid", BAD_RECIPES[name][1])
    other = kernelctl("create", "--base", "no-such-recipe", env=env)
    assert_user_error(other, "unknown base 'no-such-recipe'", "prgenv-gnu")
    assert kernelctl("list", env=env).returncode == 0
    assert leftovers(isolated) == []


@pytest.mark.parametrize("meta", ["[]", '"x"', '{"views": ["default"]}',
                                  '{"views": {"default": {"env": {"values": {"list": []}}}}}'])
def test_damaged_uenv_meta(prgenv_image, tmp_path, isolated, meta):
    """A mounted image whose meta/env.json is not what uenv writes."""
    mount = tmp_path / "user-environment"
    (mount / "meta").mkdir(parents=True)
    (mount / "meta" / "env.json").write_text(meta)
    env = {**os.environ, "UENV_MOUNT_LIST": f"/x/images/{'c' * 64}/store.squashfs:{mount}",
           "UENV_VIEW": f"{mount}:damaged:default"}
    for args in (["list"], ["doctor"]):
        done = kernelctl(*args, env=env)
        assert "Traceback" not in done.stderr, (args, done.stderr)
    done = kernelctl("create", "--base", "uenv:damaged", env=env)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert kernelctl("create", "--base", "system", "--name", "fine", env=env).returncode == 0


@pytest.mark.parametrize("name, phrase", [
    ("", "the kernel name is empty"),
    ("-x", "not starting with '.' or '-'"),
    ("a" * 300, "at most 100"),
])
def test_names_that_cannot_work(isolated, name, phrase):
    done = kernelctl("create", "--base", "system", "--name", name)
    assert_user_error(done, phrase)
    assert leftovers(isolated) == []


def test_venv_path_with_a_colon(tmp_path, isolated):
    done = kernelctl("create", "--base", "system", "--venv", tmp_path / "a:b")
    assert_user_error(done, "contains ':'", "PATH")
    assert not (tmp_path / "a:b").exists()


def test_negative_doctor_timeout():
    done = kernelctl("doctor", "--deep", "--timeout", "-5")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "--timeout" in done.stderr


def answer_no(args: list, env: dict) -> tuple:
    """Run kernelctl ARGS at a real terminal, answer its prompt with "n": (exit code,
    everything it printed)."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-m", "kernelctl", *args], env)
    output = b""
    while b"[y/N]" not in output:
        output += os.read(fd, 1024)
    os.write(fd, b"n\n")
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output


def test_declining_a_prompt_says_so(prgenv_image):
    """At a real terminal, answering no changes nothing and says so."""
    session = prgenv_image.session_env(dict(os.environ))
    created("--base", "prgenv-gnu", "--name", "keep", env=session)
    code, output = answer_no(["remove", "keep"], session)
    assert code == 1 and b"nothing was removed" in output
    assert "keep" in listed(env=session)
    shutil.rmtree(listed(env=session)["keep"]["venv"])  # broken: doctor offers to remove it
    code, output = answer_no(["doctor", "--fix"], session)
    assert b"nothing was repaired" in output
    assert "keep" in listed(env=session)


def test_one_vocabulary_across_verbs(prgenv_image, test_wheels):
    """--debug anywhere; -p/--package for install as for create; doctor --dry-run."""
    session = prgenv_image.session_env(dict(os.environ))
    for args in (["list", "--debug"], ["--debug", "list"], ["doctor", "--debug", "--json"]):
        done = kernelctl(*args, env=session)
        assert done.returncode == 0 and "Error" not in done.stderr, (args, done.stderr)
    kernel = created("--base", "prgenv-gnu", "--name", "words", env=session)
    done = kernelctl("install", "words", "-p", "kctl_extra", "--package", "kctl_shadow==2.0",
                     "--no-index", "--find-links", test_wheels, env=session)
    assert done.returncode == 0, done.stderr
    assert list(Path(kernel["venv"]).glob("lib/python*/site-packages/kctl_extra"))
    shutil.rmtree(kernel["venv"])
    dry = kernelctl("doctor", "--dry-run", env=session)
    assert "Would repair (--dry-run: nothing is changed)" in dry.stdout
    assert "remove the kernel words" in dry.stdout
    assert "words" in listed(env=session)
    would = json.loads(kernelctl("remove", "words", "--dry-run", "--json", env=session).stdout)
    assert [r["name"] for r in would["would_remove"]] == ["words"] and would["removed"] == []
    gone = json.loads(kernelctl("remove", "--json", "words", "--yes", env=session).stdout)
    assert [r["name"] for r in gone["removed"]] == ["words"] and gone["version"] == 1
    assert "words" not in listed(env=session)


def python_startup() -> float:
    """Seconds until kernelctl's own code runs; before that, a Ctrl-C is Python's."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import kernelctl.__main__"], check=True)
    return time.monotonic() - started


@pytest.mark.parametrize("delay", [0.02, 0.05, 0.1, 0.2, 0.3])
def test_early_ctrl_c_is_not_a_traceback(delay):
    """Ctrl-C while kernelctl loads its modules (typer, the core): a line, not a traceback."""
    process = subprocess.Popen([sys.executable, "-m", "kernelctl", "list"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Twice Python's own start-up (measured meanwhile): a busy CI machine varies.
    time.sleep(2 * python_startup() + delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert "Traceback" not in stderr, stderr


def test_credentials_in_package_urls_are_never_kept(prgenv_image, test_wheels):
    """pip needs the token once; the record, `show` and the output must not keep it."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(test_wheels))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    wheel = next(test_wheels.glob("kctl_extra-*.whl")).name
    url = f"http://alice:S3CRET-TOKEN@127.0.0.1:{server.server_address[1]}/{wheel}"
    session = prgenv_image.session_env(dict(os.environ))
    try:
        done = kernelctl("create", "--base", "prgenv-gnu", "--name", "tokens", "-p",
                         f"kctl_extra @ {url}", "--no-index", env=session)
        assert done.returncode == 0, done.stderr
        installed = kernelctl("install", "tokens", f"kctl_extra @ {url}", "--no-index",
                              env=session)
        assert installed.returncode == 0, installed.stderr
    finally:
        server.shutdown()
        server.server_close()
    kernel = listed(env=session)["tokens"]
    record = (Path(kernel["venv"]) / "kernelctl.toml").read_text()
    shown = kernelctl("show", "tokens", env=session).stdout
    shown_json = kernelctl("show", "--json", "tokens", env=session).stdout
    for text in (record, shown, shown_json, done.stdout, done.stderr, installed.stdout):
        assert "S3CRET-TOKEN" not in text
    assert "kctl_extra @ http://****@127.0.0.1" in record


def test_shell_completion_offers_kernel_and_recipe_names(wheelhouse):
    created("--base", "system", "--name", "alpha-kernel", "--no-index", "--find-links", wheelhouse)

    def complete(words: str, index: int) -> list:
        env = {**os.environ, "_KERNELCTL_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(index)}
        done = kernelctl(env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("kernelctl show al", 2) == ["alpha-kernel"]
    assert "alpha-kernel" in complete("kernelctl remove ", 2)
    assert complete("kernelctl create --base scipy", 3) == ["scipy-stack"]
    assert "module:" in complete("kernelctl create --base mod", 3)
    script = kernelctl("--show-completion", "bash")
    assert script.returncode == 0 and "_KERNELCTL_COMPLETE" in script.stdout
