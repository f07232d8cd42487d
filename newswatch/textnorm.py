"""Text normalization shared by watch matching and the Elasticsearch normalized field, with offsets kept."""

from __future__ import annotations

import unicodedata

import numpy as np

APOSTROPHE = "'"
HYPHEN = "-"

# Everything that news copy and GeoNames use for an apostrophe, an ayn or a hamza in Latin script.
_APOSTROPHES = frozenset("'\u2018\u2019\u201b\u02bc\u02bb\u02be\u02bf\u0060\u00b4\u2032\ua78c")
_HYPHENS = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d")
# Arabic letters that spell the same word in practice: alef forms, alef maqsura/yaa, taa marbuta/haa,
# Persian/Kurdish letter shapes, tatweel (decoration only) and Eastern digits.
_ARABIC = {
    "\u0671": "\u0627", "\u0672": "\u0627", "\u0673": "\u0627", "\u0675": "\u0627",
    "\u0649": "\u064a", "\u06cc": "\u064a", "\u06d0": "\u064a", "\u06d2": "\u064a",
    "\u0629": "\u0647", "\u06c0": "\u0647", "\u06d5": "\u0647", "\u06c1": "\u0647",
    "\u06a9": "\u0643", "\u06aa": "\u0643", "\u0640": "",
    **{chr(0x0660 + d): str(d) for d in range(10)},
    **{chr(0x06F0 + d): str(d) for d in range(10)},
}
# Blocks folded up front (Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic, combining marks, punctuation,
# presentation forms, fullwidth): everything news in English, French and Arabic uses.
_PREBUILT_RANGES = [(0x0000, 0x0590), (0x0590, 0x0900), (0x1AB0, 0x1B00), (0x1DC0, 0x2000),
                    (0x2000, 0x2C00), (0x3000, 0x3040), (0xFB00, 0x10000)]


def _fold_char(ch: str) -> str:
    """One character's normalized form: NFKD, marks dropped, casefolded, Arabic unified, separators mapped."""
    if ch in _APOSTROPHES:
        return APOSTROPHE
    if ch in _HYPHENS:
        return HYPHEN
    if ch in _ARABIC:
        return _ARABIC[ch]
    if unicodedata.category(ch) == "Cf":  # zero-width joiners, bidi marks, soft hyphen: invisible
        return ""
    out = []
    for c in unicodedata.normalize("NFKD", ch).casefold():
        cat = unicodedata.category(c)
        if cat in ("Mn", "Me"):  # Latin diacritics, Arabic tashkeel, dotted-I's dot
            continue
        if c in _APOSTROPHES:
            out.append(APOSTROPHE)
        elif c in _HYPHENS:
            out.append(HYPHEN)
        elif c in _ARABIC:
            out.append(_ARABIC[c])
        elif cat[0] in "ZPS" or cat == "Cc":
            out.append(" ")
        else:
            out.append(c)
    folded = "".join(out)
    return " " if folded and not folded.strip() else folded  # "…" is one separator, not three


_IRREGULAR_FLAG = 1 << 30  # the fold deletes or expands the character: see _IRREGULAR
_UNKNOWN_FLAG = 1 << 29  # not folded yet: done on first sight by _learn
_FLAGS = _IRREGULAR_FLAG | _UNKNOWN_FLAG


def _build_tables() -> tuple[np.ndarray, dict[str, str]]:
    """Folded code point of every character whose fold is one character, flags for the others, and
    the folds that delete or expand a character (marks, tatweel, ligatures, ß)."""
    table = np.arange(0x110000, dtype=np.uint32) | _UNKNOWN_FLAG
    irregular: dict[str, str] = {}
    for lo, hi in _PREBUILT_RANGES:
        for code in range(lo, hi):
            folded = _fold_char(chr(code))
            if len(folded) == 1:
                table[code] = ord(folded)
            else:
                irregular[chr(code)] = folded
                table[code] = code | _IRREGULAR_FLAG
    return table, irregular


_TABLE, _IRREGULAR = _build_tables()

_SPACE, _HYPHEN_CP, _APOSTROPHE_CP = ord(" "), ord(HYPHEN), ord(APOSTROPHE)


def _learn(raw: np.ndarray, codes: np.ndarray) -> None:
    """Fold characters not seen before into the table (rare scripts, emoji), then into ``codes``."""
    for code in np.unique(raw[(codes & _UNKNOWN_FLAG) != 0]).tolist():
        folded = _fold_char(chr(code))
        if len(folded) == 1:
            _TABLE[code] = ord(folded)
        elif folded:
            _TABLE[code] = code  # a rare character that would expand is kept as it is
        else:
            _IRREGULAR[chr(code)] = ""
            _TABLE[code] = code | _IRREGULAR_FLAG
    np.take(_TABLE, raw, out=codes)


def _as_text(codes: np.ndarray) -> str:
    return codes.astype("<u4", copy=False).tobytes().decode("utf-32-le")


