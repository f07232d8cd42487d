"""ElasticStore: the Store interface over an Elasticsearch cluster (docs/storage.md)."""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from elasticsearch import ApiError, BadRequestError, Elasticsearch

from newswatch.core.errors import StoreUnavailable
from newswatch.core.feedstate import FeedState
from newswatch.core.models import (
    SIGNATURE_BANDS,
    SIGNATURE_CANDIDATES,
    SIGNATURE_WINDOW,
    Article,
    ClusterSignature,
    Fragment,
    Hit,
    LeaseHolder,
    MonthStats,
    OwedHit,
    PruneReport,
    QueuedDigest,
    SearchResult,
    StoreStats,
    band_keys,
)
from newswatch.core.store import Store
from newswatch.core.store.elastic.clock import ClusterClock
from newswatch.core.store.elastic.cluster import (
    Cluster,
    bulk,
    connect,
    delete_matching,
    each,
    guarded_updates,
    reason,
)
from newswatch.core.store.elastic.documents import (
    HIGHLIGHT,
    fragment,
    hit_doc,
    hit_from,
    owed_from,
    signature_from,
)
from newswatch.core.store.elastic.indices import ArticleIndices, create_index, install_templates
from newswatch.core.store.elastic.queue import DigestQueue
from newswatch.core.store.elastic.search import search_query
from newswatch.core.store.elastic.spool import Spool
from newswatch.core.store.elastic.writer import BulkWriter
from newswatch.core.store.leases import holder_key, vanished
from newswatch.core.store.query import query_error
from newswatch.core.times import from_iso, iso, to_utc, utc_now

if TYPE_CHECKING:
    from newswatch.core.config import Config

log = logging.getLogger(__name__)


# Two processes' readings of the cluster's clock differ by about a round trip (more when they talk to
# different nodes). articles_after waits this long between taking its cap and refreshing, so a writer whose
# lease it cannot see yet stamps seqs above the cap (docs/storage.md).
_CLOCK_MARGIN_SECONDS = 0.2
# The state document saying the signatures of the window got their band keys (stored before they were indexed).
_BANDS_FILLED = "migration:signature-bands"
# Compare-and-set rounds of record_metrics before it gives up (each conflict: another process added first).
_METRIC_ATTEMPTS = 50
_ABOVE_BANDS = SIGNATURE_BANDS + 1  # a signature lookup's score for the article's own id or URL
# Band keys of spooled signatures, compared with every article a crawl clusters while the cluster is down.
_spooled_bands = functools.lru_cache(maxsize=4096)(band_keys)


def _hour(moment: datetime) -> datetime:
    """The start of the UTC hour holding ``moment``."""
    return to_utc(moment).replace(minute=0, second=0, microsecond=0)


def _from_ms(millis: float) -> datetime:
    """A date field's value in an aggregation (milliseconds since the epoch) as an aware UTC datetime."""
    return datetime.fromtimestamp(millis / 1000, UTC)


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _root_cause(exc: ApiError) -> str:
    """What Elasticsearch says went wrong first, rather than the phase that failed."""
    body = exc.body if isinstance(exc.body, dict) else {}
    causes = (body.get("error") or {}).get("root_cause") or [{}]
    why = causes[0].get("reason") if isinstance(causes[0], dict) else None
    return " ".join(str(why).split())[:300] if why else reason(exc)


def _dated(article: Article) -> datetime:
    return article.published or article.fetched or datetime.min.replace(tzinfo=UTC)


def _metric_doc(name: str, value: float) -> dict:
    return {"kind": "metric", "name": name, "amount": float(value)}


def _lease_holder(src: dict) -> LeaseHolder:
    return LeaseHolder(
        src["holder"],
        src["host"],
        src["pid"],
        datetime.fromtimestamp(src["since"] / 1e6, UTC),
        datetime.fromtimestamp(src["expires"] / 1e6, UTC),
    )


