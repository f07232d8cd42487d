"""/healthz and /metrics: what a monitor asks of a running newswatch (docs/web.md, "Monitoring").

The crawl runs in a child process and the alerts pass maybe in another: their counts reach this page through
the store (``Store.record_metrics``, read back by ``Store.metrics``), which every process shares. Names of the
recorded values (what crawler.extensions and alerts/ write):

- crawl: ``crawls``, ``crawls_failed``, ``feeds_failed``, ``pages_fetched``, ``pages_failed``,
  ``articles_stored``, and the Unix times ``last_crawl`` and ``last_crawl_success``;
- alerts pass: ``alerts_passes``, ``hits``, ``digests_queued``, and ``last_alerts_pass``;
- delivery: ``digests_sent``, ``digests_failed``, ``digests_dead``, and ``last_digest_sent``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from newswatch.core.config import Config
from newswatch.core.feedstate import Health, feed_health
from newswatch.core.store import Store
from newswatch.core.times import iso

log = logging.getLogger(__name__)

# (recorded name, exposed name without _total, help): the running totals, exposed as counters.
COUNTERS = (
    ("crawls", "newswatch_crawls", "Crawls ended."),
    ("crawls_failed", "newswatch_crawls_failed", "Crawls that ended otherwise than finished (stopped, store failed)."),
    ("feeds_failed", "newswatch_feed_polls_failed", "Polls of a feed that failed."),
    ("pages_fetched", "newswatch_pages_fetched", "Responses received by the crawler (feeds, sitemaps, pages)."),
    ("pages_failed", "newswatch_pages_failed", "Downloads that failed: no response, or an HTTP 4xx/5xx status."),
    ("articles_stored", "newswatch_articles_stored", "Articles written to the store by crawls (new or changed)."),
    ("alerts_passes", "newswatch_alerts_passes", "Alerts passes run."),
    ("hits", "newswatch_hits", "New hits found by the alerts passes."),
    ("digests_queued", "newswatch_digests_queued", "Digests queued for delivery."),
    ("digests_sent", "newswatch_digests_sent", "Digests the mail server (or the outbox folder) accepted."),
    ("digests_failed", "newswatch_digests_failed", "Attempts to send a digest that failed."),
    ("digests_dead", "newswatch_digests_dead", "Digests given up on (dead letters)."),
)
# (recorded name, exposed name, help): Unix times of the last time something happened.
TIMESTAMPS = (
    ("last_crawl", "newswatch_last_crawl_timestamp_seconds", "When the last crawl ended."),
    ("last_crawl_success", "newswatch_last_crawl_success_timestamp_seconds", "When the last finished crawl ended."),
    ("last_alerts_pass", "newswatch_last_alerts_pass_timestamp_seconds", "When the last alerts pass ran."),
    ("last_digest_sent", "newswatch_last_digest_sent_timestamp_seconds", "When a digest was last accepted."),
)


def last_crawl_success(store: Store) -> datetime | None:
    """When the last successful crawl ended: as the crawl recorded it, else (a store filled before crawls
    recorded it) the latest successful poll of any feed."""
    recorded = store.metrics().get("last_crawl_success")
    if recorded:
        return datetime.fromtimestamp(recorded, UTC)
    polled = [state.last_success for state in store.all_feed_states().values() if state.last_success]
    return max(polled, default=None)


@dataclass(frozen=True)
class HealthReport:
    """What /healthz answers: healthy or not, why not, and what it looked at."""

    reasons: tuple[str, ...] = ()
    store: str = "reachable"
    last_crawl_success: datetime | None = None
    last_crawl_age_seconds: float | None = None
    outbox_depth: int | None = None
    limits: dict[str, float] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """True when nothing is wrong."""
        return not self.reasons

    def to_json(self) -> dict[str, Any]:
        """The JSON body of /healthz."""
        return {
            "status": "ok" if self.healthy else "unhealthy",
            "reasons": list(self.reasons),
            "store": self.store,
            "last_crawl_success": iso(self.last_crawl_success),
            "last_crawl_age_seconds": None
            if self.last_crawl_age_seconds is None
            else round(self.last_crawl_age_seconds),
            "outbox_depth": self.outbox_depth,
            "limits": self.limits,
        }


def crawl_age_limit_seconds(config: Config) -> float:
    """web.healthz.max_crawl_age_minutes in seconds; unset, three crawl intervals (at least 30 minutes)."""
    minutes = config.settings.web.healthz.max_crawl_age_minutes
    if minutes is None:
        minutes = max(3 * config.settings.schedule.crawl_every_minutes, 30)
    return minutes * 60


def check_health(config: Config, open_store, now: datetime) -> HealthReport:
    """The store answers, the last successful crawl is recent enough, and the outbox is not piling up.

    ``open_store`` gives the store (raising when it cannot be reached): the check must not fail itself."""
    limits = {
        "max_crawl_age_seconds": crawl_age_limit_seconds(config),
        "max_outbox_depth": config.settings.web.healthz.max_outbox_depth,
    }
    try:
        store = open_store()
        store.count_articles()
        crawled = last_crawl_success(store)
        depth = len(store.pending_digests())
    except Exception as exc:  # whatever the backend raises, the answer is "unreachable", never a 500
        reason = str(exc) or type(exc).__name__
        return HealthReport(reasons=(f"store unreachable: {reason}",), store=f"unreachable: {reason}", limits=limits)
    reasons = []
    age = (now - crawled).total_seconds() if crawled else None
    if age is None:
        reasons.append("no successful crawl recorded yet")
    elif age > limits["max_crawl_age_seconds"]:
        reasons.append(
            f"last successful crawl {age / 60:.0f} minutes ago (limit {limits['max_crawl_age_seconds'] / 60:g})"
        )
    if depth > limits["max_outbox_depth"]:
        reasons.append(f"{depth} digests waiting to be sent (limit {limits['max_outbox_depth']})")
    return HealthReport(tuple(reasons), "reachable", crawled, age, depth, limits)


class StoreCollector(Collector):
    """A Prometheus collector reading the store at each scrape: the recorded totals and times, and a few
    cheap counts (articles, digests waiting and dead, the Elasticsearch spool, feeds by health)."""

    def __init__(self, config: Config, open_store):
        self.config, self.open_store = config, open_store
        self._down = False  # the store failed the last scrape: logged once, until it answers again

    def describe(self) -> list[Metric]:
        return []  # nothing read at registration: the store is read at scrape time only

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("newswatch_store_up", "1 when the store answered this scrape, else 0.")
        try:
            store = self.open_store()
            metrics = store.metrics()
            gauges = list(self._gauges(store))
        except Exception as exc:  # a scrape always answers; the store's state is in newswatch_store_up
            if not self._down:
                log.warning("metrics_store_unreachable reason=%s", exc)
            self._down = True
            up.add_metric([], 0)
            yield up
            return
        self._down = False
        up.add_metric([], 1)
        yield up
        for recorded, name, help_text in COUNTERS:
            yield CounterMetricFamily(name, help_text, value=float(metrics.get(recorded, 0)))
        for recorded, name, help_text in TIMESTAMPS:
            if recorded in metrics:
                yield GaugeMetricFamily(name, help_text, value=float(metrics[recorded]))
        yield from gauges

    def _gauges(self, store: Store) -> Iterator[Metric]:
        yield GaugeMetricFamily("newswatch_articles", "Articles in the store.", value=store.count_articles())
        yield GaugeMetricFamily(
            "newswatch_outbox_depth",
            "Digests queued and not yet sent (dead ones apart).",
            value=len(store.pending_digests()),
        )
        yield GaugeMetricFamily(
            "newswatch_digests_dead_waiting",
            "Digests set aside as dead, until revived.",
            value=len(store.dead_digests()),
        )
        spool = getattr(store, "spool", None)  # the Elasticsearch backend's local queue; SQLite has none
        yield GaugeMetricFamily(
            "newswatch_spool_depth",
            "Articles waiting in the local spool for the Elasticsearch cluster (0 on SQLite).",
            value=spool.count() if spool is not None else 0,
        )
        states = store.all_feed_states()
        health = Counter(feed_health(states.get(feed.id), feed.enabled) for feed in self.config.feeds)
        feeds = GaugeMetricFamily("newswatch_feeds", "Configured feeds by health.", labels=["health"])
        for kind in Health:
            feeds.add_metric([kind.name.lower()], health.get(kind, 0))
        yield feeds
