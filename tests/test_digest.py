"""Tests of alerts.digests.build (owed hits → Digest: stories, sections, counts), alerts.digests.trends (the last
24 hours, first mentions, spikes, the 14-day chart) and alerts.digests.health (failing and silent sources)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.digests.build import anchor_for, build_digest, highlight, safe_url, text_direction
from alerts.digests.health import source_health
from alerts.digests.render import trend_parts
from alerts.digests.trends import chart_start, trend_from_hours, watch_trends
from newswatch.core.feedstate import FeedState
from newswatch.core.models import Article, Hit, OwedHit
from newswatch.core.store.sqlite import SqliteStore
from tests.plugins.smtp import sample_articles

NOW = datetime(2017, 11, 5, 9, 0, tzinfo=UTC)


def owed(article: Article, watch: str, word: str, *, sentence: str | None = None, field: str = "text") -> OwedHit:
    """An owed hit of ``word`` at its first place in the article's text (or title)."""
    source = article.title if field == "title" else article.text
    start = source.index(word)
    line = next(part for part in source.split("\n") if word in part) if sentence is None else sentence
    hit = Hit(article.id, watch, word, start, start + len(word), field, line)
    return OwedHit(hit=hit, article=article, found=NOW - timedelta(minutes=5))


def articles() -> dict[str, Article]:
    return {a.id: a for a in sample_articles(NOW - timedelta(hours=1))}


def test_each_story_appears_once_with_every_watch_it_matched():
    """A story matched by three watches is one story carrying the three, in config order; each watch's section
    lists the stories of that watch."""
    a = articles()
    items = [
        owed(a["levant-1"], "Daesh", "Daesh"),
        owed(a["levant-1"], "Deir Ezzor", "Deir Ezzor"),
        owed(a["levant-1"], "Deir Ezzor", "DEIR EZZOR"),
        owed(a["levant-1"], "Abu Kamal", "Abu Kamal"),
        owed(a["mashriq-1"], "Deir Ezzor", "دير الزور"),
    ]
    digest = build_digest("analyst", items, generated=NOW, watch_order=["Deir Ezzor", "Abu Kamal", "Daesh"])
    assert digest.story_count == 2
    (levant,) = [s for s in digest.stories if s.outlet == "The Levant Monitor"]
    assert levant.watches == ("Deir Ezzor", "Abu Kamal", "Daesh") and levant.mention_count == 4
    assert [s.watch for s in digest.sections] == ["Deir Ezzor", "Abu Kamal", "Daesh"]
    deir = digest.sections[0]
    assert (deir.story_count, deir.article_count, deir.mention_count) == (2, 2, 3)
    assert [s.story_count for s in digest.sections[1:]] == [1, 1]
    assert set(digest.hit_keys) == {item.hit.key for item in items}
    assert [story.number for story in digest.stories] == [1, 2]  # newest first: the Arabic report of 5 Nov


def test_counts_agree_story_article_mention():
    """story = cluster, article = one outlet's copy, mention = one matched span: the digest's counts add up,
    and its mentions are the hit keys it delivers."""
    a = articles()
    items = [
        owed(a["gulf-1"], "Deir Ezzor", "Deir Ezzor"),
        owed(a["levant-1"], "Deir Ezzor", "Deir Ezzor"),
        owed(a["levant-1"], "Daesh", "Daesh"),
        owed(a["mashriq-1"], "Daesh", "داعش"),
    ]
    digest = build_digest("analyst", items, generated=NOW, watch_order=["Deir Ezzor", "Daesh"])
    counts = digest.counts
    assert (counts.stories, counts.articles, counts.mentions, counts.watches) == (2, 3, 4, 2)
    assert counts.mentions == len(digest.hit_keys) == sum(s.mention_count for s in digest.sections)
    assert counts.articles == sum(story.article_count for story in digest.stories)
    deir, daesh = digest.sections
    assert (deir.story_count, deir.article_count, deir.mention_count) == (1, 2, 2)
    assert (daesh.story_count, daesh.article_count, daesh.mention_count) == (2, 2, 2)


