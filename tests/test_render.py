"""Tests of alerts.digests.render: the multipart message, its escaping, links, headers and stable Message-ID."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from html.parser import HTMLParser

from alerts.digests.build import FeedHealth, Trend, build_digest
from alerts.digests.render import build_message, header_safe, message_id_for, render_digest
from newswatch.core.models import Article, Hit, OwedHit
from tests.plugins.smtp import sample_articles

NOW = datetime(2017, 11, 5, 9, 0, tzinfo=UTC)
HOSTILE_TITLE = 'Breaking</a><script>alert("x")</script>\r\nBcc: victim@example.org'
HOSTILE_SENTENCE = 'Deir Ezzor <img src=x onerror="alert(1)"> & "quotes" <b>bold</b>'


def owed(article: Article, watch: str, word: str, sentence: str) -> OwedHit:
    start = max(0, article.text.find(word))
    return OwedHit(Hit(article.id, watch, word, start, start + len(word), "text", sentence), article, NOW)


def sample_digest(**extra):
    a = {x.id: x for x in sample_articles(NOW - timedelta(hours=1))}
    items = [
        owed(
            a["levant-1"],
            "Deir Ezzor",
            "Deir Ezzor",
            "“Deir Ezzor represents the final phase in the complete elimination of Daesh,” the statement added.",
        ),
        owed(a["gulf-1"], "Deir Ezzor", "Deir Ezzor", a["gulf-1"].text),
        owed(a["mashriq-1"], "Deir Ezzor", "دير الزور", a["mashriq-1"].text.split("\n")[0]),
        owed(a["levant-1"], "Daesh", "Daesh", "DEIR EZZOR: Daesh on Friday lost control of the last two towns."),
    ]
    return build_digest("analyst", items, generated=NOW, watch_order=["Deir Ezzor", "Daesh"], **extra)


def hostile_digest():
    article = Article(
        id="evil",
        url="javascript:alert(document.cookie)",
        title=HOSTILE_TITLE,
        text=HOSTILE_SENTENCE,
        feed_id="evil",
        outlet="Evil <i>Outlet</i>\nX-Injected: 1",
        language="en",
        published=NOW,
        fetched=NOW,
    )
    return build_digest("analyst", [owed(article, "Deir Ezzor", "Deir Ezzor", HOSTILE_SENTENCE)], generated=NOW)


def message_of(digest, to_name="Analyst Team"):
    rendered = render_digest(digest)
    message = build_message(
        rendered,
        sender="newswatch <newswatch@example.org>",
        to_name=to_name,
        to_email="analyst@example.org",
        message_id="<nw.abc@example.org>",
        date=NOW,
    )
    return rendered, message_from_bytes(message.as_bytes(policy=policy.SMTP), policy=policy.default)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.hrefs += [value for name, value in attrs if name == "href"]


def parse_html(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def test_message_is_multipart_alternative_with_text_then_html():
    """The message is multipart/alternative: a text/plain part first and a text/html part preferred."""
    _, message = message_of(sample_digest())
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Message-ID"] == "<nw.abc@example.org>"
    assert message["To"].addresses[0].addr_spec == "analyst@example.org"
    assert message["Auto-Submitted"] == "auto-generated"


def test_subject_counts_stories_per_watch():
    """The subject names each watch with its story count, and the day."""
    rendered = render_digest(sample_digest())
    assert rendered.subject == "Deir Ezzor 2 · Daesh 1 — newswatch, 5 Nov 2017"


def test_html_has_highlighted_snippets_links_trend_and_source_health():
    """The HTML shows marked words, article links, 'also reported by', trend lines and failing feeds."""
    health = [FeedHealth("down", "Broken Wire", "failing", None, "HTTP 503", 6)]
    digest = sample_digest(
        trends={
            "Deir Ezzor": Trend(today=3, average_7d=0.0, days_since_previous=12),
            "Daesh": Trend(today=1, average_7d=0.4),
        },
        source_health=health,
    )
    html = render_digest(digest).html
    assert re.search(r"<mark[^>]*>Deir Ezzor</mark> represents the final phase", html)
    assert re.search(r"<mark[^>]*>دير الزور</mark>", html)
    assert 'href="http://127.0.0.1:8000/2017/11/04/daesh-loses-last-towns.html"' in html
    assert re.search(r"Also reported by <a[^>]*>Gulf Wire</a>", html)
    assert "Today 3 articles · <span" in html and "first mention in 12 days" in html
    assert re.search(r'Today <span class="up"[^>]*>1 article ▲</span> against a 7-day average of 0.4 a day', html)
    assert "Broken Wire" in html and "HTTP 503" in html


def test_css_is_inlined_for_mail_clients():
    """Styles are inlined on the elements (no <style> block for Gmail & co. to strip)."""
    html = render_digest(sample_digest()).html
    assert "<style" not in html
    assert re.search(r'<mark style="[^"]*background', html)


def test_arabic_snippets_and_titles_are_right_to_left():
    """Right-to-left snippets and titles carry dir="rtl" (and their language) in the HTML."""
    html = render_digest(sample_digest()).html
    snippet = re.search(r"<p ([^>]*)>[^<]*<mark[^>]*>دير الزور", html).group(1)
    assert 'dir="rtl"' in snippet and 'lang="ar"' in snippet
    title = re.search(r"<p ([^>]*)><a [^>]*>الجيش السوري", html).group(1)
    assert 'dir="rtl"' in title


def test_plain_text_has_the_same_content():
    """The text part has each title, outlet, snippet (matched words starred), 'also reported by' and link."""
    text = render_digest(sample_digest(trends={"Daesh": Trend(today=1, average_7d=2.0)})).text
    assert "DEIR EZZOR — 2 stories, 3 mentions" in text
    assert "* Daesh loses last towns in face of twin Syria, Iraq assaults" in text
    assert "> “*Deir Ezzor* represents the final phase" in text
    assert "*دير الزور*" in text
    assert "Also reported by Gulf Wire" in text
    assert "http://127.0.0.1:8000/2017/11/05/deir-ezzor-ar.html" in text
    assert "Today 1 article against a 7-day average of 2.0 a day" in text


def test_hostile_titles_and_snippets_are_escaped_in_html():
    """Markup in titles, outlets and snippets is shown as text, never interpreted."""
    html = render_digest(hostile_digest()).html
    tags = parse_html(html).tags
    assert "script" not in tags and "img" not in tags and "i" not in tags and "b" not in tags
    assert "&lt;script&gt;alert(" in html and "&lt;img src=x onerror=" in html
    assert "Evil &lt;i&gt;Outlet&lt;/i&gt;" in html


def test_only_http_and_https_links_are_emitted():
    """A javascript: article link produces no href at all; every href in the digest is http(s)."""
    rendered = render_digest(hostile_digest())
    hrefs = parse_html(rendered.html).hrefs
    assert hrefs == []
    assert "javascript" not in rendered.html and "javascript" not in rendered.text
    assert all(h.startswith(("http://", "https://")) for h in parse_html(render_digest(sample_digest()).html).hrefs)


def test_cr_lf_in_untrusted_text_never_reaches_a_header():
    """CR/LF in a title, outlet or recipient name cannot add a header: the header set stays fixed."""
    _, message = message_of(hostile_digest(), to_name="Eve\r\nBcc: victim@example.org")
    assert sorted(message.keys()) == sorted(
        ["From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version", "Content-Type"]
    )
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert "\n" not in message["To"] and "\r" not in message["Subject"]
    assert header_safe("a\r\nb\tc\x00d\u2028e") == "a b c d e"


def test_message_id_is_stable_for_the_same_hits_and_differs_otherwise():
    """Re-rendering a digest of the same hits gives the same Message-ID; other hits give another."""
    first = message_id_for("analyst", ("k1", "k2"), "newswatch <nw@example.org>", NOW)
    again = message_id_for("analyst", ("k2", "k1"), "newswatch <nw@example.org>", NOW + timedelta(hours=1))
    assert first == again and re.fullmatch(r"<nw\.[0-9a-f]{32}@example\.org>", first)
    assert message_id_for("analyst", ("k1",), "nw@example.org", NOW) != first
    assert message_id_for("someone-else", ("k1", "k2"), "nw@example.org", NOW) != first


def test_message_is_seven_bit_clean():
    """Arabic text and typographic punctuation are encoded, so the raw message is plain ASCII."""
    rendered = render_digest(sample_digest())
    message = build_message(
        rendered,
        sender="newswatch <nw@example.org>",
        to_name="مرصد",
        to_email="a@example.org",
        message_id="<nw.1@example.org>",
        date=NOW,
    )
    raw = message.as_bytes(policy=policy.SMTP)
    assert raw.isascii() and all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert "*دير الزور*" in parsed.get_body(("plain",)).get_content()
    assert parsed["Subject"] == rendered.subject and parsed["To"].addresses[0].display_name == "مرصد"
