"""`newswatch feeds`: add (with discovery), list, OPML export/import, status of each source."""

from __future__ import annotations

import gzip
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from crawler.polling.state import record_failure, record_success
from newswatch.core.config import load_config
from newswatch.core.config.settings import CrawlerSettings
from newswatch.core.feedstate import UNHEALTHY_AFTER
from newswatch.core.store.sqlite import SqliteStore
from tests.conftest import DEMO_SITE, run_cli, write_config

FEED = (DEMO_SITE / "feed.xml").read_bytes()
HOME = (DEMO_SITE / "index.html").read_bytes()
RSS = {"Content-Type": "application/rss+xml"}
COLUMNS_100 = {"COLUMNS": "100"}  # tables are as wide as the terminal: rich reads $COLUMNS


class _Routes(BaseHTTPRequestHandler):
    """Answers each path from the server's ``routes`` (status, headers, body); records the User-Agents seen."""

    def do_GET(self):
        self.server.user_agents.append(self.headers.get("User-Agent"))
        status, headers, body = self.server.routes.get(self.path, (404, {}, b"not here"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def site():
    """A site on 127.0.0.1 whose answers a test sets: ``site.routes["/path"] = (status, headers, body)``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Routes)
    server.routes, server.user_agents = {}, []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def _feeds_file(config_dir: Path, comment: str = "# my sources, hand-written\n") -> Path:
    path = config_dir / "feeds.yaml"
    path.write_text(comment + 'feeds:\n  - name: "Existing"\n    url: "https://example.org/rss"\n', encoding="utf-8")
    return path


def test_add_discovers_the_feed_of_a_home_page_and_keeps_the_file_comments(config_dir: Path, demo_site: str):
    """`feeds add HOME_PAGE` finds the advertised feed, names it from its title and appends it to feeds.yaml."""
    write_config(config_dir)
    path = _feeds_file(config_dir)
    result = run_cli("feeds", "add", f"{demo_site}/", "--country", "SY", config_dir=config_dir)
    assert result.returncode == 0, result.stderr
    assert "added the-levant-monitor-latest" in result.stdout
    assert path.read_text(encoding="utf-8").startswith("# my sources, hand-written\n")
    feeds = json.loads(run_cli("feeds", "list", "--json", config_dir=config_dir).stdout)
    assert [f["id"] for f in feeds] == ["existing", "the-levant-monitor-latest"]
    added = feeds[1]
    assert added["url"] == f"{demo_site}/feed.xml" and added["kind"] == "rss"
    assert added["language"] == "en" and added["country"] == "SY"

    again = run_cli("feeds", "add", f"{demo_site}/feed.xml", config_dir=config_dir)
    assert again.returncode == 2 and "already in" in again.stderr
    not_a_feed = run_cli(
        "feeds", "add", f"{demo_site}/2017/11/06/al-wehdat-win-amman-derby.html", config_dir=config_dir
    )
    assert not_a_feed.returncode == 2 and len(not_a_feed.stderr.strip().splitlines()) == 1
    assert "advertises no feed" in not_a_feed.stderr
    assert len(load_config(config_dir).feeds) == 2


def test_opml_export_then_import_round_trips(tmp_path: Path, config_dir: Path):
    """`feeds export` writes OPML that `feeds import` reads back; feeds already configured are skipped."""
    write_config(
        config_dir,
        feeds=[
            {"name": "Enab Baladi (عنب بلدي)", "url": "https://www.enabbaladi.net/feed", "language": "ar"},
            {"name": "Rudaw & Kurdistan 24", "url": "https://www.rudaw.net/rss", "language": "en"},
        ],
    )
    exported = run_cli("feeds", "export", config_dir=config_dir)
    assert exported.returncode == 0 and exported.stdout.startswith("<?xml")
    opml = tmp_path / "feeds.opml"
    opml.write_text(exported.stdout, encoding="utf-8")

    other = tmp_path / "other" / "config"
    write_config(other)
    _feeds_file(other)
    imported = run_cli("feeds", "import", str(opml), config_dir=other)
    assert imported.returncode == 0, imported.stderr
    assert "2 added, 0 already configured" in imported.stdout
    feeds = {f.url: f for f in load_config(other).feeds}
    assert feeds["https://www.enabbaladi.net/feed"].name == "Enab Baladi (عنب بلدي)"
    assert feeds["https://www.enabbaladi.net/feed"].language == "ar"
    assert "0 added, 2 already configured" in run_cli("feeds", "import", str(opml), config_dir=other).stdout


def test_status_shows_health_errors_items_seen_and_next_due(config_dir: Path):
    """`feeds status` reports each feed: ok, UNHEALTHY after repeated failures, never polled, disabled."""
    write_config(
        config_dir,
        feeds=[
            {"name": "Good", "url": "https://good.example/rss"},
            {"name": "Dead", "url": "https://dead.example/rss"},
            {"name": "New", "url": "https://new.example/rss"},
            {"name": "Off", "url": "https://off.example/rss", "enabled": False},
        ],
    )
    now = datetime.now(UTC)
    store = SqliteStore(load_config(config_dir).path("var/newswatch.db"))
    store.set_feed_state(
        "good", record_success(None, name="Good", now=now, items=20, new_items=20, interval=timedelta(minutes=30))
    )
    dead = None
    for _ in range(5):
        dead = record_failure(dead, name="Dead", now=now, reason="HTTP 503")
    store.set_feed_state("dead", dead)
    store.close()

    rows = {r["id"]: r for r in json.loads(run_cli("feeds", "status", "--json", config_dir=config_dir).stdout)}
    assert rows["good"]["health"] == "ok" and rows["good"]["items_seen"] == 20 and not rows["good"]["due_now"]
    assert rows["good"]["next_due"] == (now + timedelta(minutes=30)).isoformat()
    assert rows["dead"]["health"] == "UNHEALTHY" and rows["dead"]["last_error"] == "HTTP 503"
    assert rows["dead"]["consecutive_failures"] == 5
    assert rows["new"]["health"] == "never polled" and rows["new"]["due_now"]
    assert rows["off"]["health"] == "disabled" and not rows["off"]["due_now"]
    table = run_cli("feeds", "status", config_dir=config_dir, env=COLUMNS_100)
    assert table.returncode == 0 and "UNHEALTHY" in table.stdout and "HTTP 503" in table.stdout
    assert "4 feeds, 1 unhealthy, 0 failing, 1 due now" in table.stdout


def test_add_refuses_what_is_no_web_url_in_one_line(tmp_path: Path, config_dir: Path, site):
    """A bare host, a path, file://, a space or a broken IPv6 host: one line naming the URL, exit 2."""
    write_config(config_dir)
    (tmp_path / "feed.xml").write_bytes(FEED)
    hints = {
        "example.com": "did you mean https://example.com?",
        str(tmp_path / "feed.xml"): "http:// or https://",
        (tmp_path / "feed.xml").as_uri(): "http:// or https://",
        "http://exa mple.com/": "not a valid URL",
        "http://[::1": "not a valid URL",
        "http://": "not a valid URL",
    }
    for url, hint in hints.items():
        _one_line_error(run_cli("feeds", "add", url, config_dir=config_dir), url, hint)
    assert load_config(config_dir).feeds == []

    site.routes["/feed.xml"] = (200, RSS, FEED)
    _one_line_error(
        run_cli("feeds", "add", f"{site.url}/feed.xml", "--language", "Arabic", config_dir=config_dir),
        f"{site.url}/feed.xml",
        "language",
        "two-letter",
    )
    added = run_cli("feeds", "add", f"HTTP://127.0.0.1:{site.server_address[1]}/feed.xml", config_dir=config_dir)
    assert added.returncode == 0, added.stderr
    assert [f.url for f in load_config(config_dir).feeds] == [f"{site.url}/feed.xml"]


def test_add_refuses_a_feed_listed_under_another_url(config_dir: Path, site):
    """Listed already: a URL redirecting to a listed feed, a listed page's feed, a listed URL that is down now."""
    site.routes.update(
        {
            "/feed.xml": (200, RSS, FEED),
            "/old.xml": (301, {"Location": "/feed.xml"}, b""),
            "/": (200, {"Content-Type": "text/html"}, HOME),
            "/moved.xml": (308, {"Location": "/new.xml"}, b""),
            "/new.xml": (200, RSS, FEED),
        }
    )
    write_config(
        config_dir,
        feeds=[{"name": "Monitor", "url": f"{site.url}/feed.xml"}, {"name": "Gone", "url": f"{site.url}/gone.xml"}],
    )
    _one_line_error(
        run_cli("feeds", "add", f"{site.url}/old.xml", config_dir=config_dir), "already in", f"{site.url}/feed.xml"
    )
    _one_line_error(run_cli("feeds", "add", f"{site.url}/", config_dir=config_dir), "already in")
    _one_line_error(run_cli("feeds", "add", f"{site.url}/gone.xml", config_dir=config_dir), "already in")

    write_config(config_dir, feeds=[{"name": "Monitor home", "url": f"{site.url}/", "kind": "page"}])
    _one_line_error(run_cli("feeds", "add", f"{site.url}/", config_dir=config_dir), "already in")
    # A permanent redirect says where the feed lives now: that is the URL kept.
    moved = run_cli("feeds", "add", f"{site.url}/moved.xml", config_dir=config_dir)
    assert moved.returncode == 0, moved.stderr
    assert [f.url for f in load_config(config_dir).feeds] == [f"{site.url}/", f"{site.url}/new.xml"]


def test_add_errors_are_one_line_naming_the_url_that_failed(config_dir: Path, site):
    """A redirect loop is "too many redirects"; a discovered feed that fails is named, not the page typed."""
    site.routes.update(
        {
            "/a": (302, {"Location": "/b"}, b""),
            "/b": (302, {"Location": "/a"}, b""),
            "/": (200, {"Content-Type": "text/html"}, HOME),
            "/feed.xml": (200, RSS, b"<html><body>maintenance</body></html>"),
        }
    )
    write_config(config_dir)
    _one_line_error(
        run_cli("feeds", "add", f"{site.url}/a", config_dir=config_dir), f"{site.url}/a: too many redirects"
    )
    _one_line_error(
        run_cli("feeds", "add", f"{site.url}/", config_dir=config_dir),
        f"{site.url}/feed.xml (the feed {site.url}/ advertises): ",
    )


def test_add_sends_the_configured_user_agent_and_reads_gzip_bodies_within_the_size_limit(config_dir: Path, site):
    """The crawler's User-Agent and body limit apply; a gzip body sent unasked is decompressed, a bomb refused."""
    agent = "test-agent/1.0 (+mailto:ops@example.org)"
    write_config(config_dir, settings={"crawler": {"user_agent": agent, "max_body_bytes": 100_000}})
    site.routes["/feed.xml"] = (200, {**RSS, "Content-Encoding": "gzip"}, gzip.compress(FEED))
    site.routes["/bomb.xml"] = (200, {**RSS, "Content-Encoding": "gzip"}, gzip.compress(b" " * 5_000_000))
    added = run_cli("feeds", "add", f"{site.url}/feed.xml", config_dir=config_dir)
    assert added.returncode == 0, added.stderr
    assert "added the-levant-monitor-latest" in added.stdout and site.user_agents == [agent]
    _one_line_error(
        run_cli("feeds", "add", f"{site.url}/bomb.xml", config_dir=config_dir),
        f"{site.url}/bomb.xml",
        "larger than 100000 bytes once decompressed",
    )

    # An Arabic path and query are sent percent-encoded, as browsers and the crawler send them; a gzip body
    # cut short is one line, not a partial feed.
    site.routes["/%D8%A3%D8%AE%D8%A8%D8%A7%D8%B1/rss.xml?q=%D8%B3%D9%88%D8%B1%D9%8A%D8%A7"] = (200, RSS, FEED)
    assert run_cli("feeds", "add", f"{site.url}/أخبار/rss.xml?q=سوريا", config_dir=config_dir).returncode == 0
    site.routes["/cut.xml"] = (200, {**RSS, "Content-Encoding": "gzip"}, gzip.compress(FEED)[:-100])
    _one_line_error(
        run_cli("feeds", "add", f"{site.url}/cut.xml", config_dir=config_dir),
        f"{site.url}/cut.xml",
        "gzip body is cut short",
    )

    # `newswatch feed URL` runs without a config folder: it sends the crawler's default User-Agent.
    items = run_cli("feed", "--json", f"{site.url}/feed.xml")
    assert items.returncode == 0, items.stderr
    assert len(json.loads(items.stdout)) == 5 and site.user_agents[-1] == CrawlerSettings().user_agent
    # With --config, the configured one.
    items = run_cli("feed", "--json", f"{site.url}/feed.xml", config_dir=config_dir)
    assert items.returncode == 0 and site.user_agents[-1] == agent, items.stderr
    _one_line_error(run_cli("feed", "--json", "http://[oops/feed.xml"), "http://[oops/feed.xml", "not a valid URL")


def test_export_then_import_keeps_ids_kinds_countries_and_disabled_feeds(tmp_path: Path, config_dir: Path):
    """Id, kind, country and enabled survive the OPML round trip (crawl state is keyed by id); a sitemap is
    exported as type="sitemap", not as an RSS feed."""
    feeds = [
        {
            "name": "Enab Baladi",
            "url": "https://www.enabbaladi.net/feed",
            "id": "enab",
            "kind": "rss",
            "language": "ar",
            "country": "SY",
        },
        {"name": "Rudaw", "url": "https://www.rudaw.net/sitemap.xml", "kind": "sitemap", "enabled": False},
        {"name": "Home", "url": "https://home.example/", "kind": "page"},
    ]
    write_config(config_dir, feeds=feeds)
    exported = run_cli("feeds", "export", config_dir=config_dir).stdout
    assert 'type="sitemap"' in exported and exported.count('type="rss"') == 2
    opml = tmp_path / "feeds.opml"
    opml.write_text(exported, encoding="utf-8")

    other = write_config(tmp_path / "other" / "config")
    imported = run_cli("feeds", "import", str(opml), config_dir=other)
    assert imported.returncode == 0, imported.stderr
    assert [f.model_dump() for f in load_config(other).feeds] == [f.model_dump() for f in load_config(config_dir).feeds]


def test_import_matches_attribute_and_scheme_case_and_counts_what_it_skips(tmp_path: Path, config_dir: Path):
    """`xmlurl` and `HTTP://` are read; a blank title falls back to the host; unusable outlines are counted."""
    write_config(config_dir)
    opml = tmp_path / "mixed.opml"
    opml.write_text(
        """<?xml version="1.0"?>
<opml version="1.0"><body>
  <outline text="News">
    <outline text="Upper" xmlUrl="HTTP://upper.example/rss"/>
    <outline text="Lower" xmlurl="https://lower.example/rss"/>
    <outline title="   " xmlUrl="http://h.example/a.xml"/>
    <outline text="FTP" xmlUrl="ftp://files.example/rss"/>
    <outline text="A note"/>
  </outline>
</body></opml>
""",
        encoding="utf-8",
    )
    imported = run_cli("feeds", "import", str(opml), config_dir=config_dir)
    assert imported.returncode == 0, imported.stderr
    assert "3 added, 0 already configured, 2 skipped: no usable xmlUrl" in imported.stdout
    assert f"{opml}:7: FTP: xmlUrl 'ftp://files.example/rss' is not an http(s) URL" in imported.stdout
    assert f"{opml}:8: A note: no xmlUrl" in imported.stdout
    feeds = load_config(config_dir).feeds
    assert [(f.name, f.url) for f in feeds] == [
        ("Upper", "http://upper.example/rss"),
        ("Lower", "https://lower.example/rss"),
        ("h.example", "http://h.example/a.xml"),
    ]

    broken = tmp_path / "broken.opml"
    broken.write_text("<opml><body></opml>", encoding="utf-8")
    _one_line_error(run_cli("feeds", "import", str(broken), config_dir=config_dir), f"{broken}: not OPML (")
    assert "<string>" not in run_cli("feeds", "import", str(broken), config_dir=config_dir).stderr


def test_add_keeps_comments_whatever_key_items_start_with_and_warns_when_it_cannot(config_dir: Path, site):
    """Items starting with `- url:` (or unindented) keep the file's comments; a layout that cannot be appended
    to is rewritten with a warning saying the comments were lost."""
    site.routes.update({"/feed.xml": (200, RSS, FEED), "/other.xml": (200, RSS, FEED.replace(b"Latest", b"Other"))})
    write_config(config_dir)
    path = config_dir / "feeds.yaml"
    path.write_text(
        "# my sources\nfeeds:\n# first the wires\n- url: https://example.org/rss  # AFP\n  name: Wire\n",
        encoding="utf-8",
    )
    added = run_cli("feeds", "add", f"{site.url}/feed.xml", config_dir=config_dir)
    assert added.returncode == 0 and "warning" not in added.stderr, added.stderr
    assert path.read_text(encoding="utf-8").startswith("# my sources\nfeeds:\n# first the wires\n")
    assert "# AFP" in path.read_text(encoding="utf-8") and len(load_config(config_dir).feeds) == 2

    path.write_text('# my sources\nfeeds: [{name: Wire, url: "https://example.org/rss"}]\n', encoding="utf-8")
    rewritten = run_cli("feeds", "add", f"{site.url}/other.xml", config_dir=config_dir)
    assert rewritten.returncode == 0, rewritten.stderr
    assert "warning:" in rewritten.stderr and "comments" in rewritten.stderr
    assert [f["name"] for f in yaml.safe_load(path.read_text(encoding="utf-8"))["feeds"]] == [
        "Wire",
        "The Levant Monitor - Other",
    ]


def test_status_says_failing_before_unhealthy_and_gives_times_in_utc(config_dir: Path):
    """A feed that just failed (never having worked) is "failing (1)", not ok; times carry their zone."""
    write_config(config_dir, feeds=[{"name": "New", "url": "https://new.example/rss"}])
    failed_at = datetime(2026, 11, 4, 9, 15, tzinfo=UTC)
    state = record_failure(None, name="New", now=failed_at, reason="HTTP 503")
    store = SqliteStore(load_config(config_dir).path("var/newswatch.db"))
    store.set_feed_state("new", state)
    store.close()
    (row,) = json.loads(run_cli("feeds", "status", "--json", config_dir=config_dir).stdout)
    assert row["health"] == "failing" and row["consecutive_failures"] == 1
    assert row["unhealthy_after"] == UNHEALTHY_AFTER
    table = run_cli("feeds", "status", config_dir=config_dir, env=COLUMNS_100).stdout
    assert "failing (1)" in table and "2026-11-04 09:15 UTC HTTP 503" in table
    assert "1 feeds, 0 unhealthy, 1 failing" in table


def test_list_and_status_fit_a_terminal_of_100_columns(config_dir: Path):
    """`feeds list` and `feeds status` are as wide as the terminal ($COLUMNS): at 100 columns no line is
    longer, long URLs and errors wrap instead of being cut, and nothing is lost."""
    url = "https://very-long-regional-news-site-name.example/arabic/syria/deir-ezzor/latest-news/rss.xml?lang=ar"
    write_config(
        config_dir,
        feeds=[
            {"id": "deir-ezzor-24-arabic-service", "name": "Deir Ezzor 24 (Arabic service)", "url": url},
            {"name": "Short", "url": "https://short.example/rss", "language": "fr", "country": "SY"},
        ],
    )
    error = "cannot fetch: HTTP 503 Service Unavailable from the origin server, retrying later with backoff"
    store = SqliteStore(load_config(config_dir).path("var/newswatch.db"))
    now = datetime.now(UTC)
    store.set_feed_state("deir-ezzor-24-arabic-service", record_failure(None, name="D", now=now, reason=error))
    store.set_feed_state(
        "short", record_success(None, name="Short", now=now, items=3, new_items=3, interval=timedelta(minutes=30))
    )
    store.close()
    for command in (["feeds", "list"], ["feeds", "status"]):
        result = run_cli(*command, config_dir=config_dir, env=COLUMNS_100)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= 100, result.stdout
        assert max(len(line) for line in lines) > 80  # the room there is, used
        assert "…" not in result.stdout  # folded or wrapped over lines, never shortened
    listed = run_cli("feeds", "list", config_dir=config_dir, env=COLUMNS_100).stdout
    rows = [line.split("│") for line in listed.splitlines() if line.startswith("│")]
    assert "".join(row[-2].strip() for row in rows) == url + "https://short.example/rss"
    status = run_cli("feeds", "status", config_dir=config_dir, env=COLUMNS_100).stdout
    assert "Unavailable" in status and "backoff" in status and "2 feeds, 0 unhealthy, 1 failing" in status
