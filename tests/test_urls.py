"""Tests for crawler.urls: canonical URLs and article ids."""

from __future__ import annotations

import re

import pytest

from crawler.urls import article_id, canonical_url, is_tracking_param


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTP://News.Example.COM/a/B.html", "http://news.example.com/a/B.html"),
        ("http://example.com:80/x", "http://example.com/x"),
        ("https://example.com:443/x", "https://example.com/x"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/story.html#comments", "https://example.com/story.html"),
        ("https://example.com/s?b=2&a=1", "https://example.com/s?a=1&b=2"),
        (
            "https://example.com/s?id=7&utm_source=rss&utm_medium=feed&UTM_Campaign=x&fbclid=abc&gclid=1",
            "https://example.com/s?id=7",
        ),
        ("https://example.com/s?mc_cid=1&mc_eid=2&page=2", "https://example.com/s?page=2"),
        ("https://example.com/s?utm_source=rss", "https://example.com/s"),
        ("https://example.com/%7euser/a%20b", "https://example.com/~user/a%20b"),
        ("https://example.com/search?q=%D8%AF%D9%8A%D8%B1", "https://example.com/search?q=%D8%AF%D9%8A%D8%B1"),
        ("http://[::1]:80/a", "http://[::1]/a"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("https://www.example.fr/monde/article.html?xtor=RSS-3", "https://www.example.fr/monde/article.html"),
        ("https://example.com/a.html;jsessionid=0AB12?id=4&JSESSIONID=9", "https://example.com/a.html?id=4"),
        ("https://example.com/#!/article/123", "https://example.com/#!/article/123"),
        ("https://example.com/a.html?b=1#!/x?utm_source=y", "https://example.com/a.html?b=1#!/x?utm_source=y"),
        ("https://example.com/?utm_source=x#!/story/1", "https://example.com/#!/story/1"),
        ("https://example.com/?xtor=RSS-3#!/story/2", "https://example.com/#!/story/2"),
    ],
)
def test_canonical_url_normalises_case_ports_fragments_tracking_and_query_order(url: str, canonical: str):
    """canonical_url lower-cases scheme/host, drops default ports, fragments and tracking params, sorts the query."""
    assert canonical_url(url) == canonical


def test_canonical_url_is_idempotent():
    """Canonicalising a canonical URL changes nothing."""
    once = canonical_url("HTTPS://Example.com:443/a/?z=1&y=2&utm_term=x#top")
    assert canonical_url(once) == once


def test_non_http_strings_come_back_unchanged():
    """Relative paths and other schemes are returned stripped, never raising."""
    assert canonical_url("/2017/11/04/story.html") == "/2017/11/04/story.html"
    assert canonical_url("mailto:desk@example.com") == "mailto:desk@example.com"
    assert canonical_url("http://example.com:abc/x#f") == "http://example.com:abc/x"
    assert canonical_url(" http://[oops/story ") == "http://[oops/story"  # unclosed IPv6 bracket
    assert article_id("http://[oops/story") != article_id("http://[oops/other")


def test_hashbang_routes_are_distinct_articles():
    """Sites that route in the browser name each article in a "#!" fragment: those are not one page."""
    assert article_id("https://example.com/#!/article/1") != article_id("https://example.com/#!/article/2")
    assert article_id("https://example.com/a#comments") == article_id("https://example.com/a")


def test_tracking_params_are_matched_by_name_and_utm_prefix():
    """utm_* by prefix and the named click ids are tracking parameters; ordinary ones are not."""
    assert is_tracking_param("utm_content") and is_tracking_param("FBCLID") and is_tracking_param("mc_eid")
    assert not is_tracking_param("id") and not is_tracking_param("page") and not is_tracking_param("utm")


def test_article_id_is_a_stable_sha1_of_the_canonical_url():
    """The same article under tracking/fragment/case variants has one 40-hex-digit id."""
    ids = {
        article_id("https://example.com/story.html"),
        article_id("HTTPS://EXAMPLE.com:443/story.html?utm_source=twitter#top"),
        article_id("https://example.com/story.html?fbclid=XYZ"),
    }
    assert len(ids) == 1
    (only,) = ids
    assert re.fullmatch(r"[0-9a-f]{40}", only)
    # Pinned: ids are stored, so the digest of a canonical URL must never change.
    assert only == "ff6535651a5ab023089360a49fec3f36752d269d"
    assert article_id("https://example.com/other.html") != only
