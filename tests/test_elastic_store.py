"""ElasticStore against a real node: templates, mappings, monthly indices, bulk retries, spool and replay."""

from __future__ import annotations

import http.client
import json
import logging
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from newswatch.core.config import load_config
from newswatch.core.errors import QuerySyntaxError, StoreUnavailable
from newswatch.core.feedstate import FeedState
from newswatch.core.models import Article, ClusterSignature, Hit, QueuedDigest, band_keys
from newswatch.core.store.elastic import ElasticStore
from newswatch.core.store.elastic.documents import merge, normalized, signature_doc
from newswatch.core.store.elastic.spool import Spool
from newswatch.core.textnorm import normalize
from tests.conftest import run_cli, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # a real Elasticsearch node

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def articles(first: int, count: int) -> list[Article]:
    """``count`` distinct articles numbered from ``first``."""
    return [
        Article(
            id=f"a{n:04d}",
            url=f"https://news.example/{n}",
            title=f"Report {n}",
            feed_id="wire",
            outlet="Wire",
            text=f"Shelling reported near Al-Qaïm, item {n}.",
            published=NOW,
            fetched=NOW,
        )
        for n in range(first, first + count)
    ]


def article_at(n: int, when: datetime) -> Article:
    """Article ``n`` of articles(), published and first fetched at ``when``."""
    (article,) = articles(n, 1)
    return Article(**{**article.__dict__, "published": when, "fetched": when})


def digest(name: str, recipient: str, *hits: Hit) -> QueuedDigest:
    return QueuedDigest(
        id=name, recipient=recipient, hit_keys=tuple(h.key for h in hits), message=b"Subject: d\r\n\r\nx", created=NOW
    )


@pytest.fixture
def open_es(config_dir, es_node, es_client, es_index_prefix):
    """Open ElasticStore.from_config on the test node (or ``hosts``), with extra elasticsearch settings."""
    opened = []

    def open_store(hosts=None, **settings):
        es = {
            "hosts": hosts or [es_node.url],
            "index_prefix": es_index_prefix,
            "retry_backoff_seconds": 0.5,
            "spool_dir": str(config_dir.parent / "var" / "es-spool"),
            **settings,
        }
        config = load_config(
            write_config(config_dir, settings={"storage": {"backend": "elasticsearch", "elasticsearch": es}}), env={}
        )
        opened.append(ElasticStore.from_config(config))
        return opened[-1]

    yield open_store
    es_node.ensure_running()
    for store in opened:
        store.close()


def stored_ids(store: ElasticStore) -> list[str]:
    """Every article id, once per copy stored in any monthly index (twins would show twice)."""
    found, cursor = [], None
    while True:
        page, cursor = store.articles_after(cursor, limit=500)
        if not page:
            return found
        found += [a.id for a in page]


def test_templates_are_installed_once_and_restored_at_start(open_es, es_client, caplog):
    """Start-up installs the six templates, leaves them alone when current, and restores a deleted one."""
    caplog.set_level(logging.INFO, "newswatch.core.store.elastic")
    store = open_es()
    names = [f"{store.base}{n}" for n in ("articles", "claims", "digests", "hits", "signatures", "state")]
    installed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("es_template_installed")]
    assert installed == [f"es_template_installed name={n}" for n in names]
    before = es_client.indices.get_index_template(name=f"{store.base}*")["index_templates"]

    caplog.clear()
    open_es()
    assert not [r for r in caplog.records if r.getMessage().startswith("es_template_installed")]
    assert es_client.indices.get_index_template(name=f"{store.base}*")["index_templates"] == before

    es_client.indices.delete_index_template(name=f"{store.base}hits")
    open_es()
    assert es_client.indices.exists_index_template(name=f"{store.base}hits")


