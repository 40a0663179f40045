"""Table tests for the pure parsers: the cheap tests that catch type confusions."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelctl.doctor.storage import Usage, parse_quota
from kernelctl.errors import KernelctlError
from kernelctl.kernelspec import check_kernel_name
from kernelctl.model import KernelSpec
from kernelctl.paths import path_list
from kernelctl.probe import _interpreter
from kernelctl.bases.catalogue import base_fields
from kernelctl.recipes import parse
from kernelctl.record import RECORD_FORMAT, _migrate
from kernelctl.redact import redact
from kernelctl.uenv import MountedUenv, UenvLabel


@pytest.mark.parametrize("text, expected", [
    ("prgenv-gnu", ("prgenv-gnu", None, None)),
    ("prgenv-gnu/24.11", ("prgenv-gnu", "24.11", None)),
    ("prgenv-gnu/24.11:v1", ("prgenv-gnu", "24.11", "v1")),
    ("prgenv-gnu:v1", ("prgenv-gnu", None, "v1")),
    ("julia/25.5:v1@daint%gh200", ("julia", "25.5", "v1")),
    ("bad label!", None),
    ("", None),
    ("a/b/c", None),
])
def test_uenv_label(text, expected):
    if expected is None:
        with pytest.raises(KernelctlError):
            UenvLabel.parse(text)
        return
    label = UenvLabel.parse(text)
    assert (label.name, label.version, label.tag) == expected
    assert UenvLabel.parse(str(label)) == label


def image(views) -> MountedUenv:
    return MountedUenv("x", Path("/m"), "/s", None, ("default",), {"views": views})


def listed(ops) -> dict:
    return {"default": {"env": {"values": {"list": {"PYTHONPATH": ops}}}}}


@pytest.mark.parametrize("views, expected", [
    (listed([{"op": "prepend", "value": ["/a"]}]), ["/a"]),
    (listed([{"op": "prepend", "value": ["/a"]}, {"op": "prepend", "value": ["/b"]}]), ["/b", "/a"]),
    (listed([{"op": "append", "value": ["/a"]}, {"op": "append", "value": ["/b", ""]}]), ["/a", "/b"]),
    (listed([{"op": "prepend", "value": ["/a"]}, {"op": "set", "value": ["/c"]}]), ["/c"]),
    (listed([{"op": "prepend", "value": ["/a"]}, {"op": "unset"}]), []),
    (listed([{"op": "prepend", "value": "/a"}]), []),  # a string, not a list
    (listed([{"op": "prepend", "value": [5, "/a"]}]), ["/a"]),
    (listed(["prepend"]), []),
    (listed({"op": "prepend"}), []),
    ({"default": {"env": []}}, []),
    ({"default": "x"}, []),
    (["default"], []),
    ({}, []),
])
def test_view_list_var(views, expected):
    assert image(views).view_list_var("default", "PYTHONPATH") == expected


QUOTA_HEADER = ("Disk quotas for user me (uid 1000):\n"
                "     Filesystem  blocks   quota   limit   grace   files   quota   limit   grace\n")


@pytest.mark.parametrize("text, expected", [
    (QUOTA_HEADER + "      /dev/sda1  900000  950000 1000000           9000   9500  10000\n",
     [Usage("quota on /dev/sda1", 900000 * 1024, 1000000 * 1024, 9000, 10000)]),
    (QUOTA_HEADER + "  home:/users  999999* 950000 1000000  6days   10   0   0\n",
     [Usage("quota on home:/users", 999999 * 1024, 1000000 * 1024, 10, 0)]),
    (QUOTA_HEADER + "  /dev/sda1  10  20  0   5  0  7\n",
     [Usage("quota on /dev/sda1", 10 * 1024, 20 * 1024, 5, 7)]),
    ("Disk quotas for user me (uid 1000): none\n", []),
    ("", []),
    (QUOTA_HEADER + "  /dev/sda1  lots  of  garbage  here  x  y  z\n", []),
])
def test_quota_output(text, expected):
    assert parse_quota(text) == expected


def recipe(**changes) -> dict:
    data = {"format": 1, "name": "r", "base": {"kind": "uenv", "uenv": "prgenv-gnu"},
            "packages": {"default": ["six"]}}
    data.update(changes)
    return data


@pytest.mark.parametrize("data, problem", [
    (recipe(), None),
    (recipe(format=2), "format 2"),
    (recipe(format="1"), "'format' must be an integer"),
    (recipe(name="other"), "differs from the file name"),
    (recipe(name=5), "'name' must be a string"),
    (recipe(base=[]), "'base' must be a table"),
    (recipe(base={"uenv": "x"}), "'base.kind' is missing"),
    (recipe(base={"kind": "conda", "uenv": "x"}), "base.kind 'conda'"),
    (recipe(base={"kind": "uenv", "uenv": 5}), "'base.uenv' must be a string"),
    (recipe(base={"kind": "uenv", "uenv": "x", "view": ["a"]}), "'base.view' must be a string"),
    (recipe(packages=["six"]), "'packages' must be a table"),
    (recipe(packages={"default": "six"}), "'packages.default' must be a list"),
    (recipe(packages={"default": ["six", 5]}), "list of non-empty strings"),
    (recipe(packages={"default": [""]}), "list of non-empty strings"),
    (recipe(description=True), "'description' must be a string"),
    (recipe(base={"kind": "module", "modules": ["StdEnv/2023", "python"]}), None),
    (recipe(base={"kind": "module"}), "'base.modules' is missing"),
    (recipe(base={"kind": "module", "modules": "python"}), "'base.modules' must be a list"),
    (recipe(base={"kind": "module", "modules": []}), "at least one module"),
    (recipe(base={"kind": "module", "modules": ["python", 3]}), "list of non-empty strings"),
    (recipe(base={"kind": "container", "image": "nvcr.io/nvidia/pytorch"}), None),
    (recipe(base={"kind": "container"}), "'base.image' is missing"),
    (recipe(pip={"no_index": "yes"}), "'pip.no_index' must be true or false"),
    (recipe(pip=True), "'pip' must be a table"),
])
def test_recipe_from_dict(data, problem):
    if problem is None:
        assert parse(data, Path("r.toml"), base_fields).packages == ("six",)
        return
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse(data, Path("r.toml"), base_fields)


def record(**changes) -> dict:
    data = {"format": RECORD_FORMAT, "kernel": "k", "kernelctl_version": "0.1.0",
            "created": "2026-01-01T00:00:00+00:00", "base": {"kind": "python"},
            "packages": {"requested": ["six"], "requirement_files": []}}
    data.update(changes)
    return data


@pytest.mark.parametrize("data, problem", [
    (record(), None),
    ({"kernel": "k"}, None),  # the oldest records had only what they needed
    ({"kernel": 1}, "'kernel' is int"),
    ({}, "no 'kernel'"),
    (record(format=99), "newer than this kernelctl"),
    (record(packages=["six"]), "'packages' is list"),
    (record(packages={"requested": "six"}), "'requested' is str"),
    (record(packages={"requested": [1]}), "'requested' is not a list of strings"),
    (record(base="uenv"), "'base' is str"),
])
def test_record_migration(data, problem):
    if problem is None:
        assert _migrate(data).kernel == "k"
        return
    with pytest.raises(ValueError, match=problem):
        _migrate(data)


SPEC = {"argv": ["/bin/python", "-f", "{connection_file}"], "display_name": "P"}


@pytest.mark.parametrize("data, problem", [
    (SPEC, None),
    ({**SPEC, "env": {"A": "$$x"}, "metadata": {"kernelctl": {"venv": "/v"}}}, None),
    ([], "not a JSON object"),
    ({**SPEC, "argv": []}, "no argv"),
    ({**SPEC, "argv": "python"}, "no argv"),
    ({**SPEC, "argv": ["/bin/py\0"]}, "NUL"),
    ({**SPEC, "display_name": 1}, "display_name"),
    ({**SPEC, "env": {"A": 1}}, "env is not a mapping of strings"),
    ({**SPEC, "env": []}, "env is not a mapping of strings"),
    ({**SPEC, "metadata": []}, "metadata is not an object"),
    ({**SPEC, "metadata": {"kernelctl": "yes"}}, "metadata.kernelctl is not an object"),
    ({**SPEC, "metadata": {"kernelctl": {"venv": 5}}}, "metadata.kernelctl.venv is not"),
    ({**SPEC, "metadata": {"kernelctl": {"julia": ["/j"]}}}, "metadata.kernelctl.julia"),
])
def test_kernelspec_from_dict(data, problem):
    if problem is None:
        spec = KernelSpec.from_dict(data)
        assert KernelSpec.from_dict(spec.to_dict()) == spec
        return
    with pytest.raises(ValueError, match=problem):
        KernelSpec.from_dict(data)


@pytest.mark.parametrize("values", [
    {"PATH": "/a:/b"}, {"PS1": "$ "}, {"X": "${HOME}"}, {"Y": "$$"}, {},
])
def test_kernelspec_env_escaping_round_trips(values):
    spec = KernelSpec(argv=("/bin/python",), display_name="P").with_values(values)
    assert spec.values() == values
    assert all("$" not in v.replace("$$", "") for v in spec.env.values())


GOOD_PROBE = {"executable": "/p", "base_executable": "/p", "version": "3.11.7",
              "prefix": "/", "base_prefix": "/", "path": ["/x"], "pip": None,
              "ipykernel": "/k"}


@pytest.mark.parametrize("data, problem", [
    (GOOD_PROBE, None),
    (42, "not a JSON object"),
    ({}, "'executable' is missing"),
    ({**GOOD_PROBE, "version": "abc"}, "version 'abc'"),
    ({**GOOD_PROBE, "version": "3.11"}, "version '3.11'"),
    ({**GOOD_PROBE, "version": 3}, "'version' is missing or not a string"),
    ({**GOOD_PROBE, "path": "/x"}, "'path' is not a list"),
    ({**GOOD_PROBE, "pip": 1}, "'pip' is not a string"),
])
def test_probe_answer(data, problem):
    if problem is None:
        assert _interpreter(data).major_minor == "3.11"
        return
    with pytest.raises(ValueError, match=problem):
        _interpreter(data)


@pytest.mark.parametrize("text, expected", [
    ("six", "six"),
    ("six @ https://user:TOKEN@host/six.whl", "six @ https://****@host/six.whl"),
    ("git+https://TOKEN@github.com/a/b", "git+https://****@github.com/a/b"),
    ("https://host/path@v1", "https://host/path@v1"),
    ("a https://u:p@h/x and http://v@i/y", "a https://****@h/x and http://****@i/y"),
    ("user@example.org", "user@example.org"),
])
def test_redact(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("name, ok", [
    ("python3.11", True), ("a_b-c.d", True), ("x" * 100, True),
    ("x" * 101, False), ("", False), ("-x", False), (".x", False), ("Upper", False),
    ("a/b", False), ("a b", False), ("..", False),
])
def test_kernel_names(name, ok):
    if ok:
        assert check_kernel_name(name) == name
    else:
        with pytest.raises(KernelctlError):
            check_kernel_name(name)


@pytest.mark.parametrize("value, expected", [
    ("/a:/b", ["/a", "/b"]), ("/a::/b:", ["/a", "/b"]), ("", []), (None, []),
])
def test_path_list(value, expected):
    assert path_list(value) == expected


@pytest.mark.parametrize("text, changes, status", [
    ('import os\nos.environ["A"] = "x y";\n_mlstatus = True\n', {"A": "x y"}, True),
    ('os.environ["A"] = "1";\ndel os.environ["B"]\n', {"A": "1", "B": None}, None),
    ('os.environ["A"] = "1";\n_mlstatus = False\n', {"A": "1"}, False),
    ('print("hello")\nos.environ[KEY] = "1"\nos.environ["N"] = 3\n', {}, None),  # not data
    ("", {}, None),
])
def test_lmod_python_output(text, changes, status):
    from kernelctl.lmod import parse_python_output

    assert parse_python_output(text) == (changes, status)


def test_lmod_output_that_is_not_python():
    from kernelctl.lmod import parse_python_output

    with pytest.raises(KernelctlError):
        parse_python_output("os.environ[")


@pytest.mark.parametrize("names, ok", [
    (["python/3.11", "scipy-stack"], True),
    (["StdEnv/2023", "gcc/12.3", "netcdf-c++4/4.3.1"], True),
    ([], False), (["a b"], False), (["python//3"], False), (["python/"], False),
    (["-x"], False), (["$(rm)"], False),
])
def test_module_names(names, ok):
    from kernelctl.lmod import check_module_names

    if ok:
        check_module_names(names)
    else:
        with pytest.raises(KernelctlError):
            check_module_names(names)


def test_conda_activation_variables(tmp_path):
    import json

    from kernelctl.bases.conda import activation_variables

    prefix = tmp_path / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "etc" / "conda" / "env_vars.d").mkdir(parents=True)
    (prefix / "etc" / "conda" / "env_vars.d" / "b.json").write_text(json.dumps({"X": "b"}))
    (prefix / "etc" / "conda" / "env_vars.d" / "a.json").write_text(json.dumps({"X": "a", "Y": "a"}))
    (prefix / "conda-meta" / "state").write_text(json.dumps({"env_vars": {"Y": "state"}}))
    assert activation_variables(str(prefix)) == {
        "CONDA_PREFIX": str(prefix), "CONDA_DEFAULT_ENV": str(prefix), "X": "b", "Y": "state"}
    (prefix / "conda-meta" / "state").write_text(json.dumps({"env_vars": {"Y": 1}}))
    with pytest.raises(KernelctlError):
        activation_variables(str(prefix))