def test_story_cluster_is_one_story_with_also_reported_by():
    """Articles of one cluster make one story led by the earliest report, the others listed as 'also reported
    by', even when each copy matched another watch."""
    a = articles()
    items = [owed(a["gulf-1"], "Daesh", "Daesh"), owed(a["levant-1"], "Deir Ezzor", "Deir Ezzor")]
    digest = build_digest("analyst", items, generated=NOW, watch_order=["Deir Ezzor", "Daesh"])
    (story,) = digest.stories
    assert story.outlet == "The Levant Monitor"  # published first
    assert story.also_reported_by == (("Gulf Wire", "https://gulf-wire.example/news/syria-army-retakes-deir-ezzor"),)
    assert story.watches == ("Deir Ezzor", "Daesh") and story.article_count == 2
    assert set(story.hit_keys) == {item.hit.key for item in items}
    assert [s.stories for s in digest.sections] == [(story,), (story,)]


def test_snippets_show_as_many_watches_as_they_can():
    """The sentences chosen first are the ones covering the story's watches; they are shown in text order."""
    article = articles()["levant-1"]
    items = [owed(article, "Deir Ezzor", "DEIR EZZOR"), owed(article, "Raqqa", "Raqqa"), owed(article, "SDF", "SDF")]
    (story,) = build_digest("r", items, generated=NOW).stories
    marked = {text for snippet in story.snippets for text, mark in snippet.parts if mark}
    assert {"DEIR EZZOR", "Raqqa", "SDF"} <= marked
    starts = [article.text.find(snippet.text[:40]) for snippet in story.snippets]
    assert starts == sorted(starts) and len(story.snippets) <= 3


def test_entry_carries_title_outlet_language_times_and_link():
    """A story has title, outlet, language, published time, first-seen time and the article link."""
    a = articles()
    (entry,) = build_digest("r", [owed(a["mashriq-1"], "Daesh", "داعش")], generated=NOW).stories
    assert entry.title == a["mashriq-1"].title
    assert (entry.outlet, entry.language) == ("مرصد المشرق", "ar")
    assert entry.published == a["mashriq-1"].published
    assert entry.first_seen == NOW - timedelta(minutes=5)
    assert entry.url == a["mashriq-1"].url
    assert entry.title_direction == "rtl" and entry.snippets[0].direction == "rtl"


def test_anchors_are_unique_ascii_ids():
    """Watch sections get readable ASCII ids, numbered when a name has no ASCII letters or repeats one."""
    taken: set[str] = set()
    ids = [anchor_for("watch", name, taken) for name in ["Deir Ezzor", "Deir-Ezzor", "دير الزور", "Mossoul é"]]
    assert ids[:2] == ["watch-deir-ezzor", "watch-deir-ezzor-2"]
    assert ids[2].isascii() and ids[3] == "watch-mossoul-e" and len(set(ids)) == 4


def test_snippet_highlights_every_matched_word_case_insensitively():
    """The hit sentence is cut into parts with each matched spelling marked, whatever its case."""
    parts = highlight("DEIR EZZOR: troops entered Deir Ezzor city.", ["Deir Ezzor"])
    assert parts == (("DEIR EZZOR", True), (": troops entered ", False), ("Deir Ezzor", True), (" city.", False))


def test_highlight_prefers_the_longest_spelling_and_never_overlaps():
    """Of overlapping spellings the longest is marked once."""
    parts = highlight("The Islamic State said", ["Islamic State", "State"])
    assert parts == (("The ", False), ("Islamic State", True), (" said", False))


def test_snippet_falls_back_to_text_around_the_hit():
    """A hit stored without a sentence still gets a snippet: the text around its offsets."""
    a = articles()
    item = owed(a["levant-1"], "SDF", "SDF", sentence="")
    (entry,) = build_digest("r", [item], generated=NOW).stories
    assert "(SDF)" in entry.snippets[0].text
    assert ("SDF", True) in entry.snippets[0].parts


def test_writing_direction_comes_from_the_script_then_the_language():
    """Arabic script reads right to left; text without letters follows its language."""
    assert text_direction("الجيش السوري") == "rtl"
    assert text_direction("Syrian army", "ar") == "ltr"
    assert text_direction("2017 – 11", "ar") == "rtl"
    assert text_direction("2017", "fr") == "ltr"


