"""The compiled matcher: spans of every watch in a text, hits with their sentence in an article."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from sentencex import segment

from alerts.match import Entry, Keys, Term, resolve_overlaps, scan, space_positions
from alerts.rules import Node, evaluate
from newswatch.models import Article, Hit, Span
from newswatch.textnorm import NormalizedText

SENTENCE_MAX = 300


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


@dataclass
class Matcher:
    """Compiled watches: ``find`` spans in a text, ``match_article`` hits in an article's title and text."""

    automaton: Any
    keys: Keys
    entries: list[Entry]
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

    def _field(self, text: str) -> tuple[NormalizedText, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        norm = NormalizedText(text)
        return norm, resolve_overlaps(*scan(self.automaton, self.keys, self.entries, self.terms, norm))

    def _spans(self, texts: dict[str, str]) -> list[Span]:
        parsed = {f: self._field(t) for f, t in texts.items()}
        spans: list[Span] = []
        candidates = None
        for f in sorted(texts, key=lambda f: f != "title"):
            norm, (s, e, t) = parsed[f]
            if not len(t) and not self._rules:
                continue
            watch = self._term_watch[t]
            own = watch >= 0
            hit_s, hit_e, hit_w = [s[own]], [e[own]], [watch[own]]
            shared = np.flatnonzero(watch == -2)
            extra = [(a, b, self._rank[name]) for a, b, term in zip(s[shared].tolist(), e[shared].tolist(),
                                                                      t[shared].tolist())
                     for name in self._by_term[term]]
            if self._rules:
                candidates = candidates or {g: list(zip(*map(np.ndarray.tolist, parsed[g][1]))) for g in texts}
                extra += self._rule_hits(f, candidates, parsed)
            if extra:
                arr = np.array(extra, dtype=np.int64).reshape(-1, 3)
                hit_s.append(arr[:, 0]), hit_e.append(arr[:, 1]), hit_w.append(arr[:, 2])
            o_s, o_e = norm.original_spans(np.concatenate(hit_s), np.concatenate(hit_e))
            w = np.concatenate(hit_w)
            order = np.lexsort((w, o_e, o_s))  # by start, end, watch; then each (start, end, watch) once
            o_s, o_e, w = o_s[order], o_e[order], w[order]
            new = np.ones(len(w), dtype=bool)
            new[1:] = (o_s[1:] != o_s[:-1]) | (o_e[1:] != o_e[:-1]) | (w[1:] != w[:-1])
            starts, ends = o_s[new].tolist(), o_e[new].tolist()
            # map() over columns: the Span constructor is most of the cost per hit, so nothing is added to it
            spans += map(Span, map(self._names.__getitem__, w[new].tolist()),
                         map(texts[f].__getitem__, map(slice, starts, ends)), starts, ends, itertools.repeat(f))
        return spans

    def _rule_hits(self, f: str, candidates: dict, parsed: dict) -> list[tuple[int, int, int]]:
        spaces: dict[str, list[int]] = {}

        def word_index(g: str) -> list[int]:
            if g not in spaces:
                spaces[g] = space_positions(parsed[g][0])
            return spaces[g]

        out = []
        for name, node in self._rules:
            result = evaluate(node, candidates, word_index) if any(candidates.values()) else None
            out += [(c[0], c[1], self._rank[name]) for c in (result or {}).get(f, ())]
        return out

    def find(self, text: str) -> list[Span]:
        """Spans of every watch in ``text`` (field "text"): original slice and offsets, sorted by start."""
        return self._spans({"text": text})

    def match_article(self, article: Article) -> list[Hit]:
        """Hits of every watch in the article's title and text, each with the sentence around it."""
        texts = {"title": article.title or "", "text": article.text or ""}
        return [
            Hit(article.id, s.watch, s.matched, s.start, s.end, s.field,
                sentence_around(texts[s.field], s.start, s.end, article.language))
            for s in self._spans(texts)
        ]
