"""Issue #12 in real crawls: a corrupt byte costs that byte, control characters are never stored, private
addresses are refused unless listed, and the extraction libraries' complaints come with the URL and feed."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from newswatch.core.config import load_config
from newswatch.core.models import Article
from newswatch.core.store.sqlite import SqliteStore
from tests.conftest import newswatch, run_cli, write_config

pytestmark = pytest.mark.slow  # crawls run in child processes

ARABIC_TITLE = "اشتباكات عنيفة في دير الزور"
ARABIC_TEXT = "قصف على ريف دير الزور الشرقي صباح اليوم"
SECRET = "INTERNAL-ONLY payroll figures of the intranet"
RSS_ITEM = "<item><title>{title}</title><link>{link}</link><description>{text}</description></item>"


def rss(*items: tuple[str, str, str], encoding: str = "utf-8") -> str:
    body = "".join(RSS_ITEM.format(title=t, link=link, text=x) for t, link, x in items)
    return (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>t</title>{body}</channel></rss>'
    )


def page(title: str, text: str) -> bytes:
    paragraph = f"<p>{text}. " + "The statement was read on state television on Friday evening. " * 3 + "</p>"
    return f"<html><head><title>{title}</title></head><body><article>{paragraph}</article></body></html>".encode()


class RouteHandler(BaseHTTPRequestHandler):
    """Serves ``server.routes`` (path -> (status, content type, body, headers)); logs each request's path."""

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        status, content_type, body, headers = self.server.routes.get(self.path, (404, "text/html", b"", {}))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def serving(host: str) -> Iterator[ThreadingHTTPServer]:
    """A server on ``host`` (any of 127/8 on Linux) and a free port; ``.base`` is its URL."""
    server = ThreadingHTTPServer((host, 0), RouteHandler)
    server.routes, server.requests = {}, []
    server.base = f"http://{host}:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def site():
    with serving("127.0.0.1") as server:
        yield server


@pytest.fixture
def internal():
    """A second server, on 127.0.0.2: a service on a private address that no feed lists."""
    with serving("127.0.0.2") as server:
        yield server


def _crawl(config_dir: Path, feeds: list[dict], crawler: dict | None = None) -> str:
    write_config(config_dir, feeds=feeds, settings={"crawler": {"store_flush_seconds": 0.2, **(crawler or {})}})
    result = newswatch("crawl", config_dir=config_dir)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stderr


def _articles(config_dir: Path) -> dict[str, Article]:
    store = SqliteStore(load_config(config_dir).path("var/newswatch.db"))
    try:
        return {a.url: a for a in store.articles_after(None, limit=1000)[0]}
    finally:
        store.close()


def _lines(stderr: str, needle: str) -> list[str]:
    return [line for line in stderr.splitlines() if needle in line]


def test_a_corrupt_byte_in_a_utf8_arabic_feed_costs_only_that_byte(config_dir: Path, site):
    """The feed's Arabic stays Arabic (one U+FFFD where the byte was), and the watch on Deir Ezzor (دير الزور)
    finds it after an alerts pass."""
    feed = rss((ARABIC_TITLE, f"{site.base}/missing.html", f"{ARABIC_TEXT} \xff تفاصيل")).encode()
    site.routes["/feed.xml"] = (200, "application/rss+xml; charset=utf-8", feed.replace("\xff".encode(), b"\xff"), {})
    stderr = _crawl(config_dir, [{"name": "Sham", "url": f"{site.base}/feed.xml", "language": "ar"}])
    assert "feed_malformed" not in stderr and "charset_" not in stderr

    (article,) = _articles(config_dir).values()
    assert article.source == "feed"  # the page 404s: the feed item stands in, title and text from the feed
    assert article.title == ARABIC_TITLE
    assert article.text == f"{ARABIC_TEXT} \ufffd تفاصيل" and article.language == "ar"

    alerts = run_cli("alerts", config_dir=config_dir)
    assert alerts.returncode == 0, alerts.stderr
    store = SqliteStore(load_config(config_dir).path("var/newswatch.db"))
    hits = {(owed.hit.watch, owed.hit.matched) for owed in store.owed_hits("nobody")}  # owed to anyone else
    store.close()
    assert ("Deir Ezzor", "دير الزور") in hits


