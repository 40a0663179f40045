"""Every command's result renders to JSON that matches docs/schema/kernelctl-v1.json (the
schema docs/json.md describes) and to text; and every kind of result has its schema."""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from kernelctl import results
from kernelctl.render import document
from tests.helpers import kernelctl

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "schema" /
                     "kernelctl-v1.json").read_text())
checked: set = set()


def conforms(data: dict, schema: str) -> None:
    Draft202012Validator.check_schema(SCHEMA)
    validator = Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{schema}"})
    problems = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(data)]
    assert not problems, (schema, problems, data)
    assert next(iter(data)) == "version"
    checked.add(schema)


def answered(*args, schema: str, env: dict, code: int = 0, changes: bool = False) -> dict:
    """`kernelctl ARGS --json`: exit status `code`, one document of `schema` on stdout;
    and, unless the command `changes` things, the same command as text: same status,
    words on stdout, no traceback."""
    done = kernelctl(*args, "--json", env=env)
    assert done.returncode == code, (args, done.stderr)
    data = json.loads(done.stdout)
    conforms(data, schema)
    if not changes:
        text = kernelctl(*args, env=env)
        assert text.returncode == code and text.stdout.strip(), (args, text.stderr)
        assert "Traceback" not in text.stderr and not text.stdout.startswith("{")
    return data


def result_classes() -> list:
    return [cls for _, cls in inspect.getmembers(results, inspect.isclass)
            if issubclass(cls, results.Result) and cls not in (results.Result, results.Several)]


def test_every_result_kind_has_its_schema():
    for cls in result_classes():
        assert cls.schema in SCHEMA["$defs"], cls


def test_every_command_answers_in_its_schema(wheelhouse, prgenv_image, slurm, tmp_path):
    env = slurm.env(prgenv_image.session_env(dict(os.environ)))
    offline = ["--no-index", f"--find-links={wheelhouse}"]
    kernel = answered("create", "--base", "system", "--name", "one", *offline,
                      schema="kernel", env=env, changes=True)
    kernelctl("create", "--base", "system", "--name", "two", *offline, env=env)
    answered("list", schema="kernels", env=env)
    detail = answered("show", "one", schema="kernel_detail", env=env)
    assert detail["name"] == "one" and detail["spec"]["metadata"]["kernelctl"]
    answered("doctor", "one", schema="doctor", env=env)
    answered("recipes", "list", schema="recipes", env=env)
    answered("recipes", "show", "prgenv-gnu", schema="recipe", env=env)
    (tmp_path / "empty.txt").write_text("")
    answered("install", "one", "-r", tmp_path / "empty.txt", *offline, schema="kernel", env=env,
             changes=True)
    (tmp_path / "job.py").write_text("print(1)\n")
    job = answered("submit", "one", tmp_path / "job.py", "--dry-run", schema="submit", env=env)
    assert job["job_id"] is None and job["script_text"].startswith("#!/bin/sh")

    # Several kernels, one refused: the document says what was done and what was not.
    (Path(json.loads(kernelctl("show", "two", "--json", env=env).stdout)["venv"])
     / "notes.txt").write_text("mine\n")
    rebuilt = answered("rebuild", "one", "two", *offline, schema="rebuild", env=env, code=1,
                       changes=True)
    assert [k["name"] for k in rebuilt["rebuilt"]] == ["one"]
    assert rebuilt["status"] == "partial" and rebuilt["failed"][0]["name"] == "two"
    assert "notes.txt" in rebuilt["failed"][0]["message"] + rebuilt["failed"][0]["hint"]
    would = answered("remove", "one", "two", "--dry-run", schema="removal_result", env=env,
                     code=1)
    assert [r["name"] for r in would["would_remove"]] == ["one"]
    assert would["status"] == "partial" and would["failed"][0]["name"] == "two"
    gone = answered("remove", "one", "--yes", schema="removal_result", env=env,
                    changes=True)
    assert gone["status"] == "ok" and [r["name"] for r in gone["removed"]] == ["one"]
    assert gone["removed"][0]["venv"] == rebuilt["rebuilt"][0]["venv"] != kernel["venv"]


def test_results_without_a_cheap_command_render_too(tmp_path):
    """Engines (srun and ipyparallel), a repair plan, Julia kernels: the same renderer."""
    from kernelctl.doctor.report import Fix
    from kernelctl.engines import Engines

    engines = Engines("k", "kernelctl-k", tmp_path / "profile", 2, ("srun", "-n", "2"))
    for result in (results.EnginesStarted(engines), results.EnginesStopped("k", 2),
                   results.EnginesStopped("k", None),
                   results.FixPlan((Fix("remove the kernel x", lambda: None),), True),
                   results.JuliaKernels(())):
        conforms(document(result), result.schema)
        assert result.to_text().strip()


@pytest.fixture(scope="module", autouse=True)
def every_schema_was_checked(request):
    yield
    ran = {item.name for item in request.session.items if item.module.__name__ == __name__}
    if {"test_every_command_answers_in_its_schema",
            "test_results_without_a_cheap_command_render_too"} <= ran and checked:
        wanted = {cls.schema for cls in result_classes()}
        assert wanted <= checked, f"never checked: {wanted - checked}"
