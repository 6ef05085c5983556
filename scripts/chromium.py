"""Headless Chromium as the screenshots script and the browser test start it (Debian's build, no downloads)."""

from __future__ import annotations

import socket
from pathlib import Path

#: Debian's package; Playwright's own browser download is not used.
CHROMIUM = Path("/usr/bin/chromium")
#: Headless, and nothing that reaches the network on its own (these machines have no internet).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    """A loopback port that was free a moment ago (the caller binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
