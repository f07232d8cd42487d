"""The Redis crawl frontier against a real redis-server: one cycle shared, hosts and pages held by one
crawler at a time, leases that run out when their holder stops renewing, and Redis out of reach."""

from __future__ import annotations

import logging
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from crawler.frontier import FrontierUnavailable, LocalFrontier, RedisFrontier, Taken
from newswatch.core.config.settings import FrontierSettings
from newswatch.core.store.sqlite import SqliteStore
from tests.conftest import newswatch, spawn, write_config
from tests.test_crawl_kill import WORDS

LEASE = 2.0


def frontier(server, lease: float = LEASE, prefix: str = "t") -> RedisFrontier:
    return RedisFrontier(FrontierSettings(type="redis", url=server.url, lease_seconds=lease, key_prefix=prefix))


def take_all(front: RedisFrontier, limit: int = 100) -> list[str]:
    """Take feeds until the frontier says wait or finished."""
    taken = []
    for _ in range(limit):
        answer = front.take()
        if not answer.feeds:
            break
        taken += [feed for feed, _ in answer.feeds]
    return taken


def stop_renewing(front: RedisFrontier) -> None:
    """What a SIGKILL does to a crawler's holds: nobody renews them any more."""
    front._stop.set()
    front._renewer.join(5)


@pytest.fixture
def new_frontier(redis_server):
    """A factory of frontiers on the test's Redis, each closed when the test ends (closing twice is once)."""
    made: list[RedisFrontier] = []

    def new() -> RedisFrontier:
        made.append(frontier(redis_server))
        return made[-1]

    yield new
    for front in made:
        front.close()


PLAN = [("a1", "a.example", "due"), ("a2", "a.example", "due"), ("b1", "b.example", "due"), ("c1", "c.example", "due")]


def test_two_crawlers_share_one_cycle_each_feed_taken_once_one_host_each(new_frontier):
    first, second = new_frontier(), new_frontier()
    first.open_cycle(PLAN)
    second.open_cycle(PLAN)  # the same feeds planned again: nothing added
    assert first.cycle == second.cycle
    mine = take_all(first, limit=2)
    theirs = take_all(second)
    assert sorted(mine + theirs) == ["a1", "a2", "b1", "c1"]
    assert not set(mine) & set(theirs)
    hosts = {feed[0] for feed in mine}, {feed[0] for feed in theirs}
    assert not hosts[0] & hosts[1]  # a host's feeds go to the crawler that holds the host
    assert second.take() == Taken()  # nothing left to take, but the first still holds feeds
    for feed in mine:
        first.feed_done(feed)
    assert second.take() == Taken()
    for feed in theirs:
        second.feed_done(feed)
    assert second.take().finished and first.take().finished


def test_a_host_is_fetched_by_one_crawler_until_given_back(new_frontier):
    first, second = new_frontier(), new_frontier()
    assert first.may_fetch("a.example")
    assert not second.may_fetch("a.example")
    assert second.may_fetch("b.example")
    first.release_hosts(["a.example"])
    time.sleep(0.3)  # a refused host is asked for again only after HOST_RETRY_SECONDS
    assert second.may_fetch("a.example")
    assert not first.may_fetch("a.example")


def test_a_host_with_a_feed_in_progress_is_not_given_back(new_frontier):
    first, second = new_frontier(), new_frontier()
    first.open_cycle(PLAN[:1])
    assert [feed for feed, _ in first.take().feeds] == ["a1"]
    first.release_hosts(["a.example"])  # nothing queued for it, but its feed is not done
    assert not second.may_fetch("a.example")
    first.feed_done("a1")
    first.release_hosts(["a.example"])
    time.sleep(0.3)
    assert second.may_fetch("a.example")


