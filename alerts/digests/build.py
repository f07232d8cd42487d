"""Owed hits → a Digest value: hits grouped by watch, one Story per cluster (pure, no I/O)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from newswatch.core.models import Article, OwedHit

# Languages written right to left; used when an article says its language, else the script decides.
RTL_LANGUAGES = {"ar", "arc", "ckb", "dv", "fa", "he", "ku", "ps", "sd", "ug", "ur", "yi"}
SNIPPETS_PER_ENTRY = 2
_CONTEXT = 120  # characters either side of a hit when the matcher gave no sentence


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
    """One story in a watch section: the first article of its cluster and who else reported it."""

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


@dataclass(frozen=True)
class Trend:
    """Today's hit count of a watch against its 7-day daily average."""

    today: int
    average_7d: float
    days_since_previous: int | None = None  # set when today's hits are the first in that many days
    first_ever: bool = False


@dataclass(frozen=True)
class WatchSection:
    """The stories of one watch, with how many hits and stories it holds."""

    watch: str
    stories: tuple[Story, ...]
    hit_count: int  # hits over all stories of the period, shown or held back
    story_count: int
    trend: Trend | None = None

    @property
    def hidden_count(self) -> int:
        """Stories held back for the next digest by the per-watch limit."""
        return self.story_count - len(self.stories)


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
class Digest:
    """Everything one message to one recipient says; rendered by alerts.digests.render."""

    recipient: str
    generated: datetime
    sections: tuple[WatchSection, ...]
    hit_keys: tuple[str, ...]
    source_health: tuple[FeedHealth, ...] = ()
    timezone: str = "UTC"

    @property
    def is_empty(self) -> bool:
        """True when the digest carries no hit."""
        return not self.hit_keys

    @property
    def story_count(self) -> int:
        """Stories over all watches (a story under two watches counts twice)."""
        return sum(section.story_count for section in self.sections)


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


def _snippets(group: Sequence[OwedHit]) -> tuple[Snippet, ...]:
    words = [owed.hit.matched for owed in group]
    sentences: list[str] = []
    title = " ".join(group[0].article.title.split())
    for owed in sorted(group, key=lambda o: (o.hit.field == "title", o.hit.start)):
        sentence = " ".join(owed.hit.sentence.split()) or _context(owed)
        if sentence and sentence not in sentences:
            sentences.append(sentence)
    # A sentence that is the title only repeats the story's heading, unless it is all there is.
    sentences = [s for s in sentences if s != title] or sentences
    language = group[0].article.language
    return tuple(
        Snippet(parts=highlight(s, words), direction=text_direction(s, language))
        for s in sentences[:SNIPPETS_PER_ENTRY]
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


def build_section(watch: str, owed: Sequence[OwedHit], *, limit: int = 25, trend: Trend | None = None) -> WatchSection:
    """One watch's section: hits grouped by story cluster, newest story first, the oldest report leading."""
    clusters: dict[str, dict[str, list[OwedHit]]] = {}
    for item in owed:
        cluster = item.article.cluster_id or f"article:{item.article.id}"
        clusters.setdefault(cluster, {}).setdefault(item.article.id, []).append(item)
    stories = []
    for by_article in clusters.values():
        articles = sorted((hits[0].article for hits in by_article.values()), key=_sort_key)
        lead = articles[0]
        seen_outlets = {lead.outlet}
        others = []
        for other in articles[1:]:
            if other.outlet not in seen_outlets:
                seen_outlets.add(other.outlet)
                others.append((other.outlet, safe_url(other.url)))
        lead_hits = by_article[lead.id]
        first_seen = min((h.found for hits in by_article.values() for h in hits if h.found), default=lead.fetched)
        stories.append(
            Story(
                title=" ".join(lead.title.split()) or lead.url,
                url=safe_url(lead.url),
                outlet=lead.outlet,
                language=lead.language,
                published=lead.published,
                first_seen=first_seen,
                snippets=_snippets(lead_hits),
                title_direction=text_direction(lead.title, lead.language),
                also_reported_by=tuple(others),
                hit_keys=tuple(h.hit.key for hits in by_article.values() for h in hits),
            )
        )
    stories.sort(key=_story_time, reverse=True)
    return WatchSection(
        watch=watch, stories=tuple(stories[:limit]), hit_count=len(owed), story_count=len(stories), trend=trend
    )


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
) -> Digest:
    """Build the digest of ``owed`` hits for ``recipient``; sections follow ``watch_order`` (config order)."""
    by_watch: dict[str, list[OwedHit]] = {}
    for item in owed:
        by_watch.setdefault(item.hit.watch, []).append(item)
    rank = {name: i for i, name in enumerate(watch_order)}
    names = sorted(by_watch, key=lambda name: (rank.get(name, len(rank)), name))
    sections = tuple(
        build_section(name, by_watch[name], limit=limit_per_watch, trend=(trends or {}).get(name)) for name in names
    )
    return Digest(
        recipient=recipient,
        generated=generated,
        sections=sections,
        # Only shown stories count as delivered: hits beyond the per-watch limit stay owed for the next digest.
        hit_keys=tuple(dict.fromkeys(k for s in sections for story in s.stories for k in story.hit_keys)),
        source_health=tuple(source_health),
        timezone=timezone,
    )
