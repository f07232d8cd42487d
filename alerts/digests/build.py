"""Owed hits → a Digest value: one Story per cluster with every watch it matched, and a section per watch.

The vocabulary, the same in every part of a digest, `outbox list` and the log lines: a *story* is a
cluster (one event, however many outlets ran it), an *article* is one outlet's copy of it, a *mention* is
one matched span (a stored hit). Pure: no I/O here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from urllib.parse import urlsplit

from newswatch.core.models import Article, OwedHit
from newswatch.core.times import to_utc

# Languages written right to left; used when an article says its language, else the script decides.
RTL_LANGUAGES = {"ar", "arc", "ckb", "dv", "fa", "he", "ku", "ps", "sd", "ug", "ur", "yi"}
SNIPPETS_PER_STORY = 3  # at most; the first ones cover as many of the story's watches as they can
SNIPPETS_AT_LEAST = 2  # when the story has that many matched sentences
_CONTEXT = 120  # characters either side of a hit when the matcher gave no sentence
LAYOUTS = ("stories", "watches")  # Recipient.digest_layout: each story once, or grouped under each watch
SPIKE_AT_LEAST = 3  # a spike needs at least this many articles in the last 24 hours…
SPIKE_RATIO = 3.0  # …and at least this many times the 7-day daily average


@dataclass(frozen=True)
class Snippet:
    """A sentence cut into (text, highlighted) parts, with its writing direction."""

    parts: tuple[tuple[str, bool], ...]
    direction: str = "ltr"

    @property
    def text(self) -> str:
        """The sentence without highlighting."""
        return "".join(part for part, _ in self.parts)


@dataclass(frozen=True)
class Story:
    """One story (a cluster): its first article, who else reported it, and every watch it matched."""

    title: str
    url: str | None
    outlet: str
    language: str | None
    published: datetime | None
    first_seen: datetime | None
    snippets: tuple[Snippet, ...]
    title_direction: str = "ltr"
    also_reported_by: tuple[tuple[str, str | None], ...] = ()
    hit_keys: tuple[str, ...] = ()
    watches: tuple[str, ...] = ()  # in config order
    article_count: int = 1  # copies of the story with a mention in this digest
    number: int = 0  # its place in the digest, from 1
    update: bool = False  # a new copy of a story this recipient got in an earlier digest

    @property
    def anchor(self) -> str:
        """The id of its block in the HTML part."""
        return f"story-{self.number}"

    @property
    def mention_count(self) -> int:
        """Matched spans of every watch in every copy."""
        return len(self.hit_keys)


@dataclass(frozen=True)
class DayCount:
    """Articles mentioning a watch first seen on one local day (one bar of the 14-day chart); None for a day
    before the watch's first day on record (no data, not zero)."""

    day: date
    articles: int | None


@dataclass(frozen=True)
class Trend:
    """A watch's articles of the last 24 hours against the 7 days before, and its 14-day chart.

    Counted by when newswatch first saw each article (Store.mention_counts), never by its published date.
    ``record`` is what the store holds (articles per UTC hour of the chart, and ``before``: the latest hour
    with one before the chart); a trend read from the store carries it so a digest can bound "first mention
    on record" by its own earliest article (``seen_before``).
    """

    last_24h: int
    average_7d: float  # articles a day over the 7 days before the last 24 hours
    history: bool  # a mention older than this digest's articles is on record
    days_since_previous: int | None = None  # set when the last 24 hours end a silence of more than a week
    days: tuple[DayCount, ...] = ()
    first_on_record: datetime | None = None  # the first hour on record, when it is less than a week old
    record: tuple[tuple[datetime, int], ...] | None = None
    before: datetime | None = None

    @property
    def first_ever(self) -> bool:
        """Mentions in the last 24 hours, none on record before this digest's."""
        return bool(self.last_24h and not self.history)

    @property
    def short_history(self) -> bool:
        """The watch's first mention on record is less than a week old: no average, no spike."""
        return self.first_on_record is not None

    @property
    def spike(self) -> int | None:
        """How many times its 7-day average the last 24 hours are, when that is a spike (SPIKE_*), else None."""
        if self.last_24h < SPIKE_AT_LEAST or self.average_7d <= 0 or self.days_since_previous or self.short_history:
            return None
        ratio = self.last_24h / self.average_7d
        return int(ratio) if ratio >= SPIKE_RATIO else None

    @property
    def says_something(self) -> bool:
        """False when there is nothing true to say in a trend line (no article in the last 24 hours)."""
        return self.last_24h > 0

    @property
    def peak(self) -> int:
        """The highest day of the chart (the bars' scale)."""
        return max((d.articles or 0 for d in self.days), default=0)

    def seen_before(self, earliest: datetime, own: int) -> Trend:
        """This trend for a digest whose first article of the watch was first stored at ``earliest``, with
        ``own`` of its articles in that hour: ``history`` is whether the store holds another mention at or
        before that hour (one later in the same hour counts too: an hour is all the store tells)."""
        if self.record is None:
            return self
        hour = to_utc(earliest).replace(minute=0, second=0, microsecond=0)
        earlier = self.before is not None or any(h < hour for h, n in self.record if n)
        same_hour = sum(n for h, n in self.record if h == hour)
        return replace(self, history=earlier or same_hour > own)


