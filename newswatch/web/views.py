"""What each page shows, as JSON-ready values: the HTML templates and the /api/ answers are made of the same.

Read from the store only (pure but for the store's reads): stories are clusters (``Article.cluster_id``), an
article is one outlet's copy, a mention is one matched span, as in the digests. Times are ISO 8601, UTC; text
from feeds goes out as plain text with the character offsets of what to highlight (``marks``) and its writing
direction, never as markup: each reader escapes it (the templates do, with autoescape).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alerts.delivery.queue import QueueRow, eml_folder, list_queue
from alerts.digests.build import safe_url, text_direction
from alerts.matching.explain import Verdict, search_phrases, why
from alerts.search import Story, find_watch, resolve_watch, search_stories, story_key, watch_stories
from newswatch.core.config import Config
from newswatch.core.config.watches import Watch
from newswatch.core.feedstate import Health, status_rows, unhealthy_first
from newswatch.core.models import Article, Fragment, Hit, OwedHit
from newswatch.core.store import Store
from newswatch.core.times import iso, parse_utc

SPARK_DAYS = 14
SUMMARY_HITS = 2000  # hits of the last 7 days read per watch for the dashboard
WATCH_PAGE_HITS = 500  # the newest hits of a watch its page groups into stories
SEARCH_STORIES = 20  # stories a search shows
SENTENCES_PER_STORY = 3
_CONTEXT = 120  # characters either side of a hit that carries no sentence


def day_start(moment: datetime) -> datetime:
    """Midnight UTC of ``moment``'s day."""
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def parse_since(value: str, now: datetime) -> datetime | None:
    """``24h``, ``7d``, ``2w``, ``30m`` before ``now``, or an ISO date or time (UTC unless it says); None when
    it is neither."""
    found = re.fullmatch(r"(\d+)\s*([mhdw])", value.strip())
    if found:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[found.group(2)]
        return now - timedelta(**{unit: int(found.group(1))})
    return parse_utc(value.strip())


def snippet(text: str, words: Iterable[str], language: str | None = None) -> dict[str, Any]:
    """``text`` with the offsets of every occurrence of ``words`` (case-insensitive, longest first, no overlap)
    and its direction: ``{"text", "marks": [[start, end], ...], "dir"}``."""
    folded = text.casefold()
    fold = len(folded) == len(text)  # else case-sensitive: the offsets must stay those of ``text`` (ß → ss)
    haystack = folded if fold else text
    marks: list[tuple[int, int]] = []
    for word in sorted({w for w in words if w}, key=len, reverse=True):
        needle = word.casefold() if fold else word
        start = haystack.find(needle)
        while start != -1:
            end = start + len(needle)
            if all(end <= a or start >= b for a, b in marks):
                marks.append((start, end))
            start = haystack.find(needle, end)
    return {"text": text, "marks": [list(m) for m in sorted(marks)], "dir": text_direction(text, language)}


def fragment_snippet(fragment: Fragment, language: str | None) -> dict[str, Any]:
    """A search fragment (models.Fragment: plain text and mark offsets) as a snippet."""
    text = fragment.text
    return {"text": text, "marks": [list(m) for m in fragment.marks], "dir": text_direction(text, language)}


def article_json(article: Article) -> dict[str, Any]:
    """One copy of a story: its outlet, language, link (http(s) only, else None) and times."""
    return {
        "id": article.id,
        "title": article.title,
        "title_dir": text_direction(article.title, article.language),
        "url": safe_url(article.url),
        "outlet": article.outlet,
        "outlet_dir": text_direction(article.outlet, article.language),
        "language": article.language,
        "published": iso(article.published),
        "first_seen": iso(article.fetched),
        "source": article.source,
        "feed_id": article.feed_id,
        "story": story_key(article),
    }


def first_copy(articles: Sequence[Article]) -> Article:
    """The copy a story is shown by: the one its cluster is named after (the first seen), else the earliest
    stored, then the earliest published."""
    key = story_key(articles[0])
    named = next((a for a in articles if a.id == key), None)
    return named or min(
        articles,
        key=lambda a: (
            a.fetched is None,
            a.fetched or datetime.max,
            a.published is None,
            a.published or datetime.max,
            a.id,
        ),
    )


