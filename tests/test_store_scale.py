"""A year of news: the hot queries of a pass stay on their indexes (EXPLAIN QUERY PLAN), planner statistics
are kept, and retention (`newswatch store prune`, storage.retention_days) drops the old and gives the space
back while `newswatch store stats` shows what is held. Speed itself is measured by bench/scale.py."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newswatch.core.config import load_config
from newswatch.core.models import Article, ClusterSignature, Hit, QueuedDigest, band_keys
from newswatch.core.store.leases import hold
from newswatch.core.store.sqlite import SqliteStore
from newswatch.core.times import utc_now
from newswatch.service.scheduler import Service, build_scheduler
from tests.conftest import run_cli, write_config

NOW = utc_now().replace(microsecond=0)
WATCHES = ("abu-kamal", "raqqa", "deir-ez-zor")
# Tables a pass must never read whole; FTS5's own table is searched through its index (VIRTUAL TABLE).
BIG_TABLES = ("articles", "hits", "signatures", "signature_bands", "mention_hours", "digest_hits")


def _article(n: int, fetched: datetime, text: str | None = None) -> Article:
    return Article(
        id=f"art{n:06d}",
        url=f"https://news.example/{n}",
        title=f"Report {n}",
        text=text or f"Fighting near Abu Kamal and Raqqa today, report number {n}. " + "filler words " * 40,
        feed_id=f"feed{n % 50}",
        outlet="Example Wire",
        published=fetched - timedelta(minutes=5),
        fetched=fetched,
        language="en",
    )


def _fill(store: SqliteStore, count: int, *, days: int = 60) -> None:
    """``count`` articles over ``days``, a hit of a watch in every tenth, most delivered, with signatures."""
    step = timedelta(days=days) / count
    articles = [_article(n, NOW - timedelta(days=days) + n * step) for n in range(count)]
    for start in range(0, count, 500):
        store.add_articles(articles[start : start + 500])
    for start in range(0, count, 500):
        chunk = articles[start : start + 500]
        hits = [Hit(a.id, WATCHES[i % 3], "Abu Kamal", 20, 29) for i, a in enumerate(chunk) if i % 10 == 0]
        store.add_hits(hits, chunk[-1].fetched)
        store.add_signatures(
            [ClusterSignature(a.id, a.id, a.url, a.fetched, a.id.encode().ljust(512, b"x")) for a in chunk[::5]]
        )
        if start + 500 < count:  # all but the last chunk's hits went out in a digest
            digest = QueuedDigest(f"<d{start}>", "analyst", tuple(h.key for h in hits), b"m", chunk[-1].fetched)
            store.queue_digest(digest)
            store.mark_digest_sent(digest.id, chunk[-1].fetched)


def _plans(db: sqlite3.Connection, statements: list[str]) -> dict[str, list[str]]:
    """The EXPLAIN QUERY PLAN lines of each SELECT the store ran (the trace gives them with their values)."""
    return {
        sql: [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]
        for sql in dict.fromkeys(statements)
        if sql.lstrip().upper().startswith(("SELECT", "WITH"))
    }


def _full_scans(plans: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(query, plan line) of each plan step reading a whole big table, or all of one of its indexes."""
    found = []
    for sql, lines in plans.items():
        for line in lines:
            words = line.split()
            if words[0] == "SCAN" and len(words) > 1:
                table = words[1]
                aliases = {"a": "articles", "h": "hits", "h2": "hits", "d": "digest_hits", "g": "digests"}
                if aliases.get(table, table) in BIG_TABLES:
                    found.append((sql[:160], line))
    return found


@pytest.fixture
def filled(tmp_path: Path):
    path = tmp_path / "newswatch.db"
    with SqliteStore(path) as store:
        _fill(store, 6000)
    with SqliteStore(path) as store:  # reopened: the statistics of what it holds
        yield store


