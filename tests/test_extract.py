"""Tests for crawler.extract (main text and metadata of article pages) and crawler.language."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler.charset import decode_html
from crawler.extract import extract_article, extract_file
from crawler.language import detect_language
from newswatch.core.errors import ExtractionError
from newswatch.core.web import language_code

ARTICLES = Path(__file__).with_name("fixtures") / "articles"
DEMO_SITE = Path(__file__).resolve().parents[1] / "newswatch" / "demo" / "site"
BASE = "http://127.0.0.1:8765"
SEED = "2017/11/04/daesh-loses-last-towns.html"


def demo_article(path: str):
    return extract_article(decode_html((DEMO_SITE / path).read_bytes(), "text/html; charset=utf-8"), f"{BASE}/{path}")


def test_seed_page_metadata():
    """The seed page gives its headline, 2017-11-04 09:15 (UTC, from its meta, not the URL's midnight), English,
    author AFP and an absolute canonical URL."""
    article = demo_article(SEED)
    assert article.title == "Daesh loses last towns in face of twin Syria, Iraq assaults"
    assert article.published == datetime(2017, 11, 4, 9, 15, tzinfo=UTC)
    assert article.language == "en"
    assert article.author == "AFP"
    assert article.canonical_url == f"{BASE}/{SEED}"


def test_seed_page_text_is_the_story_without_boilerplate():
    """The main text holds the story from first to last paragraph and none of the page furniture."""
    text = demo_article(SEED).text
    assert "Deir Ezzor" in text and "Abu Kamal" in text and "Iraqi forces take Al-Qaim" in text
    assert "Russian air power" in text  # the last paragraph
    for boilerplate in ("Copyright", "cookies", "Related stories", "Share this", "morning briefing", "Back To Top"):
        assert boilerplate not in text


def test_arabic_demo_page():
    """The Arabic page is detected as ar and keeps its Arabic place and group names."""
    article = demo_article("2017/11/05/deir-ezzor-ar.html")
    assert article.language == "ar"
    assert "دير الزور" in article.text and "داعش" in article.text and "البوكمال" in article.text
    assert "جميع الحقوق محفوظة" not in article.text
    assert article.published == datetime(2017, 11, 5, 7, 40, tzinfo=UTC)


def test_french_demo_page():
    """The French page is detected as fr, with its author and Mossoul in the text."""
    article = demo_article("2017/07/10/mossoul-liberee.html")
    assert article.language == "fr" and article.author == "Claire Dumont"
    assert "Mossoul" in article.text and "État islamique" in article.title
    assert article.published is not None and article.published.date().isoformat() == "2017-07-10"


def test_unrelated_demo_page_carries_no_conflict_terms():
    """The football page's text is only the match report."""
    article = demo_article("2017/11/06/al-wehdat-win-amman-derby.html")
    assert article.language == "en" and "Al-Faisaly" in article.text
    for term in ("Daesh", "Deir", "Raqqa", "SDF", "Syria", "Iraq", "Copyright"):
        assert term not in article.text


@pytest.mark.parametrize(
    "name", ["ar_windows1256.html", "ar_iso8859_6.html", "wrong_charset_cp1256.html", "utf8_bom.html"]
)
def test_legacy_and_mislabelled_arabic_pages_extract_as_arabic(name: str):
    """extract_file decodes windows-1256, ISO-8859-6, mislabelled and BOM pages into Arabic text."""
    record = extract_file(ARTICLES / name)
    assert record["language"] == "ar"
    assert record["title"] == "الجيش السوري يستعيد دير الزور"
    assert "البوكمال" in record["text"] and "الرئيسية" not in record["text"]


def test_copyright_year_is_not_taken_for_a_publication_date():
    """A page whose only date is the footer's copyright year has no published date (not 1 January)."""
    assert extract_file(ARTICLES / "ar_windows1256.html")["published"] is None


def test_date_found_in_byline_text_when_markup_has_none():
    """Without date markup, htmldate finds the byline date; the language comes from the text."""
    record = extract_file(ARTICLES / "date_in_byline.html")
    assert record["published"] == "2017-11-04T00:00:00+00:00"
    assert record["language"] == "en" and "Abu Kamal" in record["text"]


def test_extract_file_record_is_the_cli_contract():
    """The record has the CLI's keys, is JSON-serialisable, and keeps a relative canonical as written."""
    record = extract_file(DEMO_SITE / SEED)
    assert set(record) == {"file", "title", "text", "published", "language", "author", "canonical_url"}
    assert record["file"].endswith("daesh-loses-last-towns.html")
    assert record["published"] == "2017-11-04T09:15:00+00:00"
    assert record["canonical_url"] == f"/{SEED}"
    assert json.loads(json.dumps(record, ensure_ascii=False)) == record


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   ",
        "<html><body><nav><a href='/'>Home</a></nav></body></html>",
        "<html><body><p>Short.</p></body></html>",
    ],
)
def test_pages_without_main_text_raise_extraction_error(html: str):
    """Empty pages, bare menus and stubs raise ExtractionError instead of returning junk."""
    with pytest.raises(ExtractionError, match="no article text"):
        extract_article(html, "https://example.com/x.html")