def test_a_crawler_waiting_for_another_host_gives_back_its_feeds_hosts(new_frontier):
    """Each crawler holds its feed's host while the feed waits for a page on the other's host: whichever is
    blocked gives its idle hosts back, feed or not, so neither waits for the other for ever."""
    first, second = new_frontier(), new_frontier()
    first.open_cycle([PLAN[0], PLAN[2]])
    second.open_cycle([PLAN[0], PLAN[2]])
    assert [f for f, _ in first.take().feeds] == ["a1"] and [f for f, _ in second.take().feeds] == ["b1"]
    first.release_hosts(["a.example"])  # not waiting: its feed's host stays its own
    assert not second.may_fetch("a.example")
    first.release_hosts(["a.example"], waiting=True)  # waiting for b.example: a.example goes
    time.sleep(0.3)  # a refused host is asked for again only after HOST_RETRY_SECONDS
    assert second.may_fetch("a.example")
    second.release_hosts(["b.example", "a.example"], waiting=True)
    assert first.may_fetch("b.example")
    first.feed_done("a1")
    second.feed_done("b1")


def test_renewed_leases_outlive_their_ttl(new_frontier):
    first, second = new_frontier(), new_frontier()
    first.open_cycle(PLAN)
    taken = take_all(first, limit=1)
    assert first.claim_page("page-1") and first.may_fetch("x.example")
    time.sleep(LEASE * 2)
    second.open_cycle(PLAN)
    assert sorted(take_all(second)) == ["b1", "c1"]  # not a1 (held), nor a2 (on a1's host)
    assert taken == ["a1"]
    assert not second.claim_page("page-1")
    assert not second.may_fetch("x.example")


def test_a_stopped_crawlers_feeds_hosts_and_pages_go_to_the_other_when_its_leases_run_out(new_frontier):
    dead, alive = new_frontier(), new_frontier()
    dead.open_cycle(PLAN)
    alive.open_cycle(PLAN)
    held = take_all(dead)
    assert sorted(held) == ["a1", "a2", "b1", "c1"]
    assert dead.claim_page("page-1") and dead.may_fetch("x.example")
    stop_renewing(dead)
    assert alive.take() == Taken() and not alive.claim_page("page-1")
    time.sleep(LEASE + 0.3)
    reclaimed = []
    for _ in range(10):
        answer = alive.take()
        reclaimed += answer.reclaimed
        if not answer.feeds:
            break
    assert sorted(reclaimed) == sorted(held)
    assert alive.claim_page("page-1")
    time.sleep(0.3)
    assert alive.may_fetch("x.example")
    for feed in held:
        alive.feed_done(feed)
    assert alive.take().finished


def test_a_page_is_fetched_once_per_cycle(new_frontier):
    first, second = new_frontier(), new_frontier()
    first.open_cycle(PLAN[:1])
    second.open_cycle(PLAN[:1])
    assert first.claim_page("p1") and first.claim_page("p1")  # one's own claim, again: still its own
    assert not second.claim_page("p1")
    first.pages_done(["p1"])
    assert not second.claim_page("p1")  # stored in this cycle: nobody fetches it again
    ((feed, _),) = first.take().feeds
    first.feed_done(feed)
    third = new_frontier()
    third.open_cycle(PLAN[:1])  # the next cycle may fetch it again (an updated page)
    assert third.claim_page("p1")
    third.close()


def test_a_joining_crawler_adds_the_feeds_the_cycle_does_not_plan_yet(new_frontier):
    due, every = new_frontier(), new_frontier()
    due.open_cycle(PLAN[:2])
    every.open_cycle([*PLAN, ("d1", "d.example", "all")])
    taken = dict(feed for _ in range(5) for feed in every.take().feeds)
    assert taken == {"a1": "due", "a2": "due", "b1": "due", "c1": "due", "d1": "all"}


def test_a_finished_cycle_is_followed_by_a_new_one(new_frontier):
    first = new_frontier()
    first.open_cycle(PLAN[:1])
    cycle = first.cycle
    ((feed, _),) = first.take().feeds
    first.feed_done(feed)
    assert first.take().finished
    first.open_cycle(PLAN[:1])  # the same feed, due again: a new cycle polls it
    assert first.cycle != cycle
    assert [f for f, _ in first.take().feeds] == ["a1"]


def test_closing_gives_back_the_feeds_not_polled(new_frontier):
    first, second = new_frontier(), new_frontier()
    first.open_cycle(PLAN[:1])
    assert first.take().feeds
    first.close()  # stopped (SIGTERM) before the feed's state was saved
    second.open_cycle(PLAN[:1])
    assert [f for f, _ in second.take().feeds] == ["a1"]