def test_the_hot_queries_of_a_pass_use_indexes_not_whole_tables(filled):
    """Every query an alerts pass, a digest and a crawl run reads through an index: by the cursor, the
    recipient's window, a watch's hours or an article's band keys; no step scans articles or hits."""
    statements: list[str] = []
    filled._db.set_trace_callback(statements.append)
    cursor = filled.articles_after(None, limit=1)[1]
    filled.articles_after(cursor, limit=500)
    filled.owed_hits("analyst", list(WATCHES), since=NOW - timedelta(days=14))
    filled.owed_hits("analyst", None, since=NOW - timedelta(days=14))
    for watch in WATCHES:
        filled.mention_counts(watch, NOW - timedelta(days=8))
        filled.last_mention_before(watch, NOW - timedelta(days=8))
    sig = b"art005000".ljust(512, b"x")
    assert filled.similar_signatures("new", "https://news.example/5000", band_keys(sig), NOW - timedelta(days=14))
    filled.search("fighting", since=NOW - timedelta(days=1))
    filled.search("fighting", watch="raqqa", since=NOW - timedelta(days=1))
    filled.known_ids(["art000001", "nope"])
    filled._db.set_trace_callback(None)
    plans = _plans(filled._db, statements)
    assert len(plans) >= 8
    assert _full_scans(plans) == []


def test_the_reads_of_search_why_and_the_web_page_use_indexes(filled):
    """A watch's hits newest first (hits_watch_found, stopping at the limit), an article's hits, a story's
    copies (articles_cluster), and a search by a watch's spellings: no step scans articles or hits."""
    statements: list[str] = []
    filled._db.set_trace_callback(statements.append)
    assert len(filled.watch_hits("raqqa", limit=20)) == 20
    assert filled.watch_hits("raqqa", since=NOW - timedelta(days=3), limit=5)
    assert filled.hits_for_articles(["art005000", "art005010", "nope"])
    assert [a.id for a in filled.cluster_articles("art005000")] == ["art005000"]
    spellings = ["Abu Kamal", "Abou Kamal", "البوكمال", "Al-Bukamal"] + [f"Place{n} Town" for n in range(300)]
    assert filled.search("", phrases=spellings, since=NOW - timedelta(days=1))
    assert filled.search("fighting -nothing", phrases=spellings, watch="raqqa")
    filled._db.set_trace_callback(None)
    plans = _plans(filled._db, statements)
    assert _full_scans(plans) == []
    # The trace gives each statement with its values.
    watch_plan = next(lines for sql, lines in plans.items() if "h.watch = 'raqqa'" in sql and "found >=" not in sql)
    assert any("USING INDEX hits_watch_found (watch=?)" in line for line in watch_plan), watch_plan
    cluster_plan = next(lines for sql, lines in plans.items() if "cluster_id = 'art005000'" in sql)
    assert any("articles_cluster" in line for line in cluster_plan), cluster_plan


def test_planner_statistics_are_made_and_refreshed(tmp_path: Path):
    """A file gets statistics at open once it holds hits (ANALYZE, bounded), and again after many writes;
    without them SQLite may check each owed hit against every delivered one."""
    path = tmp_path / "newswatch.db"
    with SqliteStore(path) as store:
        _fill(store, 1000)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM sqlite_stat1")
    with SqliteStore(path) as store:
        stats = dict(store._db.execute("SELECT idx, stat FROM sqlite_stat1 WHERE tbl='hits'").fetchall())
        assert int(stats["hits_found"].split()[0]) == 100
        store.add_articles([_article(n, NOW) for n in range(10_000, 31_000)])
        rows = store._db.execute("SELECT stat FROM sqlite_stat1 WHERE idx='articles_seq'").fetchone()[0]
        assert int(rows.split()[0]) > 20_000


def _project(config_dir: Path, settings: dict | None = None):
    config = load_config(write_config(config_dir, settings=settings), env={})
    return config, SqliteStore(config.path(config.settings.storage.sqlite.path))


