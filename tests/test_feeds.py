"""Tests for crawler.parsing.feeds: RSS/Atom/sitemap parsing into FeedEntry values, errors, autodiscovery, JSON."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler.parsing.feeds import discover_feeds, feed_kind, feed_to_json, parse_feed
from crawler.parsing.sitemaps import parse_sitemap, sitemap_index_entries
from newswatch.core.errors import FeedError

FEEDS = Path(__file__).with_name("fixtures") / "feeds"
DEMO_SITE = Path(__file__).resolve().parents[1] / "newswatch" / "demo" / "site"
FEED_URL = "https://feeds.example.com/path/feed.xml"


def fixture(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def test_rss20_items_have_plain_text_utc_dates_and_guids():
    """RSS 2.0: HTML summaries become plain text, pubDates aware UTC, guid falls back to the link."""
    first, second, undated = parse_feed(fixture("rss20.xml"), FEED_URL)
    assert first.title == "Daesh loses last towns in face of twin Syria, Iraq assaults"
    assert first.link == "https://news.example.com/2017/11/04/daesh-loses-last-towns.html"
    assert first.published == datetime(2017, 11, 4, 9, 15, tzinfo=UTC)
    assert first.summary == (
        "Daesh on Friday lost control of the last two major towns under its grip in Syria and Iraq. Abu Kamal is next."
    )
    assert first.guid == "wire-20171104-0915" and first.author == "AFP"
    assert second.title == "Fighting & flight: Deir Ezzor residents return"
    assert second.summary == "Families return to Deir Ezzor & find homes in ruins."
    assert second.guid == second.link
    assert undated.published is None and undated.updated is None


def test_rss10_rdf_items_take_their_date_from_dc_date():
    """RSS 1.0 (RDF): items are read, and dc:date is the item's published date."""
    entries = parse_feed(fixture("rss10.rdf"), FEED_URL)
    assert [e.link for e in entries] == ["https://rdf.example.org/abu-kamal.html", "https://rdf.example.org/raqqa.html"]
    assert entries[0].published == datetime(2017, 11, 5, 7, 30, tzinfo=UTC)
    assert entries[0].author == "Staff reporter"
    assert entries[1].published == datetime(2017, 11, 3, tzinfo=UTC)


def test_rss091_latin1_feed_is_decoded_and_has_no_dates():
    """RSS 0.91 in ISO-8859-1 with a Netscape DOCTYPE: accents survive, dates are None."""
    (entry,) = parse_feed(fixture("rss091.xml"), FEED_URL)
    assert entry.title == "Mossoul : l'État islamique recule"
    assert "où l'armée avance" in entry.summary
    assert entry.published is None and entry.guid == "http://old.example.net/mossoul.html"


def test_atom10_resolves_xml_base_and_keeps_published_and_updated_apart():
    """Atom 1.0: xml:base links resolved, HTML title/summary flattened, updated kept separately; an entry with
    only <updated> is dated by it (issue #15: it was stored without a date)."""
    first, second = parse_feed(fixture("atom10.xml"), FEED_URL)
    assert first.link == "https://atom.example.com/news/al-qaim.html"
    assert first.title == "Iraqi forces take Al-Qaim"
    assert first.summary == "Iraqi forces captured the Husaybah border post."
    assert first.published == datetime(2017, 11, 3, 15, 0, tzinfo=UTC)
    assert first.updated == datetime(2017, 11, 4, 9, 0, tzinfo=UTC)
    assert first.guid == "tag:atom.example.com,2017:al-qaim" and first.author == "Jane Reporter"
    assert second.published == second.updated == datetime(2017, 11, 5, 12, 30, tzinfo=UTC)
    assert second.summary == "SDF fighters hold the Raqqa stadium."


def test_atom03_issued_and_modified_map_to_published_and_updated():
    """Atom 0.3: <issued> is the published date and <modified> the updated date, both in UTC."""
    (entry,) = parse_feed(fixture("atom03.xml"), FEED_URL)
    assert entry.link == "http://legacy.example.com/deir-ezzor.html"
    assert entry.published == datetime(2017, 11, 3, 20, 0, tzinfo=UTC)
    assert entry.updated == datetime(2017, 11, 4, 10, 0, tzinfo=UTC)
    assert entry.author == "Desk"


def test_relative_links_resolve_against_the_feed_url_and_linkless_items_are_dropped():
    """Root- and path-relative item links become absolute; an item without a link is skipped."""
    entries = parse_feed(fixture("relative_links.xml"), FEED_URL)
    assert [e.link for e in entries] == [
        "https://feeds.example.com/2017/11/04/daesh-loses-last-towns.html",
        "https://feeds.example.com/path/stories/abu-kamal.html?utm_source=rss",
    ]