def test_only_absolute_http_links_survive():
    """safe_url keeps http/https links and drops javascript:, data:, relative and control-character URLs."""
    assert safe_url("https://example.org/a?b=1") == "https://example.org/a?b=1"
    assert safe_url("HTTP://example.org/") == "HTTP://example.org/"
    for bad in [
        "javascript:alert(1)",
        "data:text/html,<b>x</b>",
        "/relative",
        "//example.org/x",
        "https://example.org/\r\nX: y",
        "https://exa mple.org/",
        "ftp://example.org/f",
        "",
        None,
    ]:
        assert safe_url(bad) is None, bad


def test_stories_beyond_the_limit_stay_owed_for_the_next_digest():
    """A watch with more stories than the limit shows the newest; hidden stories' hits are not in the digest."""
    a = articles()
    items = [owed(a["levant-1"], "Daesh", "Daesh"), owed(a["mashriq-1"], "Daesh", "داعش")]
    digest = build_digest("r", items, generated=NOW, limit_per_watch=1)
    (section,) = digest.sections
    assert section.story_count == 1 and section.held_back == 1 and digest.held_back == 1
    assert section.stories[0].outlet == "مرصد المشرق"  # newest first
    assert digest.hit_keys == (items[1].hit.key,)


def test_a_story_shown_for_one_watch_is_delivered_for_all_of_its_watches():
    """Limit 1: the Arabic story is the newest of both watches, so it is shown once with both and all its hits
    are delivered; the Levant story, which no watch has room for, stays owed."""
    a = articles()
    items = [
        owed(a["levant-1"], "Deir Ezzor", "Deir Ezzor"),
        owed(a["levant-1"], "Daesh", "Daesh"),
        owed(a["mashriq-1"], "Daesh", "داعش"),
        owed(a["mashriq-1"], "Deir Ezzor", "دير الزور"),
    ]
    digest = build_digest("r", items, generated=NOW, watch_order=["Deir Ezzor", "Daesh"], limit_per_watch=1)
    (story,) = digest.stories
    assert story.outlet == "مرصد المشرق" and story.watches == ("Deir Ezzor", "Daesh")
    assert set(digest.hit_keys) == {items[2].hit.key, items[3].hit.key}
    assert [s.held_back for s in digest.sections] == [1, 1] and digest.held_back == 1


def test_layout_is_stories_or_watches():
    """The digest keeps the recipient's layout; another value is a programming error."""
    item = owed(articles()["levant-1"], "Daesh", "Daesh")
    assert build_digest("r", [item], generated=NOW).layout == "stories"
    assert build_digest("r", [item], generated=NOW, layout="watches").layout == "watches"
    with pytest.raises(ValueError, match="layout"):
        build_digest("r", [item], generated=NOW, layout="tiles")


def test_empty_digest_says_so():
    """No owed hits: an empty digest with no sections."""
    digest = build_digest("r", [], generated=NOW)
    assert digest.is_empty and digest.sections == () and digest.story_count == 0


# -- trends: articles per UTC hour (Store.mention_counts, by when first stored) → the trend and the chart

UTC_NOW = datetime(2017, 11, 5, 9, 30, tzinfo=UTC)


def hours(*pairs: tuple[int, int]) -> dict[datetime, int]:
    """(hours before UTC_NOW's hour, articles) → the store's hour buckets."""
    base = UTC_NOW.replace(minute=0)
    return {base - timedelta(hours=ago): n for ago, n in pairs}


def test_trend_compares_the_last_24_hours_with_the_week_before():
    """Articles of the last 24 hours against the daily average of the 7 days before them."""
    trend = trend_from_hours(hours((0, 2), (23, 1), (24, 3), (24 * 7 + 23, 11), (24 * 8, 9)), now=UTC_NOW, zone=UTC)
    assert (trend.last_24h, trend.average_7d, trend.history) == (3, 2.0, True)
    assert not trend.first_ever and trend.days_since_previous is None and trend.spike is None
    assert trend_parts(trend) == [("3 articles in the last 24 hours", None), ("7-day average 2.0 a day", None)]


