"""Pure crawler rules: adaptive schedule, backoff, conditional requests, seen set, feed runs, refusals, sources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.articles import entry_article_id
from crawler.failures import classify_failure, content_refusal
from crawler.parsing.source import Children, Discovered, Entries, read_source
from crawler.polling.intervals import MAX_INTERVAL, MIN_INTERVAL, due_feeds, failure_backoff, is_due, poll_interval
from crawler.polling.run import PAGE_RETRIES, FeedRun, FeedRuns
from crawler.polling.selection import select_entries
from crawler.polling.state import body_digest, conditional_headers, full_fetch, record_failure, record_success
from crawler.urls import preferred_url
from newswatch.core.config.feeds import Feed
from newswatch.core.errors import FeedError
from newswatch.core.feedstate import UNHEALTHY_AFTER, FeedState
from newswatch.core.models import Article, FeedEntry

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FEEDS = Path(__file__).with_name("fixtures") / "feeds"


def _every(gap: timedelta, n: int = 10, newest: datetime = NOW) -> list[datetime]:
    return [newest - i * gap for i in range(n)]


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (_every(timedelta(minutes=5)), MIN_INTERVAL),  # a busy wire: the 10-minute floor
        (_every(timedelta(hours=2)), timedelta(hours=1)),  # half the publishing gap
        (_every(timedelta(hours=2), newest=NOW - timedelta(hours=10)), timedelta(hours=2, minutes=30)),  # gone quiet
        (_every(timedelta(days=3)), MAX_INTERVAL),  # the 24-hour ceiling
        (_every(timedelta(hours=1), newest=NOW - timedelta(days=365 * 9)), MAX_INTERVAL),  # a dead feed
    ],
)
def test_poll_interval_follows_the_publishing_rate(dates: list[datetime], expected: timedelta):
    """Dated items set the interval to half the gap between items (or half the silence), within 10 min..24 h."""
    assert poll_interval(None, dates, new_items=0, now=NOW) == expected


def test_poll_interval_of_an_undated_feed_adapts_to_what_each_poll_brings():
    """Without dates, a poll with news halves the interval and one without stretches it by half."""
    assert poll_interval(timedelta(hours=2), [], new_items=3, now=NOW) == timedelta(hours=1)
    assert poll_interval(timedelta(hours=2), [], new_items=0, now=NOW) == timedelta(hours=3)
    assert poll_interval(timedelta(hours=20), [], new_items=0, now=NOW) == MAX_INTERVAL
    assert poll_interval(None, [NOW + timedelta(days=30), NOW + timedelta(days=31)], 0, NOW) == timedelta(
        hours=1, minutes=30
    )


def test_failures_back_off_exponentially_and_mark_the_feed_unhealthy():
    """10, 20, 40, 80 minutes... capped at 24 h; after UNHEALTHY_AFTER failures in a row the feed is unhealthy."""
    assert [failure_backoff(n) for n in (1, 2, 3, 4)] == [MIN_INTERVAL * k for k in (1, 2, 4, 8)]
    assert failure_backoff(9) == failure_backoff(1000) == MAX_INTERVAL
    state = record_success(None, name="F", now=NOW, items=3, new_items=3, interval=timedelta(hours=1))
    for n in range(1, UNHEALTHY_AFTER + 1):
        state = record_failure(state, name="F", now=NOW, reason="HTTP 500")
        assert state.healthy is (n < UNHEALTHY_AFTER)
        assert state.next_due == NOW + failure_backoff(n)
    assert state.last_success == NOW and state.items_seen == 3
    recovered = record_success(state, name="F", now=NOW, items=3, new_items=1, interval=timedelta(hours=1))
    assert recovered.healthy and recovered.consecutive_failures == 0 and recovered.items_seen == 4
    assert recovered.last_error == "HTTP 500"  # kept for `feeds status`


def test_due_feeds_respects_next_due_slack_enabled_all_and_one():
    """A crawl polls due (or never polled) enabled feeds; --all every enabled one; --feed only that one,
    even disabled."""
    feeds = [
        Feed(name="A", url="https://a/"),
        Feed(name="B", url="https://b/"),
        Feed(name="C", url="https://c/"),
        Feed(name="D", url="https://d/", enabled=False),
    ]
    states = {"a": FeedState(next_due=NOW + timedelta(hours=1)), "b": FeedState(next_due=NOW + timedelta(minutes=5))}

    def ids(found: list[Feed]) -> list[str]:
        return [f.id for f in found]

    assert ids(due_feeds(feeds, states, NOW)) == ["c"]
    assert ids(due_feeds(feeds, states, NOW, slack=timedelta(minutes=7.5))) == ["b", "c"]
    assert ids(due_feeds(feeds, states, NOW, everything=True)) == ["a", "b", "c"]
    assert ids(due_feeds(feeds, states, NOW, only="a")) == ["a"]
    assert ids(due_feeds(feeds, states, NOW, only="d")) == ["d"]  # disabled, but asked for by name
    assert is_due(None, NOW) and not is_due(states["a"], NOW)


def test_conditional_headers_come_from_the_last_full_fetch_of_the_same_url():
    """ETag and Last-Modified are replayed for the same URL, not for another, and not after a day."""
    fields = full_fetch("https://x/rss", '"v1"', "Tue, 17 Nov 2026 10:00:00 GMT", body_digest(b"body"), NOW)
    state = FeedState(**fields)
    assert conditional_headers(state, "https://x/rss", NOW + timedelta(hours=1)) == {
        "If-None-Match": '"v1"',
        "If-Modified-Since": "Tue, 17 Nov 2026 10:00:00 GMT",
    }
    assert conditional_headers(state, "https://x/other", NOW) == {}
    assert conditional_headers(state, "https://x/rss", NOW + timedelta(hours=25)) == {}  # a full fetch a day
    assert conditional_headers(FeedState(**fields, kind="sitemapindex"), "https://x/rss", NOW) == {}
    assert (
        conditional_headers(FeedState(**full_fetch("https://x/rss", None, None, "h", NOW)), "https://x/rss", NOW) == {}
    )


def _entry(n: int, updated: datetime | None = None) -> FeedEntry:
    return FeedEntry(title=f"t{n}", link=f"https://news.example/{n}.html", guid=str(n), updated=updated)


def test_seen_entries_are_fetched_again_only_when_their_entry_says_updated():
    """Unseen entries are fetched; a seen one again only when its <updated> moved past the stamp kept."""
    old, new = NOW - timedelta(hours=2), NOW
    entries = [_entry(1), _entry(2, old), _entry(3, new), _entry(4, new)]
    ids = [entry_article_id(e) for e in entries]
    stamps = {ids[1]: old.isoformat(), ids[2]: old.isoformat()}
    chosen = select_entries(entries, known={ids[0], ids[1], ids[2]}, stamps=stamps)
    assert [(e.guid, why) for e, why in chosen.fetch] == [("3", "updated"), ("4", "new")]
    assert chosen.stamps == {ids[0]: "", ids[1]: old.isoformat(), ids[2]: new.isoformat(), ids[3]: new.isoformat()}
    assert chosen.new_to_feed == 2
    assert select_entries(entries, known=set(), stamps={}, in_flight={ids[3]}).fetch[-1][0].guid == "3"


def test_a_feed_run_is_saved_only_when_its_last_article_is_stored():
    """The state waits for every fetched article to reach the store; then it is returned once."""
    feed = Feed(name="Wire", url="https://w/rss")
    entries = [_entry(1, NOW), _entry(2, NOW - timedelta(hours=1))]
    runs, run = FeedRuns(), FeedRun(feed, None, NOW)
    runs.start(run)
    run.add(entries, select_entries(entries, known=set(), stamps={}))
    assert runs.close("wire") is None  # the feed request itself; two articles still open

    def article(e: FeedEntry) -> Article:
        return Article(id=entry_article_id(e), url=e.link, title="", text="", feed_id="wire", outlet="W")

    assert runs.stored([article(entries[0])]) == []
    assert runs.stored([article(entries[1])]) == [run] and "wire" not in runs.open
    state = run.state()
    assert state.items_seen == 2 and state.last_items == 2 and state.interval_minutes == 30.0
    assert set(state.entry_updates) == {entry_article_id(e) for e in entries}


def test_a_page_owed_a_retry_is_fetched_again_until_its_retries_are_spent():
    """A page that failed for a passing reason gets PAGE_RETRIES more polls while its feed lists it; success
    or a lasting failure ends that; an entry that left the feed is forgotten."""
    feed, entries = Feed(name="Wire", url="https://w/rss"), [_entry(1), _entry(2)]
    ids = [entry_article_id(e) for e in entries]
    run = FeedRun(feed, None, NOW)
    run.page_done(ids[0], stored_from_page=False, transient=True)
    run.page_done(ids[1], stored_from_page=False, transient=False)  # refused: never owed a retry
    assert run.retries == {ids[0]: PAGE_RETRIES}
    chosen = select_entries(entries, known=set(ids), stamps=dict.fromkeys(ids, ""), retries=run.retries)
    assert [(e.guid, why) for e, why in chosen.fetch] == [("1", "retry")]
    for left in range(PAGE_RETRIES - 1, 0, -1):
        run.page_done(ids[0], stored_from_page=False, transient=True)
        assert run.retries == {ids[0]: left}
    run.page_done(ids[0], stored_from_page=False, transient=True)
    assert run.retries == {}
    later = FeedRun(feed, FeedState(page_retries={ids[0]: 2, ids[1]: 1}), NOW)
    later.page_done(ids[0], stored_from_page=True)
    later.stamps = {ids[1]: ""}
    assert later.state().page_retries == {ids[1]: 1}
    later.stamps = {}
    assert later.state().page_retries == {}  # no longer in the feed
    # ... unless a child sitemap that lists it failed this time: then it was not seen, and is kept.
    partial = FeedRun(feed, FeedState(page_retries={ids[1]: 1}, entry_updates={ids[1]: "x"}), NOW)
    partial.partial = True
    assert (partial.state().page_retries, partial.state().entry_updates) == ({ids[1]: 1}, {ids[1]: "x"})


@pytest.mark.parametrize(
    ("status", "passing"),
    [(404, True), (429, True), (500, True), (503, True), (403, False), (410, False), (400, False)],
)
def test_http_failures_that_may_pass(status: int, passing: bool):
    """5xx and "not now" statuses may pass; other 4xx, and the crawler's own refusals, do not."""
    request = Request("https://w/a.html")
    failure = Failure(HttpError(Response(request.url, status=status, request=request), "x"))
    failure.request = request
    assert classify_failure(failure).transient is passing
    refused = Failure(IgnoreRequest("Forbidden by robots.txt"))
    refused.request = request
    assert not classify_failure(refused).transient
    timeout = Failure(TimeoutError("took longer than 20 s"))
    timeout.request = request
    assert classify_failure(timeout).transient


