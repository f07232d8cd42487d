"""Search that knows the watches: the stored articles holding some words, or that a watch matched, grouped by
story (the `search` command and the web page's search both read them from here).

A query naming a watch (or one of its spellings: "Deir ez-Zor", "دير الزور") searches every spelling of it
too (alerts.matching.explain.search_phrases), and the articles the watch itself matched are added, for the
spellings an index cannot look up (IS, SDF: matched only with a context word). A watch's hits are listed
newest found first. One story per cluster (``Article.cluster_id``), with every copy and the watches its
copies matched; fragments are plain text with the offsets of the highlighted words, one per sentence (two hits
in one sentence are one fragment with both marked). A watch asked for by name (``--watch``, ``?watch=``) is
resolved as a query naming it is: its name in any case, or any of its spellings (resolve_watch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from alerts.matching.explain import search_phrases
from newswatch.core.config.watches import Watch
from newswatch.core.errors import NewswatchError
from newswatch.core.models import Article, Fragment, OwedHit, SearchResult
from newswatch.core.store.query import merge_marks

if TYPE_CHECKING:
    from newswatch.core.store import Store

ARTICLES_PER_STORY = 3  # articles read per story asked for: copies of one story often all match
HITS_PER_STORY = 10  # hits read per story asked for when listing a watch's hits
FRAGMENTS_PER_STORY = 3
_CONTEXT = 120  # characters either side of a hit stored without its sentence


class UnknownWatch(NewswatchError):
    """A watch asked for by a name that is neither a configured watch's name nor one of its spellings."""


def named_watch(watches: Sequence[Watch], name: str) -> Watch | None:
    """The watch called ``name``: exactly, else in any case; None otherwise."""
    exact = next((w for w in watches if w.name == name), None)
    return exact or next((w for w in watches if w.name.casefold() == name.casefold()), None)


def find_watch(watches: Sequence[Watch], name: str) -> Watch | None:
    """The watch ``name`` names: the one called so (named_watch), else the one a search query of ``name``
    names (any of its spellings, however written: "Deir ez-Zor", "دير الزور"); None otherwise."""
    name = name.strip()
    return named_watch(watches, name) or search_phrases(watches, name)[0]


def resolve_watch(watches: Sequence[Watch], name: str, where: str = "watches.yaml") -> Watch:
    """find_watch, or UnknownWatch (one line naming ``name`` and ``where`` the watches are configured)."""
    found = find_watch(watches, name)
    if found is None:
        raise UnknownWatch(f"no watch named {name!r} in {where}")
    return found


@dataclass(frozen=True)
class Story:
    """One story of the results: the copy shown (``lead``), every copy known (those in the results first),
    the watches its copies matched (stored hits), the highlighted fragments, and the best score or, for a
    watch's hits, when the newest was found."""

    key: str
    lead: Article
    copies: tuple[Article, ...]
    in_results: frozenset[str]
    watches: tuple[str, ...]
    fragments: tuple[Fragment, ...]
    score: float | None = None
    found: datetime | None = None


def search_stories(
    store: Store, watches: Sequence[Watch], query: str, *, since: datetime | None, watch: str | None, limit: int
) -> list[Story]:
    """The stories holding ``query`` (and, when it names a watch, any spelling of it or a hit of it), best
    first. QuerySyntaxError for a query the store cannot parse."""
    named, phrases = search_phrases(watches, query)
    results = store.search(query, since=since, watch=watch, limit=limit * ARTICLES_PER_STORY, phrases=phrases)
    if named is not None and watch in (None, named.name):
        # What the words and spellings did not find but the watch matched (a spelling that needs context).
        seen = {r.article.id for r in results}
        extra: dict[str, SearchResult] = {}
        for owed in store.watch_hits(named.name, since=since, limit=limit * HITS_PER_STORY):
            article = owed.article
            dated = article.published or article.fetched
            if article.id in seen or (since is not None and (dated is None or dated < since)):
                continue
            result = extra.setdefault(article.id, SearchResult(article=article))
            fragment = hit_fragment(owed)
            if fragment not in result.fragments:
                result.fragments.append(fragment)
        results = [*results, *extra.values()]
    groups: dict[str, list[SearchResult]] = {}
    for result in results:
        groups.setdefault(story_key(result.article), []).append(result)
    chosen = list(groups.items())[:limit]
    return _stories(
        store,
        [
            (key, [r.article for r in found], [f for r in found for f in r.fragments], found[0].score, None)
            for key, found in chosen
        ],
    )