@dataclass(frozen=True)
class WatchSection:
    """One watch: the stories of this digest that matched it, their articles and mentions, and its trend."""

    watch: str
    stories: tuple[Story, ...]
    article_count: int = 0  # articles of those stories with a mention of this watch
    mention_count: int = 0  # mentions of this watch in them
    held_back: int = 0  # stories of this watch left for the next digest by the per-watch limit
    trend: Trend | None = None
    anchor: str = ""

    @property
    def story_count(self) -> int:
        """Stories of this watch in this digest."""
        return len(self.stories)


@dataclass(frozen=True)
class FeedHealth:
    """A feed the reader should know is failing or silent."""

    feed_id: str
    name: str
    status: str  # "failing" or "silent"
    last_success: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0


@dataclass(frozen=True)
class DigestCounts:
    """What a digest holds, in the shared vocabulary: the numbers its subject, header, message headers,
    `outbox list` and log lines all show."""

    stories: int  # new stories: updates of stories sent earlier are counted apart
    articles: int
    mentions: int
    watches: int
    updates: int = 0


@dataclass(frozen=True)
class Digest:
    """Everything one message to one recipient says; rendered by alerts.digests.render."""

    recipient: str
    generated: datetime
    stories: tuple[Story, ...]  # each story once, newest first
    sections: tuple[WatchSection, ...]  # watches with a story here, in config order
    hit_keys: tuple[str, ...]
    source_health: tuple[FeedHealth, ...] = ()
    timezone: str = "UTC"
    layout: str = "stories"
    held_back: int = 0  # stories left for the next digest by the per-watch limit

    @property
    def is_empty(self) -> bool:
        """True when the digest carries no hit."""
        return not self.hit_keys

    @property
    def counts(self) -> DigestCounts:
        """New stories, updates, articles, mentions and watches of this digest (each story counted once)."""
        return DigestCounts(
            stories=self.story_count,
            articles=sum(s.article_count for s in self.stories),
            mentions=len(self.hit_keys),
            watches=len(self.sections),
            updates=self.update_count,
        )

    @property
    def story_count(self) -> int:
        """New stories in this digest, each counted once whatever the watches it matched (updates apart)."""
        return sum(1 for s in self.stories if not s.update)

    @property
    def update_count(self) -> int:
        """Stories of this digest that are updates: new copies of stories the recipient got earlier."""
        return sum(1 for s in self.stories if s.update)


