"""The web page (newswatch.web): a real uvicorn server on 127.0.0.1 over a real store filled with demo-like data.

Every page and its /api/ twin answers; /healthz and /metrics say what a monitor needs; feeds' text is escaped
and their links http(s) only; every response carries the security headers; a network address needs
credentials. The browser's view is tests/test_web_browser.py.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import itertools
import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from alerts.run import run_alerts
from newswatch.core.config import Config, load_config
from newswatch.core.feedstate import FeedState
from newswatch.core.models import Article
from newswatch.core.store import open_store
from newswatch.core.times import utc_now
from newswatch.web.access import Access, is_loopback
from newswatch.web.guard import SECURITY_HEADERS
from newswatch.web.server import WebServer
from tests.conftest import ROOT, newswatch, run_cli, spawn, start_service, stop_service, wait_for, write_config
from tests.plugins.smtp import sample_articles

SEED_TITLE = "Daesh loses last towns in face of twin Syria, Iraq assaults"
ARABIC_TITLE = "الجيش السوري يعلن السيطرة الكاملة على مدينة دير الزور"
HOSTILE_TITLE = '<script>alert("pwned")</script> Deir Ezzor <img src=x onerror=alert(1)>'
FEEDS = [
    {"id": "levant", "name": "The Levant Monitor", "url": "http://127.0.0.1:8000/feed.xml"},
    {"id": "gulf", "name": "Gulf Wire", "url": "https://gulf-wire.example/rss"},
    {"id": "mashriq", "name": "مرصد المشرق", "url": "http://127.0.0.1:8000/ar.xml", "language": "ar"},
    {"id": "syria-wire", "name": "Syria Wire", "url": "http://127.0.0.1:8001/rss"},
    {"id": "evil", "name": "Evil Outlet", "url": "http://127.0.0.1:8002/rss"},
]


def hostile_article(fetched) -> Article:
    """An article whose title, outlet and link a hostile feed wrote: markup, a script, a javascript: link."""
    return Article(
        id="hostile-1",
        url="javascript:alert(document.cookie)",
        title=HOSTILE_TITLE,
        text="Deir Ezzor <script>alert('text')</script> was mentioned by an outlet that tries its luck.",
        feed_id="evil",
        outlet='<b onmouseover="alert(2)">Evil</b> Outlet',
        language="en",
        fetched=fetched,
    )


def fill_store(config: Config) -> None:
    """Demo-like data: the four sample articles and a hostile one, matched and one digest delivered (outbox),
    a healthy and an unhealthy feed, and one finished crawl recorded as a crawl records it."""
    from crawler.extensions import record_crawl_metrics

    now = utc_now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)  # "new today" holds just after midnight too
    fetched = max(now - timedelta(minutes=20), today)
    with open_store(config) as store:
        store.add_articles([*sample_articles(fetched), hostile_article(max(now - timedelta(minutes=5), today))])
        store.set_feed_state(
            "levant", FeedState(name="The Levant Monitor", last_success=now - timedelta(minutes=10), items_seen=4)
        )
        store.set_feed_state(
            "syria-wire",
            FeedState(
                name="Syria Wire",
                consecutive_failures=6,
                last_success=now - timedelta(days=2),
                last_error="HTTP 503 Service Unavailable",
                last_error_at=now - timedelta(minutes=10),
            ),
        )
        stats = {  # as Scrapy's stats name them: the robots.txt 404 and the refusal are no failed page
            "response_received_count": 7,
            "downloader/exception_count": 2,
            "downloader/exception_type_count/twisted.internet.error.ConnectionRefusedError": 1,
            "downloader/exception_type_count/scrapy.exceptions.IgnoreRequest": 1,
            "downloader/response_status_count/200": 5,
            "downloader/response_status_count/404": 1,
            "downloader/response_status_count/503": 1,
            "robotstxt/response_status_count/404": 1,
            "newswatch/feeds/failed": 1,
            "newswatch/articles/stored": 5,
        }
        record_crawl_metrics(store, stats, "finished", time.time())
        run_alerts(config, store, now=now)


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body)


def get(url: str, headers: dict[str, str] | None = None) -> Answer:
    """GET ``url``; the answer whatever its status (urllib raises on 4xx and 5xx)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


