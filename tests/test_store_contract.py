"""One store contract, run against both backends: SQLite (embedded) and Elasticsearch (a real node)."""

from __future__ import annotations

import os
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from newswatch.core.config import load_config
from newswatch.core.errors import QuerySyntaxError, StoreConflict
from newswatch.core.feedstate import FeedState
from newswatch.core.models import (
    SIGNATURE_CANDIDATES,
    Article,
    ClusterSignature,
    Hit,
    LeaseHolder,
    QueuedDigest,
    band_keys,
)
from newswatch.core.store import open_store
from newswatch.core.store.query import MAX_PHRASES, merge_marks
from tests.conftest import write_config

pytestmark = pytest.mark.timeout(600)

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def article(n: int, *, text: str | None = None, source: str = "page", published: datetime | None = None) -> Article:
    """A small article; ``n`` makes its id, URL and words unique."""
    return Article(
        id=f"art{n:03d}",
        url=f"https://news.example/{n}",
        title=f"Story {n} from Deir ez-Zor",
        text=text if text is not None else f"Fighting near Abu Kamal, report number{n}. Words & <tags> stay text.",
        feed_id="wire",
        outlet="Example Wire",
        published=published or NOW - timedelta(hours=n),
        fetched=NOW,
        language="en",
        author="AFP",
        source=source,
    )


@pytest.fixture(params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.slow)])
def reopen(request, config_dir):
    """A function opening the configured store (again), for each backend; every store opened is closed."""
    storage = {"backend": request.param}
    if request.param == "elasticsearch":
        node = request.getfixturevalue("es_node")
        request.getfixturevalue("es_client")  # removes the test-* indices and templates afterwards
        storage["elasticsearch"] = {"hosts": [node.url], "index_prefix": request.getfixturevalue("es_index_prefix")}
    config = load_config(write_config(config_dir, settings={"storage": storage}), env={})
    opened = []

    def open_again():
        if opened:
            opened[-1].close()
        opened.append(open_store(config))
        return opened[-1]

    open_again.config = config
    yield open_again
    opened[-1].close()


@pytest.fixture
def other(reopen, store):
    """A second store on the same file or index prefix: what another process opens."""
    second = open_store(reopen.config)
    yield second
    second.close()


@pytest.fixture
def store(reopen):
    """A fresh store of the backend under test."""
    return reopen()


def test_upsert_counts_new_and_changed_and_keeps_first_fetched(store):
    """add_articles returns new+changed; an update keeps the first fetched time and replaces the text."""
    assert store.add_articles([article(1), article(2)]) == 2
    assert store.add_articles([article(1), article(2)]) == 0
    later = Article(**{**article(1).__dict__, "text": "New text about Raqqa.", "fetched": NOW + timedelta(days=1)})
    assert store.add_articles([later]) == 1
    stored = store.get_article("art001")
    assert stored.text == "New text about Raqqa." and stored.fetched == NOW
    assert store.get_article("nope") is None


def test_recrawl_never_duplicates_and_feed_text_never_replaces_page_text(store):
    """The same id stored twice is one article; a feed-summary version does not overwrite extracted text."""
    store.add_articles([article(1)])
    store.add_articles([article(1), article(1, text="Summary only.", source="feed")])
    assert store.count_articles() == 1
    assert store.get_article("art001").source == "page"
    assert store.known_ids(["art001", "art999"]) == {"art001"}


def marked(result) -> list[str]:
    """The highlighted words of a result's fragments, as they read in the text."""
    return [fragment.text[start:end] for fragment in result.fragments for start, end in fragment.marks]


def story(n: int, text: str, *, title: str | None = None, **fields) -> Article:
    """Article ``n`` with its own title and text (article()'s title names Deir ez-Zor)."""
    return Article(**{**article(n).__dict__, "title": title or f"Report {n}", "text": text, **fields})


def test_search_finds_words_case_and_accent_blind_with_plain_text_fragments(store):
    """search matches words regardless of case/diacritics; a fragment is plain text (nothing escaped, no
    markup) with the offsets of the highlighted words, a name of two words one mark."""
    store.add_articles([article(1), article(2, text="Nothing of note in São Paulo today.")])
    results = store.search("ABU kamal")
    assert [r.article.id for r in results] == ["art001"]
    (fragment,) = results[0].fragments
    assert marked(results[0]) == ["Abu Kamal"]
    assert "Words & <tags> stay text." in fragment.text and "&amp;" not in fragment.text
    assert [part for part, highlighted in fragment.parts() if highlighted] == ["Abu Kamal"]
    (paulo,) = store.search("sao paulo")
    assert paulo.article.id == "art002" and marked(paulo) == ["São Paulo"]
    assert store.search("timbuktu") == []
    assert [r.fragments[0].marks for r in store.search("")] == [(), ()]  # no words: the newest, unmarked


