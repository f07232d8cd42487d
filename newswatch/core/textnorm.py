"""Text normalization shared by watch matching and the Elasticsearch normalized field, with offsets kept."""

from __future__ import annotations

import re
import unicodedata

import numpy as np

APOSTROPHE = "'"
HYPHEN = "-"

# Everything that news copy and GeoNames use for an apostrophe, an ayn or a hamza in Latin script, and
# Hebrew's geresh and gershayim (ג׳, דאע״ש), which likewise vanish inside a word.
_APOSTROPHES = frozenset("'\u2018\u2019\u201b\u02bc\u02bb\u02be\u02bf\u0060\u00b4\u2032\ua78c\u05f3\u05f4")
_HYPHENS = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d")
# Letters that spell the same word in practice: Arabic alef forms, alef maqsura/yaa, taa marbuta/haa,
# Persian/Kurdish letter shapes, tatweel (decoration only) and Eastern digits; Hebrew final forms.
_ARABIC = {
    "\u0671": "\u0627",
    "\u0672": "\u0627",
    "\u0673": "\u0627",
    "\u0675": "\u0627",
    "\u0649": "\u064a",
    "\u06cc": "\u064a",
    "\u06d0": "\u064a",
    "\u06d2": "\u064a",
    "\u0629": "\u0647",
    "\u06c0": "\u0647",
    "\u06d5": "\u0647",
    "\u06c1": "\u0647",
    "\u06a9": "\u0643",
    "\u06aa": "\u0643",
    "\u0640": "",
    **{chr(0x0660 + d): str(d) for d in range(10)},
    **{chr(0x06F0 + d): str(d) for d in range(10)},
    # Kurdish (Sorani) letters that Arabic and Persian copy write without their marks: ۆ ێ ڕ ڵ ھ ڤ
    "\u06c6": "\u0648",
    "\u06ce": "\u064a",
    "\u0695": "\u0631",
    "\u06b5": "\u0644",
    "\u06be": "\u0647",
    "\u06a4": "\u0641",
    # Hebrew final letters are the same letters: ך ם ן ף ץ
    "\u05da": "\u05db",
    "\u05dd": "\u05de",
    "\u05df": "\u05e0",
    "\u05e3": "\u05e4",
    "\u05e5": "\u05e6",
    # Turkish dotless ı is the i of every other language's spelling (IŞİD = ISID, Irak = irak)
    "\u0131": "i",
}
_ZWNJ = 0x200C  # Persian half-space: between two Arabic-script letters it ends a word (داعش‌ها)
# ASCII quotes stand for gershayim in Hebrew copy (דאע"ש, צה"ל): inside a Hebrew word they vanish too
_HEBREW_QUOTE = re.compile('"(?<=[\u05d0-\u05ea]")(?=[\u05d0-\u05ea])')
# Blocks folded up front (Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic, combining marks, punctuation,
# presentation forms, fullwidth): everything news in English, French and Arabic uses.
_PREBUILT_RANGES = [
    (0x0000, 0x0590),
    (0x0590, 0x0900),
    (0x1AB0, 0x1B00),
    (0x1DC0, 0x2000),
    (0x2000, 0x2C00),
    (0x3000, 0x3040),
    (0xFB00, 0x10000),
]


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
_JOIN_FLAG = 1 << 28  # a capital letter or a digit: may start a glued word (see _glued_joins)
# Character classes, for the few characters that carry _JOIN_FLAG and the ones before them.
_LOWER, _LETTER, _CAPITAL, _DIGIT = 1, 2, 4, 8


def _char_class(ch: str) -> int:
    cat = unicodedata.category(ch)
    if cat == "Nd":
        return _DIGIT
    if cat[0] != "L":
        return 0
    return _LETTER | (_LOWER if cat == "Ll" else _CAPITAL if cat in ("Lu", "Lt") else 0)