@contextlib.contextmanager
def serving(config: Config, **kwargs) -> Iterator[str]:
    """The web page of ``config`` on a free port of 127.0.0.1 (a real uvicorn server); yields its base URL."""
    server = WebServer(config, port=0, **kwargs)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.fixture
def web_config(config_dir: Path) -> Config:
    """A config (the shipped watches, five feeds) whose SQLite store holds the demo-like data."""
    config = load_config(write_config(config_dir, feeds=FEEDS), env={})
    fill_store(config)
    return config


@pytest.fixture
def site(web_config: Config) -> Iterator[str]:
    with serving(web_config) as url:
        yield url


PAGES = [
    "/",
    "/watch/Deir%20Ezzor",
    "/story/story-deir-ezzor",
    "/story/mashriq-1",
    "/search?q=" + quote("Deir ez-Zor"),
    "/sources",
    "/outbox",
]
APIS = [
    "/api/watches",
    "/api/watch/Deir%20Ezzor",
    "/api/story/story-deir-ezzor",
    "/api/search?q=" + quote("Deir ez-Zor"),
    "/api/sources",
    "/api/outbox",
]


def test_every_page_and_its_json_answers(site: str):
    """Every page is HTML naming what it shows; every /api/ view is JSON of the same."""
    for path in PAGES:
        answer = get(site + path)
        assert answer.status == 200, (path, answer.text[:2000])
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "<!doctype html>" in answer.text and "/static/web.css" in answer.text
    for path in APIS:
        answer = get(site + path)
        assert answer.status == 200, (path, answer.text[:2000])
        assert answer.headers["content-type"].startswith("application/json"), path
        answer.json()
    css = get(site + "/static/web.css")
    assert css.status == 200 and css.headers["content-type"].startswith("text/css")


def test_the_dashboard_counts_new_stories_and_draws_fourteen_days(site: str):
    """Deir Ezzor: one story of two copies, an Arabic one and the hostile one, all new today; 14 days of bars."""
    watches = {w["name"]: w for w in get(site + "/api/watches").json()["watches"]}
    deir = watches["Deir Ezzor"]
    assert deir["stories_today"] == deir["stories_7d"] == 3
    assert len(deir["daily"]) == 14 and deir["daily"][-1]["articles"] == 4
    assert sum(d["articles"] for d in deir["daily"][:-1]) == 0
    assert deir["last_hit"] is not None
    assert watches["Rawa"]["stories_7d"] == 0 and watches["Rawa"]["last_hit"] is None
    page = get(site + "/").text
    assert page.count('<svg class="spark"') == len(watches)
    assert 'href="/watch/Deir%20Ezzor"' in page


def test_a_watch_page_groups_copies_into_stories_with_highlighted_sentences(site: str):
    data = get(site + "/api/watch/Deir%20Ezzor").json()
    stories = {s["id"]: s for s in data["stories"]}
    assert set(stories) == {"story-deir-ezzor", "mashriq-1", "hostile-1"}
    wire = stories["story-deir-ezzor"]
    assert wire["title"] == SEED_TITLE  # the first copy's title
    assert sorted(wire["outlets"]) == ["Gulf Wire", "The Levant Monitor"] and wire["languages"] == ["en"]
    assert len(wire["copies"]) == 2 and wire["first_seen"]
    sentence = wire["sentences"][0]
    marked = [sentence["text"][a:b] for a, b in sentence["marks"]]
    assert marked and all(m.casefold() == "deir ezzor" for m in marked)
    arabic = stories["mashriq-1"]
    assert arabic["title_dir"] == "rtl" and arabic["sentences"][0]["dir"] == "rtl"
    page = get(site + "/watch/Deir%20Ezzor").text
    assert "<mark>" in page and 'dir="rtl"' in page