def test_missing_file_raises_extraction_error(tmp_path: Path):
    """extract_file on a path that does not exist raises ExtractionError naming it."""
    with pytest.raises(ExtractionError, match=r"cannot read .*nope\.html"):
        extract_file(tmp_path / "nope.html")


def test_language_tells_english_arabic_and_french_apart():
    """detect_language identifies en, ar and fr from a sentence each."""
    assert detect_language("Syrian troops advanced in the Euphrates Valley border region on Friday.") == "en"
    assert detect_language("أعلن الجيش السوري استعادة السيطرة على كامل مدينة دير الزور") == "ar"
    assert detect_language("L'armée irakienne a proclamé la reprise de Mossoul après neuf mois de combats.") == "fr"


def test_language_falls_back_to_the_declared_language():
    """Too little text to judge, or none, gives the page's declared language (normalised)."""
    assert detect_language("Abu Kamal", "en-GB") == "en"
    assert detect_language("", "ar_SY") == "ar"
    assert detect_language("   ") is None
    assert language_code("FR-fr") == "fr" and language_code("und") is None


def test_language_of_text_holding_characters_the_identifier_refuses():
    """Control characters, a lone surrogate and noncharacters (CLD2 refuses the whole text for any of them)
    are read as spaces, so scraped text carrying one still gets its language; CLD2's old code for Hebrew
    comes out as today's."""
    sentence = "L'armée irakienne a proclamé la reprise de Mossoul après neuf mois de combats."
    for odd in ("\x00", "\x0b", "\x85", "\x7f", "\ud800", "\ufffe", "\U0010ffff", "\ufdd0"):
        assert detect_language(sentence.replace(" la ", f" la{odd} "), "en") == "fr", repr(odd)
    assert detect_language("כוחות סוריה הדמוקרטיים הודיעו כי השתלטו על העיר דיר א-זור והלחימה בדאעש נמשכת.") == "he"
    assert detect_language("\x00\x01\x02", "ar") == "ar"


def test_a_short_text_keeps_the_declared_language():
    """A headline is too short to overrule what the feed or page declares (CLD2 calls this one English);
    with nothing declared, CLD2's guess is used."""
    assert detect_language("Reprise de Mossoul", "fr") == "fr"
    assert detect_language("Syrian troops advanced in the Euphrates Valley", None) == "en"


@pytest.mark.parametrize(
    ("meta", "published"),
    [
        ("2017-11-04T08:12:00Z", datetime(2017, 11, 4, 8, 12, tzinfo=UTC)),
        ("2017-11-04T08:12:00+03:00", datetime(2017, 11, 4, 5, 12, tzinfo=UTC)),
        ("2017-11-04", datetime(2017, 11, 4, tzinfo=UTC)),
    ],
)
def test_a_time_in_the_page_metadata_is_kept(meta: str, published: datetime):
    """article:published_time with a time keeps it, in its zone, as UTC (issue #15: it became midnight);
    a date alone is midnight UTC."""
    words = " ".join(["Iraqi forces entered Al-Qaim near the Syrian border on Friday morning."] * 8)
    page = (
        f'<html><head><meta property="article:published_time" content="{meta}"><title>Al-Qaim</title></head>'
        f"<body><article><h1>Al-Qaim</h1><p>{words}</p><p>{words}</p></article></body></html>"
    )
    assert extract_article(page, "https://news.example/2017/al-qaim.html").published == published
