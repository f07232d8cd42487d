"""A three-node Elasticsearch cluster losing a node in the middle of a crawl and of an alerts pass (issue #16):
no article and no hit lost or doubled, search keeps answering, the node rejoins. Real nodes, real crawl."""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import newswatch, spawn, write_config

pytestmark = pytest.mark.slow  # three Elasticsearch nodes and a crawl

ARTICLES = 120
NAMING = range(0, ARTICLES, 2)  # the articles that name Deir Ezzor, once each, in their text


_WORDS = [
    "convoy",
    "ministry",
    "border",
    "crossing",
    "river",
    "bridge",
    "market",
    "council",
    "water",
    "power",
    "harvest",
    "school",
    "hospital",
    "road",
    "checkpoint",
    "airport",
    "refinery",
    "pipeline",
    "village",
    "district",
    "militia",
    "envoy",
    "ceasefire",
    "talks",
    "aid",
    "refugees",
    "camp",
]


def _page(number: int) -> bytes:
    """A report of its own (distinct words, so no two are clustered as copies of one story)."""
    rng = random.Random(number)
    place = "the town of Deir Ezzor" if number in NAMING else "the capital"
    sentences = [f"Officials in {place} described report {number} on Tuesday."] + [
        " ".join(rng.choice(_WORDS) for _ in range(14)).capitalize() + "." for _ in range(12)
    ]
    body = f"<html><head><title>Report {number}</title></head><body><article><h1>Report {number}</h1>"
    return (body + "".join(f"<p>{s}</p>" for s in sentences) + "</article></body></html>").encode()


class _Site(BaseHTTPRequestHandler):
    """One feed of ARTICLES items and their pages; counts the pages served."""

    served = 0
    lock = threading.Lock()

    def do_GET(self):
        if self.path == "/feed.xml":
            items = "".join(
                f"<item><title>Report {n}</title><link>http://{self.headers['Host']}/a/{n}.html</link>"
                f"<guid>report-{n}</guid><pubDate>Tue, 01 Dec 2026 10:{n % 60:02d}:00 GMT</pubDate></item>"
                for n in range(ARTICLES)
            )
            body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Reports</title>{items}</channel></rss>'
            self._send(body.encode(), "application/rss+xml")
        elif self.path.startswith("/a/") and self.path.endswith(".html"):
            with _Site.lock:
                _Site.served += 1
            self._send(_page(int(self.path[3:-5])), "text/html; charset=utf-8")
        else:
            self.send_error(404)

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.fixture
def site() -> Iterator[str]:
    _Site.served = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _wait(predicate, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.timeout(900)
def test_a_node_lost_in_a_crawl_and_an_alerts_pass_loses_and_doubles_nothing(
    config_dir, site, es_cluster, es_index_prefix, tmp_path
):
    from elasticsearch import Elasticsearch

    write_config(
        config_dir,
        feeds=[{"name": "Reports", "url": f"{site}/feed.xml", "language": "en"}],
        watches=[{"name": "Deir Ezzor", "kind": "place"}],
        settings={
            "storage": {
                "backend": "elasticsearch",
                "elasticsearch": {"hosts": es_cluster.urls, "index_prefix": es_index_prefix, "request_timeout": 20},
            }
        },
    )
    client = Elasticsearch(es_cluster.urls, request_timeout=30, retry_on_timeout=True, max_retries=5)
    master = client.cat.master(format="json")[0]["node"]
    # Two members other than the master: one stopped in the crawl, the other killed in the alerts pass.
    in_crawl, in_alerts = [i for i in range(len(es_cluster.urls)) if es_cluster.member(i) != master][:2]
    try:
        log = (tmp_path / "crawl.log").open("w")
        crawl = spawn(config_dir, "crawl", "--all", stdout=subprocess.DEVNULL, stderr=log)
        try:
            _wait(lambda: _Site.served >= ARTICLES // 4 or crawl.poll() is not None, "the crawl to be under way")
            assert crawl.poll() is None, "the crawl ended before a node could be stopped: make it longer"
            es_cluster.stop(in_crawl)  # in the middle of the crawl
            assert crawl.wait(timeout=600) == 0, (tmp_path / "crawl.log").read_text()[-3000:]
        finally:
            if crawl.poll() is None:
                crawl.kill()
            log.close()
        assert "Traceback" not in (tmp_path / "crawl.log").read_text()
        assert _Site.served >= ARTICLES
        _search_answers(config_dir)  # on two nodes (yellow)
        _rejoin(es_cluster, client, in_crawl)

        alerts = spawn(config_dir, "alerts", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            lines = []
            for line in alerts.stderr:  # the watches are compiled: the pass now reads articles, writes hits
                lines.append(line)
                if "watches_compiled" in line:
                    es_cluster.kill(in_alerts)
                    break
            lines += alerts.stderr.readlines()
            assert alerts.wait(timeout=600) == 0, "".join(lines)[-3000:]
        finally:
            if alerts.poll() is None:
                alerts.kill()
            alerts.stderr.close()
        assert "Traceback" not in "".join(lines)
        _search_answers(config_dir)
        _rejoin(es_cluster, client, in_alerts)
        again = newswatch("alerts", config_dir=config_dir, timeout=600)
        assert again.returncode == 0, again.stderr[-3000:]

        client.indices.refresh(index=f"{es_index_prefix}*")
        articles = client.search(index=f"{es_index_prefix}articles", size=1000, source=["title"])["hits"]["hits"]
        titles = sorted(hit["_source"]["title"] for hit in articles)
        assert titles == sorted(f"Report {n}" for n in range(ARTICLES))  # none lost, none doubled
        hits = client.search(index=f"{es_index_prefix}hits", size=1000, query={"term": {"watch": "Deir Ezzor"}})
        named = sorted(hit["_source"]["article_id"] for hit in hits["hits"]["hits"])
        assert len(named) == len(set(named)) == len(NAMING)  # one hit per article naming it: none lost or doubled
    finally:
        for member in (in_crawl, in_alerts):
            es_cluster.start(member)
        client.close()


def _search_answers(config_dir) -> None:
    found = newswatch("search", "Deir Ezzor", "--json", "--limit", "200", config_dir=config_dir)
    assert found.returncode == 0, found.stderr[-2000:]
    assert json.loads(found.stdout), "search found nothing"


def _rejoin(es_cluster, client, member: int) -> None:
    """Start the member again and wait until it is back in the cluster."""
    es_cluster.start(member)
    size = len(es_cluster.urls)
    health = client.cluster.health(wait_for_nodes=str(size), wait_for_status="yellow", timeout="120s")
    assert health["number_of_nodes"] == size, health
