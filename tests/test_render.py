"""Tests of alerts.digests.render: subject, header counts, both parts alike, anchors, the 14-day chart without
<style>, the multipart message, its escaping, links, headers and stable Message-ID."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from html import unescape
from html.parser import HTMLParser

from alerts.digests.build import DayCount, FeedHealth, Trend, build_digest
from alerts.digests.render import (
    COUNT_HEADERS,
    SUBJECT_LIMIT,
    RenderedEmail,
    build_message,
    header_safe,
    message_id_for,
    render_digest,
)
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
        counts=digest.counts,
    )
    return rendered, message_from_bytes(message.as_bytes(policy=policy.SMTP), policy=policy.default)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.tags, self.ids, self.text = [], [], [], []
        self.cells: list[tuple[dict, str]] = []  # each <td>: its attributes and the text right inside it
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "td":
            self.cells.append((dict(attrs), ""))
        self.hrefs += [value for name, value in attrs if name == "href"]
        self.ids += [value for name, value in attrs if name == "id"]
        self._skip += tag in ("style", "title")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "title")

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)
        if self.cells and self.tags[-1] == "td":
            attrs, text = self.cells[-1]
            self.cells[-1] = (attrs, text + data.strip())


def parse_html(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def visible_text(html: str) -> str:
    """What a reader sees of the HTML: its text, tags gone, entities decoded, whitespace collapsed."""
    return " ".join("".join(parse_html(html).text).split())


def test_message_is_multipart_alternative_with_text_then_html():
    """The message is multipart/alternative: a text/plain part first and a text/html part preferred."""
    _, message = message_of(sample_digest())
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Message-ID"] == "<nw.abc@example.org>"
    assert message["To"].addresses[0].addr_spec == "analyst@example.org"
    assert message["Auto-Submitted"] == "auto-generated"


def test_subject_names_the_most_hit_watches_the_story_count_and_the_day():
    """The subject says which watches, how many stories (each once) and the day."""
    rendered = render_digest(sample_digest())
    assert rendered.subject == "Deir Ezzor, Daesh: 2 new stories — 5 Nov"


def test_subject_stays_short_with_many_long_watch_names():
    """Twelve watches with long names: the subject keeps at most 70 characters, the most-hit watches first,
    then "+N more"; a single name too long for it is cut with an ellipsis."""
    article = {x.id: x for x in sample_articles(NOW)}["levant-1"]
    names = [f"Deir Ezzor Governorate {n:02d}" for n in range(11)] + ["Daesh"]
    items = [owed(article, name, "Daesh", "Daesh on Friday lost control.") for name in names]
    other = Article("o", "https://example.org/o", "Daesh again", "Daesh again.", "f", "Other", published=NOW)
    items.append(owed(other, "Daesh", "Daesh", "Daesh again."))
    subject = render_digest(build_digest("r", items, generated=NOW, watch_order=names)).subject
    assert len(subject) <= SUBJECT_LIMIT
    assert subject == "Daesh, Deir Ezzor Governorate 00 +10 more: 2 new stories — 5 Nov"
    one = [owed(article, "A" * 120, "Daesh", "Daesh on Friday lost control.")]
    lone = render_digest(build_digest("r", one, generated=NOW)).subject
    assert len(lone) <= SUBJECT_LIMIT and lone.endswith("…: 1 new story — 5 Nov")


def test_header_counts_new_stories_for_watches_in_both_parts():
    """The top of each part says how many new stories for how many watches, then articles and mentions."""
    rendered = render_digest(sample_digest())
    for body in (rendered.text, visible_text(rendered.html)):
        assert "2 new stories for 2 watches" in body
        assert "2 stories · 3 articles · 4 mentions" in body


def test_html_has_highlighted_snippets_links_trend_and_source_health():
    """The HTML shows marked words, article links, 'also reported by', trend lines and failing feeds."""
    health = [FeedHealth("down", "Broken Wire", "failing", None, "HTTP 503", 6)]
    week = tuple(DayCount(NOW.date() - timedelta(days=13 - n), n % 3) for n in range(14))
    digest = sample_digest(
        trends={
            "Deir Ezzor": Trend(last_24h=3, average_7d=0.0, history=True, days_since_previous=12, days=week),
            "Daesh": Trend(last_24h=4, average_7d=1.0, history=True, days=week),
        },
        source_health=health,
    )
    html = render_digest(digest).html
    assert re.search(r"<mark[^>]*>Deir Ezzor</mark> represents the final phase", html)
    assert re.search(r"<mark[^>]*>دير الزور</mark>", html)
    assert 'href="http://127.0.0.1:8000/2017/11/04/daesh-loses-last-towns.html"' in html
    assert re.search(r"Also reported by <a[^>]*>Gulf Wire</a>", html)
    assert re.search(r"3 articles in the last 24 hours · <span[^>]*>first mention in 12 days</span>", html)
    assert re.search(r"7-day average 1.0 a day · <span[^>]*>▲ 4\N{MULTIPLICATION SIGN} its 7-day average</span>", html)
    assert "Broken Wire" in html and "HTTP 503" in html


def test_chips_link_to_the_watch_sections_and_sections_to_the_stories():
    """Every watch chip (top and on each story) links to an anchor of the HTML; every section lists its stories
    by links to theirs; each id appears once."""
    html = render_digest(sample_digest()).html
    parsed = parse_html(html)
    assert len(parsed.ids) == len(set(parsed.ids))
    fragments = [h[1:] for h in parsed.hrefs if h.startswith("#")]
    assert set(fragments) <= set(parsed.ids)
    assert {"watch-deir-ezzor", "watch-daesh", "story-1", "story-2"} <= set(fragments)
    assert re.search(r'<a class="chip" href="#watch-daesh"[^>]*>Daesh · 1</a>', html)
    assert len(re.findall(r'href="#watch-deir-ezzor"', html)) == 3  # the top, and the two stories


def test_css_is_inlined_for_mail_clients():
    """Styles are inlined on the elements; the only <style> left holds the dark-mode @media rules."""
    html = render_digest(sample_digest()).html
    styles = re.findall(r"<style[^>]*>(.*?)</style>", html, re.S)
    assert len(styles) == 1 and styles[0].strip().startswith("@media (prefers-color-scheme: dark)")
    assert re.search(r'<mark style="[^"]*background', html)
    assert '<meta name="color-scheme" content="light dark">' in html


def test_chart_survives_a_client_that_strips_style_blocks():
    """With every <style> removed (what Gmail does with some accounts), each section still has its 14-day chart:
    one cell a day whose bar is its bottom border (inline), the day counts as text; a day before the watch's
    first mention on record has no bar and "–", apart from a day of 0 (a grey 2 px baseline)."""
    days = tuple(DayCount(NOW.date() - timedelta(days=13 - n), [0, 1, 4][n % 3] if n else None) for n in range(14))
    trends = {watch: Trend(last_24h=1, average_7d=1.0, history=True, days=days) for watch in ("Deir Ezzor", "Daesh")}
    html = re.sub(r"<style[^>]*>.*?</style>", "", render_digest(sample_digest(trends=trends)).html, flags=re.S)
    rows = re.findall(r'<tr height="34"[^>]*>(.*?)</tr>', html, re.S)
    assert len(rows) == 2
    day_cells = [re.findall(r"<td([^>]*)>", row) for row in rows]
    assert [len(cells) for cells in day_cells] == [14, 14]
    bars = [re.search(r'style="border-bottom: ?(\d+)px solid (#\w+);?"', cell) for cells in day_cells for cell in cells]
    assert [bool(bar) for bar in bars] == ([False] + [True] * 13) * 2  # the day with no data has no bar
    assert {(int(bar[1]), bar[2]) for bar in bars if bar} == {(2, "#c9d0dc"), (8, "#3b6fd4"), (32, "#3b6fd4")}
    count_rows = re.findall(r'<tr align="center"[^>]*>(.*?)</tr>', html, re.S)
    counts = [re.sub(r"<[^>]+>", "", cell) for row in count_rows for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
    assert counts == ["–", *(str(d.articles) for d in days[1:])] * 2
    assert "Articles first seen per day, 23 Oct – 5 Nov" in visible_text(html)


def test_digest_of_12_watches_and_25_stories_stays_under_gmail_clipping():
    """Gmail clips an HTML part over 102 KB: a digest of 12 watches (each with its 14-day chart) and 25 stories
    stays under it, as encoded in the message."""
    base = sample_articles(NOW - timedelta(hours=1))[0]
    watches = [f"Watch number {n}" for n in range(12)]
    items = []
    for n in range(25):
        text = f"{base.text}\nReport {n} names " + ", ".join(watches[(n + k) % 12] for k in range(3)) + "."
        article = Article(
            id=f"a{n}",
            url=f"https://outlet-{n}.example/news/{n}",
            title=f"Story {n}: {base.title}",
            text=text,
            feed_id=f"f{n}",
            outlet=f"Outlet {n}",
            language="en",
            published=NOW - timedelta(hours=n),
            fetched=NOW - timedelta(hours=n),
        )
        for k in range(3):
            watch = watches[(n + k) % 12]
            items.append(owed(article, watch, watch, text.splitlines()[-1]))
    days = tuple(DayCount(NOW.date() - timedelta(days=13 - n), 3 * n + 1) for n in range(14))
    trends = {w: Trend(last_24h=14, average_7d=2.0, history=True, days=days) for w in watches}
    digest = build_digest("analyst", items, generated=NOW, watch_order=watches, trends=trends)
    assert (digest.counts.stories, digest.counts.watches) == (25, 12)
    _, message = message_of(digest)
    html = message.get_body(("html",))
    assert html["Content-Transfer-Encoding"] == "quoted-printable"
    encoded = len(html.get_payload().encode())
    assert encoded < 102_000, encoded  # 95 KB when written
    assert len(parse_html(html.get_content()).cells) >= 12 * 14 * 2


def test_non_ascii_subject_parses_back_exactly():
    """A long non-ASCII subject, serialized as alerts.run does (email.policy.SMTP) and parsed back with the
    default policy, is the subject built, to the space: no double space from header folding."""
    subject = "Mossoul é, Deir Ezzor, Abū Kamāl, Raqqa +3 more: 4 new stories — 2 Dec"
    assert 65 <= len(subject) <= SUBJECT_LIMIT + 2
    for title in (subject, "دير الزور, Abū Kamāl, Mossoul, Raqqa +3 more: 14 new stories — 12 Dec"):
        rendered = render_digest(sample_digest())
        message = build_message(
            RenderedEmail(title, rendered.text, rendered.html),
            sender="newswatch <nw@example.org>",
            to_name="Analyst",
            to_email="a@example.org",
            message_id="<nw.1@example.org>",
            date=NOW,
        )
        for serialize in (policy.SMTP, policy.default):
            raw = message.as_bytes(policy=serialize)
            assert message_from_bytes(raw, policy=policy.default)["Subject"] == title
            lines = [line for line in raw.splitlines() if b"?=" in line]
            assert lines and all(len(line) <= 78 for line in lines)


def test_failing_sources_are_worded_the_same_in_both_parts():
    """A failing source reads the same in the text and the HTML part, singular and plural right."""
    health = [
        FeedHealth("one", "Broken Wire", "failing", None, "HTTP 503", 1),
        FeedHealth("many", "Dead Wire", "failing", NOW - timedelta(days=2), "timeout", 3),
        FeedHealth("quiet", "Quiet Wire", "silent", NOW - timedelta(days=3)),
    ]
    rendered = render_digest(sample_digest(source_health=health))
    html = visible_text(rendered.html)
    for phrase in (
        "failing (1 failure)",
        "failing (3 failures)",
        "last success never",
        "last success 3 Nov 2017 09:00",
        "silent",
        "last success 2 Nov 2017 09:00",
    ):
        assert phrase in rendered.text and phrase in html, phrase
    assert "1 failures" not in rendered.text + html and "\N{MULTIPLICATION SIGN}" not in html


def test_an_update_is_shown_as_one_and_counted_apart():
    """A new copy of a story the recipient got earlier is marked as an update in both parts; the subject and the
    header count new stories only and say the update apart."""
    digest = sample_digest(delivered={"story-deir-ezzor"})
    (update,) = [story for story in digest.stories if story.update]
    assert update.outlet == "The Levant Monitor"
    counts = digest.counts
    assert (counts.stories, counts.updates) == (1, 1)
    rendered = render_digest(digest)
    assert rendered.subject.endswith(": 1 new story, 1 update — 5 Nov")
    html = visible_text(rendered.html)
    for body in (rendered.text, html):
        assert "1 new story for 2 watches · 1 update" in body
        assert "1 story · 1 update · 3 articles · 4 mentions" in body
        assert "an update of a story sent to you earlier" in body
    assert "[update] Daesh loses last towns" in rendered.text
    assert re.search(r'<span class="update"[^>]*>update</span>', rendered.html)
    _, message = message_of(digest)
    assert (message["X-Newswatch-Stories"], message["X-Newswatch-Updates"]) == ("1", "1")


def test_arabic_snippets_and_titles_are_right_to_left():
    """Right-to-left snippets and titles carry dir="rtl" (and their language) in the HTML."""
    html = render_digest(sample_digest()).html
    snippet = re.search(r"<p ([^>]*)>[^<]*<mark[^>]*>دير الزور", html).group(1)
    assert 'dir="rtl"' in snippet and 'lang="ar"' in snippet
    title = re.search(r"<p ([^>]*)><span[^>]*>\d+\.</span><a [^>]*>الجيش السوري", html).group(1)
    assert 'dir="rtl"' in title


def test_plain_text_has_the_same_content_and_footer():
    """The text part has the same stories (title, watches, outlet, snippets with matched words starred,
    'also reported by', link), the same sections, trend lines and chart counts, and the same footer."""
    days = tuple(DayCount(NOW.date() - timedelta(days=13 - n), 1 if n == 13 else 0) for n in range(14))
    trends = {"Daesh": Trend(last_24h=1, average_7d=2.0, history=True, days=days)}
    rendered = render_digest(sample_digest(trends=trends))
    text, html = rendered.text, visible_text(rendered.html)
    assert "DEIR EZZOR — 2 stories · 3 articles · 3 mentions" in text
    assert "Deir Ezzor 2 stories · 3 articles · 3 mentions" in html
    assert "1. الجيش السوري يعلن السيطرة الكاملة على مدينة دير الزور" in text
    assert "2. Daesh loses last towns in face of twin Syria, Iraq assaults" in text
    assert "Watches: Deir Ezzor · Daesh" in text
    assert "> “*Deir Ezzor* represents the final phase" in text
    assert "*دير الزور*" in text
    assert "http://127.0.0.1:8000/2017/11/05/deir-ezzor-ar.html" in text
    assert "0 0 0 0 0 0 0 0 0 0 0 0 0 1" in text and "▁▁▁▁▁▁▁▁▁▁▁▁▁█" in text
    for both in (
        "1 article in the last 24 hours · 7-day average 2.0 a day",
        "Also reported by Gulf Wire",
        "The Levant Monitor",
        "first seen 5 Nov 2017 09:00",
        "Articles first seen per day, 23 Oct – 5 Nov",
    ):
        assert both in text and both in html, both
    footer = re.search(r'<div class="footer"[^>]*>(.*?)</div>', rendered.html, re.S).group(1)
    sentences = [unescape(re.sub(r"<[^>]+>", "", p)).strip() for p in re.findall(r"<p[^>]*>(.*?)</p>", footer, re.S)]
    assert len(sentences) == 2 and text.rstrip().endswith("\n".join(sentences))


def test_watches_layout_groups_the_stories_under_each_watch():
    """digest_layout: watches shows each watch's stories under it (a story of two watches under both), with no
    separate list of stories; the counts stay those of the stories layout."""
    digest = sample_digest(layout="watches")
    rendered = render_digest(digest)
    assert rendered.text.count("Daesh loses last towns in face of twin Syria, Iraq assaults") == 2
    assert "STORIES" not in rendered.text and "BY WATCH" not in rendered.text
    assert "2 new stories for 2 watches" in rendered.text and rendered.subject.endswith("2 new stories — 5 Nov")
    assert 'id="story-' not in rendered.html and 'id="watch-daesh"' in rendered.html


def test_message_carries_the_counts_for_outbox_list():
    """The X-Newswatch-* headers hold the digest's stories, articles, mentions, watches and updates."""
    digest = sample_digest()
    _, message = message_of(digest)
    assert [message[h] for h in COUNT_HEADERS.values()] == ["2", "3", "4", "2", "0"]
    assert int(message["X-Newswatch-Mentions"]) == len(digest.hit_keys)


