"""Which entries of a polled feed to fetch: unseen ones, and seen ones whose entry says they were updated (pure)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from crawler.articles import entry_article_id
from newswatch.core.models import FeedEntry


@dataclass(frozen=True)
class Selection:
    """The entries to fetch (each with why: "new" or "updated"), the update stamps to remember, and how many
    entries this feed lists for the first time (``new_to_feed``: its "items seen" count)."""

    fetch: list[tuple[FeedEntry, str]]
    stamps: dict[str, str]
    new_to_feed: int = 0


def select_entries(
    entries: Iterable[FeedEntry],
    known: Collection[str],
    stamps: dict[str, str],
    in_flight: Collection[str] = (),
    retries: Collection[str] = (),
) -> Selection:
    """Pick the entries of one poll that need their page fetched.

    ``known`` are the article ids already stored (the persisted seen set); ``stamps`` maps article id to the
    ``updated`` time (ISO 8601) the feed showed when the article was last fetched; ``in_flight`` are ids
    another feed of this crawl is already fetching; ``retries`` are ids whose page failed for a passing
    reason (crawler.polling.run), stored meanwhile from their feed item. An unseen entry is fetched ("new"); a
    seen one when its page is owed a retry ("retry") or its ``updated`` is later than its stamp ("updated").
    A seen entry without a stamp is stamped, not fetched: that is the first time this feed lists it, not an
    update. Returns the stamps of the entries listed now (entries
    that left the feed are forgotten, so the state stays the size of the feed). Counting entries new to the
    feed by its stamps, not by the store, keeps the count right after a crawl killed before its state was
    saved: the articles it stored are known, yet still new to the feed's saved state.
    """
    fetch: list[tuple[FeedEntry, str]] = []
    new_stamps: dict[str, str] = {}
    new_to_feed = 0
    for entry in entries:
        article = entry_article_id(entry)
        new_to_feed += article not in stamps
        stamp = entry.updated.isoformat() if entry.updated else ""
        old = stamps.get(article)
        if article in in_flight:
            pass
        elif article not in known:
            fetch.append((entry, "new"))
        elif article in retries:
            fetch.append((entry, "retry"))
        elif stamp and old is not None and stamp > old:
            fetch.append((entry, "updated"))
        new_stamps[article] = stamp or old or ""
    return Selection(fetch=fetch, stamps=new_stamps, new_to_feed=new_to_feed)
