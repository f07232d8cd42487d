"""Value types shared by the crawler and the alerts side: no I/O here (README.md, "How it is built")."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from newswatch.core.times import from_iso, iso

# Control characters (Unicode's Cc: C0, DEL and C1) but tab and line feed, and lone surrogates (which UTF-8
# cannot encode): what no stored field may hold. A NUL from a feed would reach the store, the search index and
# the text part of a digest.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_LINE_BREAKS = re.compile("[\t\n\r]")


def strip_controls(value: str, *, multiline: bool = False) -> str:
    """``value`` without control characters. ``multiline`` (an article's text) keeps tabs and line feeds and
    makes a carriage return a line feed; otherwise tabs and line breaks become spaces. Others are dropped."""
    if _ANY_CONTROL.search(value) is None:
        return value
    if multiline:
        return _CONTROLS.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
    return _CONTROLS.sub("", _LINE_BREAKS.sub(" ", value))


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed as the feed itself describes it."""

    title: str
    link: str
    published: datetime | None = None
    summary: str = ""
    guid: str = ""
    author: str = ""
    updated: datetime | None = None


@dataclass(frozen=True)
class Article:
    """One stored article, keyed by ``id`` (a hash of its canonical URL).

    ``source`` is ``"page"`` when the text was extracted from the article page, and ``"feed"`` when the
    page could not be fetched and the feed item's own title/summary stands in for it.
    """

    id: str
    url: str
    title: str
    text: str
    feed_id: str
    outlet: str
    published: datetime | None = None
    fetched: datetime | None = None
    language: str | None = None
    author: str | None = None
    source: str = "page"
    cluster_id: str | None = None

    def __post_init__(self) -> None:
        # The one place every article passes, whoever builds it (the crawler, a store reading it back): no
        # control character is stored, searched or mailed (strip_controls; the text keeps its tabs and lines).
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str):
                cleaned = strip_controls(value, multiline=name == "text")
                if cleaned is not value:
                    object.__setattr__(self, name, cleaned)

    def to_record(self) -> dict[str, Any]:
        """The article as a JSON-ready record, dates in ISO 8601 (UTC): how every store keeps it."""
        record = asdict(self)
        record["published"], record["fetched"] = iso(self.published), iso(self.fetched)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any], prefix: str = "") -> Article:
        """The article of a record written by :meth:`to_record` (a dict, a database row); ``prefix`` is that
        of the record's keys (a joined row's ``a_id``, ``a_url`` ...). Keys it lacks are None."""
        values = {name: _get(record, prefix + name) for name in ARTICLE_FIELDS}
        values["published"], values["fetched"] = from_iso(values["published"]), from_iso(values["fetched"])
        return cls(**values)


def _get(record: Mapping[str, Any], key: str) -> Any:
    try:
        return record[key]
    except (KeyError, IndexError):  # sqlite3.Row raises IndexError for a column it does not have
        return None


ARTICLE_FIELDS = tuple(f.name for f in fields(Article))
_TEXT_FIELDS = tuple(name for name in ARTICLE_FIELDS if name not in ("published", "fetched"))


class Span(NamedTuple):
    """A match of a watch in one field of an article: the text as it appears and its character offsets.

    A NamedTuple, not a frozen dataclass: matching builds one per hit (about 12,000 per MB of wire copy),
    and a tuple is built in a third of the time."""

    watch: str
    matched: str
    start: int
    end: int
    field: str = "text"


@dataclass(frozen=True)
class Hit:
    """A stored match of a watch in an article, with its surrounding sentence for the digest."""

    article_id: str
    watch: str
    matched: str
    start: int
    end: int
    field: str = "text"
    sentence: str = ""

    @property
    def key(self) -> str:
        """Stable identity: the same span of the same article for the same watch is one hit."""
        return f"{self.article_id}:{self.watch}:{self.field}:{self.start}:{self.end}"


@dataclass(frozen=True)
class OwedHit:
    """A stored hit joined with the article it was found in, and when it was found: one not yet delivered to
    a recipient (Store.owed_hits), or one of a watch's hits (Store.watch_hits)."""

    hit: Hit
    article: Article
    found: datetime | None = None


@dataclass(frozen=True)
class Fragment:
    """A piece of an article's text as plain text, with the character offsets of the highlighted words: no
    markup, so each reader (terminal, JSON, web page) highlights it its own way and escapes it itself."""

    text: str
    marks: tuple[tuple[int, int], ...] = ()

    def parts(self) -> list[tuple[str, bool]]:
        """The text cut into (piece, highlighted) parts, in order."""
        parts: list[tuple[str, bool]] = []
        position = 0
        for start, end in self.marks:
            if start > position:
                parts.append((self.text[position:start], False))
            parts.append((self.text[start:end], True))
            position = end
        if position < len(self.text):
            parts.append((self.text[position:], False))
        return parts


