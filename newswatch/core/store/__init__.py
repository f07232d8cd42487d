"""The article store: one small interface, with SQLite (default) and Elasticsearch backends (docs/storage.md).

The crawler writes articles, their cluster signatures and its per-feed state; the alerts side reads articles
after a cursor, writes hits, and queues/marks digests. Both backends pass the same contract tests
(tests/test_store_contract.py). A store is a context manager: ``with open_store(config) as store: ...``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from newswatch.core.feedstate import FeedState
from newswatch.core.models import (
    Article,
    ClusterSignature,
    Hit,
    LeaseHolder,
    OwedHit,
    PruneReport,
    QueuedDigest,
    SearchResult,
    StoreStats,
)
from newswatch.core.times import parse_utc

if TYPE_CHECKING:
    from newswatch.core.config import Config

__all__ = ["Store", "open_store"]

log = logging.getLogger(__name__)


class Store(Protocol):
    """What both halves of newswatch need from storage. Every write is idempotent.

    The backends subclass it for the context-manager methods below; the others they define themselves.
    """

    # -- crawler side
    def add_articles(self, articles: Sequence[Article]) -> int:
        """Upsert a batch by ``Article.id``; returns how many were new or changed. Keeps first ``fetched``."""

    def known_ids(self, ids: Iterable[str]) -> set[str]:
        """The subset of ``ids`` already stored (the crawler's seen set)."""

    def get_article(self, article_id: str) -> Article | None:
        """One article by id, or None."""

    def get_feed_state(self, feed_id: str) -> FeedState | None:
        """The crawler's remembered state of one feed, or None."""

    def set_feed_state(self, feed_id: str, state: FeedState) -> None:
        """Replace the remembered state of one feed."""

    def all_feed_states(self) -> dict[str, FeedState]:
        """Every remembered feed state, by feed id."""

    def add_signatures(self, signatures: Sequence[ClusterSignature]) -> None:
        """Keep near-duplicate signatures; one already kept for an article is not replaced."""

    def similar_signatures(
        self, article_id: str, url: str | None, bands: Sequence[int], since: datetime
    ) -> list[ClusterSignature]:
        """The stored signatures added at or after ``since`` (the clustering window) that could be copies of
        one article: its own (a re-fetch), those under the same canonical ``url``, and of those sharing any of
        its ``bands`` keys (models.band_keys) the SIGNATURE_CANDIDATES sharing the most, newest first among
        equals; oldest first. Bounded by the index and that number, never the window or a key's count."""

    def prune_signatures(self, before: datetime) -> int:
        """Drop the signatures added before ``before`` (past the clustering window); returns how many."""

    # -- search and reading back (the search command, `why`, the web page)
    def search(
        self,
        query: str,
        *,
        since: datetime | None = None,
        watch: str | None = None,
        limit: int = 20,
        phrases: Sequence[str] = (),
    ) -> list[SearchResult]:
        """Full-text search, best first, newest first among equals, ``since`` (an article's published, else
        fetched) applied before ranking.

        ``query`` is the same small syntax on both backends (store/query.py, docs/storage.md): plain words,
        all of which must appear (in the title or the text, case and diacritics aside); ``"a phrase"``;
        ``one OR other``; ``-word`` or ``-"a phrase"`` to leave out the articles holding it; ``word*`` for a
        prefix. ``phrases`` (a watch's spellings, from the search command) are alternatives to the query's
        words: an article holding any of them matches too, and with an empty query they alone decide. They
        are data, never syntax; spellings the index cannot tell apart are searched once (past
        query.MAX_PHRASES, those holding a shorter one are dropped too, and still more is a
        QuerySyntaxError). Excluded words apply to the phrases too. An empty query without phrases lists the
        newest articles. ``watch`` keeps articles with a hit of that watch.

        Each result has one Fragment: about 16 words of the text around the first match, plain text (no
        markup, no escaping) with the offsets of the highlighted words (the query's and the phrases'; a name
        of several words is one mark). Raises QuerySyntaxError, one line naming the query and the problem,
        for a query that cannot be read (an unbalanced quote, a lone ``-``, OR with nothing on one side,
        only excluded words) or that the backend refuses."""

    def watch_hits(self, watch: str, *, since: datetime | None = None, limit: int = 50) -> list[OwedHit]:
        """The ``limit`` newest hits of ``watch`` found at or after ``since``, each with its article and when
        it was found: newest found first, ties by the newest article (published, else fetched), then article
        id and offset. Read through the hits' index (SQLite: hits_watch_found), never all hits; a hit whose
        article is gone is left out."""

    def hits_for_articles(self, article_ids: Collection[str]) -> list[Hit]:
        """Every stored hit of the given articles (a story's page, `why`): in the order of ``article_ids``,
        then the title's before the text's, then by offset (start, end), then watch."""

    def cluster_articles(self, cluster_id: str, limit: int = 200) -> list[Article]:
        """The articles of one story (``Article.cluster_id``; an article stored without one is a story of
        its own, of its id), oldest fetched first, at most ``limit``."""

    # -- metrics: what the crawl child and the alerts pass report to the web page's /metrics
    def record_metrics(
        self, counts: Mapping[str, float] | None = None, latest: Mapping[str, float] | None = None
    ) -> None:
        """Add ``counts`` to the named running totals (atomically: several processes add at once, and none
        of their additions is lost) and set each of ``latest`` (e.g. the Unix time of the last successful
        crawl) to its value. Totals and latest values share one namespace of names. SQLite raises
        StoreUnavailable when its file refuses the write; Elasticsearch, while its cluster is down, logs
        ``es_metrics_dropped`` and drops them (a crawl spooling its articles is not failed for its counts)."""

    def metrics(self) -> dict[str, float]:
        """Every recorded total and latest value, by name (empty before the first record_metrics)."""

    # -- alerts side
    def articles_after(self, cursor: str | None, limit: int = 500) -> tuple[list[Article], str | None]:
        """Articles written or changed after ``cursor`` (None: from the start), oldest first, and the cursor
        to resume from (unchanged when nothing is new)."""

    def get_cursor(self, name: str) -> str | None:
        """A named cursor's saved value."""

    def set_cursor(self, name: str, value: str | None) -> None:
        """Save a named cursor."""

    def add_hits(self, hits: Sequence[Hit], found: datetime) -> int:
        """Store hits, ignoring ones already stored (by ``Hit.key``); returns how many were new."""

    def owed_hits(
        self, recipient: str, watches: Collection[str] | None = None, *, since: datetime | None = None
    ) -> list[OwedHit]:
        """Hits of ``watches`` (None: all) found at or after ``since`` (None: ever; the pass gives the
        recipient's window, delivery.owed_days) not yet put in any digest for ``recipient``, and of an article
        and watch none of whose hits was: a story is owed once per watch, however often its text changes (its
        page replacing the feed item it was first stored from, an update)."""

    def mention_counts(self, watch: str, since: datetime) -> dict[datetime, int]:
        """Distinct articles with a hit of ``watch`` per UTC hour (keyed by the hour's start), for the hours at
        or after ``since``'s hour. An article counts at the hour it was first stored (``fetched``, which an
        update keeps), not at ``published``: digest trends mean "when newswatch first saw the story", and an
        old story found today counts today. A per-watch count the store keeps as hits are added (SQLite: the
        mention_hours table; Elasticsearch: an aggregation of the articles' ``watches`` and ``fetched``),
        never a scan of the articles."""

    def last_mention_before(self, watch: str, before: datetime) -> datetime | None:
        """The start of the latest hour before ``before``'s hour in which an article mentioning ``watch`` was
        first stored (as mention_counts counts it), or None."""

    def queue_digest(self, digest: QueuedDigest) -> None:
        """Persist a rendered digest and assign its hits to it, atomically, before it is sent. Raises
        StoreConflict, queuing nothing, when another digest of the recipient already holds one of its hits
        (an overlapping alerts pass queued them first); queuing the same digest again is harmless."""

    def pending_digests(self) -> list[QueuedDigest]:
        """Queued digests not yet accepted by the mail server nor dead, oldest first."""

    def claim_digest(self, digest_id: str, holder: LeaseHolder, seconds: float) -> bool:
        """Claim a pending digest for sending, for ``seconds`` (on the store's clock). False, claiming
        nothing, when it is sent, dead, gone, or claimed by another holder whose claim has not run out and
        whose process is not known to be gone (see leases.vanished): only the holder of the claim sends it.
        Sending or failing (below) ends the claim."""

    def mark_digest_sent(self, digest_id: str, when: datetime) -> None:
        """Record that the server accepted the digest (the ledger entry)."""

    def note_digest_failure(
        self, digest_id: str, error: str, next_attempt: datetime, *, permanent: bool = False, dead: bool = False
    ) -> None:
        """Count a failed attempt (``permanent``: one the server refused for good, counted in ``refusals``)
        and when to retry; ``dead``: give up on it (a dead letter) until revived."""

    def revive_digest(self, digest_id: str) -> bool:
        """Make a dead (or waiting) digest due now again; False when no unsent digest has that id."""

    def dead_digests(self) -> list[QueuedDigest]:
        """Digests given up on, oldest first."""

    def sent_digests(self, limit: int = 50) -> list[QueuedDigest]:
        """The most recently sent digests, newest first."""

    # -- leases: what two processes on one store must agree on (one service, one alerts pass)
    def take_lease(self, name: str, holder: LeaseHolder, seconds: float) -> LeaseHolder:
        """Take (or renew) the lease ``name`` for ``seconds`` on the store's clock, if it is free, has run
        out, is ``holder``'s own, or is held by a process on this host that no longer exists. Returns who
        holds it now: ``holder`` (with since/expires) when taken, else the other holder."""

    def release_lease(self, name: str, holder: LeaseHolder) -> None:
        """Give the lease up if ``holder`` still holds it."""

    def count_articles(self) -> int:
        """How many articles are stored."""

    # -- retention
    def stats(self) -> StoreStats:
        """Articles, hits, bytes on disk, the oldest article, and per month (`newswatch store stats`)."""

    def prune(self, before: datetime) -> PruneReport:
        """Drop the articles first stored (fetched) before ``before`` with their hits, the hits found before
        it, and the signatures and mention counts before it; digests, queued or sent, stay, with the hits a
        queued one carries. Gives the space back (SQLite: incremental vacuum; Elasticsearch: whole monthly
        indices deleted through the alias, so its cutoff is the start of the month holding ``before``)."""

    def close(self) -> None:
        """Flush and release resources."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_store(config: Config) -> Store:
    """Open the configured backend; raises StoreUnavailable when it cannot be reached.

    Cluster signatures that an older version kept beside the store (var/crawler/clusters.db) move into it.
    """
    storage = config.settings.storage
    if storage.backend == "elasticsearch":
        from newswatch.core.store.elastic import ElasticStore

        store: Store = ElasticStore.from_config(config)
    else:
        from newswatch.core.store.sqlite import SqliteStore

        store = SqliteStore(config.path(storage.sqlite.path))
    try:
        migrate_cluster_sidecar(store, config.path(config.settings.var_dir) / "crawler" / "clusters.db")
    except BaseException:
        store.close()
        raise
    return store


def migrate_cluster_sidecar(store: Store, sidecar: Path) -> int:
    """Move the signatures of the old sidecar file into ``store``, then rename the file ``*.migrated`` (kept,
    not deleted, for an operator to remove). Returns how many rows moved; 0 when there is no sidecar.

    A sidecar that cannot be read now (locked by an old crawl still running, unreadable) is left where it is,
    with one warning, and read at a later open; importing twice is harmless (the first signature stays).
    """
    if not sidecar.is_file():
        return 0
    try:
        db = sqlite3.connect(f"{sidecar.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute("SELECT article_id, cluster_id, url, added, signature FROM signatures").fetchall()
        finally:
            db.close()
    except (sqlite3.Error, OSError) as exc:
        log.warning(
            "cluster_sidecar_unreadable path=%s reason=%s (left in place; read again at the next start)", sidecar, exc
        )
        return 0
    signatures = [
        ClusterSignature(article_id, cluster_id, url, added_at, blob)
        for article_id, cluster_id, url, added, blob in rows
        if (added_at := parse_utc(added)) is not None
    ]
    for start in range(0, len(signatures), 1000):
        store.add_signatures(signatures[start : start + 1000])
    try:
        # Its -wal and -shm files go with it (reading it in WAL mode makes them), under the new name.
        for suffix in ("-wal", "-shm", ""):
            part = sidecar.with_name(sidecar.name + suffix)
            if part.exists():
                part.rename(sidecar.with_name(f"{sidecar.name}.migrated{suffix}"))
    except OSError as exc:  # another process renamed it first, or the folder is read-only: read again later
        log.warning("cluster_sidecar_not_renamed path=%s reason=%s", sidecar, exc.strerror or exc)
    log.info("cluster_sidecar_migrated path=%s signatures=%d", sidecar, len(signatures))
    return len(signatures)