def safe_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) link without control characters or spaces, else None."""
    if not url or any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in url):
        return None
    parts = urlsplit(url)
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def text_direction(text: str, language: str | None = None) -> str:
    """'rtl' or 'ltr': from the first strongly directional character, else from the language code."""
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "rtl" if (language or "").split("-")[0].lower() in RTL_LANGUAGES else "ltr"


def highlight(sentence: str, words: Iterable[str]) -> tuple[tuple[str, bool], ...]:
    """Cut ``sentence`` into parts, marking every occurrence of any of ``words`` (longest first, no overlap)."""
    lowered = sentence.casefold() if len(sentence.casefold()) == len(sentence) else None
    marks: list[tuple[int, int]] = []
    for word in sorted({w for w in words if w}, key=len, reverse=True):
        haystack, needle = (lowered, word.casefold()) if lowered is not None else (sentence, word)
        start = haystack.find(needle)
        while start != -1:
            end = start + len(needle)
            if all(end <= a or start >= b for a, b in marks):
                marks.append((start, end))
            start = haystack.find(needle, end)
    parts: list[tuple[str, bool]] = []
    position = 0
    for start, end in sorted(marks):
        if start > position:
            parts.append((sentence[position:start], False))
        parts.append((sentence[start:end], True))
        position = end
    if position < len(sentence):
        parts.append((sentence[position:], False))
    return tuple(parts)


def anchor_for(prefix: str, name: str, taken: set[str]) -> str:
    """An HTML id for ``name``: ``prefix-ascii-slug``, numbered when empty or already taken."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40]
    candidate, n = f"{prefix}-{slug}" if slug else f"{prefix}-{len(taken) + 1}", 1
    while candidate in taken:
        n += 1
        candidate = f"{prefix}-{slug or 'x'}-{n}"
    taken.add(candidate)
    return candidate


def _snippets(hits: Sequence[OwedHit], lead: Article) -> tuple[Snippet, ...]:
    """Up to SNIPPETS_PER_STORY matched sentences, chosen to show as many of the story's watches as they can:
    the lead article's first, then another copy's for a watch the lead does not mention; in text order."""
    watches_of: dict[str, set[str]] = {}  # sentence -> the watches it mentions
    place: dict[str, tuple] = {}  # sentence -> where it first appears (lead article first), and its language
    for owed in hits:
        sentence = " ".join(owed.hit.sentence.split()) or _context(owed)
        if not sentence:
            continue
        where = (owed.article.id != lead.id, owed.article.id, owed.hit.field == "title", owed.hit.start)
        watches_of.setdefault(sentence, set()).add(owed.hit.watch)
        place[sentence] = min(place.get(sentence, (*where, owed.article.language)), (*where, owed.article.language))
    title = " ".join(lead.title.split())
    # A sentence that is the title only repeats the story's heading, unless it is all there is.
    if any(s != title for s in watches_of):
        watches_of.pop(title, None)
    pool = sorted(watches_of, key=lambda s: place[s][:4])
    chosen: list[str] = []
    covered: set[str] = set()
    while pool and len(chosen) < SNIPPETS_PER_STORY:
        best = max(pool, key=lambda s: len(watches_of[s] - covered))  # max() keeps the first of equals
        if not watches_of[best] - covered and len(chosen) >= SNIPPETS_AT_LEAST:
            break
        chosen.append(best)
        covered |= watches_of[best]
        pool.remove(best)
    words = [owed.hit.matched for owed in hits]
    return tuple(
        Snippet(parts=highlight(s, words), direction=text_direction(s, place[s][4]))
        for s in sorted(chosen, key=lambda s: place[s][:4])
    )


def _context(owed: OwedHit) -> str:
    """Text around the hit when the matcher stored no sentence."""
    source = owed.article.title if owed.hit.field == "title" else owed.article.text
    start, end = max(0, owed.hit.start - _CONTEXT), min(len(source), owed.hit.end + _CONTEXT)
    text = " ".join(source[start:end].split())
    return ("…" if start else "") + text + ("…" if end < len(source) else "")


def _when(article: Article) -> datetime | None:
    return article.published or article.fetched


def _sort_key(article: Article) -> tuple:
    moment = _when(article)
    return (moment is None, moment.timestamp() if moment else 0.0, article.id)


def _story(hits: Sequence[OwedHit], rank: Mapping[str, int], update: bool = False) -> Story:
    """The story of one cluster's owed hits, led by its earliest report."""
    by_article: dict[str, list[OwedHit]] = {}
    for item in hits:
        by_article.setdefault(item.article.id, []).append(item)
    articles = sorted((group[0].article for group in by_article.values()), key=_sort_key)
    lead = articles[0]
    seen_outlets = {lead.outlet}
    others = []
    for other in articles[1:]:
        if other.outlet not in seen_outlets:
            seen_outlets.add(other.outlet)
            others.append((other.outlet, safe_url(other.url)))
    first_seen = min((h.found for h in hits if h.found), default=lead.fetched)
    watches = sorted({h.hit.watch for h in hits}, key=lambda name: (rank.get(name, len(rank)), name))
    return Story(
        title=" ".join(lead.title.split()) or lead.url,
        url=safe_url(lead.url),
        outlet=lead.outlet,
        language=lead.language,
        published=lead.published,
        first_seen=first_seen,
        snippets=_snippets(hits, lead),
        title_direction=text_direction(lead.title, lead.language),
        also_reported_by=tuple(others),
        hit_keys=tuple(dict.fromkeys(h.hit.key for h in hits)),
        watches=tuple(watches),
        article_count=len(by_article),
        update=update,
    )