@dataclass
class SearchResult:
    """One article found by ``Store.search``, with its highlighted fragments."""

    article: Article
    score: float = 0.0
    fragments: list[Fragment] = field(default_factory=list)


# The MinHash signatures of crawler.clusters: 32 bands of 4 uint32 values. A later copy of a story is looked
# up by its band keys (Store.similar_signatures), so a crawl reads the few signatures its articles could
# match, never the whole window; signatures older than the window are pruned.
SIGNATURE_BANDS, SIGNATURE_ROWS = 32, 4
SIGNATURE_WINDOW = timedelta(days=14)  # copies of a story appear within days
# Band keys a lookup follows at most this many signatures for: those sharing the most keys with the article,
# newest first among equals. A key that boilerplate or a much-reprinted story gives hundreds of articles would
# otherwise make every later lookup read them all, a cost that grows with the store. A copy (estimated
# similarity 0.5 or more) shares 2 keys or more on average, an article that only shares boilerplate one.
SIGNATURE_CANDIDATES = 16
_BAND_BYTES = SIGNATURE_ROWS * 4


def band_keys(signature: bytes | None) -> tuple[int, ...]:
    """The LSH keys of a stored MinHash: one signed 64-bit hash per band (band number and its values), as
    both stores index them. Two signatures sharing a key are candidate copies; a hash collision only adds
    a candidate, which the clusterer checks against its similarity threshold anyway."""
    if not signature:
        return ()
    return tuple(
        int.from_bytes(
            hashlib.blake2b(bytes((i,)) + signature[i * _BAND_BYTES : (i + 1) * _BAND_BYTES], digest_size=8).digest(),
            "big",
            signed=True,
        )
        for i in range(SIGNATURE_BANDS)
    )


@dataclass(frozen=True)
class ClusterSignature:
    """The near-duplicate signature of a stored article (crawler.clusters), kept so that a later copy of its
    story, fetched by any crawl process on any machine, joins its cluster."""

    article_id: str
    cluster_id: str
    url: str | None
    added: datetime
    signature: bytes | None = None  # the MinHash values; None for a text too short to compare

    @property
    def bands(self) -> tuple[int, ...]:
        """Its band keys (see band_keys)."""
        return band_keys(self.signature)


@dataclass(frozen=True)
class MonthStats:
    """One month of the store: articles first stored (fetched) in it, and hits found in it."""

    month: str  # YYYY-MM
    articles: int
    hits: int


@dataclass(frozen=True)
class StoreStats:
    """What `newswatch store stats` shows."""

    articles: int
    hits: int
    bytes: int  # on disk (SQLite: the file with its WAL; Elasticsearch: the store size of every index)
    oldest: datetime | None  # the earliest fetched time of a stored article
    months: tuple[MonthStats, ...] = ()


@dataclass(frozen=True)
class PruneReport:
    """What Store.prune dropped, and the bytes it gave back."""

    articles: int = 0
    hits: int = 0
    signatures: int = 0
    reclaimed_bytes: int = 0


@dataclass(frozen=True)
class QueuedDigest:
    """A rendered digest persisted before sending: the outbox entry that makes delivery exactly-once-ish.

    ``message`` is the complete RFC 5322 message (with its stable Message-ID); ``hit_keys`` are the hits it
    carries, which are owed to nobody else once it is queued for ``recipient``.
    """

    id: str
    recipient: str
    hit_keys: tuple[str, ...]
    message: bytes
    created: datetime
    attempts: int = 0
    last_error: str | None = None
    next_attempt: datetime | None = None
    sent: datetime | None = None
    refusals: int = 0  # attempts the server refused for good (5xx)
    dead: datetime | None = None  # given up: refused for good too often; `outbox retry --id` revives it


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease of the store (the service, the alerts pass): what a refusal names.

    ``id`` is unique to one holder (one process run); ``since`` and ``expires`` are set by the store, on its
    own clock, when the lease is taken.
    """

    id: str
    host: str
    pid: int
    since: datetime | None = None
    expires: datetime | None = None

    def describe(self) -> str:
        """``host 'h' pid 12 since 2026-12-02 10:00:00 UTC``, for one-line refusals."""
        since = f" since {self.since:%Y-%m-%d %H:%M:%S} UTC" if self.since else ""
        return f"host {self.host!r} pid {self.pid}{since}"