def watch_stories(store: Store, watch: str, *, since: datetime | None, limit: int) -> list[Story]:
    """The stories of ``watch``'s hits found since ``since``, newest found first, each with the sentences
    the watch was found in."""
    groups: dict[str, list[OwedHit]] = {}
    for owed in store.watch_hits(watch, since=since, limit=limit * HITS_PER_STORY):
        groups.setdefault(story_key(owed.article), []).append(owed)
    chosen = list(groups.items())[:limit]
    rows = []
    for key, hits in chosen:
        articles = list({o.article.id: o.article for o in hits}.values())
        fragments = list(dict.fromkeys(hit_fragment(o) for o in hits))
        rows.append((key, articles, fragments, None, hits[0].found))
    return _stories(store, rows)


def story_key(article: Article) -> str:
    """The story an article belongs to: its cluster, else itself."""
    return article.cluster_id or article.id


def _stories(
    store: Store, rows: list[tuple[str, list[Article], list[Fragment], float | None, datetime | None]]
) -> list[Story]:
    """Stories from (key, articles in the results, fragments, score, found): every copy of each (its
    cluster's articles) and the watches their stored hits name."""
    copies_of = {}
    for key, articles, *_ in rows:
        copies = {a.id: a for a in articles}
        if articles[0].cluster_id:
            for copy in store.cluster_articles(articles[0].cluster_id):
                copies.setdefault(copy.id, copy)
        copies_of[key] = list(copies.values())
    watches: dict[str, list[str]] = {}
    every_id = [a.id for copies in copies_of.values() for a in copies]
    for hit in store.hits_for_articles(every_id) if every_id else []:
        names = watches.setdefault(hit.article_id, [])
        if hit.watch not in names:
            names.append(hit.watch)
    stories = []
    for key, articles, fragments, score, found in rows:
        copies = copies_of[key]
        stories.append(
            Story(
                key=key,
                lead=articles[0],
                copies=tuple(copies),
                in_results=frozenset(a.id for a in articles),
                watches=tuple(dict.fromkeys(name for a in copies for name in watches.get(a.id, ()))),
                fragments=merge_fragments(fragments)[:FRAGMENTS_PER_STORY],
                score=score,
                found=found,
            )
        )
    return stories


def merge_fragments(fragments: Sequence[Fragment]) -> tuple[Fragment, ...]:
    """One fragment per text, in the order each text first came, with the marks of all of them (sorted,
    overlapping ones joined): a sentence holding two hits ("groupe État islamique (EI)") is shown once."""
    marks: dict[str, list[tuple[int, int]]] = {}
    for fragment in fragments:
        marks.setdefault(fragment.text, []).extend(fragment.marks)
    return tuple(Fragment(text, merge_marks(text, found)) for text, found in marks.items())


def hit_fragment(owed: OwedHit) -> Fragment:
    """The sentence a hit was found in, its matched words marked (around the hit in its field when the hit
    was stored without a sentence)."""
    hit = owed.hit
    sentence = hit.sentence
    if not sentence:
        text = (owed.article.title if hit.field == "title" else owed.article.text) or ""
        lo, hi = max(0, hit.start - _CONTEXT), min(len(text), hit.end + _CONTEXT)
        return Fragment(text[lo:hi], ((hit.start - lo, hit.end - lo),) if hit.end <= len(text) else ())
    at = sentence.find(hit.matched)
    if at < 0 and len(sentence.casefold()) == len(sentence):
        at = sentence.casefold().find(hit.matched.casefold())
    return Fragment(sentence, ((at, at + len(hit.matched)),) if at >= 0 and hit.matched else ())
