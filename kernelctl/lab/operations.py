"""Long actions of the panel (create, rebuild, fix, remove): each runs the CLI itself,
`kernelctl ... --json`, as a subprocess of the server.

Why a subprocess: the server's event loop never waits on pip or a kernel start; a
crash or a Ctrl-C-like stop of an operation cannot take the server down; the locks,
the journal and the refusals are exactly the CLI's (a terminal and the panel contend
as two terminals would); and the answer is the CLI's own JSON document, so the panel
cannot compute anything differently. Progress is the CLI's progress lines, read from
its stderr as they come.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from typing import Dict, List, Mapping, Optional, Sequence

RUNNING, DONE, FAILED = "running", "done", "failed"
KEEP_SECONDS = 3600  # finished operations are forgotten an hour after they end


class Operation:
    """One long action: its state, the CLI's progress lines, its document or error."""

    def __init__(self, kind: str, kernel: str, argv: Sequence[str]) -> None:
        self.id = uuid.uuid4().hex
        self.kind, self.kernel, self.argv = kind, kernel, list(argv)
        self.state = RUNNING
        self.progress: List[str] = []
        self.result: Optional[dict] = None
        self.error: Optional[Dict[str, str]] = None
        self.ended: Optional[float] = None

    def to_json(self) -> dict:
        return {"id": self.id, "kind": self.kind, "kernel": self.kernel, "state": self.state,
                "progress": list(self.progress), "result": self.result, "error": self.error}

    def finish(self, code: int, stdout: str) -> None:
        """The CLI's exit status and stdout make the outcome; its error lines (already
        in progress) make the error."""
        try:
            document = json.loads(stdout) if stdout.strip() else None
        except ValueError:
            document = None
        self.result = document if isinstance(document, dict) else None
        self.state = DONE if code == 0 else FAILED
        if code != 0:
            self.error = _error_of(self.progress) or {
                "message": f"kernelctl exited with status {code}",
                "hint": "The progress lines say how far it got."}
        self.ended = time.monotonic()


def _error_of(lines: Sequence[str]) -> Optional[Dict[str, str]]:
    """The last `kernelctl: error: MESSAGE` and its `hint: HINT`, as the CLI prints them."""
    error: Optional[Dict[str, str]] = None
    for line in lines:
        if line.startswith("kernelctl: error: "):
            error = {"message": line[len("kernelctl: error: "):], "hint": ""}
        elif error is not None and line.startswith("  hint: "):
            error["hint"] = line[len("  hint: "):]
    return error


class Operations:
    """The server's operations: started, serialised per kernel, looked up by id."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = {**env, "KERNELCTL_PROGRESS": "1"}
        self._all: Dict[str, Operation] = {}
        self._locks: Dict[str, asyncio.Lock] = {}
        self._tasks: set = set()

    def get(self, operation_id: str) -> Optional[Operation]:
        self._forget_old()
        return self._all.get(operation_id)

    def start(self, kind: str, kernel: str, args: Sequence[str]) -> Operation:
        """`kernelctl COMMAND --json ARGS...` in the background (--json before the
        arguments, which may end with `--` and a name); the operation is returned at once."""
        operation = Operation(kind, kernel, [sys.executable, "-m", "kernelctl", args[0],
                                             "--json", *args[1:]])
        self._all[operation.id] = operation
        task = asyncio.ensure_future(self._run(operation))
        self._tasks.add(task)  # a reference, so the task is not collected mid-run
        task.add_done_callback(self._tasks.discard)
        return operation

    async def _run(self, operation: Operation) -> None:
        lock = self._locks.setdefault(operation.kernel, asyncio.Lock())
        if lock.locked():
            operation.progress.append(f"waiting for the other operation on "
                                      f"'{operation.kernel}' to end")
        async with lock:  # one change at a time per kernel, as the CLI's locks do
            try:
                process = await asyncio.create_subprocess_exec(
                    *operation.argv, env=self.env, cwd=self.env.get("HOME") or "/",
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE)
            except OSError as exc:
                operation.progress.append(f"kernelctl: error: cannot start kernelctl: {exc}")
                operation.finish(127, "")
                return
            stdout, _ = await asyncio.gather(process.stdout.read(),  # type: ignore[union-attr]
                                             self._follow(process, operation))
            operation.finish(await process.wait(), stdout.decode(errors="replace"))

    @staticmethod
    async def _follow(process: asyncio.subprocess.Process, operation: Operation) -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            operation.progress.append(raw.decode(errors="replace").rstrip("\n"))

    def _forget_old(self) -> None:
        now = time.monotonic()
        for key, operation in list(self._all.items()):
            if operation.ended is not None and now - operation.ended > KEEP_SECONDS:
                del self._all[key]