def test_hostile_titles_and_snippets_are_escaped_in_html():
    """Markup in titles, outlets and snippets is shown as text, never interpreted."""
    html = render_digest(hostile_digest()).html
    tags = parse_html(html).tags
    assert "script" not in tags and "img" not in tags and "i" not in tags and "b" not in tags
    assert "&lt;script&gt;alert(" in html and "&lt;img src=x onerror=" in html
    assert "Evil &lt;i&gt;Outlet&lt;/i&gt;" in html


def test_only_http_and_https_links_are_emitted():
    """A javascript: article link produces no href at all; every link out of the digest is http(s)."""
    rendered = render_digest(hostile_digest())
    hrefs = [h for h in parse_html(rendered.html).hrefs if not h.startswith("#")]  # in-message anchors aside
    assert hrefs == []
    assert "javascript" not in rendered.html and "javascript" not in rendered.text
    links = [h for h in parse_html(render_digest(sample_digest()).html).hrefs if not h.startswith("#")]
    assert links and all(h.startswith(("http://", "https://")) for h in links)


def test_cr_lf_in_untrusted_text_never_reaches_a_header():
    """CR/LF in a title, outlet or recipient name cannot add a header: the header set stays fixed."""
    _, message = message_of(hostile_digest(), to_name="Eve\r\nBcc: victim@example.org")
    assert sorted(message.keys()) == sorted(
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "Auto-Submitted",
            "MIME-Version",
            "Content-Type",
            *COUNT_HEADERS.values(),
        ]
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