def test_mappings_are_explicit_and_normalized_copies_are_searchable(open_es, es_client):
    """Ids/URL/outlet/language/watches are keywords, dates are dates, and normalized.* holds textnorm's output."""
    store = open_es()
    text = "بيان عن تنظيم القاعدة في دير الزور"
    store.add_articles(
        [
            Article(
                id="ar1",
                url="https://news.example/ar",
                title="خبر",
                text=text,
                feed_id="f",
                outlet="Wire",
                language="ar",
            )
        ]
    )
    store.flush()
    (index,) = es_client.indices.get_alias(name=store.alias)
    properties = es_client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    kinds = {name: spec.get("type") for name, spec in properties.items()}
    assert {kinds[k] for k in ("id", "url", "outlet", "language", "watches", "feed_id")} == {"keyword"}
    assert (kinds["title"], kinds["text"], kinds["published"], kinds["fetched"]) == ("text", "text", "date", "date")
    assert properties["normalized"]["properties"]["text"]["type"] == "text"
    assert es_client.indices.get_mapping(index=index)[index]["mappings"]["dynamic"] == "strict"
    source = es_client.get(index=index, id="ar1")["_source"]
    assert source["normalized"]["text"] == normalize(text)
    # taa marbuta written as haa, as people type it: only the normalized copy can match
    (result,) = store.search("القاعده")
    (fragment,) = result.fragments
    assert [fragment.text[s:e] for s, e in fragment.marks] == ["القاعدة"] and fragment.text == text


def test_a_query_the_cluster_refuses_is_a_query_syntax_error(open_es):
    """A query Elasticsearch refuses (here: more clauses than the node allows) is QuerySyntaxError, one line
    with the cluster's reason and the query shortened, never a traceback or StoreUnavailable."""
    store = open_es()
    store.add_articles(articles(0, 1))
    query = " ".join(f"w{n}" for n in range(6000))
    with pytest.raises(QuerySyntaxError) as raised:
        store.search(query)
    message = str(raised.value)
    assert message.startswith("search 'w0 w1 w2") and "Elasticsearch cannot run it: " in message
    assert len(message) < 600 and "\n" not in message


def test_metrics_are_dropped_with_one_warning_while_the_cluster_is_down(open_es, caplog):
    """A crawl spooling through an outage is not failed for its counts: record_metrics logs es_metrics_dropped
    and returns; once the cluster answers again the totals go on from what they were."""
    store = open_es()
    store.record_metrics(counts={"pages_fetched": 3})
    store.cluster.went_down("test: no answer")  # as after a failed request; asked again after the backoff
    store.record_metrics(counts={"pages_fetched": 5}, latest={"last_crawl_success": 1.0})
    assert "es_metrics_dropped" in caplog.text and "names=last_crawl_success,pages_fetched" in caplog.text
    store.cluster.retry_at = 0  # the backoff has passed: the next call asks the cluster
    store.record_metrics(counts={"pages_fetched": 1})
    assert store.metrics() == {"pages_fetched": 4.0}


def test_write_alias_points_at_this_months_index(open_es, es_client):
    """New articles go through the alias into this month's index, the only write index."""
    store = open_es()
    store.add_articles(articles(0, 3))
    month = datetime.now(UTC).strftime("%Y.%m")
    aliases = es_client.indices.get_alias(name=store.alias)
    assert {i: a["aliases"][store.alias].get("is_write_index") for i, a in aliases.items()} == {
        f"{store.alias}-{month}": True
    }
    assert store.count_articles() == es_client.count(index=f"{store.alias}-{month}")["count"] == 3


def test_recrawl_updates_the_month_that_already_holds_the_article(open_es, es_client):
    """An article first seen in an older month is updated there, not copied into this month's index."""
    store = open_es()
    (first,) = articles(0, 1)
    store.add_articles([first])
    (current,) = es_client.indices.get_alias(name=store.alias)
    old = f"{store.alias}-2020.01"
    es_client.indices.create(index=old)  # the template gives it the read alias
    doc = es_client.get(index=current, id=first.id)["_source"]
    es_client.index(index=old, id=first.id, document=doc, refresh=True)
    es_client.delete(index=current, id=first.id, refresh=True)

    store = open_es()  # a later crawl: the older month's index existed before it started
    assert store.add_articles([Article(**{**first.__dict__, "text": "Changed: Raqqa."})]) == 1
    store.flush()
    assert es_client.get(index=old, id=first.id)["_source"]["text"] == "Changed: Raqqa."
    assert es_client.count(index=current)["count"] == 0
    assert stored_ids(store) == [first.id]


def in_month(es_client, store: ElasticStore, month: str, stored: list[Article]) -> str:
    """Write ``stored`` into the monthly index of ``month`` (YYYY.MM), as a store running then did; a store
    opened before sees the new index only once it lists them again (open another)."""
    index = f"{store.alias}-{month}"
    es_client.indices.create(index=index)  # the template gives it the read alias
    for article_id, doc in merge(normalized(stored), {}).items():
        es_client.index(index=index, id=article_id, document=doc)
    es_client.indices.refresh(index=index)
    return index