SYNTAX_STORIES = (
    (1, "Clashes in the east", "Fighting near Abu Kamal and the border crossing, report one."),
    (2, "Market news", "Prices rose in the Kamaliya market; no fighting reported near the border."),
    (3, "Raqqa report", "Fighting near Raqqa: the border stays closed."),
)


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("fighting border", {1, 2, 3}),  # plain words: all of them, anywhere
        ("FIGHTING near BORDER", {1, 2, 3}),
        ('"fighting near"', {1, 3}),  # a phrase: its words in order
        ('"fighting near" -raqqa', {1}),  # -word leaves out the articles holding it
        ('border -"abu kamal"', {2, 3}),
        ("kamal OR raqqa", {1, 3}),  # either
        ("market OR raqqa fighting", {2, 3}),  # OR joins its two neighbours; the rest must appear too
        ("kamal*", {1, 2}),  # a prefix
        ('"abu kam"*', {1}),  # a phrase ending in a prefix
        ("fighting -kamal*", {3}),
        ("ez-Zor", set()),  # a hyphenated word is its words in order (none here)
        ("AND NOT", set()),  # operators of the backends' own syntaxes are plain words
        ("fighting & border", {1, 2, 3}),  # punctuation alone is no word
    ],
)
def test_search_syntax_is_the_same_on_both_backends(store, query, found):
    """The small query syntax both stores accept: words (all must appear), "phrases", OR, -word, word*."""
    store.add_articles([story(n, text, title=title) for n, title, text in SYNTAX_STORIES])
    assert {int(r.article.id[3:]) for r in store.search(query)} == found


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ('"Abu Kamal', "unbalanced quote"),
        ('Abu "Kamal', "unbalanced quote"),
        ('Abu"Kamal"', "unbalanced quote"),
        ("Abu -", "a lone '-'"),
        ("Abu OR", "OR needs a word on each side"),
        ("OR Abu", "OR needs a word on each side"),
        ("Abu OR OR Kamal", "OR needs a word on each side"),
        ("Abu OR -Kamal", "OR cannot join an excluded word"),
        ("-Abu", "only excluded words"),
        ("*", "a lone '*'"),
        ("Abu*Kamal", "'*' only ends a word"),
        ('""', "empty quotes"),
        ("…", "no word to search for"),
    ],
)
def test_a_query_that_cannot_be_read_is_one_line_naming_it(store, query, problem):
    """A query outside the syntax is QuerySyntaxError: one line naming the query and the problem."""
    store.add_articles([article(1)])
    with pytest.raises(QuerySyntaxError) as raised:
        store.search(query)
    message = str(raised.value)
    assert message.startswith(f"search {query!r}: ") and problem in message and "\n" not in message


PHRASE_STORIES = (
    (1, "Shelling hit Deir ez-Zor overnight, residents said."),
    (2, "قال مصدر في دير الزور إن الاشتباكات مستمرة."),
    (3, "Le groupe Daech a revendiqué l'attaque."),
    (4, "Nothing about the east today, nor the north."),
)
# A watch's spellings, and spellings that would be syntax if they were not quoted as data.
SPELLINGS = ["Deir ez-Zor", "Deir Ezzor", "دير الزور", "Daech", 'Deir" OR "Nothing', "NOT", "NEAR(a b)", '"', "*", "-"]


def test_phrases_are_alternatives_quoted_as_data_and_highlighted(store):
    """search(phrases=): an article holding any of them matches (with an empty query they alone decide),
    whatever characters they hold; their words are highlighted; excluded words still leave articles out."""
    store.add_articles([story(n, text) for n, text in PHRASE_STORIES])
    results = store.search("", phrases=SPELLINGS)
    assert {r.article.id: marked(r) for r in results} == {
        "art001": ["Deir ez-Zor"],
        "art002": ["دير الزور"],
        "art003": ["Daech"],
    }
    assert {r.article.id for r in store.search("shelling", phrases=["Daech"])} == {"art001", "art003"}
    assert {r.article.id for r in store.search("-attaque", phrases=SPELLINGS)} == {"art001", "art002"}
    assert {r.article.id for r in store.search("nothing", phrases=())} == {"art004"}
    assert store.search("", phrases=["Timbuktu", "Deir ez-Zor province"]) == []
    assert store.search("", phrases=["…", "-"]) == []  # spellings without a word match nothing


def test_marks_join_one_space_or_hyphen_apart_never_across_a_line_or_a_sentence(store):
    """A name at the end of the title and again at the start of the text, or at the end of one line and the
    start of the next, or of one sentence and the next, is two marks, each reading as the name; the words of
    one name ("Deir ez-Zor", "Abu Kamal") stay one mark."""
    store.add_articles(
        [
            story(1, "دير الزور: اشتباكات في الأحياء الشرقية.", title="الجيش يدخل دير الزور", language="ar"),
            story(2, "Troops reached Deir ez-Zor\nDeir ez-Zor residents came back to Abu Kamal."),
            story(3, "Shelling hit Deir ez-Zor. Deir ez-Zor is quiet again, near Abu Kamal."),
        ]
    )
    found = {r.article.id: r for r in store.search("", phrases=["دير الزور", "Deir ez-Zor", "Abu Kamal"])}
    assert set(found) == {"art001", "art002", "art003"}
    for result in found.values():
        assert all("\n" not in word and ". " not in word for word in marked(result)), marked(result)
    assert set(marked(found["art002"])) == set(marked(found["art003"])) == {"Deir ez-Zor", "Abu Kamal"}
    assert set(marked(found["art001"])) == {"دير الزور"}
    assert marked(found["art002"]).count("Deir ez-Zor") == 2


def test_merge_marks_joins_only_across_one_space_or_one_hyphen():
    """The pure part both backends share (store.query.merge_marks): overlapping and touching marks join, and
    those one space or one hyphen apart; a newline, two spaces, a comma, a dash or a full stop never."""
    assert merge_marks("Abu Kamal", [(4, 9), (0, 3)]) == ((0, 9),)
    assert merge_marks("Deir ez-Zor", [(0, 4), (5, 7), (8, 11)]) == ((0, 11),)
    assert merge_marks("Deirezzor", [(0, 4), (2, 6), (6, 9), (3, 3)]) == ((0, 9),)
    for text in ("Zor\nDeir", "Zor  Deir", "Zor, Deir", "Zor – Deir", "Zor. Deir", "Zor\t Deir", "Zor\u00a0Deir"):
        assert merge_marks(text, [(0, 3), (len(text) - 4, len(text))]) == ((0, 3), (len(text) - 4, len(text))), text


