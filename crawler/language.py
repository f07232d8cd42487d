"""Offline language identification of article text (py3langid), with the page's declared language as fallback."""

from __future__ import annotations

import functools
import logging

from py3langid.langid import MODEL_FILE, LanguageIdentifier

log = logging.getLogger(__name__)

# Below this probability the text is too short or too mixed to trust; the page's <html lang> decides.
MIN_CONFIDENCE = 0.5
# The opening of an article settles its language; scoring more only costs time: the scorer walks the text
# byte by byte in pure Python, so 1,000 characters cost ~0.7 ms a page and 500 half that. On the project's
# en/ar/fr texts (fixtures, demo site, matching set: 251 windows at every offset) 300 characters or more
# already gave the same answer as 1,000 in every case (tests/test_crawl_cost.py checks it).
_SCORED_CHARS = 500


@functools.cache
def _identifier() -> LanguageIdentifier:
    """Load the bundled model once (about a second); probabilities normalised so confidence means something."""
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def warm_up() -> None:
    """Load the language model now (about half a second), e.g. while a crawl starts."""
    _identifier()


def normalise_lang_tag(tag: str | None) -> str | None:
    """Return the ISO 639-1 code of a BCP 47 tag such as ``"en-GB"`` or ``"ar_SY"``; None if it has none."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return primary if len(primary) == 2 and primary.isalpha() else None


def detect_language(text: str, declared: str | None = None) -> str | None:
    """Return the ISO 639-1 code of the language ``text`` is written in.

    ``declared`` is what the page claims (``<html lang>``, e.g. ``"ar"`` or ``"fr-FR"``); it is used when
    the text is too short or ambiguous for a confident guess, or when the model's label is not a
    two-letter code. Returns None when neither gives an answer.
    """
    fallback = normalise_lang_tag(declared)
    sample = text[:_SCORED_CHARS].strip()
    if not sample:
        return fallback
    lang, confidence = _identifier().classify(sample)
    if confidence >= MIN_CONFIDENCE and len(lang) == 2:
        return lang
    log.debug("language_uncertain guess=%s confidence=%.2f declared=%s", lang, confidence, fallback)
    return fallback