def test_a_story_page_lists_every_copy_and_says_why_each_watch_matched(site: str):
    data = get(site + "/api/story/story-deir-ezzor").json()
    assert {c["outlet"] for c in data["copies"]} == {"The Levant Monitor", "Gulf Wire"}
    assert {c["url"] for c in data["copies"]} == {
        "http://127.0.0.1:8000/2017/11/04/daesh-loses-last-towns.html",
        "https://gulf-wire.example/news/syria-army-retakes-deir-ezzor",
    }
    matched = {w["watch"]: w for w in data["watches"]}
    assert {"Deir Ezzor", "Daesh", "Abu Kamal", "Al-Qaim", "Raqqa"} <= set(matched)
    assert matched["Deir Ezzor"]["why"], "the matcher's explanation of the match"
    assert any(s.casefold() == "deir ezzor" for s in matched["Deir Ezzor"]["spellings"])
    unmatched = {u["watch"] for u in data["unmatched"]}
    assert "Rawa" in unmatched and not unmatched & set(matched)
    assert all(u["reasons"] for u in data["unmatched"]), "each says why not"
    line = matched["Deir Ezzor"]["why"][0]
    assert line["spelling"] == "Deir Ezzor" and line["reason"] and line["count"] >= 1
    page = get(site + "/story/story-deir-ezzor").text
    assert 'the spelling <q dir="auto">Deir Ezzor</q>' in page and "did not match" in page
    by_article = get(site + "/api/story/levant-1").json()  # a copy's id leads to its whole story
    assert len(by_article["copies"]) == 2
    assert get(site + "/story/no-such-story").status == 404
    assert get(site + "/api/story/no-such-story").status == 404


def test_search_knows_the_spellings_of_a_watch(site: str):
    """ "Deir ez-Zor" names the Deir Ezzor watch: its English and Arabic stories are found, grouped by story."""
    data = get(site + "/api/search?q=" + quote("Deir ez-Zor")).json()
    assert data["expanded"] == "Deir Ezzor" and data["phrases"] > 1
    stories = {s["id"]: s for s in data["stories"]}
    assert {"story-deir-ezzor", "mashriq-1"} <= set(stories)
    assert len(stories) == len(data["stories"]), "one entry per story"
    assert stories["mashriq-1"]["title"] == ARABIC_TITLE
    wire = stories["story-deir-ezzor"]
    assert SEED_TITLE in {c["title"] for c in wire["copies"]}
    assert "Deir Ezzor" in wire["watches"] and wire["url"].startswith("http")
    assert all("<mark>" not in f["text"] for s in data["stories"] for f in s["fragments"]), "plain text + offsets"
    assert get(site + "/search?q=").status == 200
    assert get(site + "/api/search?q=football").json()["stories"] == []


@pytest.mark.parametrize("query", ["Daesh", "Deir ez-Zor", "Abu Kamal", "border"])
def test_the_page_finds_the_stories_the_search_command_finds(web_config: Config, site: str, query: str):
    """One search for both (alerts.search): the same stories, in the same order, as `newswatch search`."""
    command = run_cli("search", query, "--json", config_dir=web_config.config_dir)
    assert command.returncode == 0, command.stderr
    page = get(site + "/api/search?q=" + quote(query)).json()
    assert [s["id"] for s in page["stories"]] == [s["id"] for s in json.loads(command.stdout)]
    assert page["stories"] or query == "border"


@pytest.mark.parametrize("watch", ["Daesh", "Deir Ezzor", "deir ez-zor", "دير الزور"])
def test_a_watch_without_a_query_lists_its_hits_as_the_search_command_does(web_config: Config, site: str, watch: str):
    """/search?watch=NAME (its name in any case, or a spelling) with no q: the watch's stories, newest found
    first, the same as `newswatch search --watch NAME`; with q, the stories among its hits."""
    command = run_cli("search", "--watch", watch, "--json", config_dir=web_config.config_dir)
    assert command.returncode == 0, command.stderr
    expected = [s["id"] for s in json.loads(command.stdout)]
    data = get(site + "/api/search?watch=" + quote(watch)).json()
    assert expected and [s["id"] for s in data["stories"]] == expected
    assert data["watch"] in {"Daesh", "Deir Ezzor"} and all(data["watch"] in s["watches"] for s in data["stories"])
    assert all(s["found"] for s in data["stories"])
    page = get(site + "/search?watch=" + quote(watch))
    assert page.status == 200
    for story_id in expected:
        assert f'href="/story/{quote(story_id, safe="")}"' in page.text
    assert f'the hits of <a href="/watch/{quote(data["watch"], safe="")}"' in page.text
    assert 'type="hidden" name="watch"' in page.text  # a search within the watch's hits keeps it
    within = get(site + "/api/search?q=army&watch=" + quote(watch)).json()
    command = run_cli("search", "army", "--watch", watch, "--json", config_dir=web_config.config_dir)
    assert [s["id"] for s in within["stories"]] == [s["id"] for s in json.loads(command.stdout)]


