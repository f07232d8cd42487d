"""Pytest fixture for a real Redis: Debian's redis-server on a free loopback port, in a folder of its own.

`make test` installs the package when it is missing (the Makefile's `redis` target, as root); without it the
tests that need Redis skip and say why.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_SECONDS = 10


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """One redis-server process on 127.0.0.1:``port`` with its files in ``folder``; ``stop`` and ``start``
    take it away and bring it back on the same port (its data saved on a clean stop and read back, as a
    packaged server does; ``kill`` loses what it held)."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, _free_port()
        self.process: subprocess.Popen | None = None
        self.log = folder / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.folder),
            "--save",
            "3600 1",  # saved at a clean shutdown, read back at start
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            str(self.log),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited {self.process.returncode}: {self.log.read_text()[-2000:]}")
            if self.ping():
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {START_SECONDS} s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """A clean shutdown (SIGTERM: it saves its data first)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)

    def kill(self) -> None:
        """SIGKILL: what it held in memory since its last save is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def client(self):
        import redis

        return redis.Redis.from_url(self.url)


@pytest.fixture
def redis_server(tmp_path_factory) -> RedisServer:
    """A fresh redis-server for one test (it starts in a few ms), stopped after it."""
    if not Path(REDIS_SERVER).exists():
        pytest.skip("no redis-server (Debian's redis-server package; `make test` installs it as root)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()