def test_store_prune_drops_a_year_old_and_gives_the_space_back(config_dir: Path):
    """`store prune --older-than 365d` drops the articles first stored before, with their hits and
    signatures, keeps the rest and a digest still owed, and the file shrinks; `store stats` shows it."""
    config, store = _project(config_dir)
    old = [_article(n, NOW - timedelta(days=400 + n % 30), "old words " * 800) for n in range(600)]
    new = [_article(n, NOW - timedelta(days=n % 30)) for n in range(600, 700)]
    store.add_articles(old + new)
    store.add_hits([Hit(a.id, "abu-kamal", "Abu Kamal", 0, 9) for a in old[:50] + new[:5]], NOW - timedelta(days=400))
    store.add_signatures([ClusterSignature(a.id, a.id, a.url, a.fetched, bytes(512)) for a in old[:20]])
    owed = Hit(old[0].id, "abu-kamal", "Abu Kamal", 0, 9)
    store.queue_digest(QueuedDigest("<owed@x>", "analyst", (owed.key,), b"m", NOW - timedelta(days=399)))
    store.close()
    path = config.path(config.settings.storage.sqlite.path)
    size = path.stat().st_size

    result = run_cli("store", "stats", "--json", config_dir=config_dir)
    assert result.returncode == 0, result.stderr
    before = json.loads(result.stdout)
    assert (before["articles"], before["hits"]) == (700, 55) and len(before["months"]) >= 3

    result = run_cli("store", "prune", "--older-than", "365d", config_dir=config_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pruned 600 articles, 54 hits, 20 cluster signatures"), result.stdout
    assert path.stat().st_size < size / 2

    result = run_cli("store", "stats", config_dir=config_dir)
    assert result.returncode == 0 and "100 articles, 1 hits" in result.stdout, result.stdout
    with SqliteStore(path) as store:
        assert [d.hit_keys for d in store.pending_digests()] == [(owed.key,)]
        assert store.count_articles() == 100


def test_store_prune_refuses_an_age_it_cannot_read(config_dir: Path):
    """A wrong --older-than is one error line naming the option, exit 2; nothing is dropped."""
    _project(config_dir)[1].close()
    for age in ("a year", "-5d"):
        result = run_cli("store", "prune", "--older-than", age, config_dir=config_dir)
        assert result.returncode == 2
        assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
            f"error: --older-than: expected e.g. 24h, 7d or 2026-11-01, got {age!r}"
        ]
    future = (NOW + timedelta(days=3)).date().isoformat()
    result = run_cli("store", "prune", "--older-than", future, config_dir=config_dir)
    assert result.returncode == 2 and "is not in the past" in result.stderr


def test_store_prune_waits_for_no_alerts_pass(config_dir: Path):
    """An alerts pass running on the store (its lease held): `store prune` exits 1 naming it, drops nothing."""
    config, store = _project(config_dir)
    store.add_articles([_article(1, NOW - timedelta(days=400))])
    with hold(store, "alerts", "an alerts pass", config.settings.schedule.lease_seconds):
        result = run_cli("store", "prune", "--older-than", "365d", config_dir=config_dir)
    assert result.returncode == 1 and "already runs on this store" in result.stderr
    assert store.count_articles() == 1
    store.close()


def test_the_service_prunes_daily_when_retention_is_set(config_dir: Path):
    """storage.retention_days adds a daily retention job; it prunes as `store prune` does."""
    config, store = _project(config_dir, {"storage": {"retention_days": 30}})
    store.add_articles([_article(1, NOW - timedelta(days=40)), _article(2, NOW)])
    service = Service(config, store)
    assert "retention" in {job.id for job in build_scheduler(config, service).get_jobs()}
    service.prune()
    assert store.known_ids(["art000001", "art000002"]) == {"art000002"}
    store.close()
    plain, other = _project(config_dir.parent / "plain" / "config")
    assert "retention" not in {job.id for job in build_scheduler(plain, Service(plain, other)).get_jobs()}
    other.close()


