"""`make demo`, last step: start a kernel through jupyter_client and run code in it.

Usage: python tests/demo_kernel.py KERNEL_NAME
"""

from __future__ import annotations

import os
import sys
import tempfile

from jupyter_client.manager import KernelManager

CODE = """\
import sys, ipykernel
print("kernel interpreter:", sys.executable)
print("environment:       ", sys.prefix)
print("ipykernel from:    ", ipykernel.__file__)
print("sum(range(10)) =", sum(range(10)))
"""


def main(name: str) -> None:
    print(f"\nStarting '{name}' through jupyter_client and running code in it:")
    manager = KernelManager(kernel_name=name)
    # The kernel's own log (ipykernel's TCP-encryption warning on every local start) is
    # shown only if something goes wrong.
    with tempfile.TemporaryFile() as log:
        manager.start_kernel(cwd=tempfile.gettempdir(), env=dict(os.environ), stderr=log)
        client = manager.client()
        try:
            client.start_channels()
            client.wait_for_ready(timeout=60)
            reply = client.execute_interactive(CODE, timeout=60)
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
        if reply["content"]["status"] != "ok":
            log.seek(0)
            sys.exit(f"the kernel failed: {reply['content']}\n{log.read().decode(errors='replace')}")


if __name__ == "__main__":
    main(sys.argv[1])