def _hit_sentence(hit: Hit, article: Article) -> str:
    if hit.sentence:
        return hit.sentence
    if hit.field == "title":
        return article.title
    start, end = max(hit.start - _CONTEXT, 0), hit.end + _CONTEXT
    return ("…" if start else "") + article.text[start:end].strip() + ("…" if end < len(article.text) else "")


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(v for v in values if v))


def stories_of_hits(hits: Sequence[OwedHit]) -> list[dict[str, Any]]:
    """Hits grouped by story, newest found first: each story's copies, outlets, languages, first seen, the
    highlighted sentences that matched, the watches and how many mentions."""
    groups: dict[str, list[OwedHit]] = {}
    for owed in hits:
        groups.setdefault(story_key(owed.article), []).append(owed)
    stories = []
    for key, owed in groups.items():
        articles = list({o.article.id: o.article for o in owed}.values())
        first = first_copy(articles)
        sentences: dict[str, tuple[set[str], str | None]] = {}
        for o in owed:
            words, _ = sentences.setdefault(_hit_sentence(o.hit, o.article), (set(), o.article.language))
            words.add(o.hit.matched)
        found = [o.found for o in owed if o.found]
        stories.append(
            {
                **article_json(first),
                "id": key,
                "first_seen": iso(min((a.fetched for a in articles if a.fetched), default=None)),
                "last_found": iso(max(found, default=None)),
                "outlets": _unique(a.outlet for a in articles),
                "languages": _unique(a.language for a in articles),
                "copies": [article_json(a) for a in articles],
                "mentions": len(owed),
                "watches": _unique(o.hit.watch for o in owed),
                "sentences": [
                    snippet(text, words, language)
                    for text, (words, language) in list(sentences.items())[:SENTENCES_PER_STORY]
                ],
            }
        )
    return stories


def _first_seen_by_story(store: Store, hits: Sequence[OwedHit]) -> dict[str, datetime | None]:
    """When newswatch first stored each story of ``hits``: its earliest copy among them, or the story's first
    copy (whose id the cluster carries) when that one is older and not among them."""
    first: dict[str, datetime | None] = {}
    ids: dict[str, set[str]] = {}
    for owed in hits:
        key, fetched = story_key(owed.article), owed.article.fetched
        ids.setdefault(key, set()).add(owed.article.id)
        if key not in first or (fetched and (first[key] is None or fetched < first[key])):
            first[key] = fetched
    for key in first:
        if key not in ids[key]:  # the cluster's first copy did not mention the watch, or is older
            origin = store.get_article(key)
            if origin and origin.fetched and (first[key] is None or origin.fetched < first[key]):
                first[key] = origin.fetched
    return first


def watch_summary(store: Store, watch: Watch, now: datetime) -> dict[str, Any]:
    """One line of the dashboard: new stories today and in 7 days (by first seen), the last hit, and the
    articles mentioning the watch on each of the last SPARK_DAYS days (UTC)."""
    today = day_start(now)
    recent = store.watch_hits(watch.name, since=now - timedelta(days=7), limit=SUMMARY_HITS)
    latest = recent[0] if recent else next(iter(store.watch_hits(watch.name, limit=1)), None)
    first_seen = _first_seen_by_story(store, recent)
    week_ago = now - timedelta(days=7)
    spark_start = today - timedelta(days=SPARK_DAYS - 1)
    daily = [0] * SPARK_DAYS
    for hour, count in store.mention_counts(watch.name, spark_start).items():
        index = (day_start(hour) - spark_start).days
        if 0 <= index < SPARK_DAYS:
            daily[index] += count
    return {
        "name": watch.name,
        "kind": watch.kind,
        "stories_today": sum(1 for seen in first_seen.values() if seen and seen >= today),
        "stories_7d": sum(1 for seen in first_seen.values() if seen and seen >= week_ago),
        "last_hit": None
        if latest is None
        else {
            "found": iso(latest.found),
            "title": latest.article.title,
            "title_dir": text_direction(latest.article.title, latest.article.language),
            "story": story_key(latest.article),
        },
        "daily": [
            {"day": (spark_start + timedelta(days=i)).date().isoformat(), "articles": n} for i, n in enumerate(daily)
        ],
    }