def test_redis_out_of_reach_is_one_line_then_calls_wait_out_a_backoff(redis_server, caplog):
    front = frontier(redis_server)
    redis_server.kill()
    caplog.set_level(logging.INFO, logger="crawler.frontier")
    with pytest.raises(FrontierUnavailable, match=rf"Redis at {redis_server.url}, cannot be reached: .*refused"):
        front.check()  # the question asked before a crawl: its answer is the command's one line, not logged
    assert not caplog.records
    with pytest.raises(FrontierUnavailable, match=rf"Redis at {redis_server.url} cannot be reached: .*refused"):
        front.claim_page("p")
    for _ in range(50):  # refused here, without asking Redis, until the retry time
        with pytest.raises(FrontierUnavailable):
            front.claim_page("p")
    assert 0 < front.retry_in() <= 0.5
    lines = [r.getMessage() for r in caplog.records if "frontier_unavailable" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith(f"frontier_unavailable backend=redis url={redis_server.url} ")
    redis_server.start()
    time.sleep(front.retry_in())
    assert front.claim_page("q")
    assert [r.getMessage() for r in caplog.records if "frontier_available" in r.getMessage()]
    front.close()


def test_the_local_frontier_gives_every_planned_feed_at_once():
    local = LocalFrontier()
    local.open_cycle(PLAN)
    assert local.take().feeds == (("a1", "due"), ("a2", "due"), ("b1", "due"), ("c1", "due"))
    assert local.take().finished
    assert local.may_fetch("a.example") and local.claim_page("p")


# -- real crawlers sharing one Redis ---------------------------------------------------------------------------

HOSTS = 12  # more than FEEDS_IN_FLIGHT: the first crawler cannot take every feed before the second joins
PAGES = 6  # per feed, on its host; every feed also lists one page on the first host (COMMON) and one on the next
COMMON = "/p/common.html"
PAGE_SECONDS = 0.02  # each page takes this long to serve, so that overlapping requests would show


def _page(host: str, path: str) -> bytes:
    words = random.Random(f"{host}{path}").choices(WORDS, k=120)  # its own story: clustering keeps it apart
    return (
        f"<html lang='en'><head><title>{host} {path}</title></head><body><article><h1>{host} {path}</h1>"
        f"<p>{' '.join(words)}</p></article></body></html>"
    ).encode()


class SharedSite(BaseHTTPRequestHandler):
    """One site per loopback address (127.0.0.1 ... 127.0.0.HOSTS), one feed each; every request recorded
    with the crawler's User-Agent and when it was being served. Feeds wait for ``feeds_open``; a crawler's
    pages past its ``hold_after`` wait for ``pages_open``."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        state, host, agent = self.server.state, self.server.server_address[0], self.headers.get("User-Agent", "")
        started = time.monotonic()
        if self.path == "/robots.txt":
            body, kind = b"User-agent: *\nAllow: /\n", "text/plain"
        elif self.path == "/feed.xml":
            state.feeds_open.wait(60)
            links = [f"/p/{n}.html" for n in range(PAGES)]
            items = "".join(f"<item><title>{host}{link}</title><link>{link}</link></item>" for link in links)
            port, n = self.server.server_address[1], int(host.rsplit(".", 1)[1])
            # Two pages on other hosts: one every feed lists, and one on the next site (fetched from a host
            # that another crawler may hold: the scheduler must wait for it)
            for link in (f"http://127.0.0.1:{port}{COMMON}", f"http://127.0.0.{n % HOSTS + 1}:{port}/p/from-{n}.html"):
                items += f"<item><title>{link}</title><link>{link}</link></item>"
            body = f"<rss version='2.0'><channel><title>{host}</title>{items}</channel></rss>".encode()
            kind = "application/rss+xml"
        elif self.path.startswith("/p/"):
            with state.lock:
                served = sum(1 for r in state.requests if r[2] == agent and r[1].startswith("/p/"))
            if served >= state.hold_after.get(agent, 10**6):
                state.held.set()
                state.pages_open.wait(60)
            time.sleep(PAGE_SECONDS)
            body, kind = _page(host, self.path), "text/html; charset=utf-8"
        else:
            self.send_error(404)
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except ConnectionError:  # a killed crawler is gone
            return
        with state.lock:
            state.requests.append((host, self.path, agent, started, time.monotonic()))


@dataclass
class SiteState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list = field(default_factory=list)  # (host, path, user agent, started, ended)
    feeds_open: threading.Event = field(default_factory=threading.Event)
    pages_open: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    hold_after: dict = field(default_factory=dict)  # user agent -> pages served before the next ones wait


@pytest.fixture
def shared_site():
    state = SiteState()
    first = ThreadingHTTPServer(("127.0.0.1", 0), SharedSite)
    port = first.server_address[1]
    servers = [first] + [ThreadingHTTPServer((f"127.0.0.{n}", port), SharedSite) for n in range(2, HOSTS + 1)]
    for server in servers:
        server.state, server.daemon_threads = state, True
        server.handle_error = lambda request, address: None
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port, state
    state.feeds_open.set()
    state.pages_open.set()
    for server in servers:
        server.shutdown()
        server.server_close()


def agent(name: str) -> str:
    return f"newswatch-test-{name} (+mailto:{name}@example.org)"


def crawler_config(folder: Path, name: str, port: int, db: Path, redis_url: str, lease: float = 3) -> Path:
    """A config folder for crawler ``name`` (its own User-Agent, so the site can tell the crawlers apart),
    on the shared SQLite file ``db`` and Redis."""
    return write_config(
        folder / name / "config",
        feeds=[{"name": f"Site {n}", "url": f"http://127.0.0.{n}:{port}/feed.xml"} for n in range(1, HOSTS + 1)],
        settings={
            "storage": {"sqlite": {"path": str(db)}},
            "crawler": {
                "user_agent": agent(name),
                "store_flush_seconds": 0.2,
                "frontier": {"type": "redis", "url": redis_url, "lease_seconds": lease},
            },
        },
    )


class Crawl:
    """`newswatch crawl` in a child process, its output collected line by line by a thread."""

    started: ClassVar[list[Crawl]] = []  # killed when the test ends (a failed assertion must not leave one running)

    def __init__(self, config_dir: Path, *args: str):
        self.process = spawn(config_dir, "crawl", *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        Crawl.started.append(self)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self.reader.start()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            assert time.monotonic() < deadline and self.process.poll() is None, f"no {needle!r}:\n{self.output}"
            time.sleep(0.05)

    def finish(self, timeout: float = 180) -> int:
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self.reader.join(10)
        self.process.stdout.close()
        return code


@pytest.fixture(autouse=True)
def _no_crawl_outlives_its_test():
    yield
    for crawl in Crawl.started:
        if crawl.process.poll() is None:
            crawl.process.kill()
            crawl.process.wait(10)
    Crawl.started.clear()


def stored(db: Path) -> list:
    store = SqliteStore(db)
    return store.articles_after(None, limit=10_000)[0]


def overlaps(requests: list) -> list:
    """Pairs of requests to one host by two crawlers, served at the same moment."""
    found = []
    for host in {r[0] for r in requests}:
        mine = sorted((r for r in requests if r[0] == host), key=lambda r: r[3])
        for i, one in enumerate(mine):
            for other in mine[i + 1 :]:
                if other[3] >= one[4]:
                    break
                if other[2] != one[2]:
                    found.append((one, other))
    return found


EVERY_PAGE = HOSTS * PAGES + 1 + HOSTS


@pytest.mark.slow
def test_two_crawlers_poll_each_feed_once_fetch_each_page_once_one_host_at_a_time(
    tmp_path: Path, redis_server, shared_site
):
    port, site = shared_site
    db = tmp_path / "shared.db"
    crawls = [Crawl(crawler_config(tmp_path, name, port, db, redis_server.url)) for name in ("a", "b")]
    for crawl in crawls:  # both joined the cycle before any feed answers: both get feeds
        crawl.wait_for("frontier_cycle_")
    site.feeds_open.set()
    for crawl in crawls:
        assert crawl.finish() == 0 and "Traceback" not in crawl.output, crawl.output[-3000:]

    requests = site.requests
    polled = [(r[0], r[1]) for r in requests if r[1] == "/feed.xml"]
    assert len(polled) == len(set(polled)) == HOSTS  # every feed polled once
    pages = [(r[0], r[1]) for r in requests if r[1].startswith("/p/")]
    assert len(pages) == len(set(pages)) == EVERY_PAGE  # every page fetched once, the common one too
    assert {r[2] for r in requests if r[1].startswith("/p/")} == {agent("a"), agent("b")}  # both worked
    assert overlaps(requests) == []  # no host served to both crawlers at one moment
    articles = stored(db)
    assert len(articles) == EVERY_PAGE == len({a.id for a in articles}) == len({a.url for a in articles})
    assert all(a.source == "page" for a in articles)


@pytest.mark.slow
def test_a_crawler_killed_mid_cycle_leaves_its_feeds_to_the_other_and_nothing_is_stored_twice(
    tmp_path: Path, redis_server, shared_site
):
    port, site = shared_site
    db = tmp_path / "shared.db"
    site.hold_after[agent("a")] = 3  # crawler a gets 3 pages, then its next ones hang until it is killed
    killed, survivor = (Crawl(crawler_config(tmp_path, name, port, db, redis_server.url)) for name in ("a", "b"))
    killed.wait_for("frontier_cycle_")
    survivor.wait_for("frontier_cycle_")
    site.feeds_open.set()
    assert site.held.wait(60)
    time.sleep(1)  # a's batch of stored articles is written meanwhile (store_flush_seconds 0.2)
    killed.process.send_signal(signal.SIGKILL)
    killed.finish()
    site.pages_open.set()
    assert survivor.finish() == 0 and "Traceback" not in survivor.output, survivor.output[-3000:]

    assert "feed_reclaimed" in survivor.output  # a's feeds went to b once a's leases ran out
    articles = stored(db)
    assert len(articles) == EVERY_PAGE == len({a.id for a in articles}) == len({a.url for a in articles})
    assert all(a.source == "page" for a in articles)
    polled = {r[0] for r in site.requests if r[1] == "/feed.xml"}
    assert len(polled) == HOSTS  # every feed polled (a's again by b)


@pytest.mark.slow
def test_redis_stopped_and_restarted_mid_crawl_is_one_line_a_wait_and_nothing_lost(
    tmp_path: Path, redis_server, shared_site
):
    port, site = shared_site
    db = tmp_path / "shared.db"
    site.hold_after[agent("a")] = 20
    crawl = Crawl(crawler_config(tmp_path, "a", port, db, redis_server.url))
    crawl.wait_for("frontier_cycle_")
    site.feeds_open.set()
    assert site.held.wait(60)
    redis_server.stop()  # a clean stop: it saves what it holds, as a packaged Redis does
    site.pages_open.set()
    crawl.wait_for("frontier_unavailable")
    time.sleep(4)  # longer than the leases: the crawler must wait, not fail
    assert crawl.process.poll() is None
    redis_server.start()
    assert crawl.finish() == 0 and "Traceback" not in crawl.output, crawl.output[-3000:]

    lines = crawl.output.splitlines()
    down = [line for line in lines if "frontier_unavailable" in line]
    assert len(down) == 1 and "backend=redis" in down[0] and f"url={redis_server.url}" in down[0], down
    assert len([line for line in lines if "frontier_available" in line]) == 1
    articles = stored(db)
    assert len(articles) == EVERY_PAGE == len({a.id for a in articles})
    pages = [(r[0], r[1]) for r in site.requests if r[1].startswith("/p/")]
    assert len(set(pages)) == EVERY_PAGE


@pytest.mark.slow
def test_crawl_exits_1_with_one_line_when_redis_cannot_be_reached(tmp_path: Path, redis_server):
    redis_server.kill()
    config_dir = crawler_config(tmp_path, "a", 9, tmp_path / "shared.db", redis_server.url)
    result = newswatch("crawl", "--all", config_dir=config_dir)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: the crawl frontier, Redis at {redis_server.url}, cannot be reached: Error 111 connecting to "
        f"127.0.0.1:{redis_server.port}. Connection refused."
    ]