def test_no_trend_line_without_articles_in_the_last_24_hours_nor_an_average_of_nothing():
    """Nothing in the last 24 hours: no line at all. The first articles ever: 'first mention on record', never
    an average of 0.0."""
    quiet = trend_from_hours(hours((30, 2)), now=UTC_NOW, zone=UTC)
    assert not quiet.says_something and trend_parts(quiet) == []
    first = trend_from_hours(hours((1, 2)), now=UTC_NOW, zone=UTC)
    assert first.first_ever and not first.history
    assert trend_parts(first) == [("2 articles in the last 24 hours", None), ("first mention on record", "new")]
    assert trend_parts(None) == []


def test_first_mention_in_n_days_after_a_quiet_week():
    """Articles after more than a week without any say how long the watch was quiet, from the chart's days or
    the store's earlier record."""
    in_chart = trend_from_hours(hours((2, 1), (24 * 10, 1)), now=UTC_NOW, zone=UTC)
    assert in_chart.days_since_previous == 10 and in_chart.history
    assert trend_parts(in_chart)[1] == ("first mention in 10 days", "new")
    older = trend_from_hours(hours((2, 1)), now=UTC_NOW, zone=UTC, before=UTC_NOW - timedelta(days=40))
    assert older.days_since_previous == 40 and not older.first_ever
    recent = trend_from_hours(hours((2, 1), (24 * 3, 1)), now=UTC_NOW, zone=UTC)
    assert recent.days_since_previous is None


def test_spike_mark_only_when_it_is_one():
    """A spike: at least 3 articles in the last 24 hours and at least 3 times the 7-day average."""
    week = [(24 + 24 * day, 1) for day in range(7)]  # one article a day
    spike = trend_from_hours(hours((0, 4), *week), now=UTC_NOW, zone=UTC)
    assert spike.spike == 4
    assert trend_parts(spike)[-1] == ("▲ 4\N{MULTIPLICATION SIGN} its 7-day average", "up")
    assert trend_from_hours(hours((0, 2), *week), now=UTC_NOW, zone=UTC).spike is None  # twice: no spike
    rare = [(24 * 7, 1)]  # 1/7 a day: 2 articles are 14 times that, but too few to call a spike
    assert trend_from_hours(hours((0, 2), *rare), now=UTC_NOW, zone=UTC).spike is None


def test_chart_sums_hours_per_local_day_over_14_days():
    """The chart holds 14 local days ending today in the recipient's zone; an hour counts for the local day it
    starts in (Tokyo is UTC+9: 20:00 UTC is the next day there)."""
    tokyo = ZoneInfo("Asia/Tokyo")
    now = datetime(2017, 11, 5, 9, 30, tzinfo=UTC)  # 18:30 in Tokyo
    counts = {
        datetime(2017, 11, 4, 20, 0, tzinfo=UTC): 2,  # 5 Nov 05:00 in Tokyo
        datetime(2017, 11, 4, 14, 0, tzinfo=UTC): 1,  # 4 Nov 23:00 in Tokyo
        datetime(2017, 10, 22, 15, 0, tzinfo=UTC): 5,  # 23 Oct 00:00 in Tokyo: the chart's first day
        datetime(2017, 10, 22, 14, 0, tzinfo=UTC): 7,  # 22 Oct 23:00 in Tokyo: before the chart
    }
    trend = trend_from_hours(counts, now=now, zone=tokyo)
    assert [d.day for d in trend.days] == [date(2017, 10, 23) + timedelta(days=n) for n in range(14)]
    by_day = {d.day: d.articles for d in trend.days}
    assert by_day[date(2017, 11, 5)] == 2 and by_day[date(2017, 11, 4)] == 1 and by_day[date(2017, 10, 23)] == 5
    assert sum(by_day.values()) == 8 and trend.peak == 5
    assert chart_start(now, tokyo) == datetime(2017, 10, 23, tzinfo=tokyo)


