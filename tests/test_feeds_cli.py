"""`newswatch feeds`: add (with discovery), list, OPML export/import, status of each source."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crawler.feedstate import record_failure, record_success
from newswatch.config import load_config
from newswatch.store.sqlite import SqliteStore
from tests.conftest import newswatch, write_config


def _feeds_file(config_dir: Path, comment: str = "# my sources, hand-written\n") -> Path:
    path = config_dir / "feeds.yaml"
    path.write_text(comment + 'feeds:\n  - name: "Existing"\n    url: "https://example.org/rss"\n', encoding="utf-8")
    return path


def test_add_discovers_the_feed_of_a_home_page_and_keeps_the_file_comments(config_dir: Path, demo_site: str):
    """`feeds add HOME_PAGE` finds the advertised feed, names it from its title and appends it to feeds.yaml."""
    write_config(config_dir)
    path = _feeds_file(config_dir)
    result = newswatch("feeds", "add", f"{demo_site}/", "--country", "SY", config_dir=config_dir)
    assert result.returncode == 0, result.stderr
    assert "added the-levant-monitor-latest" in result.stdout
    assert path.read_text(encoding="utf-8").startswith("# my sources, hand-written\n")
    feeds = json.loads(newswatch("feeds", "list", "--json", config_dir=config_dir).stdout)
    assert [f["id"] for f in feeds] == ["existing", "the-levant-monitor-latest"]
    added = feeds[1]
    assert added["url"] == f"{demo_site}/feed.xml" and added["kind"] == "rss"
    assert added["language"] == "en" and added["country"] == "SY"

    again = newswatch("feeds", "add", f"{demo_site}/feed.xml", config_dir=config_dir)
    assert again.returncode == 2 and "already in" in again.stderr
    not_a_feed = newswatch("feeds", "add", f"{demo_site}/2017/11/06/al-wehdat-win-amman-derby.html",
                           config_dir=config_dir)
    assert not_a_feed.returncode == 2 and len(not_a_feed.stderr.strip().splitlines()) == 1
    assert "advertises no feed" in not_a_feed.stderr
    assert len(load_config(config_dir).feeds) == 2


def test_opml_export_then_import_round_trips(tmp_path: Path, config_dir: Path):
    """`feeds export` writes OPML that `feeds import` reads back; feeds already configured are skipped."""
    write_config(config_dir, feeds=[
        {"name": "Enab Baladi (عنب بلدي)", "url": "https://www.enabbaladi.net/feed", "language": "ar"},
        {"name": "Rudaw & Kurdistan 24", "url": "https://www.rudaw.net/rss", "language": "en"},
    ])
    exported = newswatch("feeds", "export", config_dir=config_dir)
    assert exported.returncode == 0 and exported.stdout.startswith("<?xml")
    opml = tmp_path / "feeds.opml"
    opml.write_text(exported.stdout, encoding="utf-8")

    other = tmp_path / "other" / "config"
    write_config(other)
    _feeds_file(other)
    imported = newswatch("feeds", "import", str(opml), config_dir=other)
    assert imported.returncode == 0, imported.stderr
    assert "2 added, 0 already configured" in imported.stdout
    feeds = {f.url: f for f in load_config(other).feeds}
    assert feeds["https://www.enabbaladi.net/feed"].name == "Enab Baladi (عنب بلدي)"
    assert feeds["https://www.enabbaladi.net/feed"].language == "ar"
    assert "0 added, 2 already configured" in newswatch("feeds", "import", str(opml), config_dir=other).stdout


def test_status_shows_health_errors_items_seen_and_next_due(config_dir: Path):
    """`feeds status` reports each feed: ok, UNHEALTHY after repeated failures, never polled, disabled."""
    write_config(config_dir, feeds=[
        {"name": "Good", "url": "https://good.example/rss"}, {"name": "Dead", "url": "https://dead.example/rss"},
        {"name": "New", "url": "https://new.example/rss"},
        {"name": "Off", "url": "https://off.example/rss", "enabled": False},
    ])
    now = datetime.now(UTC)
    store = SqliteStore(load_config(config_dir).path("var/newswatch.db"))
    store.set_feed_state("good", record_success(None, name="Good", now=now, items=20, new_items=20,
                                                interval=timedelta(minutes=30)))
    dead = None
    for _ in range(5):
        dead = record_failure(dead, name="Dead", now=now, reason="HTTP 503")
    store.set_feed_state("dead", dead)
    store.close()

    rows = {r["id"]: r for r in json.loads(newswatch("feeds", "status", "--json", config_dir=config_dir).stdout)}
    assert rows["good"]["health"] == "ok" and rows["good"]["items_seen"] == 20 and not rows["good"]["due_now"]
    assert rows["good"]["next_due"] == (now + timedelta(minutes=30)).isoformat()
    assert rows["dead"]["health"] == "UNHEALTHY" and rows["dead"]["last_error"] == "HTTP 503"
    assert rows["dead"]["consecutive_failures"] == 5
    assert rows["new"]["health"] == "never polled" and rows["new"]["due_now"]
    assert rows["off"]["health"] == "disabled" and not rows["off"]["due_now"]
    table = newswatch("feeds", "status", config_dir=config_dir)
    assert table.returncode == 0 and "UNHEALTHY" in table.stdout and "HTTP 503" in table.stdout
    assert "4 feeds, 1 unhealthy, 1 due now" in table.stdout
