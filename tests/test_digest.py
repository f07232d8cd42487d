"""Tests of alerts.digests.build (owed hits → Digest) and alerts.digests.trends (trends, source health)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from alerts.digests.build import build_digest, highlight, safe_url, text_direction
from alerts.digests.health import source_health
from alerts.digests.trends import trend_from_counts
from newswatch.core.feedstate import FeedState
from newswatch.core.models import Article, Hit, OwedHit
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


def test_sections_follow_watch_order_and_hold_one_entry_per_story():
    """Hits are grouped by watch in config order; several hits of one article make one entry."""
    a = articles()
    items = [
        owed(a["levant-1"], "Daesh", "Daesh"),
        owed(a["levant-1"], "Deir Ezzor", "Deir Ezzor"),
        owed(a["levant-1"], "Deir Ezzor", "DEIR EZZOR"),
        owed(a["mashriq-1"], "Deir Ezzor", "دير الزور"),
    ]
    digest = build_digest("analyst", items, generated=NOW, watch_order=["Deir Ezzor", "Abu Kamal", "Daesh"])
    assert [s.watch for s in digest.sections] == ["Deir Ezzor", "Daesh"]
    deir = digest.sections[0]
    assert deir.story_count == 2 and deir.hit_count == 3
    assert sorted(e.outlet for e in deir.stories) == ["The Levant Monitor", "مرصد المشرق"]
    assert set(digest.hit_keys) == {item.hit.key for item in items}


def test_story_cluster_is_one_entry_with_also_reported_by():
    """Articles of one cluster make one entry led by the earliest report, the others listed as 'also reported by'."""
    a = articles()
    items = [owed(a["gulf-1"], "Deir Ezzor", "Deir Ezzor"), owed(a["levant-1"], "Deir Ezzor", "Deir Ezzor")]
    section = build_digest("analyst", items, generated=NOW).sections[0]
    assert section.story_count == 1
    (entry,) = section.stories
    assert entry.outlet == "The Levant Monitor"  # published first
    assert entry.also_reported_by == (("Gulf Wire", "https://gulf-wire.example/news/syria-army-retakes-deir-ezzor"),)
    assert set(entry.hit_keys) == {item.hit.key for item in items}


def test_entry_carries_title_outlet_language_times_and_link():
    """An entry has title, outlet, language, published time, first-seen time and the article link."""
    a = articles()
    (entry,) = build_digest("r", [owed(a["mashriq-1"], "Daesh", "داعش")], generated=NOW).sections[0].stories
    assert entry.title == a["mashriq-1"].title
    assert (entry.outlet, entry.language) == ("مرصد المشرق", "ar")
    assert entry.published == a["mashriq-1"].published
    assert entry.first_seen == NOW - timedelta(minutes=5)
    assert entry.url == a["mashriq-1"].url
    assert entry.title_direction == "rtl" and entry.snippets[0].direction == "rtl"


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
    (entry,) = build_digest("r", [item], generated=NOW).sections[0].stories
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
    section = digest.sections[0]
    assert section.story_count == 2 and section.hidden_count == 1
    assert section.stories[0].outlet == "مرصد المشرق"  # newest first
    assert digest.hit_keys == (items[1].hit.key,)


def test_empty_digest_says_so():
    """No owed hits: an empty digest with no sections."""
    digest = build_digest("r", [], generated=NOW)
    assert digest.is_empty and digest.sections == () and digest.story_count == 0


def test_trend_compares_today_with_the_seven_days_before():
    """Today's count is set against the average of the 7 previous days."""
    today = date(2017, 11, 5)
    days = [today] * 3 + [today - timedelta(days=1)] * 4 + [today - timedelta(days=6)] * 3 + [today - timedelta(days=9)]
    trend = trend_from_counts(Counter(days), today)
    assert trend.today == 3 and trend.average_7d == 1.0
    assert trend.days_since_previous is None and not trend.first_ever


def test_trend_says_first_mention_in_n_days_or_ever():
    """Hits today after a quiet spell of more than a week say how long; with no earlier hit, first ever."""
    today = date(2017, 11, 5)
    assert trend_from_counts({today: 1}, today, previous=today - timedelta(days=12)).days_since_previous == 12
    assert trend_from_counts({today: 1, today - timedelta(days=3): 2}, today).days_since_previous is None
    assert trend_from_counts({today: 1}, today).first_ever
    assert not trend_from_counts({today - timedelta(days=2): 1}, today).first_ever
    assert not trend_from_counts({today: 1}, today, previous=today - timedelta(days=400)).first_ever


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
    (entry,) = build_digest("r", both, generated=NOW).sections[0].stories
    assert [s.text for s in entry.snippets] == [article.text]
    (alone,) = build_digest("r", [title_hit], generated=NOW).sections[0].stories
    assert [s.text for s in alone.snippets] == [article.title]
