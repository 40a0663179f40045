"""Every --json output is one object that starts with its format version (docs/json.md)."""

from __future__ import annotations

import json
import os

from tests.helpers import created, kernelctl


def test_every_json_output_is_versioned(prgenv_image, tmp_path):
    session = prgenv_image.session_env(dict(os.environ))
    kernel = created("--base", "prgenv-gnu", "--name", "versioned", env=session)
    (tmp_path / "empty.txt").write_text("")
    outputs = {"create": kernel}
    for args in (["list", "--json"], ["show", "--json", "versioned"], ["doctor", "--json"],
                 ["install", "--json", "versioned", "-r", tmp_path / "empty.txt"]):
        done = kernelctl(*args, env=session)
        assert done.returncode in (0, 1), (args, done.stderr)
        outputs[args[0]] = json.loads(done.stdout)
    for command, document in outputs.items():
        assert isinstance(document, dict) and document.get("version") == 1, command
        assert next(iter(document)) == "version", command
