"""Feeds and sitemaps are decoded per byte, not per document (crawler.charset.xml_as_utf8): one corrupt byte
in a UTF-8 feed costs that byte (U+FFFD), not the feed's encoding."""

from __future__ import annotations

import logging

import pytest

from crawler.charset import decode_html, xml_as_utf8
from crawler.parsing.feeds import parse_feed
from crawler.parsing.sitemaps import parse_sitemap

ARABIC = "دير الزور"
TITLE = "اشتباكات عنيفة في دير الزور"
TEXT = "قصف على ريف دير الزور الشرقي صباح اليوم"


def rss(title: str, text: str, declaration: str = '<?xml version="1.0" encoding="utf-8"?>') -> str:
    item = f"<item><title>{title}</title><link>http://sham.example/1</link><description>{text}</description></item>"
    return f'{declaration}<rss version="2.0"><channel><title>Sham</title>{item}</channel></rss>'


def corrupt(text: str, bad: bytes = b"\xff") -> bytes:
    """``text`` as UTF-8, with ``bad`` where it says "@"."""
    return text.encode().replace(b"@", bad)


@pytest.mark.parametrize("bad", [b"\xff", b"\xd8", b"\xe2\x80", b"\x80"])  # stray, truncated, lone continuation
@pytest.mark.parametrize(
    "declaration", ['<?xml version="1.0" encoding="utf-8"?>', "<?xml version='1.0'?>", "", "\ufeff"]
)
def test_one_bad_byte_in_a_utf8_feed_costs_only_that_byte(bad: bytes, declaration: str):
    """Declared UTF-8, undeclared (XML's default), without a declaration, with a BOM: the Arabic stays."""
    (entry,) = parse_feed(corrupt(rss(TITLE, f"{TEXT} @ تفاصيل", declaration), bad), "http://sham.example/feed")
    assert entry.title == TITLE
    assert entry.summary == f"{TEXT} \ufffd تفاصيل"


def test_a_bad_byte_inside_a_title_spoils_only_that_character():
    (entry,) = parse_feed(corrupt(rss(f"اشتباكات@ في {ARABIC}", TEXT)), "http://sham.example/feed")
    assert entry.title == f"اشتباكات\ufffd في {ARABIC}" and entry.summary == TEXT


def test_the_charset_header_does_not_override_valid_utf8():
    """A server's default `charset=ISO-8859-1` on a UTF-8 feed (with or without a bad byte) reads as UTF-8."""
    for body in (rss(TITLE, TEXT).encode(), corrupt(rss(TITLE, f"{TEXT} @"))):
        (entry,) = parse_feed(body, "http://sham.example/feed", "application/rss+xml; charset=ISO-8859-1")
        assert entry.title == TITLE


def test_utf8_bytes_under_a_legacy_declaration_read_as_utf8():
    declaration = '<?xml version="1.0" encoding="windows-1256"?>'
    for body in (rss(TITLE, TEXT, declaration).encode(), corrupt(rss(TITLE, f"{TEXT} @", declaration))):
        (entry,) = parse_feed(body, "http://sham.example/feed")
        assert entry.title == TITLE


def test_legacy_feeds_still_decode():
    """A windows-1256 feed, declared or not, and a declared latin-1 one read correctly."""
    declared = rss(TITLE, TEXT, '<?xml version="1.0" encoding="windows-1256"?>').encode("cp1256")
    assert parse_feed(declared, "http://sham.example/feed")[0].title == TITLE
    undeclared = rss(TITLE, TEXT * 3, "").encode("cp1256")
    assert parse_feed(undeclared, "http://sham.example/feed")[0].title == TITLE
    french = rss("Mossoul libérée", "L'armée irakienne a proclamé la reprise de Mossoul", "")
    latin1 = french.replace("<rss", '<?xml version="1.0" encoding="ISO-8859-1"?><rss', 1).encode("latin-1")
    assert parse_feed(latin1, "http://wire.example/feed")[0].title == "Mossoul libérée"


def test_xml_as_utf8_leaves_what_the_parsers_read_right_alone():
    """Valid UTF-8 declared as such, ASCII, and UTF-16 with its mark are returned as they are (the same
    object); a legacy body comes back as UTF-8 with a declaration saying so."""
    for body in (rss(TITLE, TEXT).encode(), b"<rss/>", rss(TITLE, TEXT).encode("utf-16")):
        assert xml_as_utf8(body) is body
    legacy = rss(TITLE, TEXT, '<?xml version="1.0" encoding="windows-1256"?>').encode("cp1256")
    assert xml_as_utf8(legacy) == rss(TITLE, TEXT).encode()
    bad = corrupt(rss(TITLE, "@"))
    assert xml_as_utf8(bad) == rss(TITLE, "\ufffd").encode()


def test_one_bad_byte_in_a_news_sitemap_costs_only_that_byte(caplog):
    body = corrupt(
        '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
        f"<url><loc>http://sham.example/1</loc><news:news><news:title>{TITLE} @</news:title></news:news></url>"
        f"<url><loc>http://sham.example/2</loc><news:news><news:title>{ARABIC}</news:title></news:news></url>"
        "</urlset>"
    )
    with caplog.at_level(logging.WARNING):
        entries = parse_sitemap(body, "http://sham.example/sitemap.xml")
    assert [e.title for e in entries] == [f"{TITLE} \ufffd", ARABIC]
    assert "sitemap_malformed" not in caplog.text


def test_a_few_bad_bytes_keep_utf8_whatever_the_label():
    """Up to one invalid sequence per 20 continuation bytes is still UTF-8, even under a wrong legacy label
    (which would otherwise be the fallback once detection gives up on the bad bytes); many more is not."""
    words = " @ ".join([TEXT] * 4)  # 132 continuation bytes, 3 bad bytes
    page = corrupt(f"<html><body><p>{words}</p></body></html>")
    text = decode_html(page, "text/html; charset=windows-1256")
    assert text.count(ARABIC) == 4 and text.count("\ufffd") == 3
    feed = corrupt(rss(TITLE, words, '<?xml version="1.0" encoding="windows-1256"?>'))
    assert parse_feed(feed, "http://sham.example/feed")[0].summary == words.replace("@", "\ufffd")
    assert ARABIC not in decode_html(corrupt(" @ ".join([TEXT] * 4) + " @" * 10), "text/html; charset=windows-1256")
