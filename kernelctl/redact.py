"""Keep credentials out of what kernelctl records and prints.

Users put tokens in package URLs (`pkg @ https://user:TOKEN@host/...`, `git+https://
TOKEN@github.com/...`, `--find-links https://user:pw@host/`). pip needs them once; the
environment record, `show`, progress lines and logs must not keep them.
"""

from __future__ import annotations

import re

# scheme://userinfo@ : everything between "//" and the "@" before the host.
USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact(text: str) -> str:
    return USERINFO.sub(lambda m: f"{m['scheme']}****@", text)


def has_credentials(text: str) -> bool:
    return USERINFO.search(text) is not None
