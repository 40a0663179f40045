"""`doctor --deep`: start each kernel through jupyter_client and see what really happens."""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from kernelctl.doctor.kernels import distributions, import_places, kernel_venv
from kernelctl.doctor.report import CheckResult, Context, kernel_result
from kernelctl.model import KernelInfo
from kernelctl.venvs import site_packages

if TYPE_CHECKING:
    from jupyter_client.manager import KernelManager

PARALLEL = 4
# Where a module would be imported from, without importing it (probes run it remotely).
ORIGIN = """
import importlib.util, json, os, sys
def _kernelctl_origin(name):
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec else None
"""
PROBE = ORIGIN + """
print(json.dumps({"executable": sys.executable, "prefix": sys.prefix,
                  "version": sys.version.split()[0],
                  "winners": {n: _kernelctl_origin(n) for n in %s}}))
"""


def deep(context: Context) -> Iterator[CheckResult]:
    if not context.deep:
        return
    kernels = [k for k in context.kernels if k.spec is not None]
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        yield from pool.map(lambda k: _start_and_probe(k, context), kernels)


# ipykernel's warning on every local start; not the user's concern in a finding.
NOISE = "Kernel is running over TCP without encryption"


def _start_and_probe(kernel: KernelInfo, context: Context) -> CheckResult:
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name=kernel.name)
    manager.kernel_spec_manager.kernel_dirs.insert(0, str(kernel.resource_dir.parent))
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        try:
            manager.start_kernel(env=dict(context.env), cwd=context.env.get("HOME", "/"),
                                 stderr=stderr, stdout=stderr)
            return _probe(manager, kernel, context, started)
        except Exception as exc:  # any failure to start is the finding
            stderr.seek(0)
            tail = [line for line in stderr.read().decode("utf-8", "replace").strip().splitlines()
                    if NOISE not in line][-5:]
            return kernel_result(kernel, "kernel.deep", "fail",
                                 f"{kernel.name} did not start: {exc}" +
                                 ("".join(f"\n  {line}" for line in tail)),
                                 f"kernelctl show {kernel.name}; fix or recreate it.")
        finally:
            if manager.has_kernel:
                manager.shutdown_kernel(now=True)


def _probe(manager: "KernelManager", kernel: KernelInfo, context: Context,
           started: float) -> CheckResult:
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=context.timeout)
        ready = time.perf_counter() - started
        if kernel.language != "python":
            return kernel_result(kernel, "kernel.deep", "ok",
                                 f"{kernel.name} started in {ready:.1f} s")
        shared = sorted(_shared_packages(kernel, context))
        printed: list = []
        reply = client.execute_interactive(
            PROBE % repr([n.replace("-", "_") for n in shared]), timeout=context.timeout,
            output_hook=lambda m: printed.append(m["content"].get("text", ""))
            if m["msg_type"] == "stream" else None)
    finally:
        client.stop_channels()
    content = reply["content"]
    if content["status"] != "ok":
        return kernel_result(kernel, "kernel.deep", "fail",
                             f"{kernel.name} started but cannot run code: "
                             f"{content.get('ename')}: {content.get('evalue')}",
                             f"kernelctl show {kernel.name}")
    return _judge_probe(kernel, json.loads("".join(printed)), ready)


def _judge_probe(kernel: KernelInfo, seen: dict, ready: float) -> CheckResult:
    venv = kernel_venv(kernel)
    outside = {name: origin for name, origin in seen["winners"].items()
               if venv and origin and not origin.startswith(str(venv) + os.sep)}
    summary = (f"{kernel.name} started in {ready:.1f} s: Python {seen['version']} at "
               f"{seen['executable']} (prefix {seen['prefix']})")
    if outside:
        losing = "; ".join(f"{name} comes from {origin}" for name, origin in outside.items())
        return kernel_result(kernel, "kernel.deep", "fail",
                             f"{summary}, but the venv's copies lose: {losing}",
                             "Put the venv's site-packages first in the kernel's PYTHONPATH "
                             "(kernelctl doctor --fix does it for kernelctl kernels).")
    wins = f"; the venv's copies win ({', '.join(seen['winners'])})" if seen["winners"] else ""
    return kernel_result(kernel, "kernel.deep", "ok", summary + wins)


def _shared_packages(kernel: KernelInfo, context: Context) -> set:
    """Packages in the kernel's venv that the base (PYTHONPATH, site-packages) has too."""
    venv = kernel_venv(kernel)
    site = site_packages(venv) if venv else None
    if site is None:
        return set()
    mine = distributions(str(site))
    places = [p for p in (import_places(kernel, context) or []) if Path(p) != site]
    return {name for place in places for name in distributions(os.path.abspath(place))
            if name in mine}