@pytest.mark.parametrize(
    ("content_type", "role", "refused"),
    [
        ("text/html; charset=utf-8", "article", False),
        ("application/xhtml+xml", "article", False),
        (None, "article", False),
        ("application/pdf", "article", True),
        ("image/jpeg", "article", True),
        ("application/octet-stream", "article", True),
        ("application/octet-stream", "feed", False),
        ("application/rss+xml", "feed", False),
        ("video/mp4", "feed", True),
        ("image/png", None, False),
    ],
)
def test_content_types_that_are_not_html_or_xml_are_refused(content_type, role, refused: bool):
    """Pages must be HTML/XML; feeds may also come as octet-stream or gzip (sitemaps); robots.txt is never refused."""
    assert (content_refusal(content_type, role) is not None) is refused


def test_read_source_tells_feeds_sitemaps_indexes_and_pages_apart():
    """RSS/Atom give entries, a sitemap its recent entries, an index its recent children, a page its feed."""
    rss = read_source((FEEDS / "rss20.xml").read_bytes(), "https://n.example/rss", "auto", NOW)
    assert isinstance(rss, Entries) and rss.kind == "rss" and len(rss.entries) == 3
    page = read_source((FEEDS / "discover.html").read_bytes(), "https://n.example/", "auto", NOW)
    assert isinstance(page, Discovered) and page.url.startswith("https://")
    with pytest.raises(FeedError, match="got an HTML page"):
        read_source((FEEDS / "discover.html").read_bytes(), "https://n.example/", "rss", NOW)
    recent, old = (NOW - timedelta(hours=3)).isoformat(), (NOW - timedelta(days=40)).isoformat()
    index = (
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>/a.xml</loc>'
        f"<lastmod>{recent}</lastmod></sitemap><sitemap><loc>/b.xml</loc><lastmod>{old}</lastmod></sitemap>"
        "</sitemapindex>"
    ).encode()
    assert read_source(index, "https://n.example/sitemap.xml", "auto", NOW) == Children(["https://n.example/a.xml"])
    urlset = (
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>/new.html</loc><lastmod>{recent}'
        f"</lastmod></url><url><loc>/old.html</loc><lastmod>{old}</lastmod></url></urlset>"
    ).encode()
    found = read_source(urlset, "https://n.example/sitemap.xml", "auto", NOW)
    assert found.kind == "sitemap" and [e.link for e in found.entries] == ["https://n.example/new.html"]


def test_preferred_url_trusts_a_plausible_canonical_link_only():
    """The page's canonical link wins on its own site; one pointing home or elsewhere is ignored."""
    fetched = "https://www.site.example/news/1.html?utm_source=rss"
    assert preferred_url("https://site.example/news/story-1", fetched) == "https://site.example/news/story-1"
    assert preferred_url("https://site.example/", fetched) == "https://www.site.example/news/1.html"
    assert preferred_url("https://other.example/news/1", fetched) == "https://www.site.example/news/1.html"
    assert preferred_url(None, fetched) == "https://www.site.example/news/1.html"
    mobile = "https://m.site.example/news/1.html"  # the mobile and AMP editions point at the desktop page
    assert preferred_url("https://www.site.example/news/story-1", mobile) == "https://www.site.example/news/story-1"
    assert preferred_url("https://site.example/news/1", "https://amp.site.example/1") == "https://site.example/news/1"
    assert preferred_url("https://example/news/1", "https://m.example/1") == "https://m.example/1"  # no site left