def test_trend_counts_articles_when_newswatch_first_saw_them(tmp_path):
    """On a real store: an article published years ago but first stored today counts today, not on its date."""
    store = SqliteStore(tmp_path / "store.db")
    old = Article(
        id="old",
        url="https://example.org/old",
        title="Deir Ezzor archive piece",
        text="An old report on Deir Ezzor.",
        feed_id="f",
        outlet="Archive",
        published=datetime(2009, 3, 1, tzinfo=UTC),
        fetched=UTC_NOW - timedelta(hours=2),
    )
    store.add_articles([old])
    start = old.text.index("Deir Ezzor")
    store.add_hits([Hit(old.id, "Deir Ezzor", "Deir Ezzor", start, start + 10, "text", old.text)], found=UTC_NOW)
    trends = watch_trends(store, ["Deir Ezzor", "SDF"], now=UTC_NOW, zone=ZoneInfo("Europe/Paris"))
    store.close()
    assert trends["Deir Ezzor"].last_24h == 1 and trends["Deir Ezzor"].first_ever
    assert trends["Deir Ezzor"].days[-1].articles == 1
    assert not trends["SDF"].says_something and trends["SDF"].peak == 0


def test_source_health_lists_failing_and_silent_feeds_only():
    """Unhealthy feeds and feeds without news for too long are listed; healthy and never-crawled ones are not.
    States are read as stored, partial or with unreadable values."""
    recent, old = (NOW - timedelta(hours=1)).isoformat(), (NOW - timedelta(days=4)).isoformat()
    stored = {
        "ok": {"last_success": recent, "consecutive_failures": 0, "healthy": True, "name": "Fine Feed"},
        "down": {
            "last_success": old,
            "last_error": "HTTP 503\r\nService Unavailable",
            "consecutive_failures": 6,
            "healthy": False,
            "name": "Broken Wire",
        },
        "quiet": {"last_success": old, "healthy": True},
        "new-fail": {"consecutive_failures": 1, "last_error": "DNS lookup failed"},
        "junk": {"last_success": "not a date", "consecutive_failures": "x"},
    }
    states = {feed_id: FeedState.from_json(state) for feed_id, state in stored.items()}
    names = {key: key.title() for key in [*states, "never"]}
    listed = source_health(states, names, now=NOW, silent_after=timedelta(hours=48))
    assert [(f.feed_id, f.status) for f in listed] == [
        ("down", "failing"),
        ("new-fail", "failing"),
        ("quiet", "silent"),
    ]
    assert listed[0].name == "Broken Wire" and listed[0].last_error == "HTTP 503 Service Unavailable"
    assert listed[0].consecutive_failures == 6 and listed[2].name == "Quiet"


def test_snippet_does_not_repeat_the_title():
    """A matched sentence identical to the title is left out when another matched sentence exists."""
    a = articles()
    article = a["gulf-1"]
    title_hit = OwedHit(Hit(article.id, "Deir Ezzor", "Deir Ezzor", 35, 45, "title", article.title), article, NOW)
    both = [title_hit, owed(article, "Deir Ezzor", "Deir Ezzor")]
    (entry,) = build_digest("r", both, generated=NOW).stories
    assert [s.text for s in entry.snippets] == [article.text]
    (alone,) = build_digest("r", [title_hit], generated=NOW).stories
    assert [s.text for s in alone.snippets] == [article.title]


def _stored(store: SqliteStore, article_id: str, fetched: datetime, watch: str = "Deir Ezzor", cluster=None) -> Article:
    """An article mentioning ``watch``, first stored at ``fetched``, with its hit found then."""
    article = Article(
        id=article_id,
        url=f"https://example.org/{article_id}",
        title=f"Report {article_id}",
        text=f"Fighting near {watch} today.",
        feed_id="f",
        outlet=f"Outlet {article_id}",
        fetched=fetched,
        cluster_id=cluster,
    )
    store.add_articles([article])
    start = article.text.index(watch)
    store.add_hits([Hit(article.id, watch, watch, start, start + len(watch), "text", article.text)], found=fetched)
    return article


