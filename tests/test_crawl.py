"""The `feeds` spider against a real HTTP server on 127.0.0.1: store, fall back, never duplicate, go on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.polling.run import PAGE_RETRIES
from newswatch.core.config import load_config
from newswatch.core.store.sqlite import SqliteStore
from tests.conftest import ROOT, newswatch, write_config

pytestmark = pytest.mark.slow  # crawls run in child processes

SEED_TITLE = "Daesh loses last towns in face of twin Syria, Iraq assaults"


def _store(config_dir: Path) -> SqliteStore:
    return SqliteStore(load_config(config_dir).path("var/newswatch.db"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_crawl_stores_extracted_articles_and_feed_fallback(config_dir: Path, demo_site: str):
    """Each feed item becomes one article: extracted from its page, or from the feed item when the page 404s."""
    write_config(config_dir, feeds=[{"name": "Demo Wire", "url": f"{demo_site}/feed.xml", "language": "en"}])
    result = newswatch("crawl", config_dir=config_dir)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    store = _store(config_dir)
    articles = {a.title: a for a in store.articles_after(None)[0]}
    assert len(articles) == 5
    seed = articles[SEED_TITLE]
    assert seed.source == "page" and seed.outlet == "Demo Wire" and seed.language == "en"
    assert seed.published.date().isoformat() == "2017-11-04"
    assert "Deir Ezzor" in seed.text and "Copyright" not in seed.text
    fallback = [a for a in articles.values() if a.source == "feed"]
    assert len(fallback) == 1 and "Raqqa" in fallback[0].text
    assert "article_fallback feed=demo-wire" in result.stderr and "reason=HTTP 404" in result.stderr
    state = store.get_feed_state("demo-wire")
    assert state.consecutive_failures == 0 and state.items_seen == 5


def test_recrawl_polls_only_due_feeds_and_asks_conditionally(config_dir: Path, demo_site: str):
    """A feed just polled is not due; `--all` polls it anyway, and once no page is owed a retry (the demo feed
    lists one missing page), with If-Modified-Since: the 304 fetches nothing."""
    write_config(config_dir, feeds=[{"name": "Demo Wire", "url": f"{demo_site}/feed.xml"}])
    newswatch("crawl", config_dir=config_dir)
    state = _store(config_dir).get_feed_state("demo-wire")
    assert state.next_due > state.last_success and state.last_modified
    assert list(state.page_retries.values()) == [PAGE_RETRIES]  # the missing page
    again = newswatch("crawl", config_dir=config_dir)
    assert again.returncode == 0 and "crawl_planned feeds=1 due=0" in again.stderr
    for _ in range(PAGE_RETRIES):
        retry = newswatch("crawl", "--all", config_dir=config_dir)
        assert "new=0 updated=0 retried=1" in retry.stderr and "feed_unchanged" not in retry.stderr
    assert _store(config_dir).get_feed_state("demo-wire").page_retries == {}
    forced = newswatch("crawl", "--all", config_dir=config_dir)
    assert forced.returncode == 0
    assert "feed_unchanged feed=demo-wire" in forced.stderr and "reason=HTTP 304" in forced.stderr
    assert "feed_fetched" not in forced.stderr and "articles=0 " in forced.stderr  # no article page asked
    assert _store(config_dir).count_articles() == 5


def test_home_page_is_followed_to_its_advertised_feed(config_dir: Path, demo_site: str):
    """A source given as a home page is polled through the feed it advertises, remembered for next time."""
    write_config(config_dir, feeds=[{"name": "Levant", "url": f"{demo_site}/", "language": "en"}])
    result = newswatch("crawl", config_dir=config_dir)
    assert result.returncode == 0, result.stderr
    assert f"feed_discovered feed=levant url={demo_site}/ feed_url={demo_site}/feed.xml" in result.stderr
    store = _store(config_dir)
    assert store.count_articles() == 5
    assert store.get_feed_state("levant").resolved_url == f"{demo_site}/feed.xml"


def test_dead_and_malformed_feeds_are_logged_once_and_the_run_goes_on(config_dir: Path, demo_site: str):
    """A refused connection and malformed XML each give one line naming the feed; the good feed is stored."""
    dead = f"http://127.0.0.1:{_free_port()}/rss"
    broken = f"{demo_site}/broken.xml"
    feeds = [
        {"name": "Dead Site", "url": dead},
        {"name": "Broken Feed", "url": broken},
        {"name": "Demo Wire", "url": f"{demo_site}/feed.xml"},
    ]
    write_config(config_dir, feeds=feeds)
    result = newswatch("crawl", config_dir=config_dir)
    assert result.returncode == 0
    assert "Traceback" not in result.stderr
    dead_lines = [line for line in result.stderr.splitlines() if "feed_failed feed=dead-site" in line]
    broken_lines = [line for line in result.stderr.splitlines() if "feed_failed feed=broken-feed" in line]
    assert len(dead_lines) == 1 and "reason=" in dead_lines[0]
    assert len(broken_lines) == 1
    store = _store(config_dir)
    assert store.count_articles() == 5
    assert store.get_feed_state("dead-site").consecutive_failures == 1
    assert store.get_feed_state("broken-feed").last_error


def test_scrapy_crawl_feeds_works_from_the_project_root(config_dir: Path, demo_site: str):
    """`scrapy crawl feeds` (scrapy.cfg → crawler.settings) crawls the configured feeds too."""
    write_config(config_dir, feeds=[{"name": "Demo Wire", "url": f"{demo_site}/feed.xml"}])
    env = {**os.environ, "NEWSWATCH_CONFIG_DIR": str(config_dir)}
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "feeds"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert _store(config_dir).count_articles() == 5