def _bounded(trend: Trend | None, moments: Sequence[datetime]) -> Trend | None:
    """The trend of a section whose articles were first stored at ``moments``: "first mention on record" only
    when the store holds no mention of the watch before the earliest of them."""
    if trend is None or not moments:
        return trend
    hours = sorted(to_utc(m).replace(minute=0, second=0, microsecond=0) for m in moments)
    return trend.seen_before(min(to_utc(m) for m in moments), hours.count(hours[0]))


def _story_time(story: Story) -> float:
    moment = story.published or story.first_seen
    return moment.timestamp() if moment else 0.0


def build_digest(
    recipient: str,
    owed: Sequence[OwedHit],
    *,
    generated: datetime,
    watch_order: Sequence[str] = (),
    trends: Mapping[str, Trend] | None = None,
    source_health: Sequence[FeedHealth] = (),
    timezone: str = "UTC",
    limit_per_watch: int = 25,
    layout: str = "stories",
    delivered: Collection[str] = (),
) -> Digest:
    """Build the digest of ``owed`` hits for ``recipient``: one story per cluster, newest first, and one
    section per watch in ``watch_order`` (config order).

    Each watch shows its ``limit_per_watch`` newest stories; a story shown for one of its watches is shown
    once with all of them, and all its hits are delivered with it. A story none of whose watches has room
    is held back: its hits stay owed and lead the next digest. A cluster of ``delivered`` (cluster ids the
    recipient got an article of in an earlier digest; alerts.digests.followups) is an update, not a new story.
    Each watch's trend is bounded by this digest's earliest article of the watch (Trend.seen_before).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"digest layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    rank = {name: i for i, name in enumerate(watch_order)}
    clusters: dict[str, list[OwedHit]] = {}
    for item in owed:
        clusters.setdefault(item.article.cluster_id or f"article:{item.article.id}", []).append(item)
    every = sorted(
        (_story(hits, rank, update=key in delivered) for key, hits in clusters.items()), key=_story_time, reverse=True
    )
    names = sorted({w for story in every for w in story.watches}, key=lambda name: (rank.get(name, len(rank)), name))
    room: set[int] = set()  # indices in ``every`` of the stories some watch has room for
    for name in names:
        room.update([i for i, story in enumerate(every) if name in story.watches][:limit_per_watch])
    shown = tuple(replace(every[i], number=n) for n, i in enumerate(sorted(room), 1))
    watch_of = {h.hit.key: (h.hit.watch, h.article.id) for h in owed}
    stored = {h.article.id: h.article.fetched or h.found for h in owed}
    anchors: set[str] = set()
    sections = []
    for name in names:
        mine = tuple(s for s in shown if name in s.watches)
        spans = [watch_of[k][1] for s in mine for k in s.hit_keys if watch_of[k][0] == name]
        sections.append(
            WatchSection(
                watch=name,
                stories=mine,
                article_count=len(set(spans)),
                mention_count=len(spans),
                held_back=sum(1 for s in every if name in s.watches) - len(mine),
                trend=_bounded((trends or {}).get(name), [stored[a] for a in set(spans) if stored[a]]),
                anchor=anchor_for("watch", name, anchors),
            )
        )
    return Digest(
        recipient=recipient,
        generated=generated,
        stories=shown,
        sections=tuple(sections),
        # Only shown stories count as delivered: a story held back by the limit stays owed for the next digest.
        hit_keys=tuple(k for story in shown for k in story.hit_keys),
        source_health=tuple(source_health),
        timezone=timezone,
        layout=layout,
        held_back=len(every) - len(shown),
    )
