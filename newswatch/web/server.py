"""Serving the app: uvicorn in a thread of its own, for `newswatch web` and inside `newswatch run`.

The listening socket is bound here, before uvicorn starts, so that an address in use or not allowed is one
NewswatchError at start (exit 2), and port 0 gives a free port the start-up line names. The access rule
(newswatch.web.access) is applied before anything listens.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time

import uvicorn

from newswatch.core.config import Config
from newswatch.core.errors import NewswatchError
from newswatch.core.store import Store
from newswatch.web.access import access_for
from newswatch.web.app import create_app

log = logging.getLogger(__name__)

START_SECONDS = 30  # how long uvicorn may take to start listening
STOP_SECONDS = 10  # requests in progress get this long to finish at shutdown


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (0: a free port); NewswatchError saying why it cannot be."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise NewswatchError(f"web: cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise NewswatchError(f"web: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


class WebServer:
    """The web page served by uvicorn in a daemon thread: ``start()``, then ``stop()``.

    ``store``: the service's open store, shared; None: the app opens its own. Raises WebAccessRefused (a
    network address without credentials) or NewswatchError (the address cannot be bound) when made."""

    def __init__(self, config: Config, *, store: Store | None = None, host: str | None = None, port: int | None = None):
        settings = config.settings.web
        self.host = host or settings.host
        access = access_for(settings, self.host, config.env)
        self.access_kind = access.kind
        self.socket = bind(self.host, settings.port if port is None else port)
        self.port = self.socket.getsockname()[1]
        app = create_app(config, store, access=access)
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_config=None,  # newswatch's own one-line log format (core.logs)
                access_log=False,
                lifespan="on",
                ws="none",
                server_header=False,
                timeout_graceful_shutdown=STOP_SECONDS,
            )
        )
        self.thread = threading.Thread(target=self._run, name="web", daemon=True)
        self._stopped = False
        for name in ("uvicorn", "uvicorn.error"):  # its start-up chatter; our own line says where it listens
            logging.getLogger(name).setLevel(logging.WARNING)

    @property
    def url(self) -> str:
        """The page's address, e.g. http://127.0.0.1:8080/."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        except BaseException as exc:  # SystemExit from uvicorn's start-up among them: logged, not a thread dump
            log.error("web_failed reason=%s", exc)

    @property
    def running(self) -> bool:
        """True while the server thread is alive."""
        return self.thread.is_alive()

    def start(self) -> None:
        """Start serving; NewswatchError when uvicorn does not start within START_SECONDS."""
        self.thread.start()
        deadline = time.monotonic() + START_SECONDS
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise NewswatchError(f"web: the server did not start on {self.url}")
            time.sleep(0.02)
        log.info("web_started url=%s auth=%s", self.url, self.access_kind)

    def stop(self) -> None:
        """Stop serving (requests in progress get STOP_SECONDS) and close the socket; twice is once."""
        if self._stopped:
            return
        self._stopped = True
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(STOP_SECONDS + 5)
        self.socket.close()
        log.info("web_stopped url=%s", self.url)


def serve(config: Config, *, host: str | None = None, port: int | None = None) -> None:
    """`newswatch web`: serve until SIGINT or SIGTERM, then stop cleanly."""
    server = WebServer(config, host=host, port=port)
    stopping = threading.Event()

    def on_signal(signum, _frame) -> None:
        log.info("web_stopping signal=%s", signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        while not stopping.wait(0.5):
            if not server.running:
                raise NewswatchError("web: the server stopped (see the log line above)")
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