def test_an_old_file_gets_its_counts_and_band_keys_at_open(tmp_path: Path):
    """A store written before mention counts and band keys existed gets them built once at open."""
    path = tmp_path / "newswatch.db"
    with SqliteStore(path) as store:
        store.add_articles([_article(1, NOW)])
        store.add_hits([Hit("art000001", "raqqa", "Raqqa", 0, 5)], NOW)
        store.add_signatures([ClusterSignature("art000001", "art000001", None, NOW, bytes(range(256)) * 2)])
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM mention_hours")
        db.execute("DELETE FROM signature_bands")
    db.close()
    with SqliteStore(path) as store:
        assert sum(store.mention_counts("raqqa", NOW - timedelta(days=1)).values()) == 1
        assert store.similar_signatures("x", None, band_keys(bytes(range(256)) * 2), NOW - timedelta(days=1))


def test_the_digest_window_leaves_stale_undelivered_hits_out(tmp_path: Path):
    """delivery.owed_days: an undelivered hit found before the window is not read by the pass."""
    with SqliteStore(tmp_path / "n.db") as store:
        store.add_articles([_article(1, NOW), _article(2, NOW)])
        store.add_hits([Hit("art000001", "raqqa", "Raqqa", 0, 5)], datetime(2020, 1, 1, tzinfo=UTC))
        store.add_hits([Hit("art000002", "raqqa", "Raqqa", 0, 5)], NOW)
        owed = store.owed_hits("analyst", ["raqqa"], since=NOW - timedelta(days=14))
        assert [o.hit.article_id for o in owed] == ["art000002"]


def test_search_ranks_the_newest_window_that_holds_enough_matches(tmp_path: Path):
    """A word in thousands of articles: the best of the last 7 days come when they are enough; with a
    larger limit the search widens to older articles, ranked with them."""
    with SqliteStore(tmp_path / "n.db") as store:
        old = [_article(n, NOW - timedelta(days=100), "Convoy convoy spotted near Raqqa. " * 3) for n in range(30)]
        new = [
            _article(n, NOW - timedelta(hours=n), "A convoy spotted near Raqqa, " + "words " * 60)
            for n in range(30, 55)
        ]
        store.add_articles(old + new)
        assert {r.article.id for r in store.search("convoy", limit=20)} <= {a.id for a in new}
        widened = store.search("convoy", limit=40)
        assert len(widened) == 40 and widened[0].article.id in {a.id for a in old}
        assert [r.article.id for r in store.search("convoy", since=NOW - timedelta(days=7), limit=40)] == [
            a.id for a in new
        ]


def test_a_prune_keeps_new_articles_after_the_alerts_cursor(tmp_path: Path):
    """An old article changed lately holds the highest seq: prune keeps it, so articles stored afterwards are
    numbered past the cursor and the alerts pass still reads them."""
    with SqliteStore(tmp_path / "n.db") as store:
        store.add_articles([_article(n, NOW - timedelta(days=400)) for n in range(5)])
        store.add_articles([_article(0, NOW - timedelta(days=400), "Changed text about Raqqa. " * 20)])
        cursor = store.articles_after(None, limit=100)[1]
        assert store.prune(NOW - timedelta(days=365)).articles == 4
        store.add_articles([_article(9, NOW)])
        assert [a.id for a in store.articles_after(cursor)[0]] == ["art000009"]


def test_retention_shorter_than_the_owed_window_is_refused(config_dir: Path):
    """storage.retention_days under delivery.owed_days would prune hits still owed: check-config names it;
    so does `store prune --older-than` inside the window, and an age it cannot read."""
    write_config(config_dir, settings={"storage": {"retention_days": 7}})
    result = run_cli("check-config", config_dir=config_dir)
    assert result.returncode == 2 and "retention_days (7) is shorter than delivery.owed_days (14)" in result.stderr
    _project(config_dir.parent / "ok" / "config")[1].close()
    for age, reason in (("3d", "is inside delivery.owed_days (14 days)"), ("", "is not in the past")):
        result = run_cli("store", "prune", "--older-than", age, config_dir=config_dir.parent / "ok" / "config")
        assert result.returncode == 2 and reason in result.stderr and "Traceback" not in result.stderr
