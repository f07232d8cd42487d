"""Elasticsearch documents: articles, hits and digests to and from JSON, the upsert rule, highlight fragments."""

from __future__ import annotations

import base64
import re
from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime

from newswatch.core.models import Article, ClusterSignature, Fragment, Hit, OwedHit, QueuedDigest
from newswatch.core.store.query import marked_fragment, merge_marks
from newswatch.core.textnorm import NormalizedText, normalize_many
from newswatch.core.times import from_iso, iso, utc_now

_HIT_FIELDS = ("article_id", "watch", "matched", "start", "end", "field", "sentence")
# Highlight tags that cannot occur in text (no stored text holds them), turned into the fragment's offsets.
OPEN, CLOSE = "\x02", "\x03"
# The whole normalized text, tagged, so fragment() can choose the words around the first match itself.
HIGHLIGHT = {
    "fields": {
        "normalized.text": {
            "number_of_fragments": 0,
            "pre_tags": [OPEN],
            "post_tags": [CLOSE],
            "max_analyzed_offset": 999_999,
        }
    }
}


def digest_doc(digest: QueuedDigest, queued_us: int) -> dict:
    """A newly queued digest; ``assigned`` turns true once its hits are claimed and marked delivered, and
    ``queued`` (on the cluster's clock) tells a recovering pass when its queuing pass may have died."""
    return {
        "id": digest.id,
        "recipient": digest.recipient,
        "hit_keys": list(digest.hit_keys),
        "message": base64.b64encode(digest.message).decode("ascii"),
        "created": iso(digest.created),
        "attempts": 0,
        "last_error": None,
        "next_attempt": None,
        "sent": None,
        "assigned": False,
        "queued": queued_us,
    }


def digest_from(src: dict) -> QueuedDigest:
    return QueuedDigest(
        id=src["id"],
        recipient=src["recipient"],
        hit_keys=tuple(src["hit_keys"]),
        message=base64.b64decode(src["message"]),
        created=from_iso(src["created"]),
        attempts=src["attempts"],
        last_error=src.get("last_error"),
        next_attempt=from_iso(src.get("next_attempt")),
        sent=from_iso(src.get("sent")),
        refusals=src.get("refusals") or 0,
        dead=from_iso(src.get("dead")),
    )


def hit_doc(hit: Hit, found: datetime) -> dict:
    return {
        "key": hit.key,
        **{name: getattr(hit, name) for name in _HIT_FIELDS},
        "found": iso(found),
        "delivered_to": [],
    }


def hit_from(hit: dict) -> Hit:
    return Hit(**{name: hit[name] for name in _HIT_FIELDS})


def owed_from(hit: dict, article: dict) -> OwedHit:
    return OwedHit(hit=hit_from(hit), article=Article.from_record(article), found=from_iso(hit["found"]))


def signature_doc(signature: ClusterSignature) -> dict:
    return {
        "article_id": signature.article_id,
        "cluster_id": signature.cluster_id,
        "url": signature.url,
        "added": iso(signature.added),
        "signature": base64.b64encode(signature.signature).decode("ascii") if signature.signature else None,
    }


def signature_from(src: dict) -> ClusterSignature:
    blob = src.get("signature")
    return ClusterSignature(
        src["article_id"],
        src["cluster_id"],
        src.get("url"),
        from_iso(src["added"]),
        base64.b64decode(blob) if blob else None,
    )


def normalized(articles: Sequence[Article]) -> list[tuple[Article, dict]]:
    """Each article with its normalized title and text (one vectorized pass for the whole batch)."""
    flat = normalize_many([t for a in articles for t in (a.title, a.text)])
    return [(a, {"title": flat[2 * i], "text": flat[2 * i + 1]}) for i, a in enumerate(articles)]


def merge(chunk: list[tuple[Article, dict]], current: dict[str, dict]) -> dict[str, dict]:
    """SQLite's upsert rule, in batch order: new articles, and stored ones whose title or text changed
    (a feed item's summary never replaces extracted page text). Keeps first fetched, published, cluster."""
    docs: dict[str, dict] = {}
    for a, norm in chunk:
        old = current.get(a.id)
        same = old and (old["title"], old["text"]) == (a.title, a.text)
        if old and (same or (a.source, old["source"]) == ("feed", "page")):
            continue
        published = iso(a.published) or (old or {}).get("published")
        fetched = old["fetched"] if old else iso(a.fetched or utc_now())
        docs[a.id] = current[a.id] = {
            **a.to_record(),
            "cluster_id": (old or {}).get("cluster_id") or a.cluster_id,
            "published": published,
            "fetched": fetched,
            "dated": published or fetched,
            "watches": (old or {}).get("watches", []),
            "normalized": norm,
        }
    return docs


def fragment(text: str, marked: str | None, words: int = 16) -> Fragment:
    """About ``words`` words of ``text`` around the first match, as plain text with the matches' offsets.

    ``marked`` is the normalized text as Elasticsearch highlighted it; its tags are mapped back onto the
    original text through the normalizer's offsets, so the reader sees the article's own spelling.
    """
    spans: list[tuple[int, int]] = []
    if marked:
        norm, highlighted = NormalizedText(text), marked_fragment(marked, OPEN, CLOSE)
        lead = len(norm.text) - len(norm.text.lstrip())  # the indexed copy is stripped (normalize_many)
        if highlighted.text == norm.text.strip():
            spans = [norm.original_span(s + lead, e + lead) for s, e in highlighted.marks]
        # else indexed by another normalizer version: show no marks rather than wrong ones
    tokens = [m.span() for m in re.finditer(r"\S+", text)]
    if not tokens:
        return Fragment("")
    first = bisect_right([s for s, _ in tokens], spans[0][0]) - 1 if spans else 0
    lo = max(0, min(first - words // 4, len(tokens) - words))
    hi = min(len(tokens), lo + words)
    start, end = tokens[lo][0], tokens[hi - 1][1]
    shift = start - (1 if lo else 0)  # the window's offset in the text, less the "…" that opens it
    window = ("…" if lo else "") + text[start:end] + ("…" if hi < len(tokens) else "")
    marks = [(max(s, start) - shift, min(e, end) - shift) for s, e in spans if s < end and e > start]
    return Fragment(window, merge_marks(window, marks))