def test_an_unknown_watch_is_a_404_naming_it(site: str):
    """?watch= of no configured watch (by name or spelling) is refused, as the command refuses it."""
    answer = get(site + "/api/search?watch=Nope")
    assert answer.status == 404 and answer.json()["error"] == "no watch named 'Nope' in watches.yaml"
    page = get(site + "/search?q=army&watch=Nope")
    assert page.status == 404 and "no watch named" in page.text and "Traceback" not in page.text
    assert get(site + "/api/watch/deir%20ez-zor").json()["watch"]["name"] == "Deir Ezzor"  # a spelling, as search
    assert get(site + "/watch/Nope").status == 404


def test_a_sentence_with_two_hits_is_one_fragment(web_config: Config, site: str):
    """A story's fragments on the search page are one per sentence, every hit in it marked."""
    for path in ["/api/search?watch=Daesh", "/api/search?q=Daesh", "/api/search?q=" + quote("Deir ez-Zor")]:
        for story in get(site + path).json()["stories"]:
            texts = [f["text"] for f in story["fragments"]]
            assert len(texts) == len(set(texts)), (path, story["id"], texts)
            for fragment in story["fragments"]:
                marks = fragment["marks"]
                assert marks == sorted(marks) and all(a[1] <= b[0] for a, b in itertools.pairwise(marks))
                assert all("\n" not in fragment["text"][a:b] for a, b in marks), fragment


def test_a_query_the_store_cannot_parse_is_a_400_page(site: str):
    answer = get(site + "/search?q=" + quote('"unbalanced AND ('))
    if answer.status == 200:  # the store may take it as words
        return
    assert answer.status == 400 and "Traceback" not in answer.text
    assert get(site + "/api/search?q=" + quote('"unbalanced AND (')).json()["error"]


def test_sources_put_unhealthy_feeds_first(site: str):
    feeds = get(site + "/api/sources").json()["feeds"]
    assert feeds[0]["id"] == "syria-wire" and feeds[0]["health"] == "UNHEALTHY"
    assert {f["id"]: f["health"] for f in feeds}["levant"] == "ok"
    assert "HTTP 503 Service Unavailable" in get(site + "/sources").text


def test_the_outbox_shows_the_sent_digest(site: str):
    data = get(site + "/api/outbox").json()
    assert data["waiting"] == [] and data["dead"] == []
    assert len(data["sent"]) == 1 and data["sent"][0]["recipient"] == "analyst"
    assert data["sent"][0]["subject"] in get(site + "/outbox").text


def test_what_a_feed_wrote_is_escaped_and_its_javascript_link_dropped(site: str):
    """The hostile title, outlet and link are shown as text: no tag of theirs, no javascript: href."""
    for path in ["/", "/watch/Deir%20Ezzor", "/story/hostile-1", "/search?q=Deir"]:
        page = get(site + path).text
        assert "<script" not in page.lower(), path
        assert "<img" not in page and "<b " not in page, path
        assert "javascript:" not in page.lower(), path
    story = get(site + "/story/hostile-1").text
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in story
    assert "&lt;b onmouseover=" in story
    assert get(site + "/api/story/hostile-1").json()["copies"][0]["url"] is None
    assert all(
        c["url"] != "javascript:alert(document.cookie)" for c in get(site + "/api/story/hostile-1").json()["copies"]
    )


