"""Offline language identification of article text (CLD2, via pycld2), with the page's declared language as
fallback."""

from __future__ import annotations

import logging
import re

import pycld2

from newswatch.core.web import language_code

log = logging.getLogger(__name__)

# The opening of an article settles its language. CLD2 (compiled C++, its tables in the library: nothing to
# load) scores 1,000 characters in ~0.03 ms; it is the identifier Common Crawl labels the web with.
# py3langid, used before, walked a 39 MB table byte by byte in Python: 0.7 ms a page inside a crawl, for 500
# characters (docs/benchmarks.md, "Crawling"). tests/test_crawl_cost.py checks the prefix gives the answer a
# longer sample gives.
_SCORED_CHARS = 1_000
# CLD2 refuses a text holding code points that are not valid in UTF-8 interchange ("input contains invalid
# UTF-8"): control characters other than tab and line breaks, surrogates and Unicode noncharacters. Scraped
# text can hold any of them; they say nothing about the language, so they become spaces.
_REFUSED = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17))
    + "]"
)
# Below this many letters CLD2 may call a short French headline ("Reprise de Mossoul") English: a language
# the page or feed declares wins there; CLD2's guess is used only when nothing is declared.
_MIN_LETTERS = 40
# CLD2 still says "iw" for Hebrew (ISO 639-1 renamed it "he" in 1989) and "jw" for Javanese ("jv").
_CURRENT_CODES = {"iw": "he", "jw": "jv"}


def detect_language(text: str, declared: str | None = None) -> str | None:
    """Return the ISO 639-1 code of the language ``text`` is written in.

    ``declared`` is what the page claims (``<html lang>``, e.g. ``"ar"`` or ``"fr-FR"``); it is used when
    the text has fewer than 40 letters, when CLD2 finds it too mixed for a reliable answer, or when CLD2
    names no two-letter language.
    Returns None when neither gives an answer.
    """
    fallback = language_code(declared)
    sample = _REFUSED.sub(" ", text[:_SCORED_CHARS]).strip()
    if not sample or (fallback and sum(map(str.isalpha, sample[: _MIN_LETTERS * 2])) < _MIN_LETTERS):
        return fallback
    try:
        reliable, _, ((_, code, percent, _), *_) = pycld2.detect(sample, isPlainText=True)
    except pycld2.error as error:  # the text is sanitised above: this would be a CLD2 refusal not known here
        log.debug("language_failed error=%s declared=%s", error, fallback)
        return fallback
    code = _CURRENT_CODES.get(code, code)
    if reliable and len(code) == 2 and code != "un":
        return code
    log.debug("language_uncertain guess=%s percent=%d declared=%s", code, percent, fallback)
    return fallback
