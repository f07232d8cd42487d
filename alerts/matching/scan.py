"""Pure matching: one Aho-Corasick pass over normalized text, then boundary, case, context and overlap checks."""

from __future__ import annotations

import itertools
import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from newswatch.core.textnorm import NormalizedText

# Arabic clitics written joined to the next word: a conjunction (wa, fa), then a preposition (bi, li, ka),
# then the article (al); li + al is written "ll". A name found right after one of these is still a word.
_CONJ = ("", "و", "ف")
_PREP = ("", "ب", "ل", "ك")
_ARABIC = frozenset(c + p + a for c in _CONJ for p in _PREP for a in ("", "ال")) | {c + "لل" for c in _CONJ}
# Hebrew prefixes written joined to the next word: ve- (and), she-/kshe- (that, when), then be- le- ke- mi-
# (in, to, as, from) or ha- (the), mi + ha written "meha" (מה). After be-/le-/ke- the article is not
# written (ברקה, not בהרקה), so a name listed with its article (המדינה האסלאמית) is also found without it.
_HEBREW = frozenset(c + r + p for c in ("", "ו") for r in ("", "ש", "כש") for p in ("", "ב", "ל", "כ", "מ", "ה", "מה"))
_HEBREW_ARTICLE = frozenset(p for p in _HEBREW if p[-1:] in ("ב", "ל", "כ"))
# Every prefix a name may follow, joined, in a script written so (Arabic, Hebrew): the two sets share no
# letter. The names say Arabic as explain.py imports them; they hold the Hebrew prefixes as well.
ARABIC_PREFIXES = _ARABIC | _HEBREW
# After a name whose article was dropped at compile time (Arabic al, Hebrew ha), an article-taking
# prefix must be there: li + al (للرقة), or a Hebrew be-/le-/ke- that swallowed ha.
ARABIC_ARTICLE_PREFIXES = frozenset(p for p in _ARABIC if p.endswith("ال") or p.endswith("لل")) | _HEBREW_ARTICLE
_SPACE = ord(" ")
_NOT_ALNUM = re.compile(r"[\W_]+")  # re's \w is str.isalnum() or "_"
# A capitalized acronym hyphenated to one of these ("IS-held territory", "SDF-led forces", "HTS-controlled
# Idlib") is used as the name of an armed group: that is context enough, whatever the words around it.
ACRONYM_QUALIFIER = re.compile(
    r"[-\u2010\u2011](?:held|controlled|led|backed|linked|affiliated|allied|claimed|inspired|run)\b"
)


def is_arabic(ch: str) -> bool:
    """True for a character of the Arabic blocks."""
    return "\u0600" <= ch <= "\u06ff" or "\u0750" <= ch <= "\u077f" or "\u08a0" <= ch <= "\u08ff"


def is_hebrew(ch: str) -> bool:
    """True for a Hebrew letter or point."""
    return "\u0590" <= ch <= "\u05ff"


def takes_joined_prefixes(ch: str) -> bool:
    """True for a word starting with ``ch`` that may follow prefixes written joined (Arabic, Hebrew)."""
    return is_arabic(ch) or is_hebrew(ch)


class CompiledSpelling(NamedTuple):
    """One compiled spelling of one term: how it was written and what must hold for it to count."""

    term: int
    form: str
    case_sensitive: bool = False
    needs_context: bool = False
    after_article: bool = False


class Term(NamedTuple):
    """What a set of spellings stands for: a watch's own names, or one name used inside a rule.

    ``context`` confirms a needs-context spelling; ``exclude`` drops any hit near it; ``ambiguous_exclude``
    drops only needs-context hits (the group table's "goddess" for Isis). All are normalized phrases.
    """

    name: str
    context: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    window: int = 12
    ambiguous_exclude: tuple[str, ...] = ()


# A term found in the normalized text at [start, end): (start, end, term). Plain tuples, as there may be
# thousands per text.
Candidate = tuple[int, int, int]


class Pieces(NamedTuple):
    """Where each of several texts matched in one pass lies in their joined normalized text: piece ``i``
    is ``[starts[i], ends[i])``. A match must lie inside one piece, and a context window stops at its
    piece's ends, so each text gets the answers it would get alone."""

    starts: np.ndarray
    ends: np.ndarray


def letters(text: str) -> str:
    """The letters and digits of ``text``, in order (what a case-sensitive spelling is compared on)."""
    return _NOT_ALNUM.sub("", text)


def case_ok(found: str, form: str) -> bool:
    """True when ``found`` (original text) has the capitalization of ``form``, or is all capitals. Accents
    do not count, only case: "Estado Islamico" is "Estado Islámico", "ISID" is "IŞİD", "Qaïm" is "Qaim"."""
    got = found if found.isalnum() else letters(found)  # a word as it stands is its own letters
    want = form if form.isalnum() else letters(form)
    if got == want or (got.isupper() and got == want.upper()):
        return True
    got, want = _without_marks(got), _without_marks(want)
    return got == want or (got.isupper() and got == want.upper())


