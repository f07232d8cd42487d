"""End to end: the Elasticsearch node stops in the middle of a real crawl; every article arrives exactly once."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import newswatch, spawn, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # a real Elasticsearch node

PAGES = 60
PAGE_DELAY = 0.25  # seconds per article page: with 2 requests at a time the crawl takes about 8 s
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta property="article:published_time" content="2026-03-{day:02d}T08:00:00Z"></head>
<body><article><h1>{title}</h1><p>By Staff</p>
<p>Residents of Deir ez-Zor said item {n} described shelling near Abu Kamal overnight, and that the road to
Al-Qaim stayed closed to trucks for a second day while aid agencies waited for permission to cross.</p>
<p>Officials gave no figure for casualties in report {n}; a local council member said families had left for
camps further north, and that schools would stay shut until the end of the week.</p></article></body></html>"""


class _SlowSite(BaseHTTPRequestHandler):
    """An RSS feed of PAGES items whose article pages answer slowly."""

    def do_GET(self):
        if self.path == "/feed.xml":
            items = "".join(
                f"<item><title>Report {n}</title><link>/a/{n}.html</link><guid>report-{n}</guid>"
                f"<pubDate>Sat, {n % 28 + 1:02d} Mar 2026 08:00:00 +0000</pubDate>"
                f"<description>Report {n}</description></item>"
                for n in range(PAGES)
            )
            body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Slow</title>{items}</channel></rss>'
            kind = "application/rss+xml"
        elif self.path.startswith("/a/"):
            time.sleep(PAGE_DELAY)
            n = int(self.path.split("/")[-1].split(".")[0])
            body, kind = PAGE.format(title=f"Report {n}", n=n, day=n % 28 + 1), "text/html; charset=utf-8"
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_site():
    """The slow news site on 127.0.0.1; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowSite)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_node_stopped_mid_crawl_loses_nothing_and_duplicates_nothing(
    config_dir, slow_site, es_node, es_client, es_index_prefix
):
    """Stop the node after the crawl's first batch; restart it; each of the feed's articles is stored once."""
    write_config(
        config_dir,
        feeds=[{"name": "Slow Wire", "url": f"{slow_site}/feed.xml", "language": "en"}],
        settings={
            "storage": {
                "backend": "elasticsearch",
                "elasticsearch": {"hosts": [es_node.url], "index_prefix": es_index_prefix},
            }
        },
    )
    crawl = spawn(config_dir, "crawl", stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    lines: list[str] = []
    stored_once = threading.Event()

    def read_stderr():
        for line in crawl.stderr:
            lines.append(line)
            if "articles_stored" in line:
                stored_once.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert stored_once.wait(120), "".join(lines)
        es_node.stop()  # the crawl goes on fetching pages: its next batches must go to the spool
        assert crawl.wait(300) == 0, "".join(lines)
    finally:
        es_node.ensure_running()
        if crawl.poll() is None:
            crawl.kill()
            crawl.wait()
        reader.join(10)
        crawl.stderr.close()
    log = "".join(lines)
    assert "Traceback" not in log
    assert log.count("es_unavailable") == 1, log

    # The next run replays whatever the first one could not (at start-up) and finds nothing new to fetch.
    again = newswatch("crawl", config_dir=config_dir)
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    alias = f"{es_index_prefix}articles"
    es_client.indices.refresh(index=alias)
    hits = es_client.search(index=alias, size=1000, source=["url"])["hits"]["hits"]
    urls = sorted(hit["_source"]["url"] for hit in hits)
    assert urls == sorted(f"{slow_site}/a/{n}.html" for n in range(PAGES))  # every one, none twice
    assert "es_spool_waiting" in log or "es_available" in log  # the spool was used: left for the next run, or replayed
    with sqlite3.connect(config_dir.parent / "var" / "es-spool" / "spool.sqlite3") as spool:
        assert spool.execute("SELECT COUNT(*) FROM articles").fetchone() == (0,)
    assert "es_spool_replayed" in log + again.stderr
