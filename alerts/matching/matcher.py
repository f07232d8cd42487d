"""The compiled matcher: spans of every watch in a text, hits with their sentence in an article."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

import numpy as np
from sentencex import segment

from alerts.matching.rules import Node, evaluate
from alerts.matching.scan import CompiledSpelling, Keys, Pieces, Term, resolve_overlaps, scan, space_positions
from newswatch.core.models import Article, Hit, Span
from newswatch.core.textnorm import NormalizedText

SENTENCE_MAX = 300
_Item = TypeVar("_Item")
# Texts matched in one pass are joined with this: it normalizes to separator spaces, and being two, it keeps
# the spaced-article rule ("el Kaim" -> "al kaim") from reading from the end of one text into the next.
_JOIN = "\n\n"
_ONE_START = np.zeros(1, dtype=np.int64)
# Texts are matched in one pass up to about this many characters: the pass's arrays take some 30 bytes a
# character, and past a few hundred kB the fixed cost per pass is already paid for.
BATCH_CHARS = 1_000_000


@lru_cache(maxsize=256)
def _sentences(language: str, paragraph: str) -> tuple[str, ...]:
    """The sentences of a paragraph, split once: an article's hits mostly share a few paragraphs."""
    return tuple(segment(language, paragraph))


def sentence_around(text: str, start: int, end: int, language: str | None = None) -> str:
    """The sentence of ``text`` holding ``[start, end)``, trimmed around the match to ``SENTENCE_MAX`` chars."""
    para_start = text.rfind("\n", 0, start) + 1
    para_end = text.find("\n", end)
    para_end = len(text) if para_end < 0 else para_end
    pos = para_start
    sent_start, sent_end = para_start, para_end
    for sentence in _sentences((language or "en")[:2], text[para_start:para_end]):
        s_end = pos + len(sentence)
        if s_end <= start:
            sent_start = s_end
        elif pos >= end:
            sent_end = pos
            break
        pos = s_end
    sent_start = max(sent_start, para_start)
    sentence = text[sent_start:sent_end].strip()
    if len(sentence) <= SENTENCE_MAX:
        return sentence
    offset = start - sent_start - (len(text[sent_start:sent_end]) - len(text[sent_start:sent_end].lstrip()))
    lo = max(0, min(offset - (SENTENCE_MAX - (end - start)) // 2, len(sentence) - SENTENCE_MAX + 2))
    hi = lo + SENTENCE_MAX - 2
    return ("…" if lo > 0 else "") + sentence[lo:hi].strip() + ("…" if hi < len(sentence) else "")


def _batches(items: Sequence[_Item], size: Callable[[_Item], int]) -> Iterator[Sequence[_Item]]:
    """``items`` in consecutive runs of about ``BATCH_CHARS`` characters (at least one item each)."""
    first, chars = 0, 0
    for i, item in enumerate(items):
        chars += size(item)
        if chars >= BATCH_CHARS:
            yield items[first : i + 1]
            first, chars = i + 1, 0
    if first < len(items):
        yield items[first:]


def _text_bounds(positions: np.ndarray, text_starts: np.ndarray) -> list[int]:
    """For sorted ``positions`` in joined texts starting at ``text_starts``: the index of each text's first
    position, then ``len(positions)`` (text ``i`` holds ``positions[bounds[i]:bounds[i + 1]]``)."""
    return [*np.searchsorted(positions, text_starts).tolist(), len(positions)]


class _Batch(NamedTuple):
    """One field of a batch of articles, matched in one pass: the texts joined (``original``), where each
    starts in it, its normalization, where each lies in that (None for a single text), and the
    candidates found, after overlaps (normalized starts, ends, terms)."""

    original: str
    starts: np.ndarray
    norm: NormalizedText
    pieces: Pieces | None
    found: tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class Matcher:
    """Compiled watches: ``find`` spans in a text, ``match_article`` hits in an article's title and text;
    ``find_many`` and ``match_articles`` give the same for many, in one pass per batch."""

    automaton: Any
    keys: Keys
    entries: list[CompiledSpelling]
    terms: list[Term]
    watches: list[tuple[str, Node]]

    def __post_init__(self) -> None:
        # Per term, the watch that is just that term (-1: none, -2: several, see _plain_watches).
        names = sorted({name for name, _ in self.watches})
        self._rank = {name: i for i, name in enumerate(names)}
        self._names = names
        by_term: dict[int, list[str]] = {}
        for name, node in self.watches:
            if node[0] == "term":
                by_term.setdefault(node[1], []).append(name)
        self._by_term = by_term
        self._term_watch = np.full(len(self.terms) + 1, -1, dtype=np.int64)
        for term, watch_names in by_term.items():
            self._term_watch[term] = self._rank[watch_names[0]] if len(watch_names) == 1 else -2
        self._rules = [(name, node) for name, node in self.watches if node[0] != "term"]

    def _parse(self, texts: list[str]) -> _Batch:
        """One field of a batch: the texts joined and matched in one pass (see :class:`_Batch`)."""
        if len(texts) == 1:
            joined, starts, pieces = texts[0], _ONE_START, None
            norm = NormalizedText(joined)
        else:
            joined = _JOIN.join(texts)
            lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
            starts = np.zeros(len(texts), dtype=np.int64)
            np.cumsum(lengths[:-1] + len(_JOIN), out=starts[1:])
            norm = NormalizedText(joined)
            pieces = Pieces(norm.normalized_before(starts), norm.normalized_before(starts + lengths))
        found = resolve_overlaps(*scan(self.automaton, self.keys, self.entries, self.terms, norm, pieces))
        return _Batch(joined, starts, norm, pieces, found)

    def _spans(self, fields: dict[str, list[str]]) -> list[list[Span]]:
        """Spans of every watch in a batch of articles: ``fields`` holds, per field, the i-th article's
        text at index i. Returns each article's spans, the title's first, each field's by start."""
        count = len(next(iter(fields.values())))
        parsed = {f: self._parse(texts) for f, texts in fields.items()}
        rule_hits = self._rule_hits(parsed, count) if self._rules else {}
        spans: list[list[Span]] = [[] for _ in range(count)]
        for f in sorted(fields, key=lambda f: f != "title"):
            batch = parsed[f]
            s, e, t = batch.found
            if not len(t) and not rule_hits.get(f):
                continue
            watch = self._term_watch[t]
            own = watch >= 0
            hit_s, hit_e, hit_w = [s[own]], [e[own]], [watch[own]]
            shared = np.flatnonzero(watch == -2)
            extra = [
                (a, b, self._rank[name])
                for a, b, term in zip(s[shared].tolist(), e[shared].tolist(), t[shared].tolist(), strict=True)
                for name in self._by_term[term]
            ]
            extra += rule_hits.get(f, [])
            if extra:
                arr = np.array(extra, dtype=np.int64).reshape(-1, 3)
                hit_s.append(arr[:, 0]), hit_e.append(arr[:, 1]), hit_w.append(arr[:, 2])
            o_s, o_e = batch.norm.original_spans(np.concatenate(hit_s), np.concatenate(hit_e))
            w = np.concatenate(hit_w)
            order = np.lexsort((w, o_e, o_s))  # by start, end, watch; then each (start, end, watch) once
            o_s, o_e, w = o_s[order], o_e[order], w[order]
            new = np.ones(len(w), dtype=bool)
            new[1:] = (o_s[1:] != o_s[:-1]) | (o_e[1:] != o_e[:-1]) | (w[1:] != w[:-1])
            o_s, o_e, w = o_s[new], o_e[new], w[new]
            starts, ends = o_s, o_e  # in the joined text; then in each article's own
            if count > 1:
                article = np.searchsorted(batch.starts, o_s, "right") - 1
                starts, ends = o_s - batch.starts[article], o_e - batch.starts[article]
            # tuple.__new__ over zipped columns builds each Span in C; Span(...) would run the NamedTuple's
            # Python __new__ once per hit (most of the cost per hit)
            found = list(
                map(
                    tuple.__new__,
                    itertools.repeat(Span),
                    zip(
                        map(self._names.__getitem__, w.tolist()),
                        map(batch.original.__getitem__, map(slice, o_s.tolist(), o_e.tolist())),
                        starts.tolist(),
                        ends.tolist(),
                        itertools.repeat(f),
                    ),
                )
            )
            if count == 1:
                spans[0] += found
                continue
            for i, (lo, hi) in enumerate(itertools.pairwise(_text_bounds(o_s, batch.starts))):
                spans[i] += found[lo:hi]
        return spans

    def _rule_hits(self, parsed: dict[str, _Batch], count: int) -> dict[str, list[tuple[int, int, int]]]:
        """Per field, the (start, end, watch) of every rule hit, rules evaluated article by article."""
        spaces: dict[str, list[int]] = {}

        def word_index(g: str) -> list[int]:  # word distances within one text are the same in the batch
            if g not in spaces:
                spaces[g] = space_positions(parsed[g].norm)
            return spaces[g]

        by_field = {}  # per field: its candidates in order, and the index of each article's first one
        for g, batch in parsed.items():
            s, e, t = batch.found
            bounds = [0, len(s)] if batch.pieces is None else _text_bounds(s, batch.pieces.starts)
            by_field[g] = (list(zip(s.tolist(), e.tolist(), t.tolist(), strict=True)), bounds)
        out: dict[str, list[tuple[int, int, int]]] = {g: [] for g in parsed}
        for i in range(count):
            candidates = {g: found[bounds[i] : bounds[i + 1]] for g, (found, bounds) in by_field.items()}
            if not any(candidates.values()):
                continue
            for name, node in self._rules:
                result = evaluate(node, candidates, word_index)
                for g, hits in (result or {}).items():
                    out[g] += [(c[0], c[1], self._rank[name]) for c in hits]
        return out

    def find(self, text: str) -> list[Span]:
        """Spans of every watch in ``text`` (field "text"): original slice and offsets, sorted by start."""
        return self._spans({"text": [text]})[0]

    def find_many(self, texts: Sequence[str]) -> list[list[Span]]:
        """``[find(text) for text in texts]``, found in one pass per batch of texts (see ``BATCH_CHARS``)."""
        return [spans for batch in _batches(texts, len) for spans in self._spans({"text": list(batch)})]

    def match_articles(self, articles: Sequence[Article]) -> list[Hit]:
        """Hits of every watch in the articles' titles and texts, each with the sentence around it: the
        hits :meth:`match_article` gives, article after article, found in one pass per field over each
        batch of articles (which saves the fixed cost of a pass per article)."""
        hits: list[Hit] = []
        for batch in _batches(articles, lambda a: len(a.title or "") + len(a.text or "")):
            titles, texts = [a.title or "" for a in batch], [a.text or "" for a in batch]
            spans_of = self._spans({"title": titles, "text": texts})
            for article, title, text, spans in zip(batch, titles, texts, spans_of, strict=True):
                fields = {"title": title, "text": text}
                hits += [
                    Hit(
                        article.id,
                        s.watch,
                        s.matched,
                        s.start,
                        s.end,
                        s.field,
                        sentence_around(fields[s.field], s.start, s.end, article.language),
                    )
                    for s in spans
                ]
        return hits

    def match_article(self, article: Article) -> list[Hit]:
        """Hits of every watch in the article's title and text, each with the sentence around it."""
        return self.match_articles([article])
