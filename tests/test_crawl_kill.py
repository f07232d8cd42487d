"""A crawl killed with SIGKILL mid-run: the next run stores each article exactly once and loses none."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from newswatch.core.config import load_config
from newswatch.core.store.sqlite import SqliteStore
from tests.conftest import ROOT, newswatch, write_config

pytestmark = pytest.mark.slow  # crawls run in child processes, killed

ARTICLES = 30
SERVED_BEFORE_KILL = 8
WORDS = [
    "Deir",
    "Ezzor",
    "Raqqa",
    "Abu",
    "Kamal",
    "Euphrates",
    "Hasakah",
    "Qamishli",
    "Manbij",
    "Tabqa",
    "Mayadin",
    "Busayrah",
    "Hajin",
    "Shaddadi",
    "Tal",
    "Abyad",
    "Kobani",
    "Palmyra",
    "Homs",
    "Idlib",
    "Afrin",
    "Jarablus",
    "the",
    "army",
    "said",
    "on",
    "Friday",
    "that",
    "forces",
    "had",
    "taken",
    "town",
    "village",
    "road",
    "bridge",
    "river",
    "border",
    "crossing",
    "militants",
    "residents",
    "aid",
    "water",
    "bread",
    "market",
]


def _page(n: int) -> bytes:
    # Each page its own story (its own random word sequence), so clustering leaves all of them apart.
    text = " ".join(random.Random(n).choices(WORDS, k=150))
    return (
        f"<html lang='en'><head><title>Report {n}</title></head><body><article><h1>Report {n}</h1>"
        f"<p>{text}</p></article></body></html>"
    ).encode()


class GatedSite(BaseHTTPRequestHandler):
    """A feed of ARTICLES pages; after SERVED_BEFORE_KILL pages, page requests wait until the gate opens."""

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        server = self.server
        if self.path == "/feed.xml":
            items = "".join(
                f"<item><title>Report {n}</title><link>/p/{n}.html</link><guid>r{n}</guid></item>"
                for n in range(ARTICLES)
            )
            body, kind = (
                f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>".encode(),
                "application/rss+xml",
            )
        elif self.path.startswith("/p/"):
            with server.lock:
                server.pages.append(self.path)
                gated = len(server.pages) > SERVED_BEFORE_KILL
            if gated:
                server.gate.wait(60)
            body, kind = _page(int(self.path[3:].split(".")[0])), "text/html; charset=utf-8"
        else:
            self.send_error(404)
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except ConnectionError:  # the killed crawler is gone
            pass


def _count(db: Path) -> int:
    store = SqliteStore(db)
    try:
        return store.count_articles()
    finally:
        store.close()


def test_sigkill_mid_crawl_then_rerun_stores_each_article_once(config_dir: Path):
    """SIGKILL after some articles are stored: the feed stays due, and the next plain crawl fetches the rest."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), GatedSite)
    server.lock, server.gate, server.pages = threading.Lock(), threading.Event(), []
    server.handle_error = lambda request, address: None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        write_config(
            config_dir,
            feeds=[{"name": "Gated", "url": f"{base}/feed.xml"}],
            settings={"crawler": {"store_flush_seconds": 0.2, "concurrent_requests_per_domain": 4}},
        )
        db = load_config(config_dir).path("var/newswatch.db")
        command = [sys.executable, "-m", "newswatch", "--config", str(config_dir), "crawl"]
        child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not (db.exists() and _count(db) >= SERVED_BEFORE_KILL) and time.monotonic() < deadline:
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
        stored_before = _count(db)
        assert stored_before == SERVED_BEFORE_KILL  # killed mid-run, with the rest of the pages pending

        server.gate.set()
        rerun = newswatch("crawl", config_dir=config_dir)  # no --all: the killed run must have left it due
        assert rerun.returncode == 0 and "Traceback" not in rerun.stderr, rerun.stderr[-3000:]
        assert f"items={ARTICLES} new={ARTICLES - SERVED_BEFORE_KILL} " in rerun.stderr
        store = SqliteStore(db)
        articles = store.articles_after(None, limit=1000)[0]
        assert len(articles) == ARTICLES == len({a.id for a in articles}) == len({a.url for a in articles})
        assert all(a.source == "page" and a.cluster_id == a.id for a in articles)
        assert store.get_feed_state("gated").items_seen == ARTICLES
        store.close()
        fetched_twice = {p for p in server.pages if server.pages.count(p) > 1}
        assert len(server.pages) - len(fetched_twice) == ARTICLES  # only pages cut off by the kill again
        assert not fetched_twice & set(server.pages[:SERVED_BEFORE_KILL])
    finally:
        server.gate.set()
        server.shutdown()
        server.server_close()