def test_local_file_feed_keeps_relative_links_as_written():
    """With a file:// feed URL there is no site to resolve against, so relative links stay as written."""
    entries = parse_feed((DEMO_SITE / "feed.xml").read_bytes(), (DEMO_SITE / "feed.xml").as_uri())
    assert entries[2].link == "/2017/11/04/daesh-loses-last-towns.html"


def test_duplicate_guids_and_links_are_kept_once():
    """An item repeating an earlier guid, or the same link up to tracking/fragment, is dropped."""
    entries = parse_feed(fixture("duplicate_guids.xml"), FEED_URL)
    assert [(e.title, e.guid) for e in entries] == [("First copy", "story-1"), ("Second story", "story-2")]


def test_empty_but_valid_feed_gives_no_entries():
    """A well-formed channel without items is not an error."""
    assert parse_feed(fixture("empty_feed.xml"), FEED_URL) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not a feed: empty body"),
        (b"  \n", "not a feed: empty body"),
        (fixture("html_as_rss.html"), "not a feed: got an HTML page"),
        (fixture("malformed.xml"), "malformed XML: mismatched tag (line 3)"),
        (b'<?xml version="1.0"?><catalog><book/></catalog>', "not a feed: no RSS or Atom root element"),
        (fixture("sitemap.xml"), "not a feed: got a sitemap"),
    ],
)
def test_non_feeds_raise_feed_error_with_a_one_line_reason(body: bytes, reason: str):
    """Empty bodies, HTML pages, malformed XML and other XML raise FeedError saying why."""
    with pytest.raises(FeedError) as raised:
        parse_feed(body, FEED_URL)
    assert str(raised.value) == reason


def test_malformed_line_number_counts_lines_of_the_body_as_given():
    """Without an XML declaration the reported line is still the line in the body."""
    with pytest.raises(FeedError, match=r"malformed XML: mismatched tag \(line 2\)"):
        parse_feed(b'<rss version="2.0"><channel>\n<title>x</titel></channel></rss>', FEED_URL)


def test_demo_feed_links_resolve_against_any_port():
    """The bundled demo feed's relative links follow the host and port the site is served on."""
    entries = parse_feed((DEMO_SITE / "feed.xml").read_bytes(), "http://127.0.0.1:8765/feed.xml")
    assert len(entries) == 5
    assert all(e.link.startswith("http://127.0.0.1:8765/2017/") and e.published for e in entries)
    raqqa = next(e for e in entries if "raqqa" in e.link)
    assert "Raqqa" in raqqa.summary


def test_news_sitemap_gives_titles_and_publication_dates():
    """A Google News sitemap yields title, link, published (news:publication_date) and updated (lastmod)."""
    first, second = parse_sitemap(fixture("news_sitemap.xml"), "https://news.example.com/sitemap-news.xml")
    assert first.title == "Daesh loses last towns in face of twin Syria, Iraq assaults"
    assert first.link == first.guid == "https://news.example.com/2017/11/04/daesh-loses-last-towns.html"
    assert first.published == datetime(2017, 11, 4, 9, 15, tzinfo=UTC)
    assert first.updated == datetime(2017, 11, 4, 12, 0, tzinfo=UTC)
    assert second.published == datetime(2017, 11, 5, tzinfo=UTC) and second.updated is None


def test_plain_sitemap_resolves_locs_dedupes_and_skips_empty_urls():
    """A plain urlset: relative locs resolved, lastmod as updated, duplicates and loc-less <url>s dropped."""
    entries = parse_sitemap(fixture("sitemap.xml"), "https://news.example.com/sitemap.xml")
    assert [e.link for e in entries] == [
        "https://news.example.com/about.html",
        "https://news.example.com/2017/11/04/daesh-loses-last-towns.html",
        "https://news.example.com/2017/11/05/relative.html",
    ]
    assert entries[0].updated is None and entries[0].published is None
    assert entries[2].updated == datetime(2017, 11, 5, 7, 30, tzinfo=UTC)


def test_gzipped_sitemap_is_read():
    """A .xml.gz sitemap body is decompressed before parsing."""
    entries = parse_sitemap(gzip.compress(fixture("sitemap.xml")), "https://news.example.com/sitemap.xml.gz")
    assert len(entries) == 3


