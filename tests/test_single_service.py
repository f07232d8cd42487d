"""One service and one alerts pass per store; crawl children never outlive the service; a store that
refuses writes stops the crawl with one line and exit 1 (issue: exactly once, whatever runs at once)."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from newswatch.core.config import load_config
from newswatch.core.store import open_store
from newswatch.core.store.leases import this_process
from tests.conftest import newswatch, spawn, start_service, stop_service, wait_for, write_config
from tests.test_smtp_deadline import DripServer

pytestmark = pytest.mark.slow  # services and crawls run in child processes

PAGES = 12


class SlowSite(BaseHTTPRequestHandler):
    """A feed of PAGES items whose pages each take a second: a crawl that lasts."""

    delay = 1.0

    def do_GET(self):
        host = f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        if self.path == "/feed.xml":
            items = "".join(
                f"<item><title>Report {n} from Deir Ezzor</title><link>http://{host}/story/{n}</link>"
                f"<pubDate>Mon, 02 Nov 2026 0{n % 10}:00:00 GMT</pubDate></item>"
                for n in range(PAGES)
            )
            body, kind = (
                f'<?xml version="1.0"?><rss version="2.0"><channel><title>Slow</title>{items}</channel></rss>',
                ("application/rss+xml"),
            )
        elif self.path.startswith("/story/"):
            time.sleep(self.delay)
            n = self.path.rsplit("/", 1)[1]
            text = " ".join(
                f"Fighting near Abu Kamal went on for day {n}, residents of Deir Ezzor said." for _ in range(8)
            )
            body, kind = (
                f"<html><head><title>Story {n}</title></head><body><article><p>{text}</p></article></body></html>",
                ("text/html; charset=utf-8"),
            )
        else:
            body, kind = "", "text/plain"
            self.send_response(404)
        if self.path in ("/feed.xml",) or self.path.startswith("/story/"):
            self.send_response(200)
        data = body.encode()
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowSite)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_second_service_on_the_same_store_refuses_naming_the_first(config_dir: Path, slow_site: str):
    """Two `newswatch run` on one var/: the second exits 1 with one line naming host, pid and since; once the
    first stops, a new one starts."""
    write_config(config_dir, feeds=[{"name": "Slow", "url": f"{slow_site}/feed.xml"}])
    first = start_service(config_dir)
    seen: list[str] = []
    try:
        wait_for(first, "service_started", seen)
        second = newswatch("run", config_dir=config_dir, timeout=60)
        assert second.returncode == 1, second.stderr
        (line,) = [text for text in second.stderr.splitlines() if text.startswith("error:")]
        assert "newswatch run already runs on this store" in line and f"pid {first.pid}" in line and " since " in line
        assert "Traceback" not in second.stderr and "service_started" not in second.stderr
    finally:
        output = stop_service(first, seen, timeout=90)
    assert first.returncode == 0, output[-3000:]
    again = start_service(config_dir)
    try:
        wait_for(again, "service_started", [])
    finally:
        stop_service(again, [], timeout=90)


def test_sigkill_of_the_service_ends_its_crawl_child_and_a_restart_takes_over(config_dir: Path, slow_site: str):
    """The crawl child has its own process group and dies with the service (PR_SET_PDEATHSIG), so a restart
    after SIGKILL never crawls beside an orphan; the killed service's lease is taken at once (same host)."""
    write_config(config_dir, feeds=[{"name": "Slow", "url": f"{slow_site}/feed.xml"}])
    service = start_service(config_dir)
    seen: list[str] = []
    try:
        wait_for(service, "crawl_started", seen)
        deadline = time.monotonic() + 30
        while not (crawls := children_of(service.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        (child,) = crawls
        assert os.getpgid(child) != os.getpgid(service.pid)
        time.sleep(2)  # the crawl is fetching pages
        service.kill()
        service.communicate(timeout=10)
        deadline = time.monotonic() + 30
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(child), "the crawl child outlived the service"
    finally:
        if service.poll() is None:
            service.kill()
    SlowSite.delay = 0.0  # the restart only has to start; its crawl need not be slow
    restarted = start_service(config_dir)
    try:
        wait_for(restarted, "service_started", [], timeout=60)
    finally:
        stop_service(restarted, [], timeout=90)
        SlowSite.delay = 1.0


def test_an_alerts_pass_refuses_while_another_holds_the_store(config_dir: Path):
    """`newswatch alerts` while another live process holds the alerts lease: one line naming it, exit 1."""
    write_config(config_dir)
    config = load_config(config_dir)
    with open_store(config) as store:
        holder = store.take_lease("alerts", this_process(), 60)
        result = newswatch("alerts", config_dir=config_dir)
        assert result.returncode == 1, result.stderr
        assert f"an alerts pass already runs on this store: host '{holder.host}' pid {os.getpid()}" in result.stderr
        assert "Traceback" not in result.stderr
        store.release_lease("alerts", holder)
    assert newswatch("alerts", config_dir=config_dir).returncode == 0


def _small_files(limit: int):
    """In the crawl child: files may not grow past ``limit`` bytes (RLIMIT_FSIZE); SIGXFSZ is ignored so a
    write past it fails with EFBIG, as on a full disk, instead of killing the process."""

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_store_that_refuses_writes_stops_the_crawl_with_one_line_and_exit_1(config_dir: Path, slow_site: str):
    """The SQLite file cannot grow (a real EFBIG from RLIMIT_FSIZE, standing in for a full disk): the crawl
    says so in one line naming the store, exits 1, marks no feed as done, and nothing is half-stored."""
    SlowSite.delay = 0.0
    write_config(config_dir, feeds=[{"name": "Slow", "url": f"{slow_site}/feed.xml"}])
    config = load_config(config_dir)
    open_store(config).close()  # the empty store exists; its write-ahead log may not grow past 8 kB
    # Held open here, so the crawl finds the WAL index (32 kB, past the limit) made already and an empty log.
    keeper = sqlite3.connect(config.path("var/newswatch.db"))
    keeper.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    crawl = spawn(
        config_dir,
        "crawl",
        "--all",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_small_files(8192),
    )
    output, _ = crawl.communicate(timeout=180)
    keeper.close()
    SlowSite.delay = 1.0
    assert crawl.returncode == 1, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "store_write_failed" in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "SQLite store" in errors[0] and str(config.path("var/newswatch.db")) in errors[0]
    # The feed was not marked done (its body hash, its items): the next crawl fetches and stores every page.
    again = newswatch("crawl", "--all", config_dir=config_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    with open_store(config) as store:
        assert store.count_articles() == PAGES


def test_a_stuck_mail_server_holds_no_crawl_back_and_sigterm_ends_the_service_at_once(config_dir: Path, demo_site: str):
    """The digest's SMTP server drips one EHLO line a second (deadline 120 s): crawls go on meanwhile, and
    SIGTERM aborts the send, so the service exits within seconds; the digest stays queued."""
    server = DripServer("EHLO", give_up=120)
    try:
        write_config(
            config_dir,
            feeds=[{"name": "Levant Monitor", "url": f"{demo_site}/feed.xml"}],
            recipients=[{"name": "analyst", "email": "analyst@example.org", "cadence": "immediate"}],
            settings={
                "schedule": {"crawl_every_minutes": 0.05},
                "delivery": {"method": "smtp", "smtp": server.settings(deadline_seconds=120)},
            },
        )
        service = start_service(config_dir)
        seen: list[str] = []
        try:
            wait_for(service, "crawl_done", seen)
            assert server.dripping.wait(60)
            wait_for(service, "crawl_started", seen)  # the next crawl, while the digest is stuck
            wait_for(service, "crawl_done", seen)
            started = time.monotonic()
            service.send_signal(signal.SIGTERM)
            rest, _ = service.communicate(timeout=30)
            took = time.monotonic() - started
        finally:
            if service.poll() is None:
                service.kill()
                service.communicate()
        output = "".join(seen) + rest
        assert took < 8, output[-3000:]
        assert service.returncode == 0 and "Traceback" not in output, output[-3000:]
        with open_store(load_config(config_dir)) as store:
            assert len(store.pending_digests()) == 1
    finally:
        server.stop()