def _fold(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Code points of ``text`` folded character by character (vectorized), each one's original index,
    and the indexes of characters that fold to nothing (marks, tatweel, zero-width), to be dropped."""
    raw = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    codes = _TABLE.take(raw.astype(np.intp))  # intp indexes: numpy's fast path
    src = np.arange(len(raw), dtype=np.int64)
    flagged = np.flatnonzero(codes >= _UNKNOWN_FLAG)
    if not len(flagged):
        return codes, src, flagged
    if (codes[flagged] & _UNKNOWN_FLAG).any():
        _learn(raw, codes)
        flagged = np.flatnonzero(codes >= _UNKNOWN_FLAG)
    outputs = [_IRREGULAR[chr(c)] for c in raw[flagged].tolist()]
    drop = flagged[[not o for o in outputs]]
    codes[drop] = raw[drop]  # kept as is (a mark counts as part of its word) until dropped
    grow = [(i, o) for i, o in zip(flagged.tolist(), outputs) if o]
    if grow:  # ligatures, ß, ellipsis-like expansions: rebuild with repeats (rare)
        counts = np.ones(len(raw), dtype=np.int64)
        counts[[i for i, _ in grow]] = [len(o) for _, o in grow]
        src = np.repeat(src, counts)
        codes = np.repeat(codes, counts)
        ends = np.cumsum(counts)
        for i, out in grow:
            codes[ends[i] - len(out) : ends[i]] = [ord(c) for c in out]
        drop = ends[drop] - 1
    return codes, src, drop


_PAD = 4


def _among(values: np.ndarray, chars: str) -> np.ndarray:
    """``values`` (code points) equal to one of ``chars``; cheaper than np.isin for a few characters."""
    out = values == ord(chars[0])
    for c in chars[1:]:
        out |= values == ord(c)
    return out


def _context_edits(codes: np.ndarray, keep: np.ndarray) -> None:
    """Apply the apostrophe, hyphen and Latin article rules to ``codes``/``keep`` in place, vectorized.

    Hyphens and apostrophes become spaces, except an apostrophe inside a word (a transliterated ayn or
    hamza: Ma'arrat = Maarrat), which vanishes, unless it is French elision (l'État) or an English
    possessive (Syria's). Article forms become "al ": al-/el-/ul-/il-, sun-letter ez-Zor/as-Safira/ash-Sham,
    and the spaced forms that are not also English/French words (el Kaim, ez Zor, ar Raqqah, ash Sham).
    Only separators are looked at: after folding, every code point up to 45 is a space, ' or -.
    """
    p = np.concatenate((np.full(_PAD, _SPACE, np.uint32), codes, np.full(_PAD + 2, _SPACE, np.uint32)))

    def at(k: np.ndarray, d: int, chars: str | None = None) -> np.ndarray:  # p[k + d], or p[k + d] in chars
        return p[k + d] if chars is None else _among(p[k + d], chars)

    def letter(k: np.ndarray) -> np.ndarray:  # folding has turned non-ASCII punctuation into spaces
        v = p[k]
        return ((v >= 97) & (v <= 122)) | (v >= 0xAA)

    def word(k: np.ndarray) -> np.ndarray:
        v = p[k]
        return letter(k) | ((v >= 48) & (v <= 57))

    def rewrite(starts: np.ndarray, length: int) -> None:  # codes[s:s+length] -> "al " + deletions
        codes[starts], codes[starts + 1], codes[starts + 2] = ord("a"), ord("l"), _SPACE
        for extra in range(3, length):
            keep[starts + extra] = False

    separators = np.flatnonzero(codes <= _HYPHEN_CP)
    kinds = codes[separators]
    hy = separators[kinds == _HYPHEN_CP]
    if len(hy):
        k = hy + _PAD
        codes[hy] = _SPACE
        two = ~word(k - 3) & letter(k - 2) & letter(k - 1) & letter(k + 1)
        art2 = two & (
            (at(k, -2, "aeiu") & (at(k, -1) == ord("l")))
            | (at(k, -2, "ae") & at(k, -1, "tdrzsn") & (at(k, 1) == at(k, -1)))
        )
        art3 = (~word(k - 4) & letter(k - 3) & letter(k + 1) & at(k, -3, "ae") & at(k, -2, "std")
                & (at(k, -1) == ord("h")) & (at(k, 1) == at(k, -2)) & (at(k, 2) == ord("h")))
        rewrite(hy[art2] - 2, 3)
        rewrite(hy[art3] - 3, 4)
    ap = separators[kinds == _APOSTROPHE_CP]
    if len(ap):
        k = ap + _PAD
        codes[ap] = _SPACE
        inner = letter(k - 1) & letter(k + 1)
        elision = (~word(k - 2) & at(k, -1, "ldjmnstc")) | ((at(k, -2) == ord("q")) & (at(k, -1) == ord("u")))
        possessive = (at(k, 1) == ord("s")) & ~letter(k + 2)
        keep[ap[inner & ~elision & ~possessive]] = False
    # Spaced article forms: a 2-3 letter word starting with a or e, right after a space (or the start).
    starts = separators[kinds == _SPACE] + 1
    if len(codes) and codes[0] in (ord("a"), ord("e")):
        starts = np.concatenate(([0], starts))
    k = starts + _PAD
    k = k[at(k, 0, "ae")]
    k = k[(at(k, 2) == _SPACE) | (at(k, 3) == _SPACE)]
    if len(k):
        art2 = (at(k, 2) == _SPACE) & letter(k + 1) & letter(k + 3) & (
            ((at(k, 0) == ord("e")) & (at(k, 1) == ord("l")))
            | (at(k, 1, "zr") & (at(k, 3) == at(k, 1)))
            | ((at(k, 0) == ord("e")) & (at(k, 1) == ord("d")) & (at(k, 3) == ord("d")))
        )
        art3 = ((at(k, 3) == _SPACE) & at(k, 1, "std") & (at(k, 2) == ord("h")) & (at(k, 4) == at(k, 1))
                & (at(k, 5) == ord("h")) & ((at(k, 0) == ord("a")) | (at(k, 1) == ord("s"))))
        rewrite(k[art2] - _PAD, 3)
        rewrite(k[art3] - _PAD, 4)


class NormalizedText:
    """A text in normalized form that can map any span of itself back to the original text."""

    __slots__ = ("original", "text", "_src")

    def __init__(self, original: str) -> None:
        self.original = original
        codes, src, drop = _fold(original)
        keep = np.ones(len(codes), dtype=bool)
        _context_edits(codes, keep)
        if len(drop):  # marks and tatweel go first: one standing between two spaces joins them
            keep[drop] = False
            codes, src = codes[keep], src[keep]
            keep = np.ones(len(codes), dtype=bool)
        # Separators from punctuation and hyphens meet: keep the first space of a run. (The deletions of
        # the context rules sit between letters, so they never hide a run.)
        spaces = codes == _SPACE
        keep[1:] &= ~(spaces[1:] & spaces[:-1])
        if not keep.all():
            codes, src = codes[keep], src[keep]
        self.text = _as_text(codes)
        self._src = src

    def original_index(self, pos: int) -> int:
        """Index in the original text of the character at ``pos`` in the normalized text."""
        return int(self._src[pos])

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Original ``(start, end)`` of normalized ``[start, end)``, taking in marks that trail the last char."""
        o_start = int(self._src[start])
        o_end = int(self._src[end - 1]) + 1
        while o_end < len(self.original) and _IRREGULAR.get(self.original[o_end]) == "":
            o_end += 1
        return o_start, o_end

    def original_spans(self, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`original_span` of many normalized spans at once (arrays in, arrays out, vectorized)."""
        if not len(starts):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        o_starts = self._src[starts]
        o_ends = self._src[ends - 1] + 1
        # A span's end also takes in the marks that trail its last letter in the original (tashkeel).
        inside = np.flatnonzero(o_ends < len(self.original))
        if len(inside):
            following = np.frombuffer(self.original.encode("utf-32-le"), dtype="<u4")[o_ends[inside]]
            for i in inside[(_TABLE[following] & _IRREGULAR_FLAG) != 0].tolist():
                o_ends[i] = self.original_span(int(starts[i]), int(ends[i]))[1]
        return o_starts, o_ends

    def offsets(self) -> list[int]:
        """For every normalized character, the index of the original character it came from."""
        return self._src.tolist()


def normalize(text: str) -> str:
    """Normalize ``text`` for matching: NFKC, case folding, Latin diacritics and Arabic tashkeel/tatweel
    removed, Arabic letter variants unified, punctuation and hyphens as single spaces, apostrophes inside
    words dropped and Latin article forms (al-, el-, ez-, ar- ...) spelled ``al``.

    Returns the normalized string; the same function builds the Elasticsearch normalized field.
    """
    return NormalizedText(text).text


def normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """Normalize ``text`` as :func:`normalize` does; return the normalized string and, for each of its
    characters, the index of the original character it came from."""
    norm = NormalizedText(text)
    return norm.text, norm.offsets()


def normalize_many(texts: list[str]) -> list[str]:
    """``[normalize(t).strip() for t in texts]`` in one vectorized pass (for compiling thousands of names).

    Texts are joined with newlines, which normalize to a separator on their own and cannot join words,
    then cut apart by the original offsets.
    """
    if not texts:
        return []
    bounds = np.cumsum([len(t) + 1 for t in texts])  # each text's end: its separator's original index
    norm = NormalizedText("\n".join(texts))
    cuts = np.searchsorted(norm._src, bounds - 1)  # first normalized char at or after each separator
    out, start = [], 0
    for cut in cuts.tolist():
        out.append(norm.text[start:cut].strip())
        start = cut
    return out