def test_sitemap_index_lists_child_sitemaps_and_is_not_a_urlset():
    """sitemap_index_entries gives the absolute child URLs; parse_sitemap refuses an index with a reason."""
    body = fixture("sitemap_index.xml")
    assert [link for link, _ in sitemap_index_entries(body, "https://news.example.com/sitemap.xml")] == [
        "https://news.example.com/sitemaps/news.xml",
        "https://news.example.com/sitemaps/2017-11.xml.gz",
    ]
    with pytest.raises(FeedError, match="not a sitemap: got a sitemap index"):
        parse_sitemap(body, "https://news.example.com/sitemap.xml")
    with pytest.raises(FeedError, match="not a sitemap index: got a sitemap"):
        sitemap_index_entries(fixture("sitemap.xml"), "https://news.example.com/sitemap.xml")


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"", "empty body"), (b"hello", "not XML"), (fixture("html_as_rss.html"), "got an HTML page")],
)
def test_non_sitemaps_raise_feed_error(body: bytes, reason: str):
    """Empty, non-XML and HTML bodies are not sitemaps."""
    with pytest.raises(FeedError, match=f"not a sitemap: {reason}"):
        parse_sitemap(body, "https://news.example.com/sitemap.xml")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("rss20.xml", "rss"),
        ("rss10.rdf", "rdf"),
        ("atom03.xml", "atom"),
        ("news_sitemap.xml", "sitemap"),
        ("sitemap_index.xml", "sitemapindex"),
        ("html_as_rss.html", "html"),
    ],
)
def test_feed_kind_sniffs_the_root_element(name: str, kind: str):
    """feed_kind tells feeds, sitemaps, sitemap indexes and HTML apart."""
    assert feed_kind(fixture(name)) == kind


def test_feed_kind_of_non_xml_is_unknown():
    """Bodies with no element at all are "unknown"."""
    assert feed_kind(b"") == feed_kind(b"plain words") == "unknown"


def test_discover_feeds_finds_rss_and_atom_alternates():
    """Autodiscovery returns absolute RSS/Atom URLs once each, ignoring other alternates."""
    html = (FEEDS / "discover.html").read_text(encoding="utf-8")
    assert discover_feeds(html, "https://news.example.com/index.html") == [
        "https://news.example.com/feeds/latest.xml",
        "https://cdn.example.com/atom.xml",
    ]
    assert discover_feeds("", "https://news.example.com/") == []
    assert discover_feeds("<html><head></head><body>x</body></html>", "https://news.example.com/") == []


def test_feed_to_json_is_the_cli_contract():
    """Each item has title, link, published (ISO 8601 or null) and summary, and serialises to JSON."""
    items = json.loads(json.dumps(feed_to_json(parse_feed(fixture("rss20.xml"), FEED_URL))))
    assert items[0]["published"] == "2017-11-04T09:15:00+00:00"
    assert items[2]["published"] is None
    assert {"title", "link", "published", "summary", "guid", "author"} <= set(items[0])


@pytest.mark.parametrize(
    "opening",
    [
        b"<!doctype html>",
        b"<!Doctype HTML>",
        b"<!-- top --><!doctype html>",
        b"\xef\xbb\xbf<!doctype html>",
        b"",
        b"\n  ",
    ],
)
def test_feed_kind_of_html5_pages_is_html(opening: bytes):
    """HTML5's lower-case doctype (which an XML parser refuses), a comment before it, a BOM, or no doctype
    at all: still an HTML page, so its feed is discovered."""
    assert feed_kind(opening + b"<html><head><title>Home</title></head><body>x</body></html>") == "html"
    assert feed_kind(opening + b"<head><title>Home</title></head><body>x</body>") == "html"


def test_feed_kind_does_not_take_html_inside_a_feed_for_a_page():
    """A feed with junk before its XML declaration and HTML in a CDATA description is not an HTML page."""
    item = b"<item><description><![CDATA[<body><p>x</p></body>]]></description></item>"
    body = b'junk\n<?xml version="1.0"?><rss version="2.0"><channel>' + item + b"</channel></rss>"
    assert feed_kind(body) == "unknown"


def test_a_malformed_link_loses_only_its_own_item(caplog):
    """An item whose link urllib cannot even split ("http://[oops", an unclosed IPv6 bracket) is dropped with
    one warning naming it; the feed's other items are kept, and autodiscovery skips such an href."""
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>Bad</title><link>http://[oops/story</link></item>"
        b"<item><title>Good</title><link>/good.html</link></item></channel></rss>"
    )
    with caplog.at_level("WARNING", logger="crawler.parsing.feeds"):
        entries = parse_feed(body, FEED_URL)
    assert [e.link for e in entries] == ["https://feeds.example.com/good.html"]
    assert [r.getMessage() for r in caplog.records] == [
        f"link_malformed url={FEED_URL} link=http://[oops/story reason=Invalid IPv6 URL"
    ]
    html = (
        '<html><head><link rel="alternate" type="application/rss+xml" href="http://[oops/rss">'
        '<link rel="alternate" type="application/rss+xml" href="/rss.xml"></head></html>'
    )
    assert discover_feeds(html, "https://news.example.com/") == ["https://news.example.com/rss.xml"]
