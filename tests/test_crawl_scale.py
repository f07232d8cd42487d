"""Crawls that scale with the number of sites (issue 13): politeness per site against real local servers, a
scheduler queue whose work per request does not grow with the sites waiting, and `feeds status` drawn without
rich's per-row layout cost (bench/crawl.py --cycles measures all three at thousands of feeds)."""

from __future__ import annotations

import contextlib
import io
import itertools
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console
from rich.table import Table
from scrapy import Request
from scrapy.core.downloader import Downloader
from scrapy.settings import Settings
from scrapy.squeues import FifoMemoryQueue, LifoMemoryQueue

from crawler import settings as crawl_settings
from crawler.extensions import SiteTurnQueue
from newswatch.cli.feeds import box_table
from newswatch.core.config import load_config
from newswatch.core.store.sqlite import SqliteStore
from tests.conftest import newswatch, write_config

PAGES = 3  # article pages per site


def _page(title: str) -> bytes:
    text = f"<p>{title}: " + "The statement was read on state television on Friday evening. " * 4 + "</p>"
    return f"<html><head><title>{title}</title></head><body><article>{text}</article></body></html>".encode()


class TimedHandler(BaseHTTPRequestHandler):
    """Serves ``server.routes`` (path -> (content type, body)); notes when each request arrived."""

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.server.arrivals.append((time.monotonic(), self.path))
        content_type, body = self.server.routes.get(self.path, ("text/html", b""))
        self.send_response(200 if self.path in self.server.routes else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def news_site(host: str) -> Iterator[ThreadingHTTPServer]:
    """A site on ``host`` (any 127/8 address on Linux): robots.txt, a feed of PAGES items, their pages."""
    server = ThreadingHTTPServer((host, 0), TimedHandler)
    server.base = f"http://{host}:{server.server_address[1]}"
    server.arrivals = []
    items = "".join(
        f"<item><title>Story {n}</title><link>{server.base}/story-{n}.html</link></item>" for n in range(PAGES)
    )
    server.routes = {
        "/robots.txt": ("text/plain", b"User-agent: *\nDisallow: /private/\n"),
        "/feed.xml": (
            "application/rss+xml",
            f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode(),
        ),
        **{f"/story-{n}.html": ("text/html", _page(f"Story {n} of {host}")) for n in range(PAGES)},
    }
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_each_site_gets_a_delay_between_its_requests_but_no_site_waits_for_another(config_dir: Path):
    """Two sites crawled at once: within each, consecutive requests are DOWNLOAD_DELAY apart at least
    (robots.txt, the feed, each page); yet the first request to each goes out at once, the two sites side by
    side, not one start delay per site."""
    with news_site("127.0.0.1") as one, news_site("127.0.0.2") as two:
        feeds = [{"name": "One", "url": f"{one.base}/feed.xml"}, {"name": "Two", "url": f"{two.base}/feed.xml"}]
        write_config(config_dir, feeds=feeds, settings={"crawler": {"store_flush_seconds": 0.2}})
        result = newswatch("crawl", config_dir=config_dir)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
        arrivals = {"one": list(one.arrivals), "two": list(two.arrivals)}
    floor = crawl_settings.DOWNLOAD_DELAY
    assert floor >= 0.2 and crawl_settings.DOWNLOAD_DELAY_JITTER == 0
    for site, seen in arrivals.items():
        assert [path for _, path in seen][:2] == ["/robots.txt", "/feed.xml"], site
        assert len(seen) == 2 + PAGES, seen
        times = [at for at, _ in seen]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        # The client spaces its requests by the floor; their arrival here may be a little closer (a new
        # connection set up for one, not for the next).
        assert min(gaps) >= floor * 0.8, (site, gaps)
    # No start delay per site: both sites' first requests arrive together, not one delay apart.
    assert abs(arrivals["one"][0][0] - arrivals["two"][0][0]) < floor / 2
    store = SqliteStore(load_config(config_dir).path("var/newswatch.db"))
    try:
        assert store.count_articles() == 2 * PAGES
    finally:
        store.close()


class _Slots:
    """The downloader as SiteTurnQueue sees it: its slots' active requests, and Scrapy's own slot keys."""

    DOWNLOAD_SLOT = Downloader.DOWNLOAD_SLOT

    def __init__(self) -> None:
        self.slots: dict[str, SimpleNamespace] = {}
        self.ip_concurrency = 0
        self.looked_at = 0

    def get_slot_key(self, request: Request) -> str:
        return Downloader.get_slot_key(self, request)

    def busy(self, slot: str, requests: int) -> None:
        self.slots[slot] = SimpleNamespace(active=set(range(requests)))


def _queue() -> tuple[SiteTurnQueue, _Slots]:
    downloader = _Slots()
    crawler = SimpleNamespace(engine=SimpleNamespace(downloader=downloader), settings=Settings(), stats=None)
    queue = SiteTurnQueue(crawler, LifoMemoryQueue, "", None, start_queue_cls=FifoMemoryQueue)
    original = queue._busy

    def counted(slot: str) -> int:
        downloader.looked_at += 1
        return original(slot)

    queue._busy = counted
    return queue, downloader


def _host(request: Request | None) -> str:
    assert request is not None
    return request.url.split("/")[2]


def test_the_queue_takes_sites_in_turn_a_free_one_first():
    """Sites come in turn, one request each; a site with a request still in the downloader is passed over
    while another is free; within a site, Scrapy's priorities still hold."""
    queue, downloader = _queue()
    for site in ("a", "b", "c"):
        for n in range(3):
            queue.push(Request(f"http://{site}.example/{n}"))
    queue.push(Request("http://a.example/urgent", priority=5))
    assert len(queue) == 10
    first = [queue.pop() for _ in range(3)]
    assert [_host(r) for r in first] == ["a.example", "b.example", "c.example"]
    assert first[0].url == "http://a.example/urgent"
    downloader.busy("a.example", 1)  # a's last request is still downloading, or waiting out its delay
    assert [_host(queue.pop()) for _ in range(2)] == ["b.example", "c.example"]
    downloader.busy("b.example", 2)
    downloader.busy("c.example", 1)
    assert _host(queue.peek()) == "a.example" == _host(queue.pop())  # all busy: the least busy
    assert len(queue) == 4
    rest = [queue.pop() for _ in range(4)]
    assert sorted(r.url for r in rest) == [
        "http://a.example/0",
        "http://a.example/1",
        "http://b.example/0",
        "http://c.example/0",
    ]
    assert queue.pop() is None and len(queue) == 0 and not queue.pqueues


def test_the_queue_looks_at_a_bounded_number_of_sites_per_request():
    """With 5,000 sites waiting, every one busy, a request costs at most LOOKAHEAD looks at the downloader
    (Scrapy's DownloaderAwarePriorityQueue looks at every waiting site, for each request and for len())."""
    queue, downloader = _queue()
    for site in range(5000):
        queue.push(Request(f"http://s{site}.example/feed.xml"))
        downloader.busy(f"s{site}.example", 1)
    for _ in range(200):
        before = downloader.looked_at
        assert queue.pop() is not None
        len(queue)
        assert downloader.looked_at - before <= SiteTurnQueue.LOOKAHEAD
    assert len(queue) == 4800


def test_the_status_table_is_drawn_as_rich_draws_it():
    """`feeds status` draws its table itself; where it fits, the text is what rich's Table printed."""
    headers = ("id", "health", "last error", "items seen")
    for rows in ([], [("wire", "ok", "", "12"), ("syria-ar", "failing (2)", "2026-11-04 09:15 UTC دير الزور", "0")]):
        table = Table(*headers)
        for row in rows:
            table.add_row(*row)
        printed = io.StringIO()
        Console(width=200, file=printed).print(table)
        assert box_table(headers, rows, width=200, wrap=2) == printed.getvalue()


def test_a_long_error_is_wrapped_inside_the_width():
    """A last error longer than the room left is wrapped in its column, every line within the width."""
    reason = "private address 10.0.0.7 (private); crawler.allow_private_hosts can allow it " * 3
    text = box_table(("id", "last error", "fails"), [("home", reason, "1")], width=80, wrap=1)
    lines = text.splitlines()
    assert all(len(line) == 80 for line in lines), lines
    assert "".join(line.split("│")[2].strip() + " " for line in lines[3:-1]).split() == reason.split()
