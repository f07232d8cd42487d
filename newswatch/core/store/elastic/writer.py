"""The crawler's writes: bulk requests from a sender thread behind a lease, retries, the spool and its replay."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from elasticsearch import ApiError, Elasticsearch, TransportError

from newswatch.core.feedstate import FeedState
from newswatch.core.models import Article, ClusterSignature
from newswatch.core.store.elastic.clock import ClusterClock
from newswatch.core.store.elastic.cluster import Cluster, bulk, outage, reason
from newswatch.core.store.elastic.documents import merge, normalized, signature_doc
from newswatch.core.store.elastic.indices import ArticleIndices
from newswatch.core.store.elastic.spool import Spool

log = logging.getLogger(__name__)

# Item errors that are the document's own fault: no retry can help, so the article is set aside, not spooled.
_DOC_FAULTS = {
    "mapper_parsing_exception",
    "document_parsing_exception",
    "strict_dynamic_mapping_exception",
    "illegal_argument_exception",
}
_LEASE_US = 600_000_000  # a writer that died mid-bulk holds articles_after back at most this long (10 min)


class BulkWriter:
    """Writes articles and feed states; what the cluster cannot take waits in the spool, oldest sent first."""

    def __init__(
        self,
        client: Elasticsearch,
        cluster: Cluster,
        indices: ArticleIndices,
        spool: Spool,
        clock: ClusterClock,
        *,
        state_index: str,
        signatures_index: str,
        chunk_size: int,
        bulk_retries: int,
        backoff: float,
    ):
        self.es, self.cluster, self.indices, self.spool, self.clock = client, cluster, indices, spool, clock
        self.state_index, self.signatures_index, self.alias = state_index, signatures_index, indices.alias
        self.chunk_size, self.bulk_retries, self.backoff = chunk_size, bulk_retries, backoff
        self.lock = threading.RLock()  # one writer at a time keeps the spool's order and the seq counter
        self.lease_id, self._last_seq = f"lease:{uuid.uuid4().hex}", 0
        # One bulk request in flight at a time, sent by this thread: (future, its chunk, attempt).
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="es-bulk")
        self._inflight: tuple[Future, list, int] | None = None
        self._lease: tuple[int, float] | None = None  # (since, monotonic time written) of our lease document
        self._adding, self._adding_lock = 0, threading.Lock()  # callers inside add_articles: more is coming
        # Signatures written or deleted since our last refresh of their index; True at first, for earlier ones.
        self.signatures_changed = True

    def add_articles(self, articles: Sequence[Article]) -> int:
        with self._adding_lock:
            self._adding += 1
        try:
            return self._add(articles)
        finally:
            with self._adding_lock:
                self._adding -= 1

    def _add(self, articles: Sequence[Article]) -> int:
        # Normalizing is the CPU-heavy part: done here, while the previous batch's bulk request is in flight.
        batch = normalized(articles)
        with self.lock:
            # Read what is stored while the previous bulk request is still in flight, too; the ids that request
            # writes are read again after it (a realtime get sees them then).
            early, stale = None, {a.id for a, _ in self._inflight[1]} if self._inflight else set()
            if self.cluster.down_since is None and len(batch) <= self.chunk_size and not self.spool.count():
                early = self.cluster.attempt(
                    self.indices.lookup, (a.id for a, _ in batch), source_excludes=["normalized"]
                )[1]
            self.drain()
            if self.spool.count():  # what waits goes first, so an older version never lands after a newer one
                self._replay()
            if self.spool.count() or not self.cluster.available():
                return self._to_spool([article for article, _ in batch])
            planned = 0
            for i in range(0, len(batch), self.chunk_size):
                self.drain()  # a failure of the previous chunk sends this one to the spool too, after it
                ok, count = (False, 0)
                if self.cluster.down_since is None:
                    ok, count = self.cluster.attempt(self._submit, batch[i : i + self.chunk_size], 0, early, stale)
                if not ok:
                    return planned + self._to_spool([article for article, _ in batch[i:]])
                planned += count
            return planned

    def put_feed_state(self, feed_id: str, state: FeedState) -> None:
        self.es.index(
            index=self.state_index,
            id=f"feed:{feed_id}",
            document={"kind": "feed", "name": feed_id, "state": state.to_json()},
        )

    def put_signatures(self, signatures: Sequence[ClusterSignature]) -> list[ClusterSignature]:
        """Index signatures by article id; one already there is kept (409). Returns those the cluster could not
        take now (429, 5xx after the retries), for the spool; one refused for good (a mapping error) is logged
        and dropped: without it, only a later copy of that story is not clustered with it."""
        by_id = {s.article_id: s for s in signatures}
        # The band keys are indexed (not spooled: they follow from the signature), for similar_signatures.
        actions = [
            ({"create": {"_index": self.signatures_index, "_id": i}}, {**signature_doc(s), "bands": list(s.bands)})
            for i, s in by_id.items()
        ]
        later = []
        for ok, item in bulk(self.es, actions, retries=self.bulk_retries, backoff=self.backoff, max_backoff=30):
            result = item["create"]
            status = result.get("status") or 0
            if ok or status == 409:
                continue
            if status == 429 or status >= 500:
                later.append(by_id[result["_id"]])
            else:
                log.warning(
                    "es_signature_refused article=%s reason=HTTP %s %s", result["_id"], status, result.get("error")
                )
        self.signatures_changed = True  # the next lookup refreshes the index first, to see them
        return later

    def replay_spool(self) -> int:
        with self.lock:
            self.drain()
            self.cluster.retry_at = 0.0
            return self._replay()

    def _replay(self) -> int:
        sent = 0
        while self.cluster.available():
            rows = self.spool.oldest(self.chunk_size)
            if not rows:
                self._replay_small_writes()
                break
            ok, _ = self.cluster.attempt(self._submit, normalized([article for _, article in rows]))
            if not ok:
                break
            failed = self.drain(spool_failures=False)
            # Every version of an article that failed stays, so an older one never lands after a newer one.
            keep = {article.id for article in failed}
            self.spool.remove(seq for seq, article in rows if article.id not in keep)
            sent += sum(1 for _, article in rows if article.id not in keep)
        if sent:
            log.info("es_spool_replayed count=%d left=%d", sent, self.spool.count())
        return sent

    def _replay_small_writes(self) -> None:
        """After the articles: the spooled feed states and cluster signatures, while the cluster answers."""
        for feed_id, state in self.spool.states().items():
            if not self.cluster.attempt(self.put_feed_state, feed_id, state)[0]:
                return
            self.spool.drop_state(feed_id, state)
        signatures = self.spool.signatures()
        for start in range(0, len(signatures), self.chunk_size):
            chunk = signatures[start : start + self.chunk_size]
            ok, later = self.cluster.attempt(self.put_signatures, chunk)
            if not ok:
                return
            waiting = {s.article_id for s in later}
            self.spool.drop_signatures(s.article_id for s in chunk if s.article_id not in waiting)
            if waiting:  # the cluster is busy: the rest waits for the next replay
                return

    def _to_spool(self, articles: list[Article]) -> int:
        self.spool.add(articles)
        log.debug("es_spooled count=%d", len(articles))
        return 0

    def _submit(
        self,
        chunk: list[tuple[Article, dict]],
        attempt: int = 0,
        stored: dict | None = None,
        stale: set[str] = frozenset(),
    ) -> int:
        """Decide what to write (SQLite's upsert rule) and start its bulk request; returns how many docs."""
        ids = [article.id for article, _ in chunk]
        again = ids if stored is None else [i for i in ids if i in stale]
        stored = {**(stored or {}), **self.indices.lookup(again, source_excludes=["normalized"])}
        docs = merge(chunk, {i: hit["_source"] for i, hit in stored.items()})
        if docs:
            self._inflight = (self._sender.submit(self._send, docs, stored), chunk, attempt)
        return len(docs)

    def drain(self, spool_failures: bool = True) -> list[Article]:
        """Wait for the bulk request in flight; redo its version conflicts; spool (or return) its failures."""
        if self._inflight is None:
            return []
        future, chunk, attempt = self._inflight
        self._inflight = None
        try:
            conflicts, failed, why = future.result()
        except (TransportError, ApiError) as exc:
            if not outage(exc):
                raise
            conflicts, failed, why = set(), {article.id for article, _ in chunk}, reason(exc)
        if conflicts:  # another writer changed these since our lookup: decide again on what it wrote,
            self.indices.forget()  # looking in every monthly index again (it may have created a new one)
            redo = [pair for pair in chunk if pair[0].id in conflicts]
            ok = attempt < 3 and self.cluster.attempt(self._submit, redo, attempt + 1)[0]
            failed |= {article.id for article in self.drain(spool_failures=False)} if ok else conflicts
        lost = [article for article, _ in chunk if article.id in failed]
        if lost:
            self.cluster.went_down(why or "version conflicts")
            if spool_failures:
                self._to_spool(lost)
        return lost

    def _send(self, docs: dict[str, dict], stored: dict[str, dict]) -> tuple[set[str], set[str], str]:
        """In the sender thread: stamp seqs after our lease, bulk; returns (conflicts, failures, why)."""
        since = self._advance_lease()
        seq = max(self.clock.now_us(), since + 1, self._last_seq + 1)
        self._last_seq = seq + len(docs) - 1
        actions = []
        for n, (article_id, doc) in enumerate(docs.items()):
            doc["seq"] = seq + n
            old = stored.get(article_id)
            # An update goes to the month that holds the article (no twins); a new one through the alias.
            header = (
                {
                    "index": {
                        "_index": old["_index"],
                        "if_seq_no": old["_seq_no"],
                        "if_primary_term": old["_primary_term"],
                    }
                }
                if old
                else {"create": {"_index": self.alias, "require_alias": True}}
            )
            next(iter(header.values()))["_id"] = article_id
            actions.append((header, doc))
        conflicts, failed, why = set(), set(), ""
        for ok, item in bulk(
            self.es, actions, retries=self.bulk_retries, backoff=self.backoff, chunk_size=len(actions), max_backoff=30
        ):
            result = next(iter(item.values()))
            error = result.get("error") or {}
            if ok:
                continue
            if result.get("status") == 409:
                conflicts.add(result["_id"])
            elif error.get("type") in _DOC_FAULTS:
                log.warning("es_bulk_failed article=%s reason=%s", result["_id"], error.get("reason"))
                self.spool.reject(Article.from_record(docs[result["_id"]]), str(error.get("reason")))
            else:
                failed.add(result["_id"])
                why = f"HTTP {result.get('status')} {error.get('type')}: {error.get('reason')}"
        if not self._adding:  # no next batch on its way: let other readers past ours now, not at expiry
            self._lease = None
            # The batch is written; a lease left behind only delays readers until it expires.
            with contextlib.suppress(TransportError, ApiError):
                self.es.options(ignore_status=404).delete(index=self.state_index, id=self.lease_id)
        return conflicts, failed, why

    def _advance_lease(self) -> int:
        """Our lease: articles_after stops short of its ``since`` (acknowledged before any seq we stamp), so a
        bulk request in flight is never skipped. While batches keep coming it moves forward at most once a
        second, to save requests; it is deleted when the writer goes idle (or expires, if the writer died)."""
        if self._lease is None or time.monotonic() - self._lease[1] > 1.0:
            since = self.clock.now_us()
            self.es.index(
                index=self.state_index,
                id=self.lease_id,
                document={"kind": "lease", "since": since, "expires": since + _LEASE_US},
            )
            self._lease = (since, time.monotonic())
        return self._lease[0]

    def close(self) -> None:
        """Send or report what waits, drop our lease, stop the sender thread (the caller holds the lock)."""
        self.drain()
        if any(self.spool.waiting()):
            self.replay_spool()
        articles, states, signatures = self.spool.waiting()
        if articles or states or signatures:
            log.warning(
                "es_spool_waiting count=%d feed_states=%d signatures=%d spool=%s",
                articles,
                states,
                signatures,
                self.spool.path,
            )
        if self._lease is not None and self.cluster.down_since is None:
            self.cluster.attempt(self.es.options(ignore_status=404).delete, index=self.state_index, id=self.lease_id)
        self._sender.shutdown()
