"""Adaptive polling: when each feed is due, from how often it publishes and how often it fails (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from newswatch.core.config.feeds import Feed
from newswatch.core.feedstate import FeedState

MIN_INTERVAL = timedelta(minutes=10)
MAX_INTERVAL = timedelta(hours=24)
FIRST_INTERVAL = timedelta(hours=1)  # a feed whose items carry no dates starts here, then adapts
# The newest items say how fast a feed publishes now; older ones describe another season.
RECENT_ITEMS = 20
# Item dates further ahead than this are a wrong clock or a wrong time zone, not news from the future.
_FUTURE_SLACK = timedelta(hours=1)
# Without dates: halve the interval after a fetch that brought news, stretch it after one that did not.
_FASTER, _SLOWER = 0.5, 1.5


def _clamp(interval: timedelta) -> timedelta:
    return max(MIN_INTERVAL, min(MAX_INTERVAL, interval))


def publishing_gap(dates: Iterable[datetime], now: datetime) -> timedelta | None:
    """The expected time between two new items of a feed, from its items' dates; None with fewer than two.

    It is the mean spacing of the RECENT_ITEMS newest dates, but at least half the silence since the
    newest: a feed that published hourly last month and nothing since is not an hourly feed now.
    """
    recent = sorted((d for d in dates if d <= now + _FUTURE_SLACK), reverse=True)[:RECENT_ITEMS]
    if len(recent) < 2:
        return None
    mean_gap = (recent[0] - recent[-1]) / (len(recent) - 1)
    return max(mean_gap, (now - recent[0]) / 2)


def poll_interval(previous: timedelta | None, dates: Iterable[datetime], new_items: int, now: datetime) -> timedelta:
    """How long to wait before polling a feed again after a successful fetch, between 10 min and 24 h.

    With dated items: half the publishing gap, so a new item waits a quarter of a gap on average. Without
    (an undated feed, or a 304/unchanged body): the ``previous`` interval halved when ``new_items`` came,
    else stretched by half.
    """
    gap = publishing_gap(dates, now)
    if gap is not None:
        return _clamp(gap / 2)
    base = previous or FIRST_INTERVAL
    return _clamp(base * (_FASTER if new_items else _SLOWER))


def failure_backoff(consecutive_failures: int) -> timedelta:
    """The wait after the n-th failure in a row: 10 min, 20, 40, 80... doubling up to 24 h."""
    exponent = max(0, consecutive_failures - 1)
    if exponent > 16:  # 10 min * 2**8 is already past the cap; avoid a huge timedelta
        return MAX_INTERVAL
    return _clamp(MIN_INTERVAL * 2**exponent)


def is_due(state: FeedState | None, now: datetime, slack: timedelta = timedelta(0)) -> bool:
    """True when the feed should be polled in a crawl starting at ``now``.

    ``slack`` rounds to the nearest scheduled crawl: with crawls every 15 minutes, a feed due 3 minutes
    after this crawl starts is better polled now than 12 minutes late.
    """
    due = state.next_due if state else None
    return due is None or due <= now + slack


def due_feeds(
    feeds: Iterable[Feed],
    states: Mapping[str, FeedState],
    now: datetime,
    *,
    only: str | None = None,
    everything: bool = False,
    slack: timedelta = timedelta(0),
) -> list[Feed]:
    """The feeds a crawl starting at ``now`` polls: ``only`` that one (due or not, and even when disabled: it
    was asked for by name, e.g. to try a feed before enabling it), every enabled one with ``everything``,
    else the enabled ones due (``is_due``); ``states`` by feed id."""
    if only is not None:
        return [f for f in feeds if f.id == only]
    enabled = [f for f in feeds if f.enabled]
    if everything:
        return enabled
    return [f for f in enabled if is_due(states.get(f.id), now, slack)]