def test_every_response_carries_the_security_headers(site: str):
    for path in [*PAGES, *APIS, "/healthz", "/metrics", "/static/web.css", "/no-such-page", "/story/nope"]:
        answer = get(site + path)
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (path, name)
    policy = SECURITY_HEADERS["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert get(site + "/no-such-page").status == 404


def test_a_request_for_another_host_name_is_refused_on_loopback(site: str):
    """A page of another site whose name was made to resolve to 127.0.0.1 (DNS rebinding) reads nothing."""
    assert get(site + "/", headers={"Host": "evil.example"}).status == 421
    assert get(site + "/", headers={"Host": "localhost:8080"}).status == 200


def test_healthz_is_200_when_crawled_recently_and_the_outbox_is_empty(site: str):
    answer = get(site + "/healthz")
    assert answer.status == 200, answer.text
    body = answer.json()
    assert body["status"] == "ok" and body["reasons"] == [] and body["store"] == "reachable"
    assert body["outbox_depth"] == 0 and 0 <= body["last_crawl_age_seconds"] < 600


def test_healthz_is_503_without_a_recent_crawl(config_dir: Path):
    config = load_config(write_config(config_dir, feeds=FEEDS), env={})
    with open_store(config) as store:
        store.add_articles(sample_articles(utc_now()))
    with serving(config) as url:
        answer = get(url + "/healthz")
    assert answer.status == 503
    assert answer.json()["reasons"] == ["no successful crawl recorded yet"]


def test_healthz_is_503_when_the_crawl_is_old_or_the_outbox_piles_up(config_dir: Path):
    from crawler.extensions import record_crawl_metrics

    settings = {"web": {"healthz": {"max_crawl_age_minutes": 60, "max_outbox_depth": 0}}}
    config = load_config(write_config(config_dir, feeds=FEEDS, settings=settings), env={})
    with open_store(config) as store:
        store.add_articles(sample_articles(utc_now()))
        record_crawl_metrics(store, {}, "finished", time.time() - 2 * 3600)
        run_alerts(config, store, send=False)  # a digest queued, not sent
    with serving(config) as url:
        answer = get(url + "/healthz")
    assert answer.status == 503
    reasons = answer.json()["reasons"]
    assert any(r.startswith("last successful crawl 120 minutes ago") for r in reasons), reasons
    assert "1 digests waiting to be sent (limit 0)" in reasons


def test_healthz_is_503_when_the_store_cannot_be_opened(config_dir: Path, tmp_path: Path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be", encoding="utf-8")
    settings = {"storage": {"sqlite": {"path": str(blocker / "newswatch.db")}}}
    config = load_config(write_config(config_dir, feeds=FEEDS, settings=settings), env={})
    with serving(config) as url:
        health = get(url + "/healthz")
        page = get(url + "/")
        metrics = get(url + "/metrics")
    assert health.status == 503 and health.json()["reasons"][0].startswith("store unreachable")
    assert page.status == 503 and "the store cannot answer now" in page.text
    assert metrics.status == 200 and "newswatch_store_up 0.0" in metrics.text


def test_metrics_are_prometheus_text_with_the_crawl_and_alerts_counts(site: str):
    answer = get(site + "/metrics")
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            key = sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items()))
            samples[key] = sample.value
    assert samples["newswatch_store_up"] == 1
    assert samples["newswatch_crawls_total"] == 1 and samples["newswatch_crawls_failed_total"] == 0
    assert samples["newswatch_pages_fetched_total"] == 7 and samples["newswatch_pages_failed_total"] == 2
    assert samples["newswatch_feed_polls_failed_total"] == 1 and samples["newswatch_articles_stored_total"] == 5
    assert samples["newswatch_articles"] == 5
    assert samples["newswatch_alerts_passes_total"] == 1 and samples["newswatch_hits_total"] > 5
    assert samples["newswatch_digests_queued_total"] == 1 and samples["newswatch_digests_sent_total"] == 1
    assert samples["newswatch_digests_failed_total"] == 0 and samples["newswatch_digests_dead_total"] == 0
    assert samples["newswatch_outbox_depth"] == 0 and samples["newswatch_spool_depth"] == 0
    assert samples["newswatch_feeds{health=unhealthy}"] == 1 and samples["newswatch_feeds{health=ok}"] == 1
    assert samples["newswatch_feeds{health=never_polled}"] == 3
    assert abs(samples["newswatch_last_crawl_success_timestamp_seconds"] - time.time()) < 600
    assert samples["newswatch_last_digest_sent_timestamp_seconds"] > 0