def test_hundreds_of_phrases_work_and_too_many_are_refused(store):
    """A watch group's few hundred spellings are one bounded query; more than MAX_PHRASES different ones
    (past it, phrases holding a shorter one are dropped) is a QuerySyntaxError."""
    store.add_articles([story(n, text) for n, text in PHRASE_STORIES])
    many = [f"Place{n} Town{n}" for n in range(300)] + ["Daech", "DAECH", "Daech group", "groupe Daech"]
    (found,) = store.search("", phrases=many)
    assert found.article.id == "art003" and marked(found) == ["groupe Daech"]  # the longest spelling held
    assert store.search("", phrases=[f"Place{n}" for n in range(MAX_PHRASES)] + ["Place1 Town"]) == []
    with pytest.raises(QuerySyntaxError, match="at most"):
        store.search("", phrases=[f"Place{n}" for n in range(MAX_PHRASES + 1)])


def test_search_since_keeps_only_recent_articles_newest_first(store):
    """search(since=) drops articles published before it; equal scores come newest first."""
    store.add_articles([article(n, published=NOW - timedelta(days=n)) for n in (1, 2, 5)])
    assert [r.article.id for r in store.search("Abu Kamal", since=NOW - timedelta(days=3))] == ["art001", "art002"]
    assert [r.article.id for r in store.search("Abu Kamal")] == ["art001", "art002", "art005"]


def test_search_watch_keeps_articles_with_a_hit_of_that_watch(store):
    """search(watch=) keeps only articles with a stored hit of that watch."""
    store.add_articles([article(1), article(2)])
    store.add_hits([Hit("art002", "abu-kamal", "Abu Kamal", 13, 22)], NOW)
    assert [r.article.id for r in store.search("Kamal", watch="abu-kamal")] == ["art002"]
    assert store.search("Kamal", watch="raqqa") == []


def stored_at(n: int, fetched: datetime, published: datetime | None = None, text: str | None = None) -> Article:
    """Article ``n`` first stored (fetched) at ``fetched``."""
    return Article(**{**article(n, text=text).__dict__, "fetched": fetched, "published": published})


def test_mention_counts_are_distinct_articles_per_hour_they_were_first_stored(store):
    """mention_counts: articles with a hit of the watch per UTC hour in which newswatch first stored them
    (fetched, whatever their published date, and an update keeps it), each once however many hits it has,
    from ``since``'s hour; last_mention_before: the latest earlier hour."""
    hour = NOW.replace(minute=0)
    old_story = stored_at(1, NOW, published=NOW - timedelta(days=30))  # an old story seen today: today
    store.add_articles(
        [
            old_story,
            stored_at(2, NOW),
            stored_at(3, NOW - timedelta(hours=3), published=NOW - timedelta(hours=5)),
            stored_at(4, NOW),
            stored_at(5, NOW - timedelta(hours=3, minutes=20), published=NOW),
            stored_at(6, NOW - timedelta(days=30), published=NOW - timedelta(days=30)),
            stored_at(7, NOW - timedelta(days=2), published=NOW - timedelta(days=2)),
        ]
    )
    # Article 7 crawled again today with a new text, and only then a hit: it counts when first stored.
    store.add_articles([stored_at(7, NOW, published=NOW, text="Now about Abu Kamal, report 7.")])
    store.add_hits(
        [
            Hit("art001", "abu-kamal", "Abu Kamal", 13, 22),
            Hit("art002", "abu-kamal", "Abu Kamal", 13, 22),
            Hit("art003", "abu-kamal", "Abu Kamal", 13, 22),
            Hit("art004", "raqqa", "Raqqa", 0, 5),
        ],
        NOW,
    )
    store.add_hits(
        [
            Hit("art003", "abu-kamal", "Kamal", 17, 22),
            Hit("art005", "abu-kamal", "Abu Kamal", 13, 22),
            Hit("art006", "abu-kamal", "Abu Kamal", 13, 22),
            Hit("art007", "abu-kamal", "Abu Kamal", 10, 19),
        ],
        NOW,
    )
    since = NOW - timedelta(days=7)
    expected = {hour - timedelta(days=2): 1, hour - timedelta(hours=3): 2, hour: 2}
    assert store.mention_counts("abu-kamal", since) == expected
    assert store.mention_counts("abu-kamal", NOW) == {hour: 2}
    assert store.mention_counts("raqqa", since) == {hour: 1}
    assert store.mention_counts("deir-ez-zor", since) == {}
    assert store.last_mention_before("abu-kamal", NOW) == hour - timedelta(hours=3)
    assert store.last_mention_before("abu-kamal", NOW - timedelta(hours=3)) == hour - timedelta(days=2)
    assert store.last_mention_before("abu-kamal", NOW - timedelta(days=2)) == hour - timedelta(days=30)
    assert store.last_mention_before("abu-kamal", NOW - timedelta(days=30)) is None
    assert store.last_mention_before("deir-ez-zor", NOW) is None


def test_watch_hits_are_newest_found_first_with_their_articles(store):
    """watch_hits: a watch's hits with their article and found time, newest found first, ties by the
    newest article then offset; ``since`` and ``limit`` bound them; other watches' hits stay out."""
    store.add_articles(
        [
            article(1),
            article(2, published=NOW - timedelta(hours=3)),
            article(3, published=NOW - timedelta(hours=1)),  # newer than 2, though its id sorts after
            article(4),
        ]
    )
    store.add_hits([Hit("art001", "abu-kamal", "Abu Kamal", 13, 22)], NOW - timedelta(hours=2))
    store.add_hits(
        [
            Hit("art002", "abu-kamal", "Abu Kamal", 13, 22),
            Hit("art003", "abu-kamal", "Kamal", 40, 45),
            Hit("art003", "abu-kamal", "Abu Kamal", 13, 22),
            Hit("art004", "raqqa", "Raqqa", 0, 5),
        ],
        NOW,
    )
    got = store.watch_hits("abu-kamal")
    assert [(o.hit.article_id, o.hit.start, o.found) for o in got] == [
        ("art003", 13, NOW),
        ("art003", 40, NOW),
        ("art002", 13, NOW),
        ("art001", 13, NOW - timedelta(hours=2)),
    ]
    assert got[0].article.title == "Story 3 from Deir ez-Zor" and got[0].hit.matched == "Abu Kamal"
    assert [o.hit.article_id for o in store.watch_hits("abu-kamal", since=NOW - timedelta(hours=1))] == [
        "art003",
        "art003",
        "art002",
    ]
    assert [(o.hit.article_id, o.hit.start) for o in store.watch_hits("abu-kamal", limit=1)] == [("art003", 13)]
    assert [(o.hit.article_id, o.hit.start) for o in store.watch_hits("abu-kamal", limit=3)][-1] == ("art002", 13)
    assert [o.hit.watch for o in store.watch_hits("raqqa")] == ["raqqa"]
    assert store.watch_hits("deir-ez-zor") == []


