"""Tests for crawler.charset.decode_html: BOM, declared charsets, wrong declarations, detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.charset import decode_html

ARTICLES = Path(__file__).with_name("fixtures") / "articles"
ARABIC = "دير الزور"
FRENCH = "Mossoul libérée de l'État islamique"


def page(name: str) -> bytes:
    return (ARTICLES / name).read_bytes()


def test_utf8_bom_wins_over_a_contrary_declaration():
    """A UTF-8 BOM decides even when header and <meta> say windows-1252; the BOM is not kept."""
    text = decode_html(page("utf8_bom.html"), "text/html; charset=windows-1252")
    assert ARABIC in text and not text.startswith("\ufeff")


def test_windows_1256_declared_in_meta():
    """Arabic in windows-1256 declared by <meta http-equiv> decodes correctly without a header."""
    assert ARABIC in decode_html(page("ar_windows1256.html"), None)


def test_iso_8859_6_declared_in_meta():
    """Arabic in ISO-8859-6 declared by <meta charset> decodes correctly."""
    text = decode_html(page("ar_iso8859_6.html"), "text/html")
    assert ARABIC in text and "البوكمال" in text


def test_http_header_charset_is_used_when_the_page_declares_none():
    """The Content-Type header's charset decodes an undeclared windows-1256 page."""
    assert ARABIC in decode_html(page("ar_windows1256_undeclared.html"), "text/html; charset=windows-1256")


def test_undeclared_legacy_arabic_is_detected():
    """With no declaration anywhere, windows-1256 Arabic is recognised by detection."""
    assert ARABIC in decode_html(page("ar_windows1256_undeclared.html"), None)


@pytest.mark.parametrize("content_type", [None, "text/html; charset=ISO-8859-1"])
def test_wrong_latin1_declaration_on_windows_1256_bytes_is_overridden(content_type: str | None):
    """A page claiming iso-8859-1 whose bytes are windows-1256 reads as Arabic, not mojibake."""
    text = decode_html(page("wrong_charset_cp1256.html"), content_type)
    assert ARABIC in text and "Ç" not in text


@pytest.mark.parametrize("content_type", [None, "text/html; charset=iso-8859-1", "text/html; charset=windows-1256"])
def test_wrong_declaration_on_utf8_bytes_is_overridden(content_type: str | None):
    """A UTF-8 page mislabelled as a single-byte charset (header or meta) still reads correctly."""
    text = decode_html(page("wrong_charset_utf8.html"), content_type)
    assert FRENCH in text and "Ã©" not in text


def test_wrong_header_falls_back_to_the_correct_meta():
    """A header charset that garbles the page gives way to the page's own correct <meta> charset."""
    assert ARABIC in decode_html(page("ar_iso8859_6.html"), "text/html; charset=windows-1256")


def test_genuine_latin1_page_is_left_alone():
    """Correctly declared ISO-8859-1 French is not mistaken for mojibake."""
    assert FRENCH in decode_html(page("latin1_french.html"), "text/html; charset=ISO-8859-1")


def test_plain_utf8_and_empty_bodies():
    """Undeclared UTF-8 decodes as UTF-8; an empty body is an empty string."""
    assert decode_html("<p>Deir Ezzor — دير الزور</p>".encode(), None) == "<p>Deir Ezzor — دير الزور</p>"
    assert decode_html(b"", "text/html; charset=utf-8") == ""


def test_undecodable_bytes_never_raise():
    """Bytes valid in no declared charset are still returned as text."""
    text = decode_html(b"<meta charset='utf-8'><p>abc \xff\xfe\xfa def</p>", "text/html; charset=utf-8")
    assert "abc" in text and "def" in text


def test_unknown_declared_charset_is_ignored():
    """A bogus charset label does not stop decoding."""
    assert decode_html(b"<p>Raqqa</p>", "text/html; charset=x-no-such-charset") == "<p>Raqqa</p>"


def test_utf8_page_with_a_stray_byte_stays_utf8():
    """A UTF-8 Arabic page with one corrupt byte keeps its Arabic, the bad byte becoming U+FFFD."""
    body = page("utf8_bom.html")[3:].replace(b"<article>", b"\xff<article>", 1)
    text = decode_html(body, "text/html; charset=utf-8")
    assert ARABIC in text and text.count("\ufffd") == 1


def test_legacy_page_declared_as_utf8_is_detected():
    """windows-1256 bytes served as UTF-8 do not decode as UTF-8 and are detected instead."""
    assert ARABIC in decode_html(page("ar_windows1256_undeclared.html"), "text/html; charset=utf-8")
