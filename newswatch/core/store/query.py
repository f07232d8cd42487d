"""The search syntax both stores accept, parsed here once (docs/storage.md), and their highlights as offsets.

A query is words, all of which must appear; ``"a quoted phrase"``; ``one OR other`` (either term);
``-word`` or ``-"a phrase"`` (leave out the articles holding it); ``word*`` (a word starting so). Each
backend renders the parsed query in its own language (an FTS5 expression, an Elasticsearch bool query)
with every word quoted as data, so that nothing a user types, and no spelling of a watch, is ever syntax.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from newswatch.core.errors import QuerySyntaxError
from newswatch.core.models import Fragment

# Different spellings searched for at once (Store.search's phrases; see reduce_phrases): each is a lookup
# in the index, and a query has to stay a bounded size.
MAX_PHRASES = 1000
# Between two highlighted words, what still reads as one highlighted name ("Abu Kamal", "Deir ez-Zor"): one
# space or one hyphen, nothing else (a newline ends the title a fragment starts with, so does ". ").
_JOINERS = (" ", "-")
# What ends a name inside one mark a backend gave (Elasticsearch marks two phrase matches in a row, "Deir
# ez-Zor\nDeir ez-Zor", as one): a line break, a sentence's or a clause's end, a spaced dash, two spaces.
_BREAK = re.compile(r"\s*[\n\r]\s*|[.!?;,\u060c\u061b]\s+|\s+[\u2013\u2014]\s+|\s{2,}")


@dataclass(frozen=True)
class Term:
    """One word (or several, as a phrase) of a query, as typed: ``prefix`` for ``word*``."""

    text: str
    quoted: bool = False
    prefix: bool = False


@dataclass(frozen=True)
class Query:
    """A parsed query: every group must match (one of its terms, joined by OR); no excluded term may."""

    groups: tuple[tuple[Term, ...], ...] = ()
    excluded: tuple[Term, ...] = ()


@dataclass(frozen=True)
class _Token:
    term: Term
    negated: bool
    is_or: bool


def parse(query: str, *, alternatives: bool = False) -> Query:
    """The query's terms; QuerySyntaxError (one line naming the query and the problem) when it cannot be
    read. ``alternatives``: phrases are searched for too, so a query of excluded words only is fine."""
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    after_or = False
    previous: _Token | None = None
    for token in _tokens(query):
        if token.is_or:
            if previous is None or previous.is_or or previous.negated:
                raise query_error(query, "OR needs a word on each side")
            after_or = True
        elif token.negated:
            if after_or:
                raise query_error(query, "OR cannot join an excluded word (-word)")
            excluded.append(token.term)
        elif after_or:
            groups[-1].append(token.term)
            after_or = False
        else:
            groups.append([token.term])
        previous = token
    if after_or:
        raise query_error(query, "OR needs a word on each side")
    # Punctuation alone ("&", "…") is no word to either index: left out, as the indexes leave it out.
    kept = tuple(group for group in (tuple(t for t in g if _has_word(t.text)) for g in groups) if group)
    left_out = tuple(t for t in excluded if _has_word(t.text))
    if not kept and not alternatives and query.strip():
        problem = "only excluded words, nothing to search for" if left_out else "no word to search for"
        raise query_error(query, problem)
    return Query(kept, left_out)


def _has_word(text: str) -> bool:
    return any(c.isalnum() for c in text)


def query_error(query: str, problem: str) -> QuerySyntaxError:
    """The one-line error naming ``query`` (shortened when long) and the problem."""
    shown = repr(query) if len(query) <= 120 else repr(query[:117] + "...")
    return QuerySyntaxError(f"search {shown}: {problem}")


def _tokens(query: str) -> Iterator[_Token]:
    pos, n = 0, len(query)
    while True:
        while pos < n and query[pos].isspace():
            pos += 1
        if pos >= n:
            return
        negated = query[pos] == "-"
        pos += negated
        if pos < n and query[pos] == '"':
            close = query.find('"', pos + 1)
            if close < 0:
                raise query_error(query, f'unbalanced quote at character {pos + 1}: a phrase needs its closing "')
            text, pos = query[pos + 1 : close], close + 1
            prefix = query.startswith("*", pos)
            pos += prefix
            if pos < n and not query[pos].isspace():
                raise query_error(query, f"a space must follow the closing quote at character {pos}")
            if not text.strip():
                raise query_error(query, 'empty quotes ("")')
            yield _Token(Term(text, quoted=True, prefix=prefix), negated, is_or=False)
            continue
        end = pos
        while end < n and not query[end].isspace():
            end += 1
        word, pos = query[pos:end], end
        if not word:
            raise query_error(query, "a lone '-' (write -word to leave out the articles holding a word)")
        if '"' in word:
            raise query_error(query, f'unbalanced quote in {word!r}: quote a whole phrase, "like this"')
        text = word.rstrip("*")
        if not text:
            raise query_error(query, "a lone '*' (write word* for the words starting with word)")
        if "*" in text:
            raise query_error(query, f"'*' only ends a word (in {word!r})")
        prefix = text != word
        yield _Token(Term(text, prefix=prefix), negated, is_or=word == "OR" and not negated)


def reduce_phrases(phrases: Iterable[str], words: Callable[[str], tuple[str, ...]]) -> list[str]:
    """The phrases worth searching for, in their order: one of each spelling the index cannot tell apart
    (``words``: a phrase's words as the backend indexes them), none without a word. Past MAX_PHRASES, the
    phrases holding a shorter one go too (an article with "Deir ez-Zor province" holds "Deir ez-Zor"; kept
    otherwise, as they mark the whole name); still too many is a QuerySyntaxError."""
    keyed: dict[tuple[str, ...], str] = {}
    for phrase in phrases:
        key = words(phrase)
        if key and key not in keyed:
            keyed[key] = phrase
    if len(keyed) <= MAX_PHRASES:
        return list(keyed.values())
    kept: set[tuple[str, ...]] = set()
    for key in sorted(keyed, key=len):  # shorter first; each checked by its runs of words (few: short phrases)
        runs = (key[i:j] for i in range(len(key)) for j in range(i + 1, len(key) + 1))
        if not any(run in kept for run in runs):
            kept.add(key)
    if len(kept) > MAX_PHRASES:
        raise QuerySyntaxError(f"search: {len(kept)} spellings to look for at once, at most {MAX_PHRASES}")
    return [phrase for key, phrase in keyed.items() if key in kept]


def folded_words(text: str) -> tuple[str, ...]:
    """The words of ``text`` as SQLite's unicode61 tokenizer (remove_diacritics 2) indexes them, near enough
    to tell the spellings it cannot distinguish: case and diacritics folded, punctuation separating."""
    stripped = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if unicodedata.category(c) != "Mn")
    return tuple(re.findall(r"[^\W_]+", stripped))


def marked_fragment(marked: str, open_tag: str, close_tag: str) -> Fragment:
    """The fragment of a text in which the backend wrapped the matches in ``open_tag`` / ``close_tag``
    (characters that no stored text holds): the text without them, and the offsets they marked."""
    pieces: list[str] = []
    marks: list[tuple[int, int]] = []
    position, start = 0, None
    for part in re.split(f"([{re.escape(open_tag)}{re.escape(close_tag)}])", marked):
        if part == open_tag:
            start = position
        elif part == close_tag:
            if start is not None:
                marks.append((start, position))
            start = None
        else:
            pieces.append(part)
            position += len(part)
    text = "".join(pieces)
    return Fragment(text, merge_marks(text, marks))


def merge_marks(text: str, marks: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """The marks in order, overlapping ones and those only one space or one hyphen apart joined ("Abu Kamal"
    is one mark whether the backend marked it as a phrase or word by word), empty ones dropped. Never across
    a newline or any other separator: the end of a title and the start of the text are two marks."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(m for m in marks if m[0] < m[1]):
        if merged and (start <= merged[-1][1] or text[merged[-1][1] : start] in _JOINERS):
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(piece for start, end in merged for piece in _split_mark(text, start, end))


def _split_mark(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """One mark, or its pieces when a break (_BREAK) runs through it."""
    pieces, at = [], start
    for found in _BREAK.finditer(text, start, end):
        if found.start() > at:
            pieces.append((at, found.start()))
        at = found.end()
    if end > at:
        pieces.append((at, end))
    return pieces