def test_hits_for_articles_in_article_then_reading_order(store):
    """hits_for_articles: every hit of the given articles, in their order, the title's first, by offset."""
    store.add_articles([article(1), article(2), article(3)])
    store.add_hits(
        [
            Hit("art001", "abu-kamal", "Abu Kamal", 40, 49),
            Hit("art001", "abu-kamal", "Abu Kamal", 13, 22),
            Hit("art001", "deir-ez-zor", "Deir ez-Zor", 14, 25, field="title"),
            Hit("art002", "abu-kamal", "Abu Kamal", 13, 22),
            Hit("art003", "abu-kamal", "Abu Kamal", 13, 22),
        ],
        NOW,
    )
    got = store.hits_for_articles(["art002", "art001", "nope"])
    assert [(h.article_id, h.field, h.start) for h in got] == [
        ("art002", "text", 13),
        ("art001", "title", 14),
        ("art001", "text", 13),
        ("art001", "text", 40),
    ]
    assert got[1] == Hit("art001", "deir-ez-zor", "Deir ez-Zor", 14, 25, field="title")
    assert store.hits_for_articles([]) == [] and store.hits_for_articles(["nope"]) == []


def test_cluster_articles_are_a_storys_copies_oldest_first(store):
    """cluster_articles: the articles sharing a cluster_id, oldest fetched first, at most ``limit``; an
    article stored without a cluster is a story of its own."""

    def copy(n: int, cluster: str | None, fetched: datetime) -> Article:
        return Article(**{**article(n).__dict__, "cluster_id": cluster, "fetched": fetched})

    store.add_articles(
        [
            copy(1, "art002", NOW),
            copy(2, "art002", NOW - timedelta(hours=2)),
            copy(3, "art002", NOW - timedelta(hours=1)),
            copy(4, "art004", NOW),
            copy(5, None, NOW),
        ]
    )
    assert [a.id for a in store.cluster_articles("art002")] == ["art002", "art003", "art001"]
    assert [a.id for a in store.cluster_articles("art002", limit=2)] == ["art002", "art003"]
    (own,) = store.cluster_articles("art005")
    assert own == store.get_article("art005")
    assert [a.id for a in store.cluster_articles("art004")] == ["art004"]
    assert store.cluster_articles("art001") == [] and store.cluster_articles("nope") == []


