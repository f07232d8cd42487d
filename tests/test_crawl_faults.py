"""One crawl over a local site that misbehaves on purpose: every good article stored, each fault one log line."""

from __future__ import annotations

import contextlib
import email
import email.policy
import functools
import gzip
import shutil
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from crawler.polling.run import PAGE_RETRIES
from newswatch.core.config import load_config
from newswatch.core.store.sqlite import SqliteStore
from tests.conftest import DEMO_SITE, FIXTURES, newswatch, run_cli, write_config

pytestmark = pytest.mark.slow  # crawls run in child processes

SEED = "/2017/11/04/daesh-loses-last-towns.html"
WIRE_COPIES = [
    "/wire/gulf-daily-daesh-towns.html",
    "/wire/kurdistan-post-daesh.html",
    "/wire/beirut-times-deir-ezzor.html",
]
ARABIC = "دير الزور"
MAX_BODY = 1_000_000
RSS_ITEM = "<item><title>{title}</title><link>{link}</link><description>{text}</description></item>"


def _rss(items: str) -> bytes:
    channel = f"<channel><title>t</title><link>/</link>{items}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


class FaultHandler(SimpleHTTPRequestHandler):
    """Static files, plus /fault/* paths that fail in every way a news site can."""

    def log_message(self, format, *args):
        pass

    def handle(self):
        with contextlib.suppress(ConnectionError, TimeoutError):  # the crawler hangs up on refused bodies
            super().handle()

    def send_head(self):
        self.server.requests.append(self.path)
        route = getattr(self, "fault_" + self.path.removeprefix("/fault/").split(".")[0].replace("-", "_"), None)
        if self.path.startswith("/fault/") and route is not None:
            route()
            return None
        return super().send_head()

    def _send(self, body: bytes, content_type: str, status: int = 200, **headers) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        if "Content_Length" not in headers and "no_length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def fault_server_error(self):
        self.send_error(500, "Internal Server Error")

    def fault_hang(self):
        time.sleep(4)  # past the crawl's 1 s download timeout
        self._send(_rss(""), "application/rss+xml")

    def fault_loop_a(self):
        self._send(b"", "text/html", 302, Location="/fault/loop-b")

    def fault_loop_b(self):
        self._send(b"", "text/html", 302, Location="/fault/loop-a")

    def fault_huge(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(3 * MAX_BODY))
        self.end_headers()
        self.wfile.write(b" " * 3 * MAX_BODY)

    def fault_endless_page(self):
        self.send_response(200)  # HTTP/1.0 without Content-Length: the size is known only by reading
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        for _ in range(30):
            self.wfile.write(b"<p>" + b"live update " * 10_000 + b"</p>")

    def fault_bomb(self):
        body = gzip.compress(_rss(RSS_ITEM.format(title="bomb", link="/x", text=" " * (20 * MAX_BODY))))
        self._send(body, "application/rss+xml", Content_Encoding="gzip")

    def fault_report(self):
        self._send(b"%PDF-1.4\n" + b"0" * 5000, "application/pdf")

    def fault_etag_liar(self):
        # A new ETag on every response, and If-None-Match ignored: only the body hash sees nothing changed.
        items = RSS_ITEM.format(title="Mossoul", link="/articles/wrong_charset_utf8.html", text="Mossoul")
        self._send(_rss(items), "application/rss+xml", ETag=f'"{uuid.uuid4()}"')

    def fault_lower_home(self):
        # HTML5 as most sites write it: a lower-case doctype, which an XML parser refuses.
        self._send(
            b'<!doctype html><html><head><title>Home</title><link rel="alternate" '
            b'type="application/rss+xml" href="/fault/bad-links.xml"></head><body>News</body></html>',
            "text/html; charset=utf-8",
        )

    def fault_bad_links(self):
        items = "".join(
            RSS_ITEM.format(title=t, link=link, text=t)
            for t, link in [
                ("Broken", "http://[oops/story"),
                ("Good", "/articles/utf8_bom.html"),
                ("Odd canonical", "/fault/bad-canonical.html"),
            ]
        )
        self._send(_rss(items), "application/rss+xml")

    def fault_bad_canonical(self):
        self._send(
            b'<html><head><title>Mossoul</title><link rel="canonical" href="http://[oops/c.html"></head>'
            b"<body><article><p>"
            + "L'armée irakienne a proclamé la reprise de Mossoul. ".encode() * 5
            + b"</p></article></body></html>",
            "text/html; charset=utf-8",
        )

    def fault_late_feed(self):
        # The same body every time, with a validator honoured: only a poll that skips validators and the
        # body-hash shortcut can see that a page is owed a retry.
        if self.headers.get("If-None-Match") == '"late-1"':
            self._send(b"", "application/rss+xml", 304)
            return
        items = "".join(
            RSS_ITEM.format(title=t, link=link, text="Mossoul " + t)
            for t, link in [
                ("Late", "/fault/late-page.html"),
                ("Gone", "/fault/gone-page.html"),
                ("Report", "/fault/report.pdf"),
            ]
        )
        self._send(_rss(items), "application/rss+xml", ETag='"late-1"')

    def fault_late_page(self):
        # Listed before it is live: 404 on the first request, the article afterwards.
        if self.server.requests.count(self.path) == 1:
            self.send_error(404, "Not Found")
            return
        self._send((FIXTURES / "articles" / "latin1_french.html").read_bytes(), "text/html; charset=iso-8859-1")

    def fault_gone_page(self):
        self.send_error(404, "Not Found")