def test_prune_drops_whole_months_and_the_stray_articles_before_the_cutoff(open_es, es_client):
    """prune cuts at the start of the month holding ``before``: the monthly indices wholly older are dropped
    (not emptied), with the hits of their articles, even one found after the cutoff; an article fetched before
    it but written in a later month (a spool replayed after the month turned) is deleted by itself; the month
    holding the cutoff stays, and so do the signatures and hits since."""
    now = datetime.now(UTC)
    store = open_es()
    store.add_articles([article_at(1, now), article_at(2, datetime(2020, 2, 25, tzinfo=UTC))])
    store.flush()
    jan = in_month(
        es_client, store, "2020.01", [article_at(n, datetime(2020, 1, 10, tzinfo=UTC)) for n in range(10, 60)]
    )
    feb = in_month(
        es_client, store, "2020.02", [article_at(n, datetime(2020, 2, 10, tzinfo=UTC)) for n in range(60, 110)]
    )
    mar = in_month(es_client, store, "2020.03", [article_at(3, datetime(2020, 3, 2, tzinfo=UTC))])
    store = open_es()
    old, late, stray, *kept = (Hit(f"a{n:04d}", "raqqa", "Raqqa", 0, 5) for n in (10, 60, 2, 1, 3))
    store.add_hits([old], datetime(2020, 1, 11, tzinfo=UTC))
    store.add_hits([late, stray, *kept], now)  # ``late``: found now, of an article in a month that goes
    store.add_signatures(
        [
            ClusterSignature("a0010", "a0010", None, datetime(2020, 1, 10, tzinfo=UTC), b"\x05" * 512),
            ClusterSignature("a0001", "a0001", None, now, b"\x05" * 512),
        ]
    )
    size = store.stats().bytes

    report = store.prune(datetime(2020, 3, 20, tzinfo=UTC))
    assert (report.articles, report.hits, report.signatures) == (101, 3, 1)
    assert sorted(es_client.indices.get_alias(name=store.alias)) == [mar, f"{store.alias}-{now:%Y.%m}"]
    assert not es_client.indices.exists(index=jan) and not es_client.indices.exists(index=feb)
    assert store.get_article("a0002") is None and store.get_article("a0003") is not None
    stats = store.stats()
    assert [(m.month, m.articles, m.hits) for m in stats.months] == [("2020-03", 1, 0), (f"{now:%Y-%m}", 1, 2)]
    assert (stats.articles, stats.hits, stats.oldest) == (2, 2, datetime(2020, 3, 2, tzinfo=UTC))
    assert 0 < report.reclaimed_bytes <= size  # the dropped indices' space, given back at once
    alike = store.similar_signatures("a0099", None, band_keys(b"\x05" * 512), datetime(2019, 1, 1, tzinfo=UTC))
    assert [s.article_id for s in alike] == ["a0001"]
    again = store.prune(datetime(2020, 3, 20, tzinfo=UTC))
    assert (again.articles, again.hits, again.signatures) == (0, 0, 0)


def test_prune_keeps_the_hits_of_a_queued_digest_and_a_hit_stored_again_stays_delivered(open_es, es_client):
    """The hits a queued digest carries outlive their month's index, those of a sent digest go. A pruned
    article crawled again gets its hit back under the same key: still delivered to whom the sent digest went
    (its claim stays, the ledger), so it is not owed to them again, and owed to the others."""
    now = datetime.now(UTC)
    store = open_es()
    jan = in_month(es_client, store, "2020.01", [article_at(n, datetime(2020, 1, 10, tzinfo=UTC)) for n in (1, 2)])
    store = open_es()
    sent, queued = Hit("a0001", "raqqa", "Raqqa", 0, 5), Hit("a0002", "raqqa", "Raqqa", 0, 5)
    store.add_hits([sent, queued], datetime(2020, 1, 11, tzinfo=UTC))
    store.queue_digest(digest("<sent@newswatch>", "ana@example.org", sent))
    store.mark_digest_sent("<sent@newswatch>", datetime(2020, 1, 12, tzinfo=UTC))
    store.queue_digest(digest("<queued@newswatch>", "bo@example.org", queued))

    report = store.prune(datetime(2020, 2, 15, tzinfo=UTC))
    assert (report.articles, report.hits) == (2, 1) and not es_client.indices.exists(index=jan)
    assert es_client.exists(index=store.hits_index, id=queued.key)
    assert not es_client.exists(index=store.hits_index, id=sent.key)
    assert [(d.id, d.hit_keys) for d in store.pending_digests()] == [("<queued@newswatch>", (queued.key,))]
    assert [d.id for d in store.sent_digests()] == ["<sent@newswatch>"]

    store.add_articles([article_at(1, now)])
    assert store.add_hits([sent], now) == 1
    assert store.owed_hits("ana@example.org") == []
    assert [o.hit for o in store.owed_hits("bo@example.org")] == [sent]
    store.queue_digest(digest("<next@newswatch>", "bo@example.org", sent))
    assert store.owed_hits("bo@example.org") == []


