"""Tests for newswatch.core.textnorm: normalization and offsets back to the original text."""

import numpy as np
import pytest

from newswatch.core.textnorm import NormalizedText, normalize


@pytest.mark.parametrize(
    "variant",
    [
        "Deir ez-Zor",
        "Deir ez Zor",
        "DEIR EZ-ZOR",
        "Deïr ez Zor",
        "Deir ez‐Zor",
        "Deir  -  ez-Zor",
        "Deir az-Zor",
        "Deir al-Zor",
        "Deir el-Zor",
    ],
)
def test_latin_variants_of_one_name_normalize_equal(variant):
    """Case, diacritics, hyphen/space variants and Latin article forms all normalize alike."""
    assert normalize(variant) == "deir al zor"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("أبو كمال", "ابو كمال"),  # alef with hamza
        ("إسلامية", "اسلاميه"),  # alef below, taa marbuta
        ("آمرلي", "امرلي"),  # alef madda
        ("مصطفى", "مصطفي"),  # alef maqsura
        ("الرَّقَّة", "الرقه"),  # tashkeel removed
        ("داعـــش", "داعش"),  # tatweel removed
        ("ﺩﺍﻋﺶ", "داعش"),  # presentation forms (NFKC)
        ("دیر الزور", "دير الزور"),  # Persian yeh
    ],
)
def test_arabic_letters_are_unified(raw, expected):
    """Alef forms, alef maqsura, taa marbuta, tashkeel, tatweel and presentation forms are normalized."""
    assert normalize(raw) == expected


def test_apostrophes_join_transliterations_but_split_elision_and_possessive():
    """Ayn/hamza apostrophes join a word; French elision and English possessive separate words."""
    assert normalize("Ma‘arrat an-Nu‘man") == "maarrat al numan"
    assert normalize("l’État islamique") == "l etat islamique"
    assert normalize("Syria's army") == "syria s army"


def test_compatibility_forms_and_case_folding():
    """NFKC compatibility characters and full case folding apply."""
    assert normalize("Straße ﬁrst ＳＤＦ") == "strasse first sdf"


def test_ordinary_words_that_look_like_articles_are_kept():
    """'et tue' (French) and 'as Syria' are not rewritten as articles."""
    assert normalize("et tue") == "et tue"
    assert normalize("as Syria") == "as syria"


def _offsets(norm: NormalizedText) -> list[int]:
    """For every normalized character, the index of the original character it came from."""
    positions = np.arange(len(norm.text))
    return norm.original_spans(positions, positions + 1)[0].tolist()


@pytest.mark.parametrize(
    "text",
    ["Deir  -  Zor’s “caliphate”…", "الرَّقَّة ـ بدير الزور", "Straße ﬁ İstanbul", "De\u0301ir\u00ad x", "", "   "],
)
def test_offsets_point_at_the_original_characters(text):
    """Every normalized character maps to an original index whose own normalization produces it."""
    norm, offsets = NormalizedText(text).text, _offsets(NormalizedText(text))
    assert len(offsets) == len(norm)
    assert offsets == sorted(offsets)
    for ch, at in zip(norm, offsets, strict=True):
        if ch != " ":
            assert ch in normalize(text[at]) or ch in normalize(text[at : at + 2])


def test_rewritten_article_maps_to_the_article_it_replaces():
    """'ez-' rewritten as 'al ' maps back onto 'ez', so a span starting there starts at the article."""
    norm, offsets = NormalizedText("Deir ez-Zor").text, _offsets(NormalizedText("Deir ez-Zor"))
    assert norm == "deir al zor"
    assert offsets[5:8] == [5, 6, 7]


def test_original_span_covers_trailing_marks():
    """A span ending on a letter followed by tashkeel includes the marks in the original slice."""
    text = "في الرقةُ اليوم"
    norm = NormalizedText(text)
    start = norm.text.index("الرقه")
    o_start, o_end = norm.original_span(start, start + len("الرقه"))
    assert text[o_start:o_end] == "الرقةُ"


@pytest.mark.parametrize(
    "text", ["الرَّقَّة ـ بدير الزور", "x ً y", "a ، b", "Deir  -  ez-Zor", "« Raqqa »", "ash sh x", "l’ État"]
)
def test_separator_runs_collapse_to_one_space(text):
    """Punctuation, dashes, isolated marks and tatweel between words leave exactly one space."""
    assert "  " not in normalize(text)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("el-el Kaim", "al el kaim"),
        ("el el Kaim", "al al kaim"),
        ("ash-Sham ash Sham", "al sham al sham"),
        ("ez-Zor ez Zor az-Zawr", "al zor al zor al zawr"),
        ("l’el-Bab", "l al bab"),
        ("qu’ez-zor", "qu al zor"),
        ("es-Sham esh Sham", "al sham al sham"),
        ("ad-Dair ed Dair", "al dair al dair"),
        ("al-'x", "al x"),
        ("x's y'z l'État", "x s yz l etat"),
        ("el Kaim, el-Kaim", "al kaim al kaim"),
        ("Zor’s el-", "zor s el "),
        ("aš-Šām", "al sam"),
    ],
)
def test_neighbouring_article_and_apostrophe_rules_do_not_interfere(raw, expected):
    """Every context rule reads the text as folded, before any edit, so rules that apply side by side
    give what each gives alone."""
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Deir  -  Zor’s “caliphate”…",
        "الرَّقَّة ـ بدير الزور",
        "Straße ﬁ İstanbul",
        "De\u0301ir\u00ad x",
        "ash-Sham , l’État",
        "x ً y",
        " « Raqqa » ",
    ],
)
def test_span_lookups_agree_with_the_offset_map(text):
    """original_span (looked up position by position) and original_spans (all at once) agree with the
    whole offset map."""
    norm = NormalizedText(text)
    offsets = _offsets(norm)
    assert [norm.original_span(i, i + 1)[0] for i in range(len(norm.text))] == offsets
    pairs = [(i, j) for i in range(len(norm.text)) for j in range(i + 1, len(norm.text) + 1)]
    if pairs:
        starts, ends = norm.original_spans(*(np.array(column) for column in zip(*pairs, strict=True)))
        assert list(zip(starts.tolist(), ends.tolist(), strict=True)) == [norm.original_span(i, j) for i, j in pairs]
        assert all(norm.original_span(i, j)[0] == offsets[i] for i, j in pairs)