def _build_tables() -> tuple[np.ndarray, dict[str, str], np.ndarray]:
    """Folded code point of every character whose fold is one character, flags for the others, and
    the folds that delete or expand a character (marks, tatweel, ligatures, ß); the class of each."""
    table = np.arange(0x110000, dtype=np.uint32) | _UNKNOWN_FLAG
    classes = np.zeros(0x110000, dtype=np.uint8)
    irregular: dict[str, str] = {}
    for lo, hi in _PREBUILT_RANGES:
        for code in range(lo, hi):
            _set(table, classes, irregular, code)
    return table, irregular, classes


def _set(table: np.ndarray, classes: np.ndarray, irregular: dict[str, str], code: int) -> None:
    """Enter one character in the tables. A rare character (not prebuilt) that would expand is kept as
    it is: only the prebuilt blocks hold the expansions news needs (ligatures, ß)."""
    ch = chr(code)
    folded = _fold_char(ch)
    classes[code] = _char_class(ch)
    join = _JOIN_FLAG if classes[code] & (_CAPITAL | _DIGIT) else 0
    if len(folded) == 1:
        table[code] = ord(folded) | join
    elif folded and not _prebuilt(code):
        table[code] = code | join
    else:
        irregular[ch] = folded
        table[code] = code | _IRREGULAR_FLAG | join


def _prebuilt(code: int) -> bool:
    return any(lo <= code < hi for lo, hi in _PREBUILT_RANGES)


_TABLE, _IRREGULAR, _CLASSES = _build_tables()

_SPACE, _HYPHEN_CP = ord(" "), ord(HYPHEN)


def _learn(raw: np.ndarray, codes: np.ndarray) -> None:
    """Fold characters not seen before into the table (rare scripts, emoji), then into ``codes``."""
    for code in np.unique(raw[(codes & _UNKNOWN_FLAG) != 0]).tolist():
        _set(_TABLE, _CLASSES, _IRREGULAR, code)
    np.take(_TABLE, raw, out=codes)


def _glued_joins(raw: np.ndarray, marked: np.ndarray) -> np.ndarray:
    """Of ``marked`` (original indexes of capitals and digits), those that glue a word to the one
    before: a capital right after a small letter ("MosulReuters", "al-QaimJohn", as extraction joins a
    caption and its credit) or a digit right after a letter ("Mosul2017")."""
    marked = marked[marked > 0]
    here = _CLASSES.take(raw[marked].astype(np.intp))
    before = _CLASSES.take(raw[marked - 1].astype(np.intp))
    glued = ((here & _CAPITAL) != 0) & ((before & _LOWER) != 0) | ((here & _DIGIT) != 0) & ((before & _LETTER) != 0)
    return marked[glued]


def _as_text(codes: np.ndarray) -> str:
    return codes.astype("<u4", copy=False).tobytes().decode("utf-32-le")


