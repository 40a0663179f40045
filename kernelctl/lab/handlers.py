"""The REST API under /kernelctl/api/ (docs/lab.md). Reads answer with exactly the
document the CLI's --json prints (the same api call and render.document), computed in a
worker thread so the server's event loop keeps answering; changes start an Operation
(kernelctl/lab/operations.py) and answer 202 at once. Bad input is a 400 with the CLI's
message and hint, an unknown kernel a 404; nothing here answers a user error with 500.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from typing import Any, Callable, Dict, List, Optional

from jupyter_server.base.handlers import APIHandler
from tornado import web

from kernelctl import api, shell
from kernelctl.errors import KernelctlError, NotFound, as_user_error
from kernelctl.lab.operations import Operations
from kernelctl.render import document

# What Jupyter accepts as a kernel directory's name (any case: Jupyter lowers it).
URL_NAME = r"[A-Za-z0-9._-]+"
CREATE_FIELDS = {"name", "base", "packages", "display_name"}


class BadRequest(KernelctlError):
    """The request itself is wrong (400)."""


class KernelctlHandler(APIHandler):
    @property
    def operations(self) -> Operations:
        return self.settings["kernelctl_operations"]

    def reply(self, data: dict, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def refuse(self, error: KernelctlError) -> None:
        status = 404 if isinstance(error, NotFound) else 400
        self.reply({"message": error.message, "hint": error.hint}, status)

    async def read(self, command: Callable[[], Any]) -> None:
        """A read: the CLI's document, computed outside the event loop."""
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, command)
        except (KernelctlError, OSError) as exc:
            error = as_user_error(exc)
            if error is None:
                raise
            self.refuse(error)
            return
        self.reply(document(result))

    def body(self) -> Dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise BadRequest(f"the request body is not JSON: {exc}",
                             "Send a JSON object.") from exc
        if not isinstance(data, dict):
            raise BadRequest("the request body is not a JSON object", "Send a JSON object.")
        return data

    def started(self, kind: str, kernel: str, args: List[str]) -> None:
        operation = self.operations.start(kind, kernel, args)
        self.reply({"operation": operation.id}, 202)


class KernelsHandler(KernelctlHandler):
    @web.authenticated
    async def get(self) -> None:
        await self.read(lambda: api.list_kernels(os.environ))

    @web.authenticated
    def post(self) -> None:
        try:
            args, name = create_args(self.body())
        except KernelctlError as error:
            self.refuse(error)
            return
        self.started("create", name or "(default)", args)


class KernelHandler(KernelctlHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        await self.read(lambda: api.show(name, os.environ))

    @web.authenticated
    def delete(self, name: str) -> None:
        self.started("remove", name.lower(), ["remove", "--yes", "--", name])


class KernelActionHandler(KernelctlHandler):
    @web.authenticated
    def post(self, name: str, action: str) -> None:
        args = {"rebuild": ["rebuild", "--", name],
                "fix": ["doctor", "--fix", "--yes", "--", name]}[action]
        self.started(action, name.lower(), args)


class KernelShellHandler(KernelctlHandler):
    """What a JupyterLab terminal runs to be in the kernel's environment: `kernelctl
    shell NAME`, with the server's own kernelctl (a terminal's login shell may have
    another PATH), written through kernelctl.shell."""

    @web.authenticated
    async def get(self, name: str) -> None:
        try:
            kernel = await asyncio.get_running_loop().run_in_executor(
                None, lambda: api.show(name, os.environ).kernel)
        except KernelctlError as error:
            self.refuse(error)
            return
        command = shell.words([sys.executable, "-m", "kernelctl", "shell", kernel.name],
                              "the terminal's command")
        self.reply({"kernel": kernel.name, "command": f"exec {command}"})


class RecipesHandler(KernelctlHandler):
    @web.authenticated
    async def get(self) -> None:
        await self.read(lambda: api.recipes(os.environ))


class DoctorHandler(KernelctlHandler):
    @web.authenticated
    async def get(self) -> None:
        await self.read(lambda: api.doctor([], os.environ))


class OperationHandler(KernelctlHandler):
    @web.authenticated
    def get(self, operation_id: str) -> None:
        operation = self.operations.get(operation_id)
        if operation is None:
            self.refuse(NotFound(f"no operation {operation_id}",
                                 "Operations are kept for an hour after they end."))
            return
        self.reply(operation.to_json())


def create_args(data: Dict[str, Any]) -> tuple:
    """(`kernelctl create` arguments, the kernel's name or None) for a POST body; a
    BadRequest names what is wrong. Values travel as `--option=value`: one argument each,
    never read as an option of their own."""
    unknown = sorted(set(data) - CREATE_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}",
                         f"A new kernel takes {', '.join(sorted(CREATE_FIELDS))}.")
    name, base = _text(data, "name"), _text(data, "base")
    display_name = _text(data, "display_name")
    packages = data.get("packages", [])
    if not isinstance(packages, list) or not all(isinstance(p, str) for p in packages):
        raise BadRequest("'packages' must be a list of strings", 'e.g. ["numpy", "scipy>=1.13"]')
    from kernelctl.kernelspec import check_kernel_name
    from kernelctl.venvs import check_requirement

    try:
        if name is not None:
            check_kernel_name(name)
        for package in packages:
            check_requirement(package, "packages")
    except KernelctlError as exc:
        raise BadRequest(exc.message, exc.hint) from exc
    args = ["create"]
    args += [f"--name={name}"] if name else []
    args += [f"--base={base}"] if base else []
    args += [f"--display-name={display_name}"] if display_name else []
    args += [f"--package={package}" for package in packages]
    return args, name


def _text(data: Dict[str, Any], key: str) -> Optional[str]:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or re.search(r"[\x00-\x1f]", value):
        raise BadRequest(f"'{key}' must be a one-line string", f"Got {value!r}.")
    return value


def handlers(base_url: str) -> list:
    def route(path: str) -> str:
        return base_url.rstrip("/") + "/kernelctl/api" + path

    return [
        (route("/kernels"), KernelsHandler),
        (route(f"/kernels/({URL_NAME})"), KernelHandler),
        (route(f"/kernels/({URL_NAME})/(rebuild|fix)"), KernelActionHandler),
        (route(f"/kernels/({URL_NAME})/shell"), KernelShellHandler),
        (route("/recipes"), RecipesHandler),
        (route("/doctor"), DoctorHandler),
        (route("/operations/([0-9a-f]+)"), OperationHandler),
    ]