def test_metrics_add_up_across_processes_and_keep_the_latest(store, other):
    """record_metrics adds counts to running totals atomically (two store objects adding at once lose
    nothing) and sets latest values; metrics() gives both by name."""
    assert store.metrics() == {}
    store.record_metrics(counts={"articles_stored": 2}, latest={"last_crawl_success": 1000.0})
    rounds = 20
    start = threading.Barrier(2)

    def add(target):
        start.wait()
        for _ in range(rounds):
            target.record_metrics(counts={"pages_fetched": 1, "articles_stored": 0.5})

    threads = [threading.Thread(target=add, args=(s,)) for s in (store, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.record_metrics(latest={"last_crawl_success": 2000.5})
    store.record_metrics()  # nothing to record
    assert store.metrics() == {
        "articles_stored": 2 + rounds,
        "pages_fetched": 2 * rounds,
        "last_crawl_success": 2000.5,
    }


def test_articles_after_pages_oldest_first_and_sees_changes_again(store):
    """articles_after walks new articles in write order; a changed article comes again; nothing new keeps the cursor."""
    store.add_articles([article(1), article(2), article(3)])
    first, cursor = store.articles_after(None, limit=2)
    rest, cursor = store.articles_after(cursor, limit=2)
    assert [a.id for a in first + rest] == ["art001", "art002", "art003"]
    assert store.articles_after(cursor) == ([], cursor)
    store.add_articles([article(2, text="Updated: Raqqa."), article(4)])
    changed, cursor = store.articles_after(cursor)
    assert [a.id for a in changed] == ["art002", "art004"]
    store.set_cursor("alerts", cursor)
    assert store.get_cursor("alerts") == cursor and store.get_cursor("other") is None


def test_hits_are_idempotent_by_key(store):
    """add_hits stores each Hit.key once and returns how many were new."""
    store.add_articles([article(1)])
    hits = [
        Hit("art001", "abu-kamal", "Abu Kamal", 13, 22, sentence="Fighting near Abu Kamal."),
        Hit("art001", "deir-ez-zor", "Deir ez-Zor", 11, 22, field="title"),
    ]
    assert store.add_hits(hits, NOW) == 2
    assert store.add_hits(hits, NOW) == 0
    assert store.add_hits([*hits[:1], Hit("art001", "abu-kamal", "Abu Kamal", 40, 49)], NOW) == 1


def test_owed_hits_are_per_recipient_and_per_watch(store):
    """owed_hits lists a recipient's undelivered hits with their article, filtered by watch names."""
    store.add_articles([article(1), article(2)])
    store.add_hits([Hit("art001", "abu-kamal", "Abu Kamal", 13, 22), Hit("art002", "raqqa", "Raqqa", 0, 5)], NOW)
    owed = store.owed_hits("ana@example.org")
    assert [(o.hit.watch, o.article.id) for o in owed] == [("abu-kamal", "art001"), ("raqqa", "art002")]
    assert owed[0].article.title == "Story 1 from Deir ez-Zor" and owed[0].found == NOW
    assert [o.hit.watch for o in store.owed_hits("ana@example.org", ["raqqa"])] == ["raqqa"]
    assert store.owed_hits("ana@example.org", []) == []


def test_queued_digest_takes_its_hits_and_is_pending_until_sent(store):
    """queue_digest assigns its hits to the recipient only; pending until mark_digest_sent; failures counted."""
    store.add_articles([article(1)])
    hit = Hit("art001", "abu-kamal", "Abu Kamal", 13, 22)
    store.add_hits([hit], NOW)
    digest = QueuedDigest(
        id="<d1@newswatch>",
        recipient="ana@example.org",
        hit_keys=(hit.key,),
        message=b"Subject: digest\r\n\r\n\xe2\x9c\x93",
        created=NOW,
    )
    store.queue_digest(digest)
    assert store.owed_hits("ana@example.org") == []
    assert [o.hit for o in store.owed_hits("bo@example.org")] == [hit]
    assert store.pending_digests() == [digest]
    store.note_digest_failure(digest.id, "421 try later", NOW + timedelta(minutes=5))
    (pending,) = store.pending_digests()
    retry = NOW + timedelta(minutes=5)
    assert (pending.attempts, pending.last_error, pending.next_attempt) == (1, "421 try later", retry)
    store.mark_digest_sent(digest.id, NOW + timedelta(minutes=6))
    assert store.pending_digests() == []
    (sent,) = store.sent_digests()
    assert sent.sent == NOW + timedelta(minutes=6) and sent.message == digest.message and sent.last_error is None


def test_a_changed_article_owes_no_new_hits_of_a_watch_already_sent(store):
    """When an article's text changes (its page replacing the feed item it was stored from), its new hits of
    a watch already in a digest for a recipient are not owed to that recipient again; to another recipient,
    and for another watch, they are."""
    store.add_articles([article(1)])
    first = Hit("art001", "abu-kamal", "Abu Kamal", 13, 22)
    store.add_hits([first], NOW)
    store.queue_digest(
        QueuedDigest(
            id="<d1@newswatch>",
            recipient="ana@example.org",
            hit_keys=(first.key,),
            message=b"Subject: d\r\n\r\nx",
            created=NOW,
        )
    )
    store.add_articles([article(1, text="The page: fighting near Abu Kamal and Raqqa, report 1.")])
    moved, other = Hit("art001", "abu-kamal", "Abu Kamal", 22, 31), Hit("art001", "raqqa", "Raqqa", 36, 41)
    assert store.add_hits([moved, other], NOW) == 2
    assert [o.hit for o in store.owed_hits("ana@example.org")] == [other]
    assert [o.hit for o in store.owed_hits("bo@example.org")] == [first, moved, other]


def test_pending_digests_oldest_first_and_sent_newest_first(store):
    """pending_digests lists oldest first; sent_digests newest first."""
    for n in (2, 1, 3):
        store.queue_digest(
            QueuedDigest(
                id=f"<d{n}>", recipient="ana@example.org", hit_keys=(), message=b"m", created=NOW + timedelta(minutes=n)
            )
        )
    assert [d.id for d in store.pending_digests()] == ["<d1>", "<d2>", "<d3>"]
    for n in (1, 3, 2):
        store.mark_digest_sent(f"<d{n}>", NOW + timedelta(hours=n))
    assert [d.id for d in store.sent_digests(limit=2)] == ["<d3>", "<d2>"]


def test_feed_state_round_trips(store):
    """set_feed_state replaces one feed's state; all_feed_states lists every feed."""
    store.set_feed_state("wire", FeedState(etag="x", consecutive_failures=0))
    changed = FeedState(etag="y", consecutive_failures=1, next_due=NOW, entry_updates={"a": "2026-03-14"})
    store.set_feed_state("wire", changed)
    store.set_feed_state("other", FeedState())
    assert store.get_feed_state("wire") == changed
    assert store.get_feed_state("missing") is None
    assert store.all_feed_states() == {"wire": changed, "other": FeedState()}


def test_similar_signatures_reads_those_sharing_most_band_keys(store):
    """A band key that boilerplate gives many articles does not make each lookup read them all: of those sharing
    band keys, the SIGNATURE_CANDIDATES sharing the most are read (the newest first among equals), and the
    article's own and its URL's signatures besides."""
    rng = random.Random(7)

    def sharing(bands: range) -> bytes:  # a signature equal to ``target`` in ``bands``, random elsewhere
        return b"".join(target[b * 16 : (b + 1) * 16] if b in bands else rng.randbytes(16) for b in range(32))

    target = rng.randbytes(512)
    boilerplate = [
        ClusterSignature(f"bp{n:03d}", f"bp{n:03d}", None, NOW - timedelta(hours=50 - n), sharing(range(1)))
        for n in range(40)
    ]
    copy = ClusterSignature("copy", "copy", None, NOW - timedelta(hours=60), sharing(range(8)))
    own = ClusterSignature("art009", "art009", None, NOW - timedelta(hours=70), sharing(range(1)))
    same_url = ClusterSignature("url", "url", "https://news.example/9", NOW - timedelta(hours=80), rng.randbytes(512))
    store.add_signatures([same_url, own, copy, *boilerplate])
    found = store.similar_signatures("art009", "https://news.example/9", band_keys(target), NOW - timedelta(days=14))
    newest = boilerplate[-(SIGNATURE_CANDIDATES - 1) :]
    assert found == sorted([same_url, own, copy, *newest], key=lambda s: (s.added, s.article_id))


def test_signatures_are_kept_once_and_found_by_id_url_or_band(store):
    """add_signatures keeps the first signature of an article; similar_signatures gives those of the window
    that are the article's own, share its URL or share a band key, oldest first, with their bytes (None for
    a text too short to compare); prune_signatures drops those past the window."""
    one, two = bytes(range(256)) * 2, bytes(reversed(range(256))) * 2
    half = one[:256] + two[256:]  # shares the last 16 bands with ``two``, the first 16 with ``one``
    old = ClusterSignature("art001", "art001", "https://news.example/1", NOW - timedelta(days=20), one)
    recent = ClusterSignature("art002", "art001", "https://news.example/2", NOW - timedelta(hours=2), two)
    short = ClusterSignature("art003", "art003", None, NOW - timedelta(hours=1))
    store.add_signatures([old, recent])
    store.add_signatures([short, ClusterSignature("art002", "art002", None, NOW, one)])
    window = NOW - timedelta(days=14)
    assert store.similar_signatures("art009", None, band_keys(half), window) == [recent]
    assert store.similar_signatures("art009", None, band_keys(half), NOW - timedelta(days=30)) == [old, recent]
    assert store.similar_signatures("art003", None, (), window) == [short]
    assert store.similar_signatures("art009", "https://news.example/2", (), window) == [recent]
    assert store.similar_signatures("art009", "https://news.example/9", band_keys(b"\x07" * 512), window) == []
    assert store.prune_signatures(window) == 1
    assert store.similar_signatures("art009", None, band_keys(one), NOW - timedelta(days=30)) == []
    assert store.similar_signatures("art002", None, (), window) == [recent]


def test_cluster_signatures_of_the_old_sidecar_file_move_into_the_store(reopen, config_dir):
    """A store written before signatures moved into it: its var/crawler/clusters.db is read into the store
    at open, and renamed so that it is read once."""
    sidecar = config_dir.parent / "var" / "crawler" / "clusters.db"
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(sidecar) as db:
        db.execute("PRAGMA journal_mode=WAL")  # as the old crawler kept it
        db.execute(
            "CREATE TABLE signatures (article_id TEXT PRIMARY KEY, cluster_id TEXT NOT NULL, url TEXT, "
            "added TEXT NOT NULL, signature BLOB)"
        )
        db.execute(
            "INSERT INTO signatures VALUES (?,?,?,?,?)",
            ("art001", "art000", "https://news.example/1", (NOW - timedelta(days=1)).isoformat(), b"\x01" * 8),
        )
    db.close()
    store = reopen()
    assert store.similar_signatures("art001", None, (), NOW - timedelta(days=2)) == [
        ClusterSignature("art001", "art000", "https://news.example/1", NOW - timedelta(days=1), b"\x01" * 8)
    ]
    left = {p.name for p in sidecar.parent.iterdir()} & {"clusters.db", "clusters.db-wal", "clusters.db-shm"}
    assert left == set() and sidecar.with_name("clusters.db.migrated").exists()
    assert len(reopen().similar_signatures("art001", None, (), NOW - timedelta(days=2))) == 1


def test_a_cluster_sidecar_that_cannot_be_read_is_left_for_later(reopen, config_dir, caplog):
    """A sidecar that is not a database (or is locked by an old crawl) stays where it is, with one warning;
    the store opens all the same."""
    sidecar = config_dir.parent / "var" / "crawler" / "clusters.db"
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    sidecar.write_bytes(b"not a database")
    store = reopen()
    assert store.similar_signatures("art001", None, (), NOW - timedelta(days=30)) == [] and sidecar.exists()
    assert "cluster_sidecar_unreadable" in caplog.text


def test_restart_keeps_everything(reopen):
    """Closing and reopening the store keeps articles, feed state, cursors, owed hits and the outbox."""
    store = reopen()
    store.add_articles([article(1), article(2)])
    store.add_hits([Hit("art001", "abu-kamal", "Abu Kamal", 13, 22)], NOW)
    store.set_feed_state("wire", FeedState(etag="x"))
    store.add_signatures([ClusterSignature("art001", "art001", "https://news.example/1", NOW)])
    _, cursor = store.articles_after(None)
    store.set_cursor("alerts", cursor)
    store.queue_digest(QueuedDigest(id="<d1>", recipient="bo@example.org", hit_keys=(), message=b"m", created=NOW))

    store = reopen()
    assert store.count_articles() == 2 and store.get_feed_state("wire") == FeedState(etag="x")
    assert [s.article_id for s in store.similar_signatures("art001", None, (), NOW)] == ["art001"]
    assert store.articles_after(store.get_cursor("alerts")) == ([], cursor)
    assert [o.hit.article_id for o in store.owed_hits("ana@example.org")] == ["art001"]
    assert [d.id for d in store.pending_digests()] == ["<d1>"]
    assert store.add_articles([article(1)]) == 0


# -- exactly once: overlapping passes, concurrent queueing and sending, writers' clocks, leases


def digest_of(name: str, *hits: Hit, recipient: str = "ana@example.org") -> QueuedDigest:
    return QueuedDigest(
        id=name, recipient=recipient, hit_keys=tuple(h.key for h in hits), message=b"Subject: d\r\n\r\nx", created=NOW
    )


def test_overlapping_passes_never_queue_a_hit_twice(store, other):
    """Pass A builds its digest, a new article arrives, pass B (another process) queues everything owed, then
    A queues: A is refused whole (StoreConflict), so every hit is in exactly one digest, on both stores."""
    store.add_articles([article(1)])
    first = Hit("art001", "abu-kamal", "Abu Kamal", 13, 22)
    store.add_hits([first], NOW)
    built_by_a = digest_of("<a@newswatch>", *[o.hit for o in store.owed_hits("ana@example.org")])
    store.add_articles([article(2)])
    second = Hit("art002", "abu-kamal", "Abu Kamal", 13, 22)
    store.add_hits([second], NOW)
    other.queue_digest(digest_of("<b@newswatch>", *[o.hit for o in other.owed_hits("ana@example.org")]))
    with pytest.raises(StoreConflict):
        store.queue_digest(built_by_a)
    pending = store.pending_digests()
    assert [(d.id, set(d.hit_keys)) for d in pending] == [("<b@newswatch>", {first.key, second.key})]
    assert store.owed_hits("ana@example.org") == [] and other.owed_hits("ana@example.org") == []
    store.queue_digest(pending[0])  # the same digest again (a retry after an error) is harmless
    assert [d.id for d in other.pending_digests()] == ["<b@newswatch>"]


def test_concurrent_queueing_gives_each_hit_to_one_digest(store, other):
    """Two processes queue digests sharing hits at the same moment, many times: each hit ends in one digest."""
    store.add_articles([article(n) for n in range(1, 9)])
    hits = [Hit(f"art{n:03d}", "abu-kamal", "Abu Kamal", 13, 22) for n in range(1, 9)]
    store.add_hits(hits, NOW)
    for round_ in range(4):
        shared = hits[round_ * 2 : round_ * 2 + 2]
        outcomes: list[str] = []
        start = threading.Barrier(2)

        def queue(target, name, chosen=shared, start=start, outcomes=outcomes):
            start.wait()
            try:
                target.queue_digest(digest_of(name, *chosen))
                outcomes.append("queued")
            except StoreConflict:
                outcomes.append("refused")

        threads = [
            threading.Thread(target=queue, args=(s, f"<{round_}-{n}@newswatch>")) for n, s in enumerate((store, other))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["queued", "refused"]
    carried = [key for digest in store.pending_digests() for key in digest.hit_keys]
    assert sorted(carried) == sorted(h.key for h in hits) and len(store.pending_digests()) == 4


def test_only_the_holder_of_a_claim_sends_a_digest(store, other):
    """Two senders claim the same digest at once: one wins; the claim runs out if its holder dies; a sent
    digest can be claimed by no one; a failure ends the claim."""
    store.queue_digest(digest_of("<d1@newswatch>"))
    results: dict[str, bool] = {}
    start = threading.Barrier(2)

    def claim(target, name):
        start.wait()
        results[name] = target.claim_digest("<d1@newswatch>", holders[name], 60)

    holders = {"a": holder(), "b": holder()}
    threads = [threading.Thread(target=claim, args=pair) for pair in ((store, "a"), (other, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == [False, True]
    winner, loser = (holders[n] for n in sorted(results, key=results.get, reverse=True))
    assert other.claim_digest("<d1@newswatch>", loser, 60) is False
    assert store.claim_digest("<d1@newswatch>", winner, 60) is True  # its own claim, renewed
    store.note_digest_failure("<d1@newswatch>", "421 later", NOW)
    assert other.claim_digest("<d1@newswatch>", loser, 0.5) is True
    time.sleep(0.8)  # the loser "died" holding it: its claim runs out
    assert store.claim_digest("<d1@newswatch>", winner, 60) is True
    store.mark_digest_sent("<d1@newswatch>", NOW)
    assert other.claim_digest("<d1@newswatch>", loser, 60) is False
    assert store.claim_digest("<nope@newswatch>", winner, 60) is False


def test_dead_letters_leave_the_queue_until_revived(store):
    """A digest given up on is not pending, is listed as dead, and revive_digest makes it due again."""
    store.queue_digest(digest_of("<d1@newswatch>"))
    store.note_digest_failure("<d1@newswatch>", "421 later", NOW + timedelta(hours=1))
    store.note_digest_failure("<d1@newswatch>", "554 rejected", NOW + timedelta(hours=1), permanent=True)
    assert [(d.attempts, d.refusals) for d in store.pending_digests()] == [(2, 1)]
    store.note_digest_failure("<d1@newswatch>", "554 rejected", NOW + timedelta(hours=1), permanent=True, dead=True)
    assert store.pending_digests() == []
    (dead,) = store.dead_digests()
    assert dead.id == "<d1@newswatch>" and dead.dead is not None and dead.last_error == "554 rejected"
    assert store.claim_digest("<d1@newswatch>", holder(), 60) is False
    assert store.revive_digest("<d1@newswatch>") is True
    (revived,) = store.pending_digests()
    assert revived.next_attempt is None and revived.dead is None and revived.refusals == 0
    assert store.dead_digests() == []
    store.mark_digest_sent("<d1@newswatch>", NOW)
    assert store.revive_digest("<d1@newswatch>") is False and store.revive_digest("<nope>") is False


@pytest.mark.parametrize("shift", [timedelta(hours=-1), timedelta(hours=1)], ids=["behind", "ahead"])
def test_a_writer_clock_off_by_an_hour_never_hides_articles_from_the_cursor(store, other, monkeypatch, shift):
    """The cursor is the store's, not a writer's clock: articles written by a process whose clock runs an
    hour behind (or ahead, then back) after the cursor moved are all read after it. The clock is shifted
    by patching time.time/time_ns in this process while the "other" store writes: a real clock cannot be
    set for one process here."""
    real_time, real_ns = time.time, time.time_ns
    store.add_articles([article(1)])
    seen, cursor = store.articles_after(None)
    assert [a.id for a in seen] == ["art001"]
    for n in (2, 3):
        monkeypatch.setattr(time, "time", lambda: real_time() + shift.total_seconds())
        monkeypatch.setattr(time, "time_ns", lambda: real_ns() + int(shift.total_seconds() * 1e9))
        other.add_articles([article(n)])
        if hasattr(other, "flush"):  # Elasticsearch writes in the background: let it finish on that clock
            other.flush()
        monkeypatch.setattr(time, "time", real_time)
        monkeypatch.setattr(time, "time_ns", real_ns)
        page, cursor = store.articles_after(cursor)
        assert [a.id for a in page] == [f"art{n:03d}"]


def holder(pid: int | None = None) -> LeaseHolder:
    return LeaseHolder(id=os.urandom(6).hex(), host=socket.gethostname(), pid=pid or os.getpid())


def test_a_lease_has_one_holder_until_it_is_released_or_runs_out(store, other):
    """take_lease gives the lease to one holder; another is told who holds it (host, pid, since) until it is
    released or runs out; renewing keeps its since."""
    first, second = holder(), holder()
    taken = store.take_lease("service", first, 60)
    assert taken.id == first.id and taken.since is not None and taken.expires > taken.since
    refused = other.take_lease("service", second, 60)
    assert (refused.id, refused.host, refused.pid) == (first.id, first.host, first.pid)
    assert refused.since == taken.since and "pid" in refused.describe()
    assert store.take_lease("service", first, 60).since == taken.since  # renewed
    assert other.take_lease("alerts", second, 60).id == second.id  # another name is another lease
    store.release_lease("service", second)  # not its holder: nothing happens
    assert other.take_lease("service", second, 60).id == first.id
    store.release_lease("service", first)
    assert other.take_lease("service", second, 0.5).id == second.id
    time.sleep(0.8)
    assert store.take_lease("service", first, 60).id == first.id


def test_a_lease_of_a_killed_process_on_this_host_is_taken_at_once(store, other):
    """A holder on this host whose process is gone (SIGKILL) does not make the next one wait for expiry."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = holder(int(child.stdout))
    assert store.take_lease("service", dead, 3600).id == dead.id
    assert other.take_lease("service", holder(), 60).id != dead.id
    store.queue_digest(digest_of("<d1@newswatch>"))  # and a digest it was sending when it was killed
    assert store.claim_digest("<d1@newswatch>", dead, 3600)
    assert other.claim_digest("<d1@newswatch>", holder(), 60)


def test_owed_hits_since_reads_only_the_recipients_window(store):
    """owed_hits(since=) leaves out hits found before the window (delivery.owed_days), however undelivered."""
    store.add_articles([article(1), article(2)])
    stale, fresh = Hit("art001", "abu-kamal", "Abu Kamal", 13, 22), Hit("art002", "abu-kamal", "Abu Kamal", 13, 22)
    store.add_hits([stale], NOW - timedelta(days=20))
    store.add_hits([fresh], NOW)
    assert [o.hit for o in store.owed_hits("ana@example.org", since=NOW - timedelta(days=14))] == [fresh]
    assert [o.hit for o in store.owed_hits("ana@example.org", ["abu-kamal"], since=NOW)] == [fresh]
    assert {o.hit for o in store.owed_hits("ana@example.org")} == {stale, fresh}


def _fetched(n: int, when: datetime) -> Article:
    return Article(**{**article(n).__dict__, "fetched": when, "published": when})


def test_stats_count_articles_and_hits_per_month(store):
    """stats: totals, bytes on disk, the oldest article (by fetched), and articles and hits per month."""
    store.add_articles([_fetched(1, NOW - timedelta(days=40)), _fetched(2, NOW), _fetched(3, NOW)])
    store.add_hits([Hit("art001", "abu-kamal", "Abu Kamal", 13, 22)], NOW - timedelta(days=40))
    store.add_hits([Hit("art002", "abu-kamal", "Abu Kamal", 13, 22)], NOW)
    stats = store.stats()
    assert (stats.articles, stats.hits, stats.oldest) == (3, 2, NOW - timedelta(days=40))
    assert stats.bytes > 0
    assert [(m.month, m.articles, m.hits) for m in stats.months] == [("2026-02", 1, 1), ("2026-03", 2, 1)]


def test_prune_drops_old_articles_hits_and_signatures_and_keeps_what_is_owed(store):
    """prune(before): articles first stored before it go with their hits, as do old hits and signatures;
    digests stay, queued or sent, and so do the hits a queued one carries."""
    old, queued_old, new = (
        _fetched(1, NOW - timedelta(days=400)),
        _fetched(2, NOW - timedelta(days=400)),
        _fetched(3, NOW),
    )
    store.add_articles([old, queued_old, new])
    hits = [Hit(a.id, "abu-kamal", "Abu Kamal", 13, 22) for a in (old, queued_old, new)]
    store.add_hits(hits[:2], NOW - timedelta(days=400))
    store.add_hits(hits[2:], NOW)
    store.add_signatures([ClusterSignature(a.id, a.id, a.url, a.fetched, bytes(512)) for a in (old, new)])
    store.queue_digest(digest_of("<sent@newswatch>", hits[0]))
    store.mark_digest_sent("<sent@newswatch>", NOW - timedelta(days=399))
    store.queue_digest(digest_of("<owed@newswatch>", hits[1], recipient="bo@example.org"))

    report = store.prune(NOW - timedelta(days=365))
    assert (report.articles, report.signatures) == (2, 1) and report.hits >= 1
    assert store.get_article("art001") is None and store.get_article("art003") is not None
    assert store.count_articles() == 1
    assert [d.id for d in store.pending_digests()] == ["<owed@newswatch>"]
    assert store.pending_digests()[0].hit_keys == (hits[1].key,)
    assert [d.id for d in store.sent_digests()] == ["<sent@newswatch>"]
    assert store.similar_signatures("art001", None, (), NOW - timedelta(days=500)) == []
    assert [s.article_id for s in store.similar_signatures("art003", None, (), NOW - timedelta(days=500))] == ["art003"]
    assert [o.hit for o in store.owed_hits("ana@example.org")] == [hits[2]]
    stats = store.stats()
    assert (stats.articles, stats.oldest) == (1, NOW)
    assert store.prune(NOW - timedelta(days=365)).articles == 0
