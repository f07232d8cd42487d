"""No stored field of an Article holds a control character (newswatch.core.models.strip_controls), so a digest
carries none either."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from alerts.digests.build import build_digest
from alerts.digests.render import render_digest
from newswatch.core.models import Article, Hit, OwedHit, strip_controls

NOW = datetime(2017, 11, 5, 9, 0, tzinfo=UTC)


def dirty_article(**fields) -> Article:
    values = {
        "id": "a1",
        "url": "http://wire.example/\x00story",
        "title": "Deir Ezzor\x00 bakeries\x07 reopen",
        "text": "Bread\x00 is back in Deir Ezzor.\r\nQueues\x1b formed\tat dawn.\x7f\x85\ud800",
        "feed_id": "wire",
        "outlet": "Wire\x00 Service\n",
        "author": "Sam\x0b Dagher",
        "language": "en\x00",
        "published": NOW,
        "fetched": NOW,
    }
    return Article(**(values | fields))


def test_every_text_field_loses_its_control_characters():
    """NUL, BEL, ESC, DEL, C1 controls and lone surrogates go; the text keeps its tab and line breaks (CRLF
    becomes LF), one-line fields get a space for a line break or tab."""
    article = dirty_article()
    assert article.title == "Deir Ezzor bakeries reopen"
    assert article.text == "Bread is back in Deir Ezzor.\nQueues formed\tat dawn."
    assert article.url == "http://wire.example/story"
    assert (article.outlet, article.author, article.language) == ("Wire Service ", "Sam Dagher", "en")
    assert replace(article, title="again\x00").title == "again"


def test_clean_values_are_kept_as_they_are():
    """Text without control characters is the very same string (nothing copied); Arabic, RLM and ZWNJ stay."""
    text = "دير الزور\u200f تحت القصف\u200c\nسطر ثان"
    assert strip_controls(text, multiline=True) is text
    assert Article("i", "u", "t", text, "f", "o").text is text


def test_articles_read_back_from_a_record_are_cleaned_too():
    """A record written before this rule (a store's row with a NUL) gives a clean Article."""
    record = dirty_article().to_record() | {"title": "Raqqa\x00 news", "text": "x\x00y"}
    article = Article.from_record(record)
    assert (article.title, article.text) == ("Raqqa news", "xy")


def test_the_digest_text_part_carries_no_nul():
    """A feed title with NUL and BEL reaches the digest's text part without them."""
    article = dirty_article()
    start = article.text.find("Deir Ezzor")
    hit = Hit(article.id, "Deir Ezzor", "Deir Ezzor", start, start + 10, "text", article.text.split("\n")[0])
    rendered = render_digest(build_digest("analyst", [OwedHit(hit, article, NOW)], generated=NOW))
    assert "Deir Ezzor bakeries reopen" in rendered.text
    for part in (rendered.text, rendered.html, rendered.subject):
        assert not [c for c in part if ord(c) < 32 and c not in "\t\n"], part
