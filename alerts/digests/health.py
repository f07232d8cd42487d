"""Which sources a digest warns its reader about: failing ones, and silent ones (from the feed states)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from alerts.digests.build import FeedHealth
from newswatch.core.feedstate import FeedState, Health, feed_health


def source_health(
    states: Mapping[str, FeedState], feed_names: Mapping[str, str], *, now: datetime, silent_after: timedelta
) -> list[FeedHealth]:
    """Feeds of ``feed_names`` (the enabled ones, id -> name) that are failing, or silent for ``silent_after``.

    Failing is UNHEALTHY (newswatch.core.feedstate.feed_health), or failing and never fetched once: a feed
    that worked and failed once or twice is only worth a line once it is unhealthy. A feed never crawled
    yet is not listed.
    """
    listed = []
    for feed_id, name in feed_names.items():
        state = states.get(feed_id)
        if state is None:
            continue
        health = feed_health(state)
        failing = health is Health.UNHEALTHY or (health is Health.FAILING and state.last_success is None)
        last_news = state.last_new_item or state.last_success
        silent = last_news is not None and now - last_news > silent_after
        if failing or silent:
            error = state.last_error
            listed.append(
                FeedHealth(
                    feed_id=feed_id,
                    name=state.name or name or feed_id,
                    status="failing" if failing else "silent",
                    last_success=state.last_success,
                    last_error=" ".join(error.split())[:200] if error and failing else None,
                    consecutive_failures=state.consecutive_failures,
                )
            )
    return sorted(listed, key=lambda f: (f.status != "failing", f.name.casefold()))