def test_failed_pages_are_error_statuses_and_download_errors_not_robots_txt_or_refusals():
    """crawler.extensions.failed_downloads over Scrapy's stats as a crawl of the demo site writes them (two of
    its five pages missing, no robots.txt), then with download errors and a refusal of the crawler's own."""
    from crawler.extensions import failed_downloads

    demo = {
        "downloader/request_count": 7,
        "downloader/response_count": 7,
        "downloader/response_status_count/200": 4,
        "downloader/response_status_count/404": 3,
        "robotstxt/response_count": 1,
        "robotstxt/response_status_count/404": 1,
        "robotstxt/request_count": 1,
        "response_received_count": 7,
        "newswatch/articles/from_feed": 2,
    }
    assert failed_downloads(demo) == 2
    errors = {
        **demo,
        "downloader/response_status_count/503": 2,  # a 503, retried once
        "downloader/exception_count": 4,
        "downloader/exception_type_count/twisted.internet.error.ConnectionRefusedError": 2,
        "downloader/exception_type_count/scrapy.exceptions.IgnoreRequest": 1,  # a private address refused
        "downloader/exception_type_count/twisted.internet.error.TimeoutError": 1,  # robots.txt timed out
        "robotstxt/exception_count/<class 'twisted.internet.error.TimeoutError'>": 1,
    }
    assert failed_downloads(errors) == 2 + 2 + 2
    assert failed_downloads({}) == 0 and failed_downloads({"response_received_count": 3}) == 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_metrics_count_the_pages_a_real_crawl_could_not_fetch(config_dir: Path, demo_site: str, tmp_path: Path):
    """A real crawl (`newswatch crawl`, Scrapy's own stats) of the demo site with two pages missing and no
    robots.txt: /metrics says 2 pages failed (the pages that fell back to the feed's text), not 0, not 3."""
    site = tmp_path / "site"  # what demo_site serves
    (site / "2017/11/06/al-wehdat-win-amman-derby.html").unlink()  # the demo's own missing page makes two
    (site / "robots.txt").unlink()  # a 404 too, and no failure
    write_config(config_dir, feeds=[{"name": "Demo Wire", "url": f"{demo_site}/feed.xml", "language": "en"}])
    crawl = newswatch("crawl", config_dir=config_dir)
    assert crawl.returncode == 0, crawl.stderr
    assert crawl.stderr.count("article_fallback") == crawl.stderr.count("reason=HTTP 404") == 2, crawl.stderr
    with serving(load_config(config_dir, env={})) as url:
        samples = {
            s.name: s.value for f in text_string_to_metric_families(get(url + "/metrics").text) for s in f.samples
        }
    assert samples["newswatch_crawls_total"] == 1 and samples["newswatch_pages_fetched_total"] == 7
    assert samples["newswatch_pages_failed_total"] == 2


def test_access_rules():
    """Loopback needs nothing; a token works as a bearer or as a basic-auth password; a pair as basic auth."""
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.org")
    assert Access().allows(None)
    token = Access(token="s3cret")
    basic = base64.b64encode(b"anyone:s3cret").decode()
    assert token.allows("Bearer s3cret") and token.allows(f"Basic {basic}")
    assert not token.allows(None) and not token.allows("Bearer wrong") and not token.allows("Basic !!!")
    pair = Access(user="ana", password="pw")
    assert pair.allows("Basic " + base64.b64encode(b"ana:pw").decode())
    assert not pair.allows("Basic " + base64.b64encode(b"bob:pw").decode()) and not pair.allows("Bearer pw")


