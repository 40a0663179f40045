"""kernelctl in JupyterLab: the server extension behind the Kernels panel.

Installed with kernelctl (`pip install 'kernelctl[lab]'` into the server's environment)
and enabled by the file jupyter_server_config.d/kernelctl.json that the wheel puts in
the environment's etc/jupyter. It adds the REST API of docs/lab.md under
/kernelctl/api/, behind the server's own authentication (token or cookie with XSRF).
"""

from __future__ import annotations

import os
from typing import Any, Dict, List


def _jupyter_server_extension_points() -> List[Dict[str, str]]:
    return [{"module": "kernelctl.lab"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from kernelctl.lab.handlers import handlers
    from kernelctl.lab.operations import Operations

    web_app = server_app.web_app
    web_app.settings["kernelctl_operations"] = Operations(os.environ)
    web_app.add_handlers(".*$", handlers(web_app.settings.get("base_url", "/")))
    server_app.log.info("kernelctl: the Kernels panel's API is at /kernelctl/api/")


# The names jupyter_server looks for, also under their older spelling.
load_jupyter_server_extension = _load_jupyter_server_extension