def test_control_characters_of_a_feed_are_never_stored(config_dir: Path, site):
    """NUL, BEL and ESC in a feed's title, text and author are stored without them (words kept apart)."""
    item = (
        "<item><title>Deir Ezzor\x00 bakeries\x07 reopen</title><link>/gone.html</link>"
        "<description>Bread\x00 is back\x1b in Deir Ezzor.</description><author>a@b.example (Sam\x00 Dagher)</author>"
        "</item>"
    )
    feed = f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{item}</channel></rss>'
    site.routes["/feed.xml"] = (200, "application/rss+xml", feed.encode(), {})
    _crawl(config_dir, [{"name": "Wire", "url": f"{site.base}/feed.xml", "language": "en"}])
    (article,) = _articles(config_dir).values()
    assert article.title == "Deir Ezzor bakeries reopen"
    assert article.text == "Bread is back in Deir Ezzor."
    assert article.author == "a@b.example (Sam Dagher)"


def test_extraction_errors_are_one_line_with_the_feed_and_the_url(config_dir: Path, site):
    """An empty page and a bare fragment make trafilatura log ERROR lines naming neither page nor feed: now
    each page gives one line of ours, with both, and trafilatura's words in its reason."""
    empty, fragment = f"{site.base}/empty.html", f"{site.base}/fragment.html"
    site.routes["/feed.xml"] = (
        200,
        "application/rss+xml",
        rss(("Empty", empty, "Mosul"), ("Fragment", fragment, "Mosul")).encode(),
        {},
    )
    site.routes["/empty.html"] = (200, "text/html; charset=utf-8", b"", {})
    site.routes["/fragment.html"] = (200, "text/html; charset=utf-8", b"<p>Mosul</p>", {})
    stderr = _crawl(config_dir, [{"name": "Wire", "url": f"{site.base}/feed.xml"}])
    assert _lines(stderr, " trafilatura.") == []  # no line of the library's own (its logger is trafilatura.*)
    for url, said in [
        (empty, "lxml parsing failed: Document is empty"),
        (fragment, "parsed tree length: 0, wrong data type or not valid HTML"),
    ]:
        (line,) = _lines(stderr, url)
        assert f" WARNING crawler.spiders.feeds article_fallback feed=wire url={url} reason=no article" in line
        assert f"not an HTML page (trafilatura: {said}" in line, line


def _private_site(site, internal) -> list[dict]:
    """Feeds on 127.0.0.1 (listed) whose links, redirect, sitemap entry, discovered feed and child sitemap
    lead to the unlisted 127.0.0.2, and one link naming 127.0.0.1 by another name (localhost)."""
    inner = internal.base
    site.routes.update(
        {
            "/links.rss": (
                200,
                "application/rss+xml",
                rss(
                    ("Direct", f"{inner}/item.html", "Deir Ezzor direct"),
                    ("Redirected", f"{site.base}/redirect", "Deir Ezzor redirected"),
                    ("By name", f"{site.base.replace('127.0.0.1', 'localhost')}/by-name.html", "Deir Ezzor"),
                    ("Good", f"{site.base}/good.html", "Deir Ezzor good"),
                ).encode(),
                {},
            ),
            "/redirect": (302, "text/html", b"", {"Location": f"{inner}/redirected.html"}),
            "/good.html": (200, "text/html; charset=utf-8", page("Good", "Deir Ezzor is calm"), {}),
            "/by-name.html": (200, "text/html; charset=utf-8", page("By name", SECRET), {}),
            "/news-sitemap.xml": (
                200,
                "application/xml",
                f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"<url><loc>{inner}/from-sitemap.html</loc></url></urlset>".encode(),
                {},
            ),
            "/home.html": (
                200,
                "text/html; charset=utf-8",
                f'<!doctype html><html><head><link rel="alternate" type="application/rss+xml" '
                f'href="{inner}/feed.xml"></head><body>Home</body></html>'.encode(),
                {},
            ),
            "/index.xml": (
                200,
                "application/xml",
                f'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"<sitemap><loc>{inner}/child-sitemap.xml</loc></sitemap></sitemapindex>".encode(),
                {},
            ),
        }
    )
    for path in ("/item.html", "/redirected.html", "/from-sitemap.html", "/via-feed.html", "/via-child.html"):
        internal.routes[path] = (200, "text/html; charset=utf-8", page(path, SECRET), {})
    internal.routes["/feed.xml"] = (
        200,
        "application/rss+xml",
        rss(("Via feed", f"{inner}/via-feed.html", "x")).encode(),
        {},
    )
    internal.routes["/child-sitemap.xml"] = (
        200,
        "application/xml",
        f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{inner}/via-child.html</loc></url></urlset>".encode(),
        {},
    )
    return [
        {"name": "links", "url": f"{site.base}/links.rss"},
        {"name": "sitemap", "url": f"{site.base}/news-sitemap.xml", "kind": "sitemap"},
        {"name": "home", "url": f"{site.base}/home.html"},
        {"name": "index", "url": f"{site.base}/index.xml"},
    ]