def test_signatures_stored_before_band_keys_get_them_at_the_next_start(open_es, es_client, caplog):
    """Signatures of the window written without band keys (by an older version) get them once, at start; a
    cluster refusing writes (a block) delays that to a later start, and the store opens all the same."""
    now = datetime.now(UTC)
    store = open_es()
    old_style = ClusterSignature("a0001", "a0001", "https://news.example/1", now, b"\x05" * 512)
    short = ClusterSignature("a0002", "a0002", None, now)
    for sig in (old_style, short):
        es_client.index(index=store.signatures_index, id=sig.article_id, document=signature_doc(sig), refresh=True)
    es_client.delete(index=store.state_index, id="migration:signature-bands", refresh=True)
    assert store.similar_signatures("a0099", None, old_style.bands, now) == []
    blocked = [store.signatures_index, store.state_index]
    es_client.indices.put_settings(index=blocked, settings={"index.blocks.write": True})
    try:
        assert open_es().similar_signatures("a0099", None, old_style.bands, now) == []
    finally:
        es_client.indices.put_settings(index=blocked, settings={"index.blocks.write": None})
    assert "es_bands_not_filled" in caplog.text
    store = open_es()
    assert store.similar_signatures("a0099", None, old_style.bands, now) == [old_style]
    assert store.similar_signatures("a0002", None, (), now) == [short]


def test_bulk_items_rejected_with_429_are_retried_with_backoff(open_es, es_client):
    """Items the cluster rejects with 429 (a real flood-stage block) are retried until it lifts; none spooled."""
    store = open_es()
    (index,) = es_client.indices.get_alias(name=store.alias)
    es_client.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": True})
    lift = threading.Timer(
        2.0, lambda: es_client.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": None})
    )
    lift.start()
    try:
        assert store.add_articles(articles(0, 50)) == 50
        store.flush()
    finally:
        lift.join()
    assert store.spool.count() == 0
    assert sorted(stored_ids(store)) == [a.id for a in articles(0, 50)]


def test_signatures_the_cluster_cannot_take_wait_in_the_spool_then_arrive(open_es, es_client):
    """Signatures rejected with 429 after the retries (a real block on their index) are spooled, not dropped,
    and reach the cluster once it takes writes again."""
    store = open_es(bulk_max_retries=0)
    mark = datetime(2026, 1, 1, tzinfo=UTC)
    signatures = [
        ClusterSignature(f"a{n:04d}", "a0000", f"https://news.example/{n}", mark, b"\x05" * 512) for n in range(3)
    ]
    es_client.indices.put_settings(index=store.signatures_index, settings={"index.blocks.read_only_allow_delete": True})
    try:
        store.add_signatures(signatures)
        assert [s.article_id for s in store.spool.signatures()] == ["a0000", "a0001", "a0002"]
    finally:
        es_client.indices.put_settings(
            index=store.signatures_index, settings={"index.blocks.read_only_allow_delete": None}
        )
    store.replay_spool()
    assert store.spool.signature_count() == 0
    es_client.indices.refresh(index=store.signatures_index)
    assert es_client.count(index=store.signatures_index)["count"] == 3
    # replayed with their band keys: found by a shared band, oldest first
    assert store.similar_signatures("a0099", None, band_keys(b"\x05" * 512), mark) == signatures