def _script_separators(text: str, raw: np.ndarray, codes: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """``drop`` (characters that fold to nothing) adjusted for two script rules: a Persian half-space
    (ZWNJ) between Arabic-script letters becomes a space (it ends the word: داعش‌ها is داعش ها), and a
    quote inside a Hebrew word (דאע"ש) is dropped like gershayim. Both are looked for only when present."""
    if "\u200c" in text:
        zwnj = drop[raw[drop] == _ZWNJ]
        zwnj = zwnj[(zwnj > 0) & (zwnj < len(raw) - 1)]
        if len(zwnj):
            before, after = raw[zwnj - 1], raw[zwnj + 1]
            between = zwnj[(before >= 0x0620) & (before <= 0x06FF) & (after >= 0x0620) & (after <= 0x06FF)]
            codes[between] = _SPACE
            drop = np.setdiff1d(drop, between)
    if '"' in text:
        quotes = [m.start() for m in _HEBREW_QUOTE.finditer(text)]
        if quotes:
            drop = np.union1d(drop, np.array(quotes, dtype=drop.dtype))
    return drop


def _fold(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """The code points of ``text`` (``raw``), folded character by character (vectorized); the original
    index of each folded code point, or None when that is its own index (no character expanded, the
    usual case); the indexes of characters that fold to nothing (marks, tatweel, zero-width); and the
    original indexes of glued words' starts (see :func:`_glued_joins`)."""
    raw = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    codes = _TABLE.take(raw.astype(np.intp))  # intp indexes: numpy's fast path
    flagged = np.flatnonzero(codes >= _JOIN_FLAG)
    if not len(flagged):
        return raw, codes, None, _script_separators(text, raw, codes, flagged), flagged
    if (codes[flagged] & _UNKNOWN_FLAG).any():
        _learn(raw, codes)
        flagged = np.flatnonzero(codes >= _JOIN_FLAG)
    # Capitals and digits are flagged only to be found in the same pass as the irregular characters.
    marks = codes[flagged]
    capital = (marks & _JOIN_FLAG) != 0
    joins = _glued_joins(raw, flagged[capital])
    if capital.any():
        codes[flagged[capital]] = marks[capital] & ~np.uint32(_JOIN_FLAG)
        flagged = flagged[marks >= _IRREGULAR_FLAG]
    if not len(flagged):
        return raw, codes, None, _script_separators(text, raw, codes, flagged), joins
    outputs = [_IRREGULAR[chr(c)] for c in raw[flagged].tolist()]
    drop = flagged[[not o for o in outputs]]
    codes[drop] = raw[drop]  # kept as is (a mark counts as part of its word) until dropped
    drop = _script_separators(text, raw, codes, drop)
    grow = [(i, o) for i, o in zip(flagged.tolist(), outputs, strict=True) if o]
    src = None
    if grow:  # ligatures, ß, ellipsis-like expansions: rebuild with repeats (rare)
        counts = np.ones(len(raw), dtype=np.int64)
        counts[[i for i, _ in grow]] = [len(o) for _, o in grow]
        src = np.repeat(np.arange(len(raw), dtype=np.int64), counts)
        codes = np.repeat(codes, counts)
        ends = np.cumsum(counts)
        for i, out in grow:
            codes[ends[i] - len(out) : ends[i]] = [ord(c) for c in out]
        drop = ends[drop] - 1
    return raw, codes, src, drop, joins


# The context rules, as regexes over the folded text (hyphens and apostrophes not yet spaces). After
# folding, a letter is a-z or any code point from U+00AA on (punctuation has become spaces), a word
# character a letter or a digit. Each regex runs in C and matches only where its rule applies: an
# article-sized text takes tens of microseconds (array masks took a quarter of a millisecond, most of it
# fixed cost per call), a long text about 10 ms per MB (as the masks did).
_L = "[a-z\u00aa-\U0010ffff]"
_NOT_AFTER_WORD = "(?<![0-9a-z\u00aa-\U0010ffff])"
# At a hyphen: al-/el-/ul-/il- before a letter, ez-Zor/ar-Raqqa (sun letter doubled), ash-Sham (group 2).
_HYPHEN_ARTICLE = re.compile(
    f"-(?:(?<={_NOT_AFTER_WORD}[aeiu]l-)(?={_L})|(?<={_NOT_AFTER_WORD}[ae]([tdrzsn])-)(?=\\1)"
    f"|(?<={_NOT_AFTER_WORD}[ae]([std])h-)(?=\\2h))"
)
# Turkish writes a proper noun's case ending after an apostrophe (Rakka'da, Musul'un, IŞİD'in, PKK'lı): the
# endings, folded (ı = i, ü = u), that may follow any letter, and those that only follow a consonant (a
# vowel ending follows a consonant in Turkish; after a vowel it is y-, n- or s-led). An ayn written as an
# apostrophe is mostly after a vowel and before a longer rest (Shi'a, Ma'arrat, Qa'im, Ba'ath), so
# these do not catch it.
_TURKISH_ENDINGS = "(?:[dt][ae](?:n|ki)?|n[iu]n|n[iuae]|nd[ae]n?|y[aeiu]|yl[ae]|l[ae](?:r|ri)?|l[iu]|[dt][iu]r)"
_TURKISH_VOWEL_ENDINGS = "(?:[iuae]|[iu]n)"
# An apostrophe between letters, except French elision (l', d', qu' ...), the English possessive and a
# Turkish case ending.
_INNER_APOSTROPHE = re.compile(
    f"'(?<={_L}')(?<!{_NOT_AFTER_WORD}[ldjmnstc]')(?<!qu')(?={_L})(?!s(?!{_L}))"
    f"(?!{_TURKISH_ENDINGS}(?!{_L}))(?!(?<=[b-df-hj-np-tv-z]'){_TURKISH_VOWEL_ENDINGS}(?!{_L}))"
)
# After a space: the spaced article forms that are not English or French words (el Kaim, ez Zor, ed Dair,
# esh Sham; az Zawr, ar Raqqah, ash/ath/adh; group 2: over 4 characters). Only the space and the first
# letter are consumed, so "el el Kaim" is seen twice; one literal-led regex per first letter is fastest.
_SPACED_ARTICLES = (re.compile(f" e(?=l {_L}|([zr]) \\1|d d|(s)h sh)"), re.compile(" a(?=([zr]) \\1|([std])h \\2h)"))


def _context_edits(codes: np.ndarray, keep: np.ndarray) -> None:
    """Apply the apostrophe, hyphen and Latin article rules to ``codes``/``keep`` in place.

    Hyphens and apostrophes become spaces, except an apostrophe inside a word (a transliterated ayn or
    hamza: Ma'arrat = Maarrat), which vanishes, unless it is French elision (l'État) or an English
    possessive (Syria's). Article forms become "al ": al-/el-/ul-/il-, sun-letter ez-Zor/as-Safira/ash-Sham,
    and the spaced forms that are not also English/French words (el Kaim, ez Zor, ar Raqqah, ash Sham).
    Every rule reads the text as folded, before any edit; the leading space stands for the text's start.
    """
    folded = " " + _as_text(codes)
    np.putmask(codes, codes <= _HYPHEN_CP, _SPACE)  # after folding, every code point up to 45 is a space, ' or -
    keep[[m.start() - 1 for m in _INNER_APOSTROPHE.finditer(folded)]] = False
    # Where "al " is written over 3 characters (el-, el ), or over 4, the 4th deleted (ash-, ash ). No
    # two rewrites can overlap, so their order does not matter.
    three, four = [], []
    for m in _HYPHEN_ARTICLE.finditer(folded):  # m.start() is the hyphen's index + 1
        (four if m.group(2) else three).append(m.start() - (4 if m.group(2) else 3))
    for regex in _SPACED_ARTICLES:
        for m in regex.finditer(folded):  # m.start() is the space before the article: its own index
            (four if m.group(2) else three).append(m.start())
    if three or four:
        starts = np.array(three + four, dtype=np.intp)
        codes[starts], codes[starts + 1], codes[starts + 2] = ord("a"), ord("l"), _SPACE
        keep[np.array(four, dtype=np.intp) + 3] = False


class NormalizedText:
    """A text in normalized form that can map any span of itself back to the original text.

    Normalization only deletes characters (few: separators in a run, marks, apostrophes, article
    letters), so a normalized position is mapped back by counting the deletions before it, looked up
    (binary search) when a span needs it, without an index array as long as the text.
    """

    __slots__ = ("_gaps", "_joins", "_masks", "_raw", "_spaces", "codes", "original", "text")  # _gaps: _deleted

    def __init__(self, original: str) -> None:
        self.original = original
        self._raw, codes, src, drop, self._joins = _fold(original)
        keep = np.ones(len(codes), dtype=bool)
        _context_edits(codes, keep)
        first = None
        if len(drop):  # marks and tatweel go first: one standing between two spaces joins them
            keep[drop] = False
            first, codes = keep, codes[keep]
            keep = np.ones(len(codes), dtype=bool)
        # Separators from punctuation and hyphens meet: keep the first space of a run. (The deletions of
        # the context rules sit between letters, so they never hide a run.)
        spaces = codes == _SPACE
        keep[1:] &= ~(spaces[1:] & spaces[:-1])
        if not keep.all():
            codes = codes[keep]
        self.codes = codes  # the normalized text as code points (uint32), for vectorized checks
        self.text = _as_text(codes)
        self._masks = (src, first, keep)  # folded index of each code (None: its own), what each step kept
        self._gaps: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._spaces: np.ndarray | None = None

    def spaces(self) -> np.ndarray:
        """Where the spaces of the normalized text are (its word boundaries); found once, as matching asks
        for them twice (rule distances and context windows)."""
        if self._spaces is None:
            self._spaces = np.flatnonzero(self.codes == _SPACE)
        return self._spaces

    def glued(self) -> np.ndarray:
        """Normalized positions where a word goes on, unspaced, with a capital after a small letter or a
        digit after a letter ("MosulReuters", "Mosul2017"): a name may end there (scan.glued)."""
        if not len(self._joins):
            return self._joins
        at = self.normalized_before(self._joins)
        codes = self.codes
        inside = (at > 0) & (at < len(codes))
        at = at[inside]
        return at[(codes[at] != _SPACE) & (codes[at - 1] != _SPACE)]

    def _deleted(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per step, last to first: the indexes it deleted, and how many kept characters precede each."""
        if self._gaps is None:
            _src, first, keep = self._masks
            deleted = [np.flatnonzero(~mask) for mask in (keep, first) if mask is not None]
            self._gaps = [(d, d - np.arange(len(d))) for d in deleted]
        return self._gaps

    def _to_original(self, positions: np.ndarray) -> np.ndarray:
        """Original index of each normalized position in ``positions`` (an int array)."""
        out = positions
        for _, kept_before in self._deleted():  # the kept character p follows the deletions with <= p before
            out = out + np.searchsorted(kept_before, out, side="right")
        src = self._masks[0]
        return out if src is None else src[out]

    def normalized_before(self, originals: np.ndarray) -> np.ndarray:
        """How many normalized characters come from original characters before each of ``originals``."""
        src = self._masks[0]
        out = originals if src is None else np.searchsorted(src, originals)
        for deleted, _ in reversed(self._deleted()):
            out = out - np.searchsorted(deleted, out)
        return out

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Original ``(start, end)`` of normalized ``[start, end)``, taking in marks that trail the last char."""
        o_start, o_last = self._to_original(np.array([start, end - 1])).tolist()
        o_end = o_last + 1
        # (a Persian half-space there may have ended the word: it is a separator, not a mark)
        original = self.original
        while o_end < len(original) and original[o_end] != "\u200c" and _IRREGULAR.get(original[o_end]) == "":
            o_end += 1
        return o_start, o_end

    def original_spans(self, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`original_span` of many normalized spans at once (arrays in, arrays out, vectorized)."""
        if not len(starts):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        o_starts = self._to_original(starts)
        o_ends = self._to_original(ends - 1) + 1
        # A span's end also takes in the marks that trail its last letter in the original (tashkeel).
        inside = np.flatnonzero(o_ends < len(self.original))
        if len(inside):
            following = self._raw[o_ends[inside]]
            for i in inside[(_TABLE[following] & _IRREGULAR_FLAG) != 0].tolist():
                o_ends[i] = self.original_span(int(starts[i]), int(ends[i]))[1]
        return o_starts, o_ends


def normalize(text: str) -> str:
    """Normalize ``text`` for matching: NFKC, case folding, Latin diacritics and Arabic tashkeel/tatweel
    removed, Arabic letter variants unified, punctuation and hyphens as single spaces, apostrophes inside
    words dropped and Latin article forms (al-, el-, ez-, ar- ...) spelled ``al``.

    Returns the normalized string; the same function builds the Elasticsearch normalized field.
    """
    return NormalizedText(text).text


def normalize_many(texts: list[str]) -> list[str]:
    """``[normalize(t).strip() for t in texts]`` in one vectorized pass (for compiling thousands of names).

    Texts are joined with newlines, which normalize to a separator on their own and cannot join words,
    then cut apart by the original offsets.
    """
    if not texts:
        return []
    bounds = np.cumsum([len(t) + 1 for t in texts])  # each text's end: its separator's original index
    norm = NormalizedText("\n".join(texts))
    cuts = norm.normalized_before(bounds - 1)  # first normalized char at or after each separator
    out, start = [], 0
    for cut in cuts.tolist():
        out.append(norm.text[start:cut].strip())
        start = cut
    return out
