"""One poll of one feed, and the rule that its new state is saved only once all it led to is stored.

A feed's state holds its validators, body hash and next due time. Saved before the articles it led to were
stored, a crawl killed in between would leave those articles behind for good: the next crawl would get a
304 (or not even poll the feed). So a FeedRun counts open units (the source requests and each article
fetched) and its state is written when the last one closes; a killed crawl leaves the old state, and the
next crawl polls the feed again and fetches exactly the articles not yet stored.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from crawler.polling.intervals import poll_interval
from crawler.polling.selection import Selection
from crawler.polling.state import record_success
from newswatch.core.config.feeds import Feed
from newswatch.core.feedstate import FeedState
from newswatch.core.models import Article, FeedEntry

log = logging.getLogger(__name__)

# An article page that failed for a reason that passes (a 5xx, a 404 before the page went live, a timeout, a
# dropped connection) is stored from its feed item at once, and its page is tried again on this many later
# polls of the feed while the feed still lists it (crawler.failures.classify_failure).
PAGE_RETRIES = 3


@dataclass
class FeedRun:
    """What one poll of ``feed`` found so far; ``state()`` is the feed state to save when it is done."""

    feed: Feed
    prior: FeedState | None
    started: datetime
    units: int = 1  # the feed's own request
    items: int = 0
    new_items: int = 0
    unchanged: bool = False
    partial: bool = False  # a child sitemap failed: the entries it lists were not seen this time
    dates: list[datetime] = field(default_factory=list)
    stamps: dict[str, str] = field(default_factory=dict)
    remember: dict = field(default_factory=dict)  # FeedState fields learnt on the way (validators, kind...)
    retries: dict[str, int] = field(init=False)  # article id -> page retries left, from the prior state

    def __post_init__(self) -> None:
        self.retries = dict(self.prior.page_retries) if self.prior else {}

    def page_done(self, article_id: str, stored_from_page: bool, transient: bool = False) -> None:
        """Record how fetching an article's page ended: retries left are spent on a passing failure, and
        forgotten on success or a lasting one (a refusal, a page without text)."""
        left = self.retries.pop(article_id, PAGE_RETRIES + 1) - 1
        if not stored_from_page and transient and left > 0:
            self.retries[article_id] = left
        elif not stored_from_page and transient:
            log.info("page_retries_spent feed=%s article=%s", self.feed.id, article_id)

    def add(self, entries: list[FeedEntry], selection: Selection) -> None:
        """Count the entries of one polled source (a feed, or one child sitemap) and what was fetched."""
        self.items += len(entries)
        self.new_items += selection.new_to_feed
        self.dates += [d for d in (e.published or e.updated for e in entries) if d is not None]
        self.stamps.update(selection.stamps)
        self.units += len(selection.fetch)

    def state(self) -> FeedState:
        """The feed's state after this poll (crawler.polling.state.record_success)."""
        prior = self.prior or FeedState()
        previous = timedelta(minutes=prior.interval_minutes) if prior.interval_minutes else None
        interval = poll_interval(previous, self.dates, self.new_items, self.started)
        if self.unchanged:
            items, stamps = prior.last_items, prior.entry_updates
        elif self.partial:  # entries of a child that failed are kept, not forgotten as if they left the feed
            items, stamps = self.items, {**prior.entry_updates, **self.stamps}
        else:
            items, stamps = self.items, self.stamps
        retries = {i: left for i, left in self.retries.items() if i in stamps}  # only entries still listed
        return record_success(
            self.prior,
            name=self.feed.name,
            now=self.started,
            items=items,
            new_items=self.new_items,
            interval=interval,
            entry_updates=stamps,
            page_retries=retries,
            **self.remember,
        )


class FeedRuns:
    """The open FeedRuns of a crawl, by feed id. Used from the reactor thread only."""

    def __init__(self) -> None:
        self.open: dict[str, FeedRun] = {}

    def start(self, run: FeedRun) -> None:
        """Open a run with its one unit: the request of the feed itself."""
        self.open[run.feed.id] = run

    def close(self, feed_id: str, units: int = 1) -> FeedRun | None:
        """Close ``units`` of the feed's run; returns the run when that was its last open unit."""
        run = self.open.get(feed_id)
        if run is None:
            return None
        run.units -= units
        if run.units > 0:
            return None
        return self.open.pop(feed_id)

    def stored(self, articles: Iterable[Article]) -> list[FeedRun]:
        """Close one unit per stored article; returns the runs this completes."""
        done = []
        for feed_id, count in Counter(a.feed_id for a in articles).items():
            run = self.close(feed_id, count)
            if run is not None:
                done.append(run)
        return done

    def drop(self, feed_id: str) -> None:
        """Forget a failed run: the feed's failure is saved instead."""
        self.open.pop(feed_id, None)
