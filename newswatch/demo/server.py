"""Serve a folder over HTTP on 127.0.0.1 (the demo's news site, and the tests' sites)."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the crawl logs every fetch already
        pass


def serve_site(folder: Path) -> ThreadingHTTPServer:
    """Serve ``folder`` on 127.0.0.1 on a free port, in a daemon thread; call ``shutdown()`` when done."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