def _digest_of(store: SqliteStore, recipient: str = "analyst", **extra):
    owed_now = store.owed_hits(recipient, ["Deir Ezzor"])
    trends = watch_trends(store, ["Deir Ezzor"], now=UTC_NOW, zone=UTC)
    return build_digest(recipient, owed_now, generated=UTC_NOW, trends=trends, **extra)


def test_first_mention_on_record_only_when_the_store_holds_none_before_the_digest(tmp_path):
    """'First mention on record' is said when the store holds no mention of the watch before the digest's earliest
    article; an earlier one, even inside the last 24 hours (sent in an earlier digest), rules it out."""
    from newswatch.core.models import QueuedDigest

    store = SqliteStore(tmp_path / "store.db")
    _stored(store, "first", UTC_NOW - timedelta(hours=5))
    (section,) = _digest_of(store).sections
    assert section.trend.first_ever
    assert ("first mention on record", "new") in trend_parts(section.trend)
    # That digest goes out; a new article comes in 3 hours later: the watch was mentioned before it.
    sent = [h.hit.key for h in store.owed_hits("analyst")]
    store.queue_digest(QueuedDigest("d1", "analyst", tuple(sent), b"x", UTC_NOW - timedelta(hours=4)))
    _stored(store, "second", UTC_NOW - timedelta(hours=2))
    (section,) = _digest_of(store).sections
    store.close()
    assert section.story_count == 1 and section.trend.last_24h == 2
    assert not section.trend.first_ever
    assert all("first mention on record" not in text for text, _ in trend_parts(section.trend))


def test_no_average_nor_spike_for_a_watch_with_less_than_a_week_of_history():
    """A watch first mentioned yesterday shows no 7-day average and no spike however many articles today; its
    chart has no data (None, not 0) for the days before its first day on record."""
    trend = trend_from_hours(hours((0, 9), (30, 1)), now=UTC_NOW, zone=UTC)
    assert trend.short_history and trend.spike is None and trend.average_7d == 0
    assert trend_parts(trend) == [("9 articles in the last 24 hours", None), ("on record since 4 Nov", None)]
    assert [d.articles for d in trend.days] == [None] * 12 + [1, 9]
    week_old = trend_from_hours(hours((0, 9), (24 * 7, 1)), now=UTC_NOW, zone=UTC)
    assert not week_old.short_history and week_old.spike == 63
    older = trend_from_hours(hours((0, 9)), now=UTC_NOW, zone=UTC, before=UTC_NOW - timedelta(days=30))
    assert not older.short_history and None not in [d.articles for d in older.days]


def test_a_new_copy_of_a_story_sent_earlier_is_an_update(tmp_path):
    """A new article in the cluster of one the recipient got in an earlier digest is shown as an update of that
    story and counted apart from new stories; another recipient, who got nothing, sees a new story."""
    from alerts.digests.followups import delivered_clusters
    from newswatch.core.models import QueuedDigest

    store = SqliteStore(tmp_path / "store.db")
    _stored(store, "wire", UTC_NOW - timedelta(hours=20), cluster="c1")
    sent = [h.hit.key for h in store.owed_hits("analyst")]
    store.queue_digest(QueuedDigest("d1", "analyst", tuple(sent), b"x", UTC_NOW - timedelta(hours=19)))
    _stored(store, "copy", UTC_NOW - timedelta(hours=2), cluster="c1")
    _stored(store, "other", UTC_NOW - timedelta(hours=1), cluster="c2")
    since = UTC_NOW - timedelta(days=14)
    for recipient, updates in (("analyst", {"c1"}), ("desk", set())):
        owed_now = store.owed_hits(recipient, ["Deir Ezzor"], since=since)
        delivered = delivered_clusters(store, owed_now, ["Deir Ezzor"], since=since)
        assert delivered == updates
        digest = build_digest(recipient, owed_now, generated=UTC_NOW, delivered=delivered)
        if recipient == "analyst":
            assert [(s.title, s.update) for s in digest.stories] == [("Report other", False), ("Report copy", True)]
            assert (digest.counts.stories, digest.counts.updates) == (1, 1)
        else:
            assert (digest.counts.stories, digest.counts.updates) == (2, 0)
    store.close()
