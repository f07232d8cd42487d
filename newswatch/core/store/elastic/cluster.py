"""Talking to the cluster: what counts as an outage, when to ask again, paged reads and bulk requests."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from elasticsearch import ApiError, Elasticsearch, TransportError, helpers

from newswatch.core.errors import StoreUnavailable
from newswatch.core.store.elastic.spool import Spool

if TYPE_CHECKING:
    from newswatch.core.config import Config

# One logger for the whole backend: operators filter its es_* events by this name.
log = logging.getLogger(__name__)
RETRY_STATUS = (429, 502, 503, 504)
_PAGE = 1000


def connect(config: Config) -> Elasticsearch:
    """A client for storage.elasticsearch, credentials from the environment; StoreUnavailable if misconfigured."""
    s = config.settings.storage.elasticsearch
    auth: dict = {}
    if config.secret("es_api_key"):
        auth["api_key"] = config.secret("es_api_key")
    elif config.secret("es_username"):
        auth["basic_auth"] = (config.secret("es_username"), config.secret("es_password") or "")
    if not s.verify_certs:
        log.warning("es_tls_unverified hosts=%s", ",".join(s.hosts))
    try:
        return Elasticsearch(
            s.hosts,
            **auth,
            verify_certs=s.verify_certs,
            ssl_show_warn=False,
            ca_certs=str(config.path(s.ca_file)) if s.ca_file else None,
            request_timeout=s.request_timeout,
            max_retries=s.max_retries,
            retry_on_status=RETRY_STATUS,
            retry_on_timeout=True,
        )
    except ValueError as exc:
        raise StoreUnavailable(f"storage.elasticsearch: {exc}") from None


def outage(exc: Exception) -> bool:
    """Whether an error means the cluster cannot take requests now (no answer, 429, 5xx, refused credentials)."""
    if isinstance(exc, TransportError):
        return True
    return isinstance(exc, ApiError) and (exc.status_code in (401, 403, 429) or exc.status_code >= 500)


def reason(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    text = f"HTTP {status} {exc.message}" if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:300]


class Cluster:
    """Whether the cluster is up, as far as this process knows; while down, it is asked again with backoff."""

    def __init__(self, client: Elasticsearch, spool: Spool, on_down: Callable[[], None]):
        self.es, self.spool, self.on_down = client, spool, on_down
        self.hosts = ", ".join(str(node.base_url) for node in client.transport.node_pool.all())
        self.down_since: float | None = None
        self.retry_at, self.failures = 0.0, 0

    @contextmanager
    def unavailable_raises(self) -> Iterator[None]:
        """For reads that cannot wait in the spool: an outage becomes one-line StoreUnavailable."""
        try:
            yield
        except (TransportError, ApiError) as exc:
            if not outage(exc):
                raise
            raise StoreUnavailable(f"Elasticsearch at {self.hosts} is unavailable: {reason(exc)}") from None

    def went_down(self, why: str) -> None:
        if self.down_since is None:
            self.down_since, self.failures = time.monotonic(), 0
            self.on_down()
            log.warning("es_unavailable hosts=%s spool=%s reason=%s", self.hosts, self.spool.path, why)
        self.retry_at = time.monotonic() + min(30, 2**self.failures)
        self.failures += 1

    def available(self) -> bool:
        """True when up; when down, asks the cluster again once the backoff since the last try has passed."""
        if self.down_since is None:
            return True
        if time.monotonic() < self.retry_at:
            return False
        try:
            self.es.options(request_timeout=5, max_retries=0).cluster.health()
        except (TransportError, ApiError) as exc:
            if not outage(exc):
                raise
            self.went_down(reason(exc))
            return False
        log.info("es_available down_seconds=%.0f spooled=%d", time.monotonic() - self.down_since, self.spool.count())
        self.down_since = None
        return True

    def attempt(self, call, *args, **kwargs) -> tuple[bool, object]:
        """``(True, call(...))``, or ``(False, None)`` after an outage (noted once in the log)."""
        try:
            return True, call(*args, **kwargs)
        except (TransportError, ApiError) as exc:
            if not outage(exc):
                raise
            self.went_down(reason(exc))
            return False, None


def each(
    es: Elasticsearch, index: str | list[str], query: dict, sort: list, limit: int | None = None, **options
) -> Iterator[dict]:
    """Every hit of ``query`` in ``sort`` order, a page at a time (search_after); ``options`` go to search."""
    after, seen = None, 0
    while limit is None or seen < limit:
        size = _PAGE if limit is None else min(_PAGE, limit - seen)
        page = es.search(index=index, query=query, sort=sort, size=size, search_after=after, **options)["hits"]["hits"]
        yield from page
        seen += len(page)
        if len(page) < size:
            return
        after = page[-1]["sort"]


def bulk(es: Elasticsearch, actions: Iterable, *, retries: int, backoff: float, **options) -> Iterator:
    """streaming_bulk over ready (header, body) pairs; items rejected with 429/502-504 are retried."""
    return helpers.streaming_bulk(
        es,
        actions,
        raise_on_error=False,
        max_retries=retries,
        initial_backoff=backoff,
        retry_on_status=RETRY_STATUS,
        expand_action_callback=lambda action: action,
        **options,
    )


def guarded_updates(es: Elasticsearch, actions: list, *, retries: int, backoff: float) -> list[str]:
    """Run bulk updates carrying if_seq_no (the bare node has no scripts); returns the ids that hit a version
    conflict, for the caller to read again. Other failures raise."""
    conflicts = []
    for ok, item in bulk(es, actions, retries=retries, backoff=backoff):
        result = next(iter(item.values()))
        if not ok and result.get("status") == 409:
            conflicts.append(result["_id"])
        elif not ok:
            raise StoreUnavailable(f"Elasticsearch refused an update of {result['_id']}: {result.get('error')}")
    return conflicts


def delete_matching(
    es: Elasticsearch,
    index: str | list[str],
    query: dict,
    sort: list,
    *,
    retries: int,
    backoff: float,
    keep: Collection[str] = frozenset(),
    refresh: bool = True,
) -> int:
    """Delete every document of ``query`` but those whose id is in ``keep``; returns how many were deleted.
    The bare node has no _delete_by_query: ids are read a page at a time (search_after, which deletions
    behind the last page cannot upset) and deleted in bulk requests. ``refresh``: first, to see every write."""
    if refresh:
        es.indices.refresh(index=index)
    actions = (
        ({"delete": {"_index": hit["_index"], "_id": hit["_id"]}}, None)
        for hit in each(es, index, query, sort, source=False)
        if hit["_id"] not in keep
    )
    deleted = 0
    for ok, item in bulk(es, actions, retries=retries, backoff=backoff, max_backoff=30):
        result = item["delete"]
        if ok:
            deleted += 1
        elif result.get("status") != 404:  # 404: deleted meanwhile (another prune)
            raise StoreUnavailable(f"Elasticsearch refused to delete {result['_id']}: {result.get('error')}")
    return deleted