def build_site(folder: Path, now: datetime) -> Path:
    """The demo site + tests/fixtures/site + tests/fixtures/articles/, and sitemaps dated around ``now``."""
    shutil.copytree(DEMO_SITE, folder)
    shutil.copytree(FIXTURES / "site", folder, dirs_exist_ok=True)
    shutil.copytree(FIXTURES / "articles", folder / "articles")
    recent, old = (now - timedelta(hours=2)).isoformat(), (now - timedelta(days=30)).isoformat()
    news_ns = 'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
    (folder / "faults" / "news-sitemap.xml").write_text(
        f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" {news_ns}>
  <url><loc>/articles/latin1_french.html</loc><news:news><news:publication_date>{recent}</news:publication_date>
    <news:title>Mossoul</news:title></news:news></url>
  <url><loc>/articles/old-story.html</loc><news:news><news:publication_date>{old}</news:publication_date>
    <news:title>Too old to follow</news:title></news:news></url>
</urlset>""",
        encoding="utf-8",
    )
    (folder / "faults" / "plain-sitemap.xml").write_text(
        f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>/articles/ar_windows1256_undeclared.html</loc><lastmod>{recent}</lastmod></url>
  <url><loc>/articles/archive-2015.html</loc><lastmod>{old}</lastmod></url>
</urlset>""",
        encoding="utf-8",
    )
    (folder / "faults" / "sitemap-index.xml").write_text(
        f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>/faults/news-sitemap.xml</loc><lastmod>{recent}</lastmod></sitemap>
  <sitemap><loc>/faults/plain-sitemap.xml</loc><lastmod>{recent}</lastmod></sitemap>
  <sitemap><loc>/faults/sitemap-2015.xml</loc><lastmod>{old}</lastmod></sitemap>
</sitemapindex>""",
        encoding="utf-8",
    )
    return folder


@pytest.fixture
def fault_site(tmp_path: Path):
    """The misbehaving site on 127.0.0.1; yields (base URL, list of request paths in order)."""
    folder = build_site(tmp_path / "site", datetime.now(UTC))
    handler = functools.partial(FaultHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []
    server.handle_error = lambda request, address: None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server.requests
    server.shutdown()
    server.server_close()


BAD_FEEDS = {  # feed id -> (path, reason logged)
    "malformed": ("/broken.xml", "malformed XML"),
    "html-as-rss": ("/faults/html-as-rss.xml", "not a feed: got an HTML page"),
    "html-home": ("/faults/html-as-rss.xml?home", "advertises no feed"),
    "gone": ("/faults/missing.xml", "HTTP 404"),
    "broken-server": ("/fault/server-error", "HTTP 500"),
    "hang": ("/fault/hang", "timeout after 1 s"),
    "loop": ("/fault/loop-a", "too many redirects"),
    "huge": ("/fault/huge", f"body larger than {MAX_BODY} bytes"),
    "bomb": ("/fault/bomb", "once decompressed (compression bomb?)"),
}
REFUSED_PAGES = {
    "/private/secret.html": "forbidden by robots.txt",
    "/fault/report.pdf": "content type application/pdf is not HTML or XML",
    "/fault/endless-page.html": f"body larger than {MAX_BODY} bytes",
}
GOOD_FEEDS = {
    "demo": "/feed.xml",
    "empty": "/faults/empty.rss",
    "dupes": "/faults/dupes.rss",
    "charsets": "/faults/charsets.rdf",
    "wire": "/faults/wire.atom",
    "sitemaps": "/faults/sitemap-index.xml",
    "etag-liar": "/fault/etag-liar",
}


def _feeds(base: str) -> list[dict]:
    kinds = {"html-as-rss": "rss"}
    feeds = [{"name": fid, "url": base + path, "kind": kinds.get(fid, "auto")} for fid, (path, _) in BAD_FEEDS.items()]
    return feeds + [{"name": fid, "url": base + path} for fid, path in GOOD_FEEDS.items()]


def _lines(stderr: str, needle: str) -> list[str]:
    return [line for line in stderr.splitlines() if needle in line]


def test_a_crawl_over_every_fault_stores_the_good_and_logs_each_bad_once(config_dir: Path, fault_site):
    """Malformed XML, HTML as RSS, 404, 500, hang, redirect loop, huge body, gzip bomb, refused pages: one line
    each with URL and reason, no traceback; every good article stored once, with its text and language."""
    base, requests = fault_site
    write_config(
        config_dir,
        feeds=_feeds(base),
        settings={
            "crawler": {
                "download_timeout": 1,
                "max_body_bytes": MAX_BODY,
                "max_redirects": 3,
                "store_flush_seconds": 0.2,
                "concurrent_requests_per_domain": 8,
            }
        },
    )
    result = newswatch("crawl", config_dir=config_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr

    for feed_id, (path, reason) in BAD_FEEDS.items():
        lines = [
            line for line in _lines(result.stderr, f"url={base}{path} ") if " WARNING " in line or " ERROR " in line
        ]
        assert len(lines) == 1, (feed_id, lines)
        assert f"feed_failed feed={feed_id} url={base}{path} reason=" in lines[0] and reason in lines[0], lines
    for path, reason in REFUSED_PAGES.items():
        lines = _lines(result.stderr, f"url={base}{path} ")
        assert len(lines) == 1 and "article_fallback feed=dupes" in lines[0] and reason in lines[0], lines
    assert "/private/secret.html" not in requests  # robots.txt obeyed
    assert not [p for p in requests if "old-story" in p or "2015" in p]  # stale sitemap entries not followed

    store = SqliteStore(load_config(config_dir).path("var/newswatch.db"))
    articles = {a.url.removeprefix(base): a for a in store.articles_after(None, limit=1000)[0]}
    expected = {
        SEED,
        *WIRE_COPIES,
        "/wire/deir-ezzor-bakeries.html",
        "/2017/11/03/raqqa-reconstruction.html",
        "/2017/11/05/deir-ezzor-ar.html",
        "/2017/11/06/al-wehdat-win-amman-derby.html",
        "/2017/07/10/mossoul-liberee.html",
        "/articles/date_in_byline.html",
        *REFUSED_PAGES,
        "/articles/utf8_bom.html",
        "/articles/ar_windows1256.html",
        "/articles/ar_iso8859_6.html",
        "/articles/wrong_charset_cp1256.html",
        "/articles/latin1_french.html",
        "/articles/ar_windows1256_undeclared.html",
        "/articles/wrong_charset_utf8.html",
    }
    assert set(articles) == expected
    article_pages = [p for p in requests if p.endswith(".html") and not p.startswith("/fault/")]
    assert len(article_pages) == len(set(article_pages))  # each page fetched once
    for path in (
        "/articles/utf8_bom.html",
        "/articles/ar_windows1256.html",
        "/articles/ar_iso8859_6.html",
        "/articles/wrong_charset_cp1256.html",
        "/articles/ar_windows1256_undeclared.html",
    ):
        assert ARABIC in articles[path].text and articles[path].language == "ar", path
    assert articles["/articles/wrong_charset_utf8.html"].language == "fr"
    assert "Ã" not in articles["/articles/wrong_charset_utf8.html"].text
    assert articles["/2017/07/10/mossoul-liberee.html"].language == "fr"
    assert articles[SEED].language == "en" and all(a.language for a in articles.values())
    assert articles["/private/secret.html"].source == "feed" and "Deir Ezzor" in articles["/private/secret.html"].text

    story = {articles[p].cluster_id for p in [SEED, *WIRE_COPIES]}
    assert len(story) == 1 and story <= {articles[p].id for p in [SEED, *WIRE_COPIES]}
    assert articles["/wire/deir-ezzor-bakeries.html"].cluster_id == articles["/wire/deir-ezzor-bakeries.html"].id

    states = store.all_feed_states()
    assert all(states[f].consecutive_failures == 1 and states[f].healthy for f in BAD_FEEDS)
    assert states["sitemaps"].items_seen == 2 and states["empty"].last_items == 0
    assert states["dupes"].last_items == 4
    store.close()

    # Next poll: validators (304) and the body hash (the server whose ETag always changes) say "unchanged",
    # except for the demo feed, which owes its missing page a retry (the refused pages are not retried).
    before = len(requests)
    again = newswatch("crawl", "--all", config_dir=config_dir)
    assert again.returncode == 0 and "Traceback" not in again.stderr
    assert _lines(again.stderr, "feed_unchanged feed=wire ")[0].endswith("reason=HTTP 304")
    assert _lines(again.stderr, "feed_unchanged feed=etag-liar ")[0].endswith("reason=same body")
    assert "new=0 updated=0 retried=1" in _lines(again.stderr, "feed_fetched feed=demo ")[0]
    assert [p for p in requests[before:] if p.endswith(".html")] == ["/2017/11/03/raqqa-reconstruction.html"]
    store = SqliteStore(load_config(config_dir).path("var/newswatch.db"))
    assert store.count_articles() == len(expected)
    assert all(store.get_feed_state(f).consecutive_failures == 2 for f in BAD_FEEDS)
    store.close()


def test_malformed_links_and_an_html5_home_page_lose_nothing_else(config_dir: Path, fault_site):
    """A home page with a lower-case doctype has its feed discovered; in that feed, an item whose link cannot
    be parsed is one warning line, and a page whose canonical link cannot be parsed is stored under its own
    URL; the feed's state is saved (no traceback, no unit left open)."""
    base, _requests = fault_site
    write_config(
        config_dir,
        feeds=[{"name": "home", "url": base + "/fault/lower-home.html"}],
        settings={"crawler": {"store_flush_seconds": 0.2}},
    )
    result = newswatch("crawl", config_dir=config_dir)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(_lines(result.stderr, "feed_discovered feed=home ")) == 1
    assert "crawl_finished reason=finished feeds_ok=1 feeds_unchanged=0 feeds_failed=0 articles=2" in result.stderr
    assert _lines(result.stderr, " WARNING ") == _lines(result.stderr, "link_malformed url=" + base)
    assert len(_lines(result.stderr, "link=http://[oops/story reason=Invalid IPv6 URL")) == 1

    store = SqliteStore(load_config(config_dir).path("var/newswatch.db"))
    articles = {a.url.removeprefix(base): a for a in store.articles_after(None, limit=100)[0]}
    assert set(articles) == {"/articles/utf8_bom.html", "/fault/bad-canonical.html"}
    assert all(a.source == "page" for a in articles.values())
    assert articles["/fault/bad-canonical.html"].language == "fr"
    state = store.get_feed_state("home")
    assert state.consecutive_failures == 0 and state.last_success and state.last_items == 2
    store.close()


def test_a_page_that_failed_for_a_passing_reason_is_fetched_again_on_later_polls(config_dir: Path, fault_site):
    """A page that answered 404 (listed before it went live) is stored from its feed item, then fetched again
    at the next poll and stored from the page; one that stays 404 is tried on PAGE_RETRIES later polls, then
    left; a refused page (content type) is not retried. Validators are not sent while retries are owed."""
    base, requests = fault_site
    write_config(
        config_dir,
        feeds=[{"name": "late", "url": base + "/fault/late-feed.xml"}],
        settings={"crawler": {"store_flush_seconds": 0.2}},
    )
    db = load_config(config_dir).path("var/newswatch.db")
    logs = []
    for _ in range(PAGE_RETRIES + 2):
        result = newswatch("crawl", "--all", config_dir=config_dir)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
        logs.append(result.stderr)
        if len(logs) == 1:
            store = SqliteStore(db)
            first = {a.url.removeprefix(base): a.source for a in store.articles_after(None, limit=10)[0]}
            store.close()
            assert first == {
                "/fault/late-page.html": "feed",
                "/fault/gone-page.html": "feed",
                "/fault/report.pdf": "feed",
            }
        if len(logs) <= 2:  # a story is mailed once per watch: not again for Mosul when its page arrives
            sent = run_cli("digest", "--send-now", config_dir=config_dir)
            assert sent.returncode == 0, sent.stderr
    # The page's text adds a watch the feed item lacked (Daesh: "État islamique"): that is news; Mosul is not.
    outbox = sorted(load_config(config_dir).path("var/outbox").glob("*.eml"))
    subjects = [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["Subject"] for path in outbox]
    assert [s.split(" new ")[0] for s in subjects] == ["Mosul: 3", "Daesh: 1"], subjects
    assert requests.count("/fault/late-page.html") == 2
    assert requests.count("/fault/gone-page.html") == 1 + PAGE_RETRIES
    assert requests.count("/fault/report.pdf") == 1
    assert "retried=2" in _lines(logs[1], "feed_fetched feed=late ")[0]
    assert len(_lines(logs[PAGE_RETRIES], "page_retries_spent feed=late ")) == 1
    assert _lines(logs[-1], "feed_unchanged feed=late ")[0].endswith("reason=HTTP 304")
    store = SqliteStore(db)
    final = {a.url.removeprefix(base): a for a in store.articles_after(None, limit=10)[0]}
    assert final["/fault/late-page.html"].source == "page" and final["/fault/late-page.html"].language == "fr"
    assert final["/fault/gone-page.html"].source == "feed" and store.count_articles() == 3
    assert store.get_feed_state("late").page_retries == {}
    store.close()