def test_private_addresses_are_refused_unless_listed(config_dir: Path, site, internal):
    """Nothing of 127.0.0.2 is asked for, nor is 127.0.0.1 under a name no feed lists (localhost): each
    refusal is one line with the feed, the URL and the reason; feed items stand in for the refused pages."""
    stderr = _crawl(config_dir, _private_site(site, internal))
    assert internal.requests == []
    assert "/by-name.html" not in site.requests and "/good.html" in site.requests

    inner, by_name = internal.base, site.base.replace("127.0.0.1", "localhost")
    refused = {  # URL logged -> the line's start
        f"{inner}/item.html": "article_fallback feed=links",
        f"{site.base}/redirect": "article_fallback feed=links",
        f"{by_name}/by-name.html": "article_fallback feed=links",
        f"{inner}/from-sitemap.html": "article_fallback feed=sitemap",
        f"{inner}/feed.xml": "feed_failed feed=home",
        f"{inner}/child-sitemap.xml": "sitemap_failed feed=index",
    }
    assert len(_lines(stderr, "reason=private address ")) == len(refused), _lines(stderr, "private address")
    hint = "; crawler.allow_private_hosts can allow it"
    for url, event in refused.items():
        (line,) = _lines(stderr, f"url={url} ")
        address = "127.0.0.1" if url.startswith(by_name) else "127.0.0.2"
        assert line.split(" ", 3)[3].startswith(f"{event} url={url} reason=private address {address} (loopback)")
        redirected = f" after a redirect to {inner}/redirected.html" if url.endswith("/redirect") else ""
        assert line.endswith(f"(loopback){redirected}{hint}"), line

    articles = _articles(config_dir)
    assert not [a for a in articles.values() if SECRET in a.text or SECRET in a.title]
    assert articles[f"{site.base}/good.html"].source == "page"
    stand_ins = {url for url, a in articles.items() if a.source == "feed"}
    assert stand_ins == {
        f"{inner}/item.html",
        f"{site.base}/redirect",
        f"{by_name}/by-name.html",
        f"{inner}/from-sitemap.html",
    }


def test_allow_private_hosts_lets_a_private_address_through(config_dir: Path, site, internal):
    """With ``allow_private_hosts: ["127.0.0.2"]`` every page, feed and sitemap of 127.0.0.2 is fetched and
    stored; the address entry does not cover 127.0.0.1 reached as localhost (no feed lists that name)."""
    stderr = _crawl(config_dir, _private_site(site, internal), {"allow_private_hosts": ["127.0.0.2"]})
    pages = {"/item.html", "/redirected.html", "/from-sitemap.html", "/via-feed.html", "/via-child.html"}
    assert pages | {"/feed.xml", "/child-sitemap.xml"} <= set(internal.requests)
    from_pages = {url.removeprefix(internal.base) for url, a in _articles(config_dir).items() if a.source == "page"}
    assert pages <= from_pages  # the redirected page under the URL it was fetched from
    (line,) = _lines(stderr, "reason=private address ")
    assert "article_fallback feed=links url=http://localhost:" in line