def test_a_network_address_without_credentials_is_refused_at_start(config_dir: Path):
    write_config(config_dir, feeds=FEEDS)
    result = run_cli("web", "--host", "0.0.0.0", config_dir=config_dir, env={"NEWSWATCH_WEB_TOKEN": None})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: web: refusing to listen on 0.0.0.0"), result.stderr
    assert "NEWSWATCH_WEB_TOKEN" in lines[0]
    half = run_cli("web", "--host", "0.0.0.0", config_dir=config_dir, env={"NEWSWATCH_WEB_USER": "ana"})
    assert half.returncode == 2 and "go together" in half.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"NEWSWATCH_WEB_TOKEN": "short"},
            "error: web: NEWSWATCH_WEB_TOKEN is 5 characters long; a token needs at least 16",
        ),
        ({"NEWSWATCH_WEB_TOKEN": "fifteen-chars.."}, "error: web: NEWSWATCH_WEB_TOKEN is 15 characters long"),
        (
            {"NEWSWATCH_WEB_USER": "ana", "NEWSWATCH_WEB_PASSWORD": ""},
            "error: web: NEWSWATCH_WEB_USER and NEWSWATCH_WEB_PASSWORD go together, and NEWSWATCH_WEB_PASSWORD is "
            "empty or unset",
        ),
    ],
)
def test_a_short_token_or_an_empty_password_is_refused_at_start(config_dir: Path, env: dict, message: str):
    """A token anyone may guess (under 16 characters) or basic auth without a password: one line, exit 2,
    the secret never printed; with `newswatch run` and web.enabled too."""
    write_config(config_dir, feeds=FEEDS)
    result = run_cli("web", "--host", "0.0.0.0", "--port", "0", config_dir=config_dir, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert "short" not in lines[0] and "fifteen" not in lines[0]
    write_config(config_dir, feeds=FEEDS, settings={"web": {"enabled": True, "host": "0.0.0.0", "port": 0}})
    service = run_cli("run", config_dir=config_dir, env=env)
    assert service.returncode == 2 and message in service.stderr and "service_started" not in service.stderr


def test_a_token_of_16_characters_is_enough(web_config: Config):
    config = dataclasses.replace(web_config, env={"NEWSWATCH_WEB_TOKEN": "sixteen-chars-ok"})
    with serving(config, host="0.0.0.0") as url:
        assert get(url + "/", headers={"Authorization": "Bearer sixteen-chars-ok"}).status == 200


def test_the_shipped_settings_list_the_web_defaults():
    """config/settings.yaml says its values are the defaults: its web section is WebSettings' own."""
    from newswatch.core.config.settings import WebSettings

    shipped = yaml.safe_load((ROOT / "config" / "settings.yaml").read_text(encoding="utf-8"))
    assert WebSettings.model_validate(shipped["web"]) == WebSettings()
    assert shipped["web"] == WebSettings().model_dump(), "every web key, with its default"


def test_newswatch_run_refuses_to_serve_a_network_address_without_credentials(config_dir: Path):
    """web.enabled on 0.0.0.0 without a token: the service does not start (one line, exit 2)."""
    write_config(config_dir, feeds=FEEDS, settings={"web": {"enabled": True, "host": "0.0.0.0", "port": 0}})
    result = run_cli("run", config_dir=config_dir, env={"NEWSWATCH_WEB_TOKEN": None})
    assert result.returncode == 2, result.stderr
    assert "error: web: refusing to listen on 0.0.0.0 without credentials" in result.stderr
    assert "service_started" not in result.stderr


def test_with_a_token_a_request_without_it_is_401(web_config: Config):
    config = dataclasses.replace(web_config, env={"NEWSWATCH_WEB_TOKEN": "s3cret-token-of-24-chars"})
    with serving(config, host="0.0.0.0") as url:
        refused = get(url + "/")
        assert refused.status == 401 and refused.headers["www-authenticate"].startswith("Basic")
        assert get(url + "/api/watches").status == 401 and get(url + "/metrics").status == 401
        assert get(url + "/", headers={"Authorization": "Bearer wrong"}).status == 401
        assert get(url + "/", headers={"Authorization": "Bearer s3cret-token-of-24-chars"}).status == 200
        basic = base64.b64encode(b"analyst:s3cret-token-of-24-chars").decode()
        assert get(url + "/metrics", headers={"Authorization": f"Basic {basic}"}).status == 200
        assert get(url + "/healthz").status == 200  # for a monitor without credentials
        assert (
            get(
                url + "/",
                headers={"Host": "newswatch.example:8080", "Authorization": "Bearer s3cret-token-of-24-chars"},
            ).status
            == 200
        )


@pytest.mark.slow
def test_newswatch_web_serves_the_dashboard_and_search_until_sigterm(web_config: Config):
    """The contract: `newswatch --config DIR web --port N` serves /, /search?q=, /healthz and /metrics."""
    process = spawn(web_config.config_dir, "web", "--port", "0", stderr=subprocess.PIPE)
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            found = re.search(r"web_started url=(\S+)", line)
            url = found.group(1).rstrip("/") if found else None
        assert url, "no web_started line"
        found = get(url + "/search?q=" + quote("Deir ez-Zor"))
        assert found.status == 200 and 'href="/story/story-deir-ezzor"' in found.text
        assert 'href="/story/mashriq-1"' in found.text
        assert "Deir Ezzor" in get(url + "/").text
        assert get(url + "/healthz").status == 200
        assert "newswatch_crawls_total" in get(url + "/metrics").text
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, rest
    assert "web_stopped" in rest and "Traceback" not in rest


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_newswatch_run_serves_the_page_when_web_is_enabled(config_dir: Path, demo_site: str):
    """`newswatch run` with web.enabled: the page answers while the service runs, and stops with it."""
    write_config(
        config_dir,
        feeds=[{"name": "Demo Wire", "url": f"{demo_site}/feed.xml", "language": "en"}],
        settings={"web": {"enabled": True, "port": 0}, "schedule": {"crawl_every_minutes": 60}},
    )
    service = start_service(config_dir)
    seen: list[str] = []
    try:
        wait_for(service, "web_started", seen, timeout=120)
        url = re.search(r"web_started url=(\S+)", seen[-1]).group(1).rstrip("/")
        wait_for(service, "alerts_done trigger=crawl", seen, timeout=240)
        assert get(url + "/healthz").status == 200
        assert SEED_TITLE in get(url + "/watch/Deir%20Ezzor").text
        samples = {
            s.name: s.value for f in text_string_to_metric_families(get(url + "/metrics").text) for s in f.samples
        }
        # The crawl child's counts, through the store; the service's own alerts pass's.
        assert samples["newswatch_crawls_total"] == 1 and samples["newswatch_pages_fetched_total"] > 5
        assert samples["newswatch_articles_stored_total"] == 5 and samples["newswatch_alerts_passes_total"] >= 1
        assert samples["newswatch_digests_sent_total"] == 1
    finally:
        output = stop_service(service, seen)
    assert service.returncode == 0 and "Traceback" not in output, output[-3000:]
    assert "web_stopped" in output


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_dashboard_and_search_answer_on_elasticsearch(config_dir: Path, es_node, es_client, es_index_prefix):
    """The same pages over the Elasticsearch backend (a real node)."""
    settings = {
        "storage": {
            "backend": "elasticsearch",
            "elasticsearch": {"hosts": [es_node.url], "index_prefix": es_index_prefix},
        }
    }
    config = load_config(write_config(config_dir, feeds=FEEDS, settings=settings), env={})
    fill_store(config)
    es_client.indices.refresh(index=f"{es_index_prefix}*")
    with serving(config) as url:
        watches = {w["name"]: w for w in get(url + "/api/watches").json()["watches"]}
        assert watches["Deir Ezzor"]["stories_today"] == 3
        assert "Deir Ezzor" in get(url + "/").text
        found = get(url + "/api/search?q=" + quote("Deir ez-Zor")).json()
        assert {"story-deir-ezzor", "mashriq-1"} <= {s["id"] for s in found["stories"]}
        assert get(url + "/search?q=" + quote("Deir ez-Zor")).status == 200
        assert get(url + "/story/story-deir-ezzor").status == 200
        assert get(url + "/healthz").status == 200
