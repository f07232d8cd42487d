"""Search queries: the store's query syntax (store/query.py) as an Elasticsearch bool query on the normalized copies."""

from __future__ import annotations

import re
from collections.abc import Sequence

from newswatch.core.store.query import Query, Term, parse, reduce_phrases
from newswatch.core.textnorm import normalize

FIELDS = ["normalized.title", "normalized.text"]
# Terms a prefix of several words (``"deir ez-z"*``) may stand for; a single word's prefix has no limit.
_PREFIX_EXPANSIONS = 200
_WORD = re.compile(r"\w+")


def search_query(query: str, phrases: Sequence[str] = ()) -> dict | None:
    """The bool query (without filters) of ``query`` or'ed with ``phrases``; None when there is no word to
    match (the newest articles). Raises QuerySyntaxError as query.parse does. Every term is normalized as
    the indexed copies are (textnorm: case, diacritics, Arabic letter forms) and given as data, never as
    query-string syntax, so what SQLite finds this finds too."""
    parsed = parse(query, alternatives=bool(phrases))
    positive = _positive(parsed)
    spellings = [_phrase(normalize(p).strip()) for p in reduce_phrases(phrases, _words)]
    alternatives = ([positive] if positive else []) + spellings
    if not alternatives:  # no words; and spellings given, none of them a word: nothing matches
        return {"match_none": {}} if phrases else None
    main = alternatives[0] if len(alternatives) == 1 else {"bool": {"should": alternatives, "minimum_should_match": 1}}
    excluded = [clause for term in parsed.excluded if (clause := _term(term))]
    return {"bool": {"must": [main], "must_not": excluded}} if excluded else main


def _words(text: str) -> tuple[str, ...]:
    """A phrase's words as the normalized copies hold them (to tell the spellings they cannot distinguish)."""
    return tuple(_WORD.findall(normalize(text)))


def _positive(parsed: Query) -> dict | None:
    """Every group of the query: its plain words in one query across title and text (all of them, in either
    field, like FTS5's implicit AND), the other groups each a clause of their own."""
    words, clauses = [], []
    for group in parsed.groups:
        if len(group) == 1 and _single_word(group[0]):
            words.append(normalize(group[0].text).strip())
            continue
        alternatives = [clause for term in group if (clause := _term(term))]
        if len(alternatives) == 1:
            clauses.append(alternatives[0])
        elif alternatives:
            clauses.append({"bool": {"should": alternatives, "minimum_should_match": 1}})
    if words:
        clauses.insert(
            0, {"multi_match": {"query": " ".join(words), "fields": FIELDS, "type": "cross_fields", "operator": "and"}}
        )
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"bool": {"must": clauses}}


def _single_word(term: Term) -> bool:
    return not term.quoted and not term.prefix and _WORD.fullmatch(normalize(term.text).strip()) is not None


def _term(term: Term) -> dict | None:
    """One term as a clause: a word, a phrase (its words in order, as FTS5 reads a hyphenated word too), or
    a prefix; None for a term that normalizes to nothing."""
    text = normalize(term.text).strip()
    if not text:
        return None
    if term.prefix and _WORD.fullmatch(text):
        return {"bool": {"should": [{"prefix": {field: text}} for field in FIELDS], "minimum_should_match": 1}}
    if term.prefix:
        return {
            "multi_match": {
                "query": text,
                "fields": FIELDS,
                "type": "phrase_prefix",
                "max_expansions": _PREFIX_EXPANSIONS,
            }
        }
    return _phrase(text)


def _phrase(text: str) -> dict:
    return {"multi_match": {"query": text, "fields": FIELDS, "type": "phrase"}}