def _without_marks(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def space_positions(norm: NormalizedText) -> list[int]:
    """Where the spaces of a normalized text are (its word boundaries)."""
    return norm.spaces().tolist()


def word_windows(
    norm: NormalizedText, pieces: Pieces | None, starts: np.ndarray, ends: np.ndarray, words: np.ndarray
) -> tuple[list[int], list[int]]:
    """For each ``[start, end)``, the character range from ``words`` words before it to ``words`` words
    after it, within the piece that holds it (vectorized: one pass over the text's spaces)."""
    # the spaces, between a space before the text and one after it: the ends of any window
    bounds = np.concatenate(([-1], norm.spaces(), [len(norm.text)]))
    first = np.searchsorted(bounds, starts) - words - 1  # the space before the window's first word
    last = np.searchsorted(bounds, ends) + words  # the space after its last word
    lo = bounds[np.maximum(first, 0)] + 1
    hi = bounds[np.minimum(last, len(bounds) - 1)]
    if pieces is not None:
        piece = np.searchsorted(pieces.starts, starts, "right") - 1
        lo, hi = np.maximum(lo, pieces.starts[piece]), np.minimum(hi, pieces.ends[piece])
    return lo.tolist(), hi.tolist()


@lru_cache(maxsize=1024)
def _any_phrase(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """One regex finding any of ``phrases`` as whole words in a window padded with spaces."""
    return re.compile(" (?:" + "|".join(map(re.escape, phrases)) + ") ")


def _has_any(window: str, phrases: tuple[str, ...]) -> bool:
    return bool(phrases) and _any_phrase(phrases).search(window) is not None


def _excluded(window: str, lo: int, text: str, start: int, end: int, phrases: tuple[str, ...]) -> bool:
    """True when an exclude phrase occurs in ``window`` (``text[lo:hi]`` between spaces) as whole words. A
    phrase that contains the match itself ("الوضع القائم" for القائم) only counts where it covers this
    very match."""
    if not _has_any(window, phrases):  # one regex pass; the phrases are checked one by one only when one is there
        return False
    for phrase in phrases:
        at = window.find(f" {phrase} ")
        if at < 0:
            continue
        if f" {text[start:end]} " not in f" {phrase} ":
            return True
        while at >= 0:
            p_start = lo + at  # window[at] is the space before the phrase; window is shifted by one
            if p_start <= start and p_start + len(phrase) >= end:
                return True
            at = window.find(f" {phrase} ", at + 1)
    return False


@dataclass
class Keys:
    """What the automaton's integer values stand for: per key, its padded length, whether it is padded
    on the left (not Arabic), its entries, and ``plain``: the one term it means when only its word
    boundary needs checking (unconditional spellings of one term without exclude words), else -1; then
    ``article``: a plain Arabic key whose "al" was dropped, so the joined article must precede it."""

    length: np.ndarray
    lead: np.ndarray
    plain: np.ndarray
    article: np.ndarray
    ids: list[tuple[int, ...]]


_EMPTY = np.zeros(0, dtype=np.int64)


def automaton_key(key: str) -> str:
    """How ``key`` is stored: padded with a trailing space (and a leading one unless Arabic or Hebrew, which
    may follow joined prefixes), reversed, as
    :func:`scan` runs the automaton over the reversed text. Reversed, every key starts with a space, so
    inside a word the automaton waits at its root instead of searching, at every character, the first
    letters of all Arabic keys (which may follow joined clitics) and walking their fail links: 15-40%
    less time for exactly the same occurrences."""
    return (f" {key} " if not takes_joined_prefixes(key[0]) else f"{key} ")[::-1]


def _clitics(padded: str, start: int) -> str:
    """What is joined before the Arabic key that starts at unpadded ``start`` (و ب ل ف ال ...)."""
    return padded[padded.rfind(" ", 0, start + 1) + 1 : start + 1]


def scan(
    automaton: Any,
    keys: Keys,
    entries: list[CompiledSpelling],
    terms: list[Term],
    norm: NormalizedText,
    pieces: Pieces | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every term occurrence in ``norm`` that passes word-boundary, case, context and exclude checks, as
    arrays of normalized starts, ends and terms (in no particular order). With ``pieces`` (several texts
    joined), only occurrences inside one piece, each checked as in its text alone.

    Keys are stored with a trailing space (and a leading one unless Arabic), so the automaton only
    reports word-bounded matches; an Arabic key may also follow a joined clitic. Plain keys are taken
    as found, vectorized (an Arabic one after joined letters once they are known to be clitics); the
    others go through the checks one by one.
    """
    if not len(automaton):  # no watches, so no keys: pyahocorasick cannot search an empty automaton
        return _EMPTY, _EMPTY, _EMPTY
    padded = f" {norm.text} "
    found = np.fromiter(itertools.chain.from_iterable(automaton.iter(padded[::-1])), dtype=np.int64).reshape(-1, 2)
    kid = found[:, 1]
    length, lead = keys.length[kid], keys.lead[kid]
    last = len(padded) - 2 - found[:, 0] + length  # padded index of the key's trailing space
    glued = norm.glued()
    if len(glued):  # names glued to a capital or a digit: rare, looked for around each join
        g_kid, g_last = glued_occurrences(automaton, keys, padded, glued)
        kid, last = np.concatenate((kid, g_kid)), np.concatenate((last, g_last))
        length, lead = keys.length[kid], keys.lead[kid]
    if not len(kid):
        return _EMPTY, _EMPTY, _EMPTY
    starts, ends = last - length + lead, last - 1  # unpadded coordinates
    if pieces is not None:  # drop a name written across the end of one text and the start of the next
        piece_of_start, piece_of_last = (np.searchsorted(pieces.starts, at, "right") for at in (starts, ends - 1))
        inside = piece_of_start == piece_of_last
        if not inside.all():
            kid, lead, starts, ends = kid[inside], lead[inside], starts[inside], ends[inside]
    plain, article = keys.plain[kid], keys.article[kid]
    after_space = (lead == 1) | (starts == 0) | (norm.codes[np.maximum(starts - 1, 0)] == _SPACE)
    fast = (plain >= 0) & after_space & ~article
    joined = np.flatnonzero((plain >= 0) & ~fast)
    fast[joined] = [
        _clitics(padded, start) in (ARABIC_ARTICLE_PREFIXES if a else ARABIC_PREFIXES)
        for start, a in zip(starts[joined].tolist(), article[joined].tolist(), strict=True)
    ]
    out = [(starts[fast], ends[fast], plain[fast])]
    raw: list[tuple[int, int, CompiledSpelling]] = []
    slow = np.flatnonzero(plain < 0)
    for start, end, k, ld in zip(
        starts[slow].tolist(), ends[slow].tolist(), kid[slow].tolist(), lead[slow].tolist(), strict=True
    ):
        prefix = "" if ld else _clitics(padded, start)
        for entry in map(entries.__getitem__, keys.ids[k]):
            allowed = ARABIC_ARTICLE_PREFIXES if entry.after_article else ARABIC_PREFIXES
            if (not entry.after_article) if ld else prefix in allowed:
                raw.append((start, end, entry))
    if raw:
        # Unconditional Arabic spellings confirm ambiguous ones, as they did when every Arabic key went
        # through _checked (plain Latin keys never did, and still do not).
        arabic = fast & (lead == 0)
        confirmers = (starts[arabic].tolist(), plain[arabic].tolist())
        # two entries of one term may pass for one span: keep it once
        checked = np.array(list(dict.fromkeys(_checked(raw, terms, norm, confirmers, pieces))), dtype=np.int64).reshape(
            -1, 3
        )
        out.append((checked[:, 0], checked[:, 1], checked[:, 2]))
    return out[0] if len(out) == 1 else tuple(np.concatenate(column) for column in zip(*out, strict=True))


def glued_occurrences(automaton: Any, keys: Keys, padded: str, joins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The keys that end at one of ``joins`` (:meth:`NormalizedText.glued`: a word going on, unspaced,
    with a capital or a digit, as in "MosulReuters" or "Mosul2017"), as arrays of key ids and padded
    indexes of the key's trailing space (the join itself), like the main pass gives.

    The automaton only knows word-bounded keys, so each join's stretch of text (as long as the longest
    key) is searched again with a space put at the join; only keys ending at that space count."""
    longest = int(keys.length.max())
    kids: list[int] = []
    lasts: list[int] = []
    for p in joins.tolist():  # padded[p + 1] is the capital or digit, so the key ends at padded[p]
        stretch = padded[max(0, p + 1 - longest) : p + 1] + " "
        for r, k in automaton.iter(stretch[::-1]):
            if r == keys.length[k] - 1:  # the reversed key starts at the space put at the join
                kids.append(k)
                lasts.append(p + 1)
    return np.array(kids, dtype=np.int64), np.array(lasts, dtype=np.int64)


def _checked(
    raw: list[tuple[int, int, CompiledSpelling]],
    terms: list[Term],
    norm: NormalizedText,
    confirmers: tuple[list[int], list[int]],
    pieces: Pieces | None,
) -> list[Candidate]:
    """The conditional candidates that pass their case, exclude and context checks; ``confirmers`` are
    more (starts, terms) of unconditional spellings."""
    text = norm.text
    plain: dict[int, list[int]] = {}  # term -> starts of unconditional spellings, which confirm ambiguous ones
    checked = []
    qualified: set[int] = set()  # starts of acronyms written as "IS-held", "SDF-led": context enough
    sensitive = [(start, end) for start, end, entry in raw if entry.case_sensitive]
    if sensitive:  # their spellings in the original text, mapped back all at once
        o_starts, o_ends = norm.original_spans(*map(np.array, zip(*sensitive, strict=True)))
        found = iter(
            zip(
                map(norm.original.__getitem__, map(slice, o_starts.tolist(), o_ends.tolist())),
                o_ends.tolist(),
                strict=True,
            )
        )
    for start, end, entry in raw:
        if entry.case_sensitive:
            spelling, o_end = next(found)
            if spelling != entry.form and not case_ok(spelling, entry.form):  # mostly written as compiled
                continue
            if entry.needs_context and ACRONYM_QUALIFIER.match(norm.original, o_end):
                qualified.add(start)
        checked.append((start, end, entry))
        if not entry.needs_context:
            plain.setdefault(entry.term, []).append(start)
    if any(entry.needs_context for _, _, entry in checked):
        for start, term in zip(*confirmers, strict=True):
            plain.setdefault(term, []).append(start)
    for found_starts in plain.values():
        found_starts.sort()
    lows = highs = [0] * len(checked)  # where a window is needed, its range in the text
    if any(entry.needs_context or terms[entry.term].exclude for _, _, entry in checked):
        starts, ends, found_entries = zip(*checked, strict=True)
        lows, highs = word_windows(
            norm,
            pieces,
            np.array(starts),
            np.array(ends),
            np.array([terms[entry.term].window for entry in found_entries]),
        )
    out = []
    for (start, end, entry), lo, hi in zip(checked, lows, highs, strict=True):
        term = terms[entry.term]
        if entry.needs_context or term.exclude:
            window = f" {text[lo:hi]} "
            if term.exclude and _excluded(window, lo, text, start, end, term.exclude):
                continue
            if entry.needs_context:
                if term.ambiguous_exclude and _excluded(window, lo, text, start, end, term.ambiguous_exclude):
                    continue
                # An unambiguous spelling of the same term nearby confirms it too: "Islamic State (IS)".
                if not (
                    start in qualified
                    or _has_any(window, term.context)
                    or _another_within(plain.get(entry.term, []), lo, hi, start)
                ):
                    continue
        out.append((start, end, entry.term))
    return out


def _another_within(starts: list[int], lo: int, hi: int, start: int) -> bool:
    """True when sorted ``starts`` hold a start in ``[lo, hi)`` other than ``start`` (itself in it)."""
    in_window = bisect_left(starts, hi) - bisect_left(starts, lo)
    return in_window > bisect_right(starts, start) - bisect_left(starts, start)


def resolve_overlaps(
    starts: np.ndarray, ends: np.ndarray, terms: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the longest of overlapping candidates (the earlier one on equal length); candidates with the
    very same span, of different terms, are all kept. Returns the arrays sorted by start, then end.

    Runs of overlapping candidates are found with array operations; a run whose first (earliest, then
    longest) candidate covers the whole run keeps just that span, as is usual ("Deir ez-Zor province"
    over "Deir ez-Zor"); other runs are resolved one by one.
    """
    order = np.lexsort((terms, -ends, starts))
    s, e, t = starts[order], ends[order], terms[order]
    if len(s) < 2:
        return s, e, t
    reach = np.maximum.accumulate(e)
    first = np.ones(len(s), dtype=bool)
    first[1:] = s[1:] >= reach[:-1]
    run = np.cumsum(first) - 1
    heads = np.flatnonzero(first)
    run_end = np.maximum.reduceat(e, heads)
    nested = e[heads] == run_end
    keep = nested[run] & (s == s[heads][run]) & (e == e[heads][run])
    for r in np.flatnonzero(~nested).tolist():
        lo, hi = heads[r], heads[r + 1] if r + 1 < len(heads) else len(s)
        cluster = list(zip(s[lo:hi].tolist(), e[lo:hi].tolist(), range(lo, hi), strict=True))
        keep[[i for _, _, i in _longest_first(cluster)]] = True
    return s[keep], e[keep], t[keep]


def _longest_first(cluster: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    taken: list[tuple[int, int]] = []
    kept = []
    for c in sorted(cluster, key=lambda c: (c[0] - c[1], c[0])):
        if (c[0], c[1]) in taken or not any(c[0] < e and s < c[1] for s, e in taken):
            taken.append((c[0], c[1]))
            kept.append(c)
    return kept