class ElasticStore(Store):
    """Store in an Elasticsearch cluster; articles the cluster cannot take wait in a local spool."""

    def __init__(
        self,
        client: Elasticsearch,
        *,
        prefix: str = "newswatch",
        spool_path: Path | str,
        chunk_size: int = 500,
        bulk_retries: int = 5,
        backoff: float = 1.0,
    ):
        self.es = client
        self.base = prefix if prefix.endswith(("-", "_", ".")) else prefix + "-"
        self.alias, self.hits_index = self.base + "articles", self.base + "hits"
        self.digests_index, self.state_index = self.base + "digests", self.base + "state"
        self.signatures_index, self.claims_index = self.base + "signatures", self.base + "claims"
        self.bulk_retries, self.backoff = bulk_retries, backoff
        self._closed = False
        self.spool = Spool(spool_path)
        self._spool_cache: tuple[int, list[ClusterSignature]] | None = None  # see _spooled_signatures
        self.indices = ArticleIndices(client, self.alias)
        # After an outage the monthly indices are listed again: they may have changed meanwhile.
        self.cluster = Cluster(client, self.spool, on_down=self.indices.forget)
        self.hosts = self.cluster.hosts
        self.clock = ClusterClock(client)
        self.writer = BulkWriter(
            client,
            self.cluster,
            self.indices,
            self.spool,
            self.clock,
            state_index=self.state_index,
            signatures_index=self.signatures_index,
            chunk_size=chunk_size,
            bulk_retries=bulk_retries,
            backoff=backoff,
        )
        self.digests = DigestQueue(
            client,
            self.digests_index,
            hits_index=self.hits_index,
            claims_index=self.claims_index,
            clock=self.clock,
            retries=bulk_retries,
            backoff=backoff,
        )
        try:
            with self.cluster.unavailable_raises():
                self.es.options(request_timeout=10).cluster.health()  # a bare node has no `GET /`
                install_templates(self.es, self.base)
                for index in (
                    self.hits_index,
                    self.digests_index,
                    self.state_index,
                    self.signatures_index,
                    self.claims_index,
                ):
                    create_index(self.es, index)
                self.indices.ensure_write_index()
                try:
                    self._fill_bands()
                except ApiError as exc:  # e.g. a write block (disk at flood stage): reads go on, the next open retries
                    log.warning("es_bands_not_filled index=%s reason=%s", self.signatures_index, reason(exc))
        except BaseException:
            self.spool.close()
            raise
        self.replay_spool()

    @classmethod
    def from_config(cls, config: Config) -> ElasticStore:
        """The store configured in settings.yaml; raises StoreUnavailable when the cluster does not answer."""
        s = config.settings.storage.elasticsearch
        client = connect(config)
        return cls(
            client,
            prefix=s.index_prefix,
            spool_path=config.path(s.spool_dir) / "spool.sqlite3",
            chunk_size=s.bulk_chunk_size,
            bulk_retries=s.bulk_max_retries,
            backoff=s.retry_backoff_seconds,
        )

    # -- crawler side
    def add_articles(self, articles: Sequence[Article]) -> int:
        """Upsert by id; returns how many are new or changed. The bulk request runs in the background while
        the caller builds its next batch; reads and close() wait for it, and what it cannot write is spooled."""
        return self.writer.add_articles(articles)

    def flush(self) -> None:
        """Wait until every article given to add_articles is in the cluster or in the spool."""
        with self.writer.lock:
            self.writer.drain()

    def replay_spool(self) -> int:
        """Send what waits in the spool, oldest first, now; returns how many articles the cluster took."""
        return self.writer.replay_spool()

    def known_ids(self, ids: Iterable[str]) -> set[str]:
        self.flush()
        ids = list(dict.fromkeys(ids))
        ok, found = (
            self.cluster.attempt(self.indices.lookup, ids, source=False) if self.cluster.available() else (False, None)
        )
        # Down: only the spooled ones; the crawler then re-fetches some known pages, which are harmless upserts.
        return (set(found) if ok else set()) | self.spool.ids(ids)

    def get_article(self, article_id: str) -> Article | None:
        self.flush()
        with self.cluster.unavailable_raises():
            hit = self.indices.lookup([article_id], source_excludes=["normalized"]).get(article_id)
        return Article.from_record(hit["_source"]) if hit else None

    def get_feed_state(self, feed_id: str) -> FeedState | None:
        spooled = self.spool.states().get(feed_id)  # newer than the cluster's copy
        if spooled is not None or not self.cluster.available():
            return spooled
        ok, doc = self.cluster.attempt(
            self.es.options(ignore_status=404).get, index=self.state_index, id=f"feed:{feed_id}"
        )
        return FeedState.from_json(doc["_source"]["state"]) if ok and doc.get("found") else None

    def set_feed_state(self, feed_id: str, state: FeedState) -> None:
        if (
            feed_id in self.spool.states()
            or not self.cluster.available()
            or not self.cluster.attempt(self.writer.put_feed_state, feed_id, state)[0]
        ):
            self.spool.put_state(feed_id, state)

    def all_feed_states(self) -> dict[str, FeedState]:
        with self.cluster.unavailable_raises():
            self.es.indices.refresh(index=self.state_index)
            hits = each(self.es, self.state_index, {"term": {"kind": "feed"}}, [{"name": "asc"}])
            states = {hit["_source"]["name"]: FeedState.from_json(hit["_source"]["state"]) for hit in hits}
        return states | self.spool.states()

    def add_signatures(self, signatures: Sequence[ClusterSignature]) -> None:
        if self.spool.signature_count() and self.cluster.available():
            self.replay_spool()  # older ones first, after the articles they were taken for
        # Down, or older ones still waiting: spooled, in order; so is what a busy cluster could not take.
        if self.spool.signature_count() or not self.cluster.available():
            self.spool.add_signatures(signatures)
            return
        ok, later = self.cluster.attempt(self.writer.put_signatures, signatures)
        if not ok or later:
            self.spool.add_signatures(signatures if not ok else later)

    def _fill_bands(self) -> None:
        """Band keys for the signatures of the window stored before they were indexed (once per prefix): until
        they age out, a later copy of their stories would otherwise be found by id and URL only."""
        if self.es.options(ignore_status=404).get(index=self.state_index, id=_BANDS_FILLED, source=False)["found"]:
            return
        self.es.indices.refresh(index=self.signatures_index)
        query = {
            "bool": {
                "filter": [{"range": {"added": {"gte": iso(utc_now() - SIGNATURE_WINDOW)}}}],
                "must_not": [{"exists": {"field": "bands"}}],
            }
        }
        order = [{"added": "asc"}, {"article_id": "asc"}]
        actions = (
            ({"update": {"_index": self.signatures_index, "_id": hit["_id"]}}, {"doc": {"bands": list(sig.bands)}})
            for hit in each(self.es, self.signatures_index, query, order)
            if (sig := signature_from(hit["_source"])).signature  # a text too short has none
        )
        refused = [
            item["update"]
            for ok, item in bulk(self.es, actions, retries=self.bulk_retries, backoff=self.backoff, max_backoff=30)
            if not ok and item["update"].get("status") != 404  # 404: pruned meanwhile
        ]
        if refused:  # the next open tries again
            log.warning(
                "es_bands_not_filled index=%s count=%d reason=HTTP %s %s",
                self.signatures_index,
                len(refused),
                refused[0].get("status"),
                refused[0].get("error"),
            )
            return
        self.es.index(
            index=self.state_index, id=_BANDS_FILLED, document={"kind": "migration", "name": "signature-bands"}
        )

    def similar_signatures(
        self, article_id: str, url: str | None, bands: Sequence[int], since: datetime
    ) -> list[ClusterSignature]:
        wanted = set(bands)
        spooled = [
            s
            for s in self._spooled_signatures()
            if s.added >= since
            and (
                s.article_id == article_id
                or (url and s.url == url)
                or not wanted.isdisjoint(_spooled_bands(s.signature))
            )
        ]
        if not self.cluster.available():  # clustering goes on with what this machine holds
            return spooled
        # One query, within the window: its own id and its URL, scored above any count of band keys, then the
        # signatures sharing its band keys (indexed by put_signatures) scored by how many they share.
        should = [_scored({"article_id": article_id}, 2 * _ABOVE_BANDS)]
        should += [_scored({"url": url}, _ABOVE_BANDS)] if url else []
        should += [_scored({"bands": band}, 1) for band in sorted(wanted)]
        query = {
            "bool": {
                "filter": [{"range": {"added": {"gte": iso(since)}}}],
                "should": should,
                "minimum_should_match": 1,
            }
        }
        ok, hits = self.cluster.attempt(self._signatures, query)
        stored = {s.article_id: s for s in (hits if ok else [])}
        found = [*stored.values(), *(s for s in spooled if s.article_id not in stored)]
        return sorted(found, key=lambda s: (s.added, s.article_id))

    def _signatures(self, query: dict) -> list[ClusterSignature]:
        # A crawl asks once per article: refresh only after our own writes and deletes (and at the first
        # lookup), which a lookup must see; another process's show within the index's refresh interval (1 s).
        if self.writer.signatures_changed:
            self.writer.signatures_changed = False
            try:
                self.es.indices.refresh(index=self.signatures_index)
            except BaseException:
                self.writer.signatures_changed = True
                raise
        # The best SIGNATURE_CANDIDATES by band keys (newest first among equals), its own and a URL's above them.
        order = [{"_score": "desc"}, {"added": "desc"}, {"article_id": "desc"}]
        hits = self.es.search(index=self.signatures_index, query=query, sort=order, size=SIGNATURE_CANDIDATES + 2)
        found = hits["hits"]["hits"]
        kept = [hit for hit in found if hit["_score"] >= _ABOVE_BANDS]
        kept += [hit for hit in found if hit["_score"] < _ABOVE_BANDS][:SIGNATURE_CANDIDATES]
        return [signature_from(hit["_source"]) for hit in kept]

    def _spooled_signatures(self) -> list[ClusterSignature]:
        """The spool's signatures, decoded once for as long as their count stays the same: while the cluster
        is down a crawl compares every article with them, and decoding them all for each was quadratic."""
        count = self.spool.signature_count()
        if count == 0:
            return []
        if self._spool_cache is None or self._spool_cache[0] != count:
            self._spool_cache = (count, self.spool.signatures())
        return self._spool_cache[1]

    def prune_signatures(self, before: datetime) -> int:
        # Spooled ones too: replayed later, they would only wait for the next prune.
        spooled = [s.article_id for s in self.spool.signatures() if s.added < before]
        self.spool.drop_signatures(spooled)
        with self.cluster.unavailable_raises():
            deleted = delete_matching(
                self.es,
                self.signatures_index,
                {"range": {"added": {"lt": iso(before)}}},
                [{"article_id": "asc"}],
                retries=self.bulk_retries,
                backoff=self.backoff,
            )
        self.writer.signatures_changed = True  # a lookup must not find them any more
        return len(spooled) + deleted

    # -- search and reading back
    def search(
        self,
        query: str,
        *,
        since: datetime | None = None,
        watch: str | None = None,
        limit: int = 20,
        phrases: Sequence[str] = (),
    ) -> list[SearchResult]:
        match = search_query(query, phrases)
        filters: list[dict] = [{"range": {"dated": {"gte": iso(since)}}}] if since else []
        filters += [{"term": {"watches": watch}}] if watch else []
        self.flush()
        try:
            with self.cluster.unavailable_raises():
                self.es.indices.refresh(index=self.alias)
                hits = self.es.search(
                    index=self.alias,
                    query={"bool": {"must": [match or {"match_all": {}}], "filter": filters}},
                    size=limit,
                    sort=[{"_score": "desc"}, {"dated": {"order": "desc"}}],
                    highlight=HIGHLIGHT if match else None,
                    source_excludes=["normalized"],
                )["hits"]["hits"]
        except BadRequestError as exc:  # a query the cluster refuses (e.g. too many clauses): the user's to change
            raise query_error(query, f"Elasticsearch cannot run it: {_root_cause(exc)}") from None
        results = []
        for hit in hits:
            article = Article.from_record(hit["_source"])
            marked = hit.get("highlight", {}).get("normalized.text", [None])[0]
            text = fragment(article.text, marked) if match else Fragment(article.text[:160])
            results.append(SearchResult(article=article, score=float(hit["_score"] or 0), fragments=[text]))
        return results

    def watch_hits(self, watch: str, *, since: datetime | None = None, limit: int = 50) -> list[OwedHit]:
        filters: list[dict] = [{"term": {"watch": watch}}]
        filters += [{"range": {"found": {"gte": iso(since)}}}] if since is not None else []
        if limit <= 0:
            return []
        self.flush()
        with self.cluster.unavailable_raises():
            self.es.indices.refresh(index=self.hits_index)
            newest = self.es.search(
                index=self.hits_index,
                query={"bool": {"filter": filters}},
                size=limit,
                sort=[{"found": "desc"}, {"key": "asc"}],
            )["hits"]["hits"]
            if len(newest) == limit:  # ties of the last found time are ordered by article, so all of them
                last = newest[-1]["sort"][0]
                same = {"range": {"found": {"gte": last, "lte": last, "format": "epoch_millis"}}}
                ties = each(self.es, self.hits_index, {"bool": {"filter": [*filters, same]}}, [{"key": "asc"}])
                newest = [hit for hit in newest if hit["sort"][0] != last] + [{**hit, "sort": [last]} for hit in ties]
            articles = self.indices.lookup(
                {hit["_source"]["article_id"] for hit in newest}, source_excludes=["normalized"]
            )
        found = [
            (hit["sort"][0], owed_from(hit["_source"], articles[hit["_source"]["article_id"]]["_source"]))
            for hit in newest
            if hit["_source"]["article_id"] in articles
        ]
        # As SQLite orders them: found, the article's date (published, else fetched), its id, the offsets.
        found.sort(key=lambda pair: (pair[1].hit.article_id, pair[1].hit.field, pair[1].hit.start))
        found.sort(key=lambda pair: (pair[0], _dated(pair[1].article)), reverse=True)
        return [owed for _, owed in found[:limit]]

    def hits_for_articles(self, article_ids: Collection[str]) -> list[Hit]:
        wanted = list(dict.fromkeys(article_ids))
        if not wanted:
            return []
        self.flush()
        hits: list[Hit] = []
        with self.cluster.unavailable_raises():
            self.es.indices.refresh(index=self.hits_index)
            for batch in _batches(wanted, 1000):
                query = {"terms": {"article_id": batch}}
                hits += [hit_from(h["_source"]) for h in each(self.es, self.hits_index, query, [{"key": "asc"}])]
        order = {article_id: n for n, article_id in enumerate(wanted)}
        return sorted(hits, key=lambda h: (order[h.article_id], h.field != "title", h.start, h.end, h.watch))

    def cluster_articles(self, cluster_id: str, limit: int = 200) -> list[Article]:
        # An article stored without a cluster is a story of its own, as in SQLite.
        alone = {
            "bool": {"filter": [{"ids": {"values": [cluster_id]}}], "must_not": [{"exists": {"field": "cluster_id"}}]}
        }
        query = {"bool": {"should": [{"term": {"cluster_id": cluster_id}}, alone], "minimum_should_match": 1}}
        self.flush()
        with self.cluster.unavailable_raises():
            self.es.indices.refresh(index=self.alias)
            hits = each(
                self.es,
                self.alias,
                query,
                [{"fetched": "asc"}, {"id": "asc"}],
                limit=limit,
                source_excludes=["normalized"],
            )
            return [Article.from_record(hit["_source"]) for hit in hits]

    # -- metrics: one state document per name (metric:NAME), added to with compare-and-set
    def record_metrics(
        self, counts: Mapping[str, float] | None = None, latest: Mapping[str, float] | None = None
    ) -> None:
        if not counts and not latest:
            return
        if (
            not self.cluster.available()
            or not self.cluster.attempt(self._record_metrics, counts or {}, latest or {})[0]
        ):
            # A crawl spooling its articles through an outage is not failed for its counts: they are lost.
            log.warning(
                "es_metrics_dropped hosts=%s names=%s", self.hosts, ",".join(sorted({*(counts or {}), *(latest or {})}))
            )

    def _record_metrics(self, counts: Mapping[str, float], latest: Mapping[str, float]) -> None:
        actions = [
            ({"index": {"_index": self.state_index, "_id": f"metric:{name}"}}, _metric_doc(name, value))
            for name, value in latest.items()
        ]
        for ok, item in bulk(self.es, actions, retries=self.bulk_retries, backoff=self.backoff):
            if not ok:
                raise StoreUnavailable(f"Elasticsearch refused the metric {item['index']['_id']}: {item['index']}")
        # The bare node has no scripts: read, add, and write back only if nobody wrote meanwhile (409: again).
        pending = dict(counts)
        for attempt in range(_METRIC_ATTEMPTS):
            if not pending:
                return
            docs = self.es.mget(index=self.state_index, ids=[f"metric:{name}" for name in pending])["docs"]
            actions = []
            for doc in docs:
                name = doc["_id"].removeprefix("metric:")
                if doc.get("found"):
                    guard = {"if_seq_no": doc["_seq_no"], "if_primary_term": doc["_primary_term"]}
                    header = {"index": {"_index": self.state_index, "_id": doc["_id"], **guard}}
                    actions.append((header, _metric_doc(name, doc["_source"]["amount"] + pending[name])))
                else:
                    header = {"create": {"_index": self.state_index, "_id": doc["_id"]}}
                    actions.append((header, _metric_doc(name, pending[name])))
            conflicts = guarded_updates(self.es, actions, retries=self.bulk_retries, backoff=self.backoff)
            pending = {name: pending[name] for name in (i.removeprefix("metric:") for i in conflicts)}
            if pending:  # several processes add at once: step aside a random moment, growing
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
        raise StoreUnavailable(f"Elasticsearch at {self.hosts}: the metrics {sorted(pending)} keep changing under us")

    def metrics(self) -> dict[str, float]:
        with self.cluster.unavailable_raises():
            self.es.indices.refresh(index=self.state_index)
            docs = each(self.es, self.state_index, {"term": {"kind": "metric"}}, [{"name": "asc"}])
            return {doc["_source"]["name"]: float(doc["_source"]["amount"]) for doc in docs}

    # -- alerts side
    def articles_after(self, cursor: str | None, limit: int = 500) -> tuple[list[Article], str | None]:
        after = None
        if cursor:
            seq, _, article_id = cursor.partition(":")
            after = [int(seq), article_id]
        # Under the lock, after the drain, none of our own writes is in flight: our lease can be ignored.
        with self.writer.lock, self.cluster.unavailable_raises():
            self.writer.drain()
            # Taken before the refresh: anything acknowledged earlier is visible after it. On the cluster's
            # clock, as the writers' seqs are; a writer's lease written after the refresh comes later than
            # the margin, so its seqs lie above the cap whatever our two readings of the clock differ by.
            cap = self.clock.now_us()
            time.sleep(_CLOCK_MARGIN_SECONDS)
            self.es.indices.refresh(index=[self.alias, self.state_index])
            leases = each(
                self.es,
                self.state_index,
                {
                    "bool": {
                        "filter": [{"term": {"kind": "lease"}}, {"range": {"expires": {"gt": cap}}}],
                        "must_not": [{"ids": {"values": [self.writer.lease_id]}}],
                    }
                },
                [{"since": "asc"}],
                limit=1,
            )
            cap = min([cap] + [lease["_source"]["since"] for lease in leases])
            hits = self.es.search(
                index=self.alias,
                query={"range": {"seq": {"lt": cap}}},
                size=limit,
                sort=[{"seq": "asc"}, {"id": "asc"}],
                search_after=after,
                source_excludes=["normalized"],
            )["hits"]["hits"]
        if not hits:
            return [], cursor
        return [Article.from_record(hit["_source"]) for hit in hits], "{}:{}".format(*hits[-1]["sort"])

    def get_cursor(self, name: str) -> str | None:
        with self.cluster.unavailable_raises():
            doc = self.es.options(ignore_status=404).get(index=self.state_index, id=f"cursor:{name}")
        return doc["_source"]["value"] if doc.get("found") else None

    def set_cursor(self, name: str, value: str | None) -> None:
        with self.cluster.unavailable_raises():
            self.es.index(
                index=self.state_index, id=f"cursor:{name}", document={"kind": "cursor", "name": name, "value": value}
            )

    def add_hits(self, hits: Sequence[Hit], found: datetime) -> int:
        actions = [({"create": {"_index": self.hits_index, "_id": hit.key}}, hit_doc(hit, found)) for hit in hits]
        created, refused = [], []
        with self.cluster.unavailable_raises():
            for ok, item in bulk(self.es, actions, retries=self.bulk_retries, backoff=self.backoff, max_backoff=30):
                result = item["create"]
                if ok:
                    created.append(result["_id"])
                elif result.get("status") != 409:  # 409: stored before
                    refused.append(f"{result['_id']}: HTTP {result.get('status')} {result.get('error')}")
            self._note_claims(created)
            self._note_watches(hits)
        if refused:
            raise StoreUnavailable(f"Elasticsearch refused {len(refused)} hits, e.g. {refused[0]}")
        return len(created)

    def _note_claims(self, keys: list[str]) -> None:
        """A hit stored again after prune dropped it (its article pruned, then crawled again: the same key) is
        still in the digests that carried it, whose claims stay, as SQLite's digest_hits does: delivered_to
        again, so it is neither owed again nor refused forever by queue_digest for another digest's claim."""
        claimed: dict[str, set[str]] = {}
        for batch in _batches(keys, 10_000):
            for claim in each(
                self.es,
                self.claims_index,
                {"terms": {"hit_key": batch}},
                [{"hit_key": "asc"}, {"recipient": "asc"}],
                source_includes=["hit_key", "recipient"],
            ):
                claimed.setdefault(claim["_source"]["hit_key"], set()).add(claim["_source"]["recipient"])
        for _ in range(3 if claimed else 0):  # 409: a digest marked the hit meanwhile; read it again
            got = self.es.mget(index=self.hits_index, ids=list(claimed), source_includes=["delivered_to"])["docs"]
            actions = [
                (
                    {
                        "update": {
                            "_index": self.hits_index,
                            "_id": d["_id"],
                            "if_seq_no": d["_seq_no"],
                            "if_primary_term": d["_primary_term"],
                        }
                    },
                    {"doc": {"delivered_to": sorted(set(d["_source"].get("delivered_to") or []) | claimed[d["_id"]])}},
                )
                for d in got
                if d.get("found") and not claimed[d["_id"]] <= set(d["_source"].get("delivered_to") or [])
            ]
            claimed = {
                i: claimed[i]
                for i in guarded_updates(self.es, actions, retries=self.bulk_retries, backoff=self.backoff)
            }
            if not claimed:
                return

    def _note_watches(self, hits: Sequence[Hit]) -> None:
        """Add the hits' watch names to their articles (the --watch filter); the article's seq stays."""
        self.flush()
        wanted: dict[str, set[str]] = {}
        for hit in hits:
            wanted.setdefault(hit.article_id, set()).add(hit.watch)
        for _ in range(3):  # 409: the article was rewritten meanwhile; read it again
            stored = self.indices.lookup(wanted, source_includes=["watches"])
            actions = [
                (
                    {
                        "update": {
                            "_index": doc["_index"],
                            "_id": i,
                            "if_seq_no": doc["_seq_no"],
                            "if_primary_term": doc["_primary_term"],
                        }
                    },
                    {"doc": {"watches": sorted(set(doc["_source"].get("watches") or []) | wanted[i])}},
                )
                for i, doc in stored.items()
                if not wanted[i] <= set(doc["_source"].get("watches") or [])
            ]
            wanted = {
                i: wanted[i] for i in guarded_updates(self.es, actions, retries=self.bulk_retries, backoff=self.backoff)
            }
            if not wanted:
                return

    def _mentions(self, watch: str, fetched: dict, aggs: dict) -> dict:
        """Aggregations over the articles mentioning ``watch`` first stored in the ``fetched`` range. Articles
        carry the names of the watches with a hit in them (see _note_watches), and ``fetched`` is when
        newswatch first stored them (an update keeps it): each article counts once, and nothing is read but
        the aggregation (no join with the hits index). Counted when asked, so there is nothing to rebuild."""
        self.flush()
        query = {"bool": {"filter": [{"term": {"watches": watch}}, {"range": {"fetched": fetched}}]}}
        with self.cluster.unavailable_raises():
            self.es.indices.refresh(index=self.alias)
            return self.es.search(index=self.alias, query=query, size=0, aggs=aggs)["aggregations"]

    def mention_counts(self, watch: str, since: datetime) -> dict[datetime, int]:
        hours = {"date_histogram": {"field": "fetched", "calendar_interval": "hour", "min_doc_count": 1}}
        buckets = self._mentions(watch, {"gte": iso(_hour(since))}, {"hours": hours})["hours"]["buckets"]
        return {_from_ms(bucket["key"]): bucket["doc_count"] for bucket in buckets}

    def last_mention_before(self, watch: str, before: datetime) -> datetime | None:
        latest = self._mentions(watch, {"lt": iso(_hour(before))}, {"latest": {"max": {"field": "fetched"}}})
        millis = latest["latest"]["value"]
        return _hour(_from_ms(millis)) if millis is not None else None

    def owed_hits(
        self, recipient: str, watches: Collection[str] | None = None, *, since: datetime | None = None
    ) -> list[OwedHit]:
        filters: list[dict] = [{"range": {"found": {"gte": iso(since)}}}] if since is not None else []
        if watches is not None:
            if not watches:
                return []
            filters.append({"terms": {"watch": list(watches)}})
        query = {"bool": {"filter": filters, "must_not": [{"term": {"delivered_to": recipient}}]}}
        self.flush()
        with self.cluster.unavailable_raises():
            self.digests.assign_pending()
            self.es.indices.refresh(index=self.hits_index)
            hits = [hit["_source"] for hit in each(self.es, self.hits_index, query, [{"key": "asc"}])]
            sent = self._sent_pairs(recipient, {hit["article_id"] for hit in hits})
            hits = [hit for hit in hits if (hit["article_id"], hit["watch"]) not in sent]
            articles = self.indices.lookup({hit["article_id"] for hit in hits}, source_excludes=["normalized"])
        owed = [owed_from(hit, articles[hit["article_id"]]["_source"]) for hit in hits if hit["article_id"] in articles]
        owed.sort(
            key=lambda o: (
                o.hit.watch,
                o.article.published or o.article.fetched,
                o.hit.article_id,
                o.hit.field,
                o.hit.start,
            )
        )
        return owed

    def _sent_pairs(self, recipient: str, article_ids: Collection[str]) -> set[tuple[str, str]]:
        """The (article, watch) pairs among ``article_ids`` that ``recipient`` was already given a hit of:
        owed once per article and watch, so new hits of a changed article's text are not news."""
        sent: set[tuple[str, str]] = set()
        ids = sorted(article_ids)
        for start in range(0, len(ids), 1000):
            query = {
                "bool": {
                    "filter": [
                        {"term": {"delivered_to": recipient}},
                        {"terms": {"article_id": ids[start : start + 1000]}},
                    ]
                }
            }
            sent.update(
                (hit["_source"]["article_id"], hit["_source"]["watch"])
                for hit in each(
                    self.es, self.hits_index, query, [{"key": "asc"}], source_includes=["article_id", "watch"]
                )
            )
        return sent

    def queue_digest(self, digest: QueuedDigest) -> None:
        with self.cluster.unavailable_raises():
            self.digests.queue(digest)

    def pending_digests(self) -> list[QueuedDigest]:
        with self.cluster.unavailable_raises():
            self.digests.assign_pending()
            return self.digests.pending()

    def dead_digests(self) -> list[QueuedDigest]:
        with self.cluster.unavailable_raises():
            return self.digests.dead()

    def claim_digest(self, digest_id: str, holder: LeaseHolder, seconds: float) -> bool:
        with self.cluster.unavailable_raises():
            return self.digests.claim(digest_id, holder_key(holder), seconds)

    def revive_digest(self, digest_id: str) -> bool:
        with self.cluster.unavailable_raises():
            return self.digests.revive(digest_id)

    def sent_digests(self, limit: int = 50) -> list[QueuedDigest]:
        with self.cluster.unavailable_raises():
            return self.digests.sent(limit)

    def mark_digest_sent(self, digest_id: str, when: datetime) -> None:
        with self.cluster.unavailable_raises():
            self.digests.mark_sent(digest_id, when)

    def note_digest_failure(
        self, digest_id: str, error: str, next_attempt: datetime, *, permanent: bool = False, dead: bool = False
    ) -> None:
        with self.cluster.unavailable_raises():
            self.digests.note_failure(digest_id, error, next_attempt, permanent, utc_now() if dead else None)

    # -- leases: documents hold:NAME of the state index, compared on the cluster's clock
    def take_lease(self, name: str, holder: LeaseHolder, seconds: float) -> LeaseHolder:
        doc_id = f"hold:{name}"
        with self.cluster.unavailable_raises():
            for _ in range(5):  # another process changed it between our read and our write: read again
                now = self.clock.now_us()
                doc = self.es.options(ignore_status=404).get(index=self.state_index, id=doc_id)
                current = _lease_holder(doc["_source"]) if doc.get("found") else None
                if (
                    current is not None
                    and current.id != holder.id
                    and doc["_source"]["expires"] > now
                    and not vanished(current)
                ):
                    return current
                since = doc["_source"]["since"] if current is not None and current.id == holder.id else now
                body = {
                    "kind": "hold",
                    "name": name,
                    "holder": holder.id,
                    "host": holder.host,
                    "pid": holder.pid,
                    "since": since,
                    "expires": now + int(seconds * 1_000_000),
                }
                guard = (
                    {"if_seq_no": doc["_seq_no"], "if_primary_term": doc["_primary_term"]}
                    if doc.get("found")
                    else {"op_type": "create"}
                )
                result = self.es.options(ignore_status=409).index(
                    index=self.state_index, id=doc_id, document=body, refresh=True, **guard
                )
                if result.get("result") in ("created", "updated"):
                    return _lease_holder(body)
        raise StoreUnavailable(f"Elasticsearch at {self.hosts}: the lease {name!r} keeps changing under us")

    def release_lease(self, name: str, holder: LeaseHolder) -> None:
        with self.cluster.unavailable_raises():
            doc = self.es.options(ignore_status=404).get(index=self.state_index, id=f"hold:{name}")
            if doc.get("found") and doc["_source"]["holder"] == holder.id:
                self.es.options(ignore_status=[404, 409]).delete(
                    index=self.state_index,
                    id=f"hold:{name}",
                    if_seq_no=doc["_seq_no"],
                    if_primary_term=doc["_primary_term"],
                    refresh=True,
                )

    def count_articles(self) -> int:
        self.flush()
        with self.cluster.unavailable_raises():
            self.es.indices.refresh(index=self.alias)
            return self.es.count(index=self.alias)["count"]

    # -- retention
    def _bytes(self) -> int:
        """The store size of the project's indices (the monthly ones through the alias), replicas included."""
        names = [self.alias, self.hits_index, self.digests_index, self.state_index]
        names += [self.signatures_index, self.claims_index]
        got = self.es.indices.stats(index=names, metric="store", filter_path="_all.total.store.size_in_bytes")
        return got["_all"]["total"]["store"]["size_in_bytes"]

    def _per_month(self, index: str, field: str, **options) -> dict:
        """A count of ``index``'s documents per YYYY-MM of ``field`` (UTC), with the total."""
        per_month = {"field": field, "calendar_interval": "month", "format": "yyyy-MM", "min_doc_count": 1}
        return self.es.search(
            index=index, track_total_hits=True, aggs={"months": {"date_histogram": per_month}}, **options
        )

    def stats(self) -> StoreStats:
        self.flush()
        with self.cluster.unavailable_raises():
            self.es.indices.refresh(index=[self.alias, self.hits_index])
            # The oldest article comes along as the first by fetched: its stored time, to the microsecond.
            articles = self._per_month(
                self.alias, "fetched", size=1, sort=[{"fetched": "asc"}], source_includes=["fetched"]
            )
            hits = self._per_month(self.hits_index, "found", size=0)
            size = self._bytes()
        months: dict[str, list[int]] = {}
        for column, got in enumerate((articles, hits)):
            for bucket in got["aggregations"]["months"]["buckets"]:
                months.setdefault(bucket["key_as_string"], [0, 0])[column] = bucket["doc_count"]
        first = articles["hits"]["hits"]
        return StoreStats(
            articles=articles["hits"]["total"]["value"],
            hits=hits["hits"]["total"]["value"],
            bytes=size,
            oldest=from_iso(first[0]["_source"]["fetched"]) if first else None,
            months=tuple(MonthStats(m, a, h) for m, (a, h) in sorted(months.items())),
        )

    def prune(self, before: datetime) -> PruneReport:
        # Whole months: the cutoff is the start of the month holding ``before``, so that every article
        # fetched before it goes, whether its month's index is dropped whole or it sits in a later one.
        cutoff = to_utc(before).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        self.flush()
        with self.cluster.unavailable_raises():
            size = self._bytes()
            kept = self._queued_hit_keys()
            self.es.indices.refresh(index=[self.alias, self.hits_index])
            articles = hits = 0
            everything, by_id = {"match_all": {}}, [{"id": "asc"}]
            for index in self._months_before(cutoff):
                # Its articles' hits first: a prune stopped halfway finds them again by the index it left.
                for ids in _batches((h["_id"] for h in each(self.es, index, everything, by_id, source=False)), 1000):
                    hits += self._drop_hits({"terms": {"article_id": ids}}, kept)
                    articles += len(ids)
                self.es.options(ignore_status=404).indices.delete(index=index)
                log.info("es_month_dropped index=%s", index)
                self.indices.forget()
            # Articles fetched before the cutoff in a later month's index (a spool replayed after the month
            # turned, an import): one by one, with their hits.
            stray = {"range": {"fetched": {"lt": iso(cutoff)}}}
            for ids in _batches((h["_id"] for h in each(self.es, self.alias, stray, by_id, source=False)), 1000):
                hits += self._drop_hits({"terms": {"article_id": ids}}, kept)
            articles += delete_matching(
                self.es, self.alias, stray, by_id, retries=self.bulk_retries, backoff=self.backoff
            )
            hits += self._drop_hits({"range": {"found": {"lt": iso(cutoff)}}}, kept, refresh=True)
        signatures = self.prune_signatures(cutoff)
        with self.cluster.unavailable_raises():
            # A dropped index gives its space back at once; deleted documents only as their segments merge.
            reclaimed = max(0, size - self._bytes())
        return PruneReport(articles, hits, signatures, reclaimed)

    def _queued_hit_keys(self) -> set[str]:
        """The hits carried by digests not sent (queued, dead, or still being queued): prune keeps them."""
        self.es.indices.refresh(index=self.digests_index)
        unsent = {"bool": {"must_not": [{"exists": {"field": "sent"}}]}}
        digests = each(self.es, self.digests_index, unsent, [{"id": "asc"}], source_includes=["hit_keys"])
        return {key for digest in digests for key in digest["_source"]["hit_keys"]}

    def _months_before(self, cutoff: datetime) -> list[str]:
        """The monthly article indices whose whole month lies before ``cutoff`` (never the write index)."""
        old = []
        for name, spec in self.es.indices.get_alias(name=self.alias).items():
            try:
                month = datetime.strptime(name.removeprefix(f"{self.alias}-"), "%Y.%m").replace(tzinfo=UTC)
            except ValueError:  # not one of the monthly indices (another index put behind the alias)
                continue
            if month < cutoff and not spec["aliases"][self.alias].get("is_write_index"):
                old.append(name)
        return sorted(old)

    def _drop_hits(self, query: dict, kept: Collection[str], *, refresh: bool = False) -> int:
        """Delete the hits of ``query`` but the ``kept`` ones (refreshed first by prune, once)."""
        return delete_matching(
            self.es,
            self.hits_index,
            query,
            [{"key": "asc"}],
            retries=self.bulk_retries,
            backoff=self.backoff,
            keep=kept,
            refresh=refresh,
        )

    def close(self) -> None:
        with self.writer.lock:
            if self._closed:
                return
            self._closed = True
            self.writer.close()
            self.spool.close()
            self.es.close()


def _scored(term: dict, score: int) -> dict:
    """A should clause that adds ``score`` when ``term`` matches, whatever the term's frequency."""
    return {"constant_score": {"filter": {"term": term}, "boost": score}}
