"""Run a Jupyter notebook headless, in the environment this Python runs in.

Written by `kernelctl submit`; needs nothing of kernelctl, only jupyter_client (which
every ipykernel brings). Run by a batch job through the kernel's own launcher, so the
kernel started here (this interpreter's ipykernel) has exactly the notebook kernel's
environment.

    python kernelctl_notebook.py IN.ipynb OUT.ipynb [--parameters JSON]

Cells run in order; each output is stored in OUT (written after every cell, so a job
killed at its time limit keeps what was done) and echoed to the job's log. A cell that
raises stops the run: OUT holds the error, the log shows its traceback, and the exit
status is 1. `%j` in OUT is the Slurm job id. Parameters (JSON object) go into a cell
after the one tagged "parameters" (papermill's convention), else first.
"""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the job's kernel client is; imported only where it runs
    from jupyter_client.blocking import BlockingKernelClient

KERNEL_START_TIMEOUT = 120


def main(argv: "list | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook")
    parser.add_argument("output")
    parser.add_argument("--parameters", default="{}")
    args = parser.parse_args(argv)
    output = args.output.replace("%j", os.environ.get("SLURM_JOB_ID", "local"))
    with open(args.notebook, encoding="utf-8") as source:
        notebook = json.load(source)
    inject_parameters(notebook, json.loads(args.parameters))
    print(f"kernelctl: running {args.notebook} with {sys.executable}; output: {output}",
          flush=True)
    return run_notebook(notebook, output)


def inject_parameters(notebook: dict, parameters: dict) -> None:
    if not parameters:
        return
    source = "# Parameters (kernelctl submit -P)\n" + "".join(
        f"{name} = {value!r}\n" for name, value in parameters.items())
    cell: dict = {"cell_type": "code", "execution_count": None, "id": "injected-parameters",
            "metadata": {"tags": ["injected-parameters"]}, "outputs": [], "source": source}
    cells = notebook["cells"]
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    cells.insert(tagged[0] + 1 if tagged else 0, cell)


def run_notebook(notebook: dict, output: str) -> int:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    # This interpreter's ipykernel, not a kernelspec found by name: the job already has
    # the kernel's environment, and a same-named kernel elsewhere must not win.
    spec_dir = tempfile.mkdtemp(prefix="kernelctl-notebook-")
    os.makedirs(os.path.join(spec_dir, "here"))
    with open(os.path.join(spec_dir, "here", "kernel.json"), "w") as spec:
        json.dump({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                   "display_name": "here", "language": "python"}, spec)
    manager = KernelManager(kernel_name="here",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[spec_dir]))
    manager.start_kernel(cwd=os.path.dirname(os.path.abspath(output)) or None)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=KERNEL_START_TIMEOUT)
        count = 0
        for index, cell in enumerate(notebook["cells"]):
            if cell.get("cell_type") != "code":
                continue
            count += 1
            failed = run_cell(client, cell, count)
            save(notebook, output)
            if failed:
                print(f"kernelctl: cell {index + 1} failed; the notebook so far is in {output}",
                      file=sys.stderr, flush=True)
                return 1
        print(f"kernelctl: {count} cells ran; output: {output}", flush=True)
        return 0
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        shutil.rmtree(spec_dir, ignore_errors=True)


def run_cell(client: "BlockingKernelClient", cell: dict, count: int) -> bool:
    """Run one code cell, storing its outputs; True when it raised."""
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else source
    outputs = cell["outputs"] = []
    cell["execution_count"] = count
    failed = []

    def keep(message: dict) -> None:
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            outputs.append({"output_type": "stream", "name": content["name"],
                            "text": content["text"]})
            stream = sys.stderr if content["name"] == "stderr" else sys.stdout
            stream.write(content["text"])
            stream.flush()
        elif kind in ("execute_result", "display_data"):
            item = {"output_type": kind, "data": content.get("data", {}),
                    "metadata": content.get("metadata", {})}
            if kind == "execute_result":
                item["execution_count"] = count
                print(content.get("data", {}).get("text/plain", ""), flush=True)
            outputs.append(item)
        elif kind == "error":
            failed.append(content)
            outputs.append({"output_type": "error", "ename": content["ename"],
                            "evalue": content["evalue"], "traceback": content["traceback"]})
            print(strip_colours("\n".join(content["traceback"])), file=sys.stderr, flush=True)
        elif kind == "clear_output":
            outputs.clear()

    reply = client.execute_interactive(source, store_history=True, allow_stdin=False,
                                       output_hook=keep)
    return bool(failed) or reply["content"].get("status") == "error"


def strip_colours(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def save(notebook: dict, output: str) -> None:
    """Replace OUT whole, so a reader never sees half a notebook."""
    directory = os.path.dirname(os.path.abspath(output))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".kernelctl-notebook-", suffix=".ipynb")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(notebook, out, indent=1, ensure_ascii=False)
        out.write("\n")
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, output)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


if __name__ == "__main__":
    sys.exit(main())