def dashboard(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    """The dashboard: a summary of every watch, in config order."""
    return {"generated": iso(now), "watches": [watch_summary(store, watch, now) for watch in config.watches]}


def watch_page(config: Config, store: Store, name: str, now: datetime) -> dict[str, Any] | None:
    """A watch's stories (its newest WATCH_PAGE_HITS hits, grouped), with its summary; None: no such watch
    (``name`` is its name, in any case, or one of its spellings, as for search)."""
    watch = find_watch(config.watches, name)
    if watch is None:
        return None
    hits = store.watch_hits(watch.name, limit=WATCH_PAGE_HITS)
    return {
        "generated": iso(now),
        "watch": watch_summary(store, watch, now),
        "stories": stories_of_hits(hits),
        "truncated": len(hits) >= WATCH_PAGE_HITS,
    }


def _reasons(verdicts: Sequence[tuple[Article, Verdict]]) -> list[dict[str, Any]]:
    """The spans of a watch's matched verdicts, one line per copy, field, form found, spelling and reason, with
    how often: ``{"copy", "outlet", "field", "matched", "spelling", "source", "derived", "reason", "count"}``."""
    lines: dict[tuple, dict[str, Any]] = {}
    for copy, verdict in verdicts:
        for span in verdict.spans:
            key = (copy.id, span.field, span.matched.casefold(), span.spelling, span.reason, span.derived)
            line = lines.setdefault(
                key,
                {
                    "copy": copy.id,
                    "outlet": copy.outlet,
                    "field": span.field,
                    "matched": span.matched,
                    "matched_dir": text_direction(span.matched, copy.language),
                    "spelling": span.spelling,
                    "source": span.source,
                    "derived": span.derived,
                    "reason": span.reason,
                    "count": 0,
                },
            )
            line["count"] += 1
    return list(lines.values())


def story_page(config: Config, store: Store, story_id: str) -> dict[str, Any] | None:
    """A story: every copy (outlet, language, link), every watch it matched (stored hits) and why (the
    matcher's explanation of each copy), and why the other watches did not; None: no such story."""
    article = store.get_article(story_id)
    if article is None:
        copies = store.cluster_articles(story_id)
    elif article.cluster_id:
        copies = store.cluster_articles(article.cluster_id) or [article]
        if all(a.id != article.id for a in copies):
            copies = [*copies, article]
    else:
        copies = [article]
    if not copies:
        return None
    hits = store.hits_for_articles([a.id for a in copies])
    by_id = {a.id: a for a in copies}
    matched: dict[str, dict[str, Any]] = {}
    for hit in hits:
        entry = matched.setdefault(hit.watch, {"watch": hit.watch, "copies": [], "spellings": [], "sentences": {}})
        copy = by_id.get(hit.article_id)
        if copy is None:
            continue
        if copy.id not in entry["copies"]:
            entry["copies"].append(copy.id)
        if all(hit.matched.casefold() != known.casefold() for known in entry["spellings"]):
            entry["spellings"].append(hit.matched)
        entry["sentences"].setdefault(_hit_sentence(hit, copy), (set(), copy.language))[0].add(hit.matched)
    explained = [(copy, verdict) for copy in copies for verdict in why(config.watches, copy)]
    order = {w.name: i for i, w in enumerate(config.watches)}
    watches, unmatched = [], []
    for watch in config.watches:
        verdicts = [(copy, v) for copy, v in explained if v.watch == watch.name]
        if watch.name in matched or any(v.matched for _, v in verdicts):
            entry = matched.get(watch.name, {"watch": watch.name, "copies": [], "spellings": [], "sentences": {}})
            entry["why"] = _reasons([(copy, v) for copy, v in verdicts if v.matched])
            watches.append(entry)
        else:
            unmatched.append(
                {
                    "watch": watch.name,
                    "kinds": _unique(v.kind for _, v in verdicts),
                    "reasons": _unique(v.reason for _, v in verdicts),
                }
            )
    # Hits of a watch no longer configured (renamed, removed) still show, after the others.
    watches += [{**entry, "why": []} for name, entry in matched.items() if name not in order]
    for entry in watches:
        entry["sentences"] = [
            snippet(text, words, language)
            for text, (words, language) in list(entry["sentences"].items())[:SENTENCES_PER_STORY]
        ]
    first = first_copy(copies)
    return {
        **article_json(first),
        "id": story_key(first) if article is None else story_id,
        "copies": [article_json(a) for a in copies],
        "outlets": _unique(a.outlet for a in copies),
        "languages": _unique(a.language for a in copies),
        "first_seen": iso(min((a.fetched for a in copies if a.fetched), default=None)),
        "watches": watches,
        "unmatched": unmatched,
    }


def search_page(
    config: Config, store: Store, query: str, *, watch: str | None = None, since: datetime | None = None
) -> dict[str, Any]:
    """Search results grouped by story, best first, found as `newswatch search` finds them (alerts.search: a
    query naming a watch, or one of its spellings, also finds every spelling of it and the articles the watch
    matched). ``watch`` (its name in any case, or a spelling) keeps the articles with a hit of it; without a
    query, the page lists that watch's hits, newest found first, as `search --watch` does. QuerySyntaxError
    for a query the store cannot parse, alerts.search.UnknownWatch for a watch that is not configured."""
    query = query.strip()
    name = resolve_watch(config.watches, watch).name if watch and watch.strip() else None
    page: dict[str, Any] = {"query": query, "watch": name, "expanded": None, "phrases": 0, "stories": []}
    if query:
        named, phrases = search_phrases(config.watches, query)
        page["expanded"], page["phrases"] = (named.name if named else None), len(phrases)
        found = search_stories(store, config.watches, query, since=since, watch=name, limit=SEARCH_STORIES)
    elif name is not None:
        found = watch_stories(store, name, since=since, limit=SEARCH_STORIES)
    else:
        return page
    page["stories"] = [story_record(story) for story in found]
    return page


def story_record(story: Story) -> dict[str, Any]:
    """One story of the search results as the pages show it."""
    found = [a for a in story.copies if a.id in story.in_results]
    return {
        **article_json(story.lead),
        "id": story.key,
        "score": story.score,
        "found": iso(story.found),
        "outlets": _unique(a.outlet for a in story.copies),
        "languages": _unique(a.language for a in story.copies),
        "copies": [article_json(a) for a in found],
        "watches": list(story.watches),
        "fragments": [fragment_snippet(fragment, story.lead.language) for fragment in story.fragments],
    }


def sources(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    """The feeds status view (`feeds status`), unhealthy feeds first, with how many there are of each."""
    rows = unhealthy_first(status_rows(config.feeds, store.all_feed_states(), now))
    counts = {kind.value: sum(r["health"] == kind.value for r in rows) for kind in Health}
    return {"generated": iso(now), "feeds": rows, "counts": counts, "due_now": sum(r["due_now"] for r in rows)}


def _row_json(row: QueueRow) -> dict[str, Any]:
    record = {**dataclasses.asdict(row), "state": row.state}
    return {
        key: iso(value) if isinstance(value, datetime) else str(value) if isinstance(value, Path) else value
        for key, value in record.items()
    }


def outbox(config: Config, store: Store, now: datetime, *, sent_limit: int = 50) -> dict[str, Any]:
    """The digest queue (`outbox list`): waiting to be sent (queued, or failed and to be retried), dead (given
    up on), recently sent; each with its counts in the digest's own words and its .eml file, if any."""
    waiting, dead, sent = [], [], []
    for row in list_queue(store, sent_limit=sent_limit, eml_dir=eml_folder(config)):
        record = _row_json(row)
        if record["eml"] and not Path(record["eml"]).is_file():
            record["eml"] = None
        {"sent": sent, "dead": dead}.get(row.state, waiting).append(record)
    return {"generated": iso(now), "waiting": waiting, "dead": dead, "sent": sent}