class _Flaky(BaseHTTPRequestHandler):
    """Forwards to the node, but answers the first ``failures`` bulk requests itself with 503, and holds
    bulk requests until ``gate`` is set."""

    def _relay(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server, bulk = self.server, self.path.split("?")[0].endswith("/_bulk")
        with server.lock:
            fail = bulk and server.bulk_seen < server.failures
            server.bulk_seen += bulk
        if bulk:
            server.gate.wait(60)
        if fail:
            payload = json.dumps({"error": {"type": "unavailable", "reason": "test"}, "status": 503}).encode()
            status, headers = 503, {"Content-Type": "application/json", "X-Elastic-Product": "Elasticsearch"}
        else:
            upstream = http.client.HTTPConnection(server.upstream, timeout=30)
            upstream.request(
                self.command,
                self.path,
                body=body,
                headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
            )
            reply = upstream.getresponse()
            payload, status = reply.read(), reply.status
            headers = {k: v for k, v in reply.getheaders() if k.lower() in ("content-type", "x-elastic-product")}
            upstream.close()
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(payload))}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_proxy(es_node):
    """A proxy on 127.0.0.1 in front of the node: ``failures`` bulk requests fail, a cleared ``gate`` holds them."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    server.upstream, server.failures, server.bulk_seen = urlsplit(es_node.url).netloc, 0, 0
    server.lock, server.gate = threading.Lock(), threading.Event()
    server.gate.set()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_bulk_requests_answered_503_are_retried(open_es, flaky_proxy):
    """A bulk request answered 502/503/504 is sent again; the articles arrive once and nothing is spooled."""
    flaky_proxy.failures = 2
    store = open_es(hosts=[f"http://127.0.0.1:{flaky_proxy.server_address[1]}"])
    assert store.add_articles(articles(0, 20)) == 20
    store.flush()
    assert flaky_proxy.bulk_seen == 3
    assert store.spool.count() == 0 and len(stored_ids(store)) == 20


def test_articles_after_never_skips_a_bulk_request_still_in_flight(open_es, flaky_proxy):
    """While one writer's bulk request hangs, another's later articles are held back, so no cursor skips it."""
    slow = open_es(hosts=[f"http://127.0.0.1:{flaky_proxy.server_address[1]}"])
    fast = open_es()
    flaky_proxy.gate.clear()
    try:
        slow.add_articles(articles(0, 5))  # returns at once: the bulk request waits in the proxy
        fast.add_articles(articles(5, 5))
        assert fast.articles_after(None) == ([], None)
    finally:
        flaky_proxy.gate.set()
    slow.flush()
    page, cursor = fast.articles_after(None)
    assert sorted(a.id for a in page) == [a.id for a in articles(0, 10)]
    assert fast.articles_after(cursor) == ([], cursor)


def test_closed_index_spools_articles_until_it_opens_again(open_es, es_client):
    """Articles the cluster refuses for its own reasons (a closed index) wait in the spool, then arrive once."""
    store = open_es()
    store.add_articles(articles(0, 5))
    store.flush()  # add_articles returns before its bulk is acknowledged: these must be in before the close
    (index,) = es_client.indices.get_alias(name=store.alias)
    es_client.indices.close(index=index)
    store.add_articles(articles(5, 5))
    store.flush()
    assert store.spool.count() == 5
    es_client.indices.open(index=index, wait_for_active_shards="1")
    assert store.replay_spool() == 5
    assert store.spool.count() == 0
    assert sorted(stored_ids(store)) == [a.id for a in articles(0, 10)]


def _no_tracebacks(caplog) -> None:
    shown = [r for r in caplog.records if r.levelno >= logging.INFO and r.exc_info]
    assert not shown, "an outage must be one line, not a traceback"


def test_outage_spools_with_one_log_line_and_the_next_flush_replays(open_es, es_node, caplog):
    """With the node stopped, batches go to the spool (one warning); after restart the next batch replays them first."""
    caplog.set_level(logging.INFO)
    store = open_es()
    signature = ClusterSignature("a0012", "a0001", "https://news.example/12", datetime.now(UTC), b"\x07" * 512)
    mark = signature.added - timedelta(days=1)
    store.add_articles(articles(0, 10))
    store.set_feed_state("wire", FeedState(etag="v1"))
    store.flush()  # the first ten are in before the outage (add_articles does not wait for its bulk)
    es_node.stop()
    try:
        assert store.add_articles(articles(10, 10)) == 0
        assert store.add_articles(articles(20, 10)) == 0
        store.set_feed_state("wire", FeedState(etag="v2"))
        assert store.get_feed_state("wire") == FeedState(etag="v2")
        store.add_signatures([signature])
        # the spooled one, for this machine: by its id, its URL or a band key, within the window only
        assert store.similar_signatures("a0012", None, (), signature.added) == [signature]
        assert store.similar_signatures("a0099", signature.url, (), signature.added) == [signature]
        assert store.similar_signatures("a0099", None, signature.bands[3:4], signature.added) == [signature]
        assert store.similar_signatures("a0099", "https://news.example/99", band_keys(b"\x01" * 512), mark) == []
        assert store.similar_signatures("a0012", None, (), signature.added + timedelta(seconds=1)) == []
        assert store.known_ids(["a0015", "a0099"]) == {"a0015"}
        with pytest.raises(StoreUnavailable):
            store.count_articles()
    finally:
        es_node.start()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("es_unavailable hosts=")
    _no_tracebacks(caplog)
    assert store.spool.count() == 20

    assert store.add_articles(articles(30, 10)) == 10
    assert store.spool.count() == 0
    ids = stored_ids(store)
    assert ids == [a.id for a in articles(0, 40)]  # all of them, once each, in the order they were crawled
    assert store.get_feed_state("wire") == FeedState(etag="v2") and store.all_feed_states() == {
        "wire": FeedState(etag="v2")
    }
    assert store.spool.signatures() == []
    assert store.similar_signatures("a0099", None, signature.bands, signature.added) == [signature]


def test_spool_left_at_close_is_replayed_at_the_next_start(open_es, es_node, caplog):
    """Articles still spooled when the process ends are replayed by the next process; opening while down is one line."""
    store = open_es()
    es_node.stop()
    try:
        store.add_articles(articles(0, 7))
        store.close()
        assert "es_spool_waiting count=7" in caplog.text
        with pytest.raises(StoreUnavailable) as down:
            open_es()
        assert "\n" not in str(down.value) and "unavailable" in str(down.value)
    finally:
        es_node.start()
    _no_tracebacks(caplog)
    again = open_es()
    assert again.spool.count() == 0
    assert stored_ids(again) == [a.id for a in articles(0, 7)]


def test_unreadable_spool_rows_are_quarantined_and_the_rest_replays(open_es, config_dir, caplog):
    """Rows of the spool that cannot be read back (broken JSON, a bad date, in articles, feed states and
    signatures) are set aside with one warning each; every good row replays; `spool list` shows the bad ones
    and `spool drop` forgets them. The rows are damaged with sqlite3, as a crash or a hand edit would."""
    caplog.set_level(logging.WARNING)
    spool = Spool(config_dir.parent / "var" / "es-spool" / "spool.sqlite3")  # what a process left when it ended
    spool.add(articles(0, 5))
    spool.put_state("wire", FeedState(etag="x"))
    spool.close()
    db = sqlite3.connect(spool.path)
    good = json.loads(db.execute("SELECT doc FROM articles LIMIT 1").fetchone()[0])
    db.execute("INSERT INTO articles (id, doc) VALUES ('broken', '{not json')")
    db.execute(
        "INSERT INTO articles (id, doc) VALUES ('baddate', ?)",
        (json.dumps({**good, "id": "baddate", "published": "not a date"}),),
    )
    db.execute("INSERT INTO feed_state (feed_id, state) VALUES ('other', '[1,')")
    db.execute("INSERT INTO signatures (article_id, doc) VALUES ('s1', 'garbage')")
    db.commit()
    db.close()
    spool = Spool(spool.path)
    spool.add(articles(5, 5))
    spool.close()

    store = open_es()  # replays at start: no traceback, the good rows arrive
    assert store.spool.waiting() == (0, 0, 0)
    assert sorted(stored_ids(store)) == [f"a{n:04d}" for n in range(10)]
    assert store.get_feed_state("wire") == FeedState(etag="x")
    kinds = sorted((row.kind, row.key) for row in store.spool.quarantined())
    assert [kind for kind, _ in kinds] == ["articles", "articles", "feed_state", "signatures"]
    assert caplog.text.count("es_spool_quarantined") == 4
    store.close()

    listed = run_cli("spool", "list", config_dir=config_dir)
    assert listed.returncode == 0 and listed.stdout.count("\n") == 5 and "JSONDecodeError" in listed.stdout
    first_row = listed.stdout.splitlines()[1].split("\t")[0]
    assert run_cli("spool", "drop", first_row, config_dir=config_dir).stdout == "dropped 1 quarantined rows\n"
    assert run_cli("spool", "drop", "--all", config_dir=config_dir).stdout == "dropped 3 quarantined rows\n"
    assert run_cli("spool", "drop", config_dir=config_dir).returncode == 2
