"""The crawl frontier: which due feeds this crawler polls, which hosts it may fetch from now, which pages.

``local`` (the default): one crawler decides alone, as before: every due feed at once, every host, every page.
``redis``: any number of crawler processes, on one machine or many, share one crawl cycle through Redis:

- a **cycle** is the set of feeds planned by the crawlers that joined it (each adds the feeds it found due,
  or every enabled one with ``--all``); each feed is taken by one crawler, which holds it until its new
  state is saved in the store (``feed_done``), so every planned feed is polled once per cycle;
- a **host** is fetched from by one crawler at a time: its lease is taken with its first feed, or before a
  request to it leaves the scheduler (crawler.extensions.SiteTurnQueue), and given back once that crawler
  has nothing more for it, after the site's delay;
- an article **page** is claimed for the cycle before it is fetched; once its article is stored the claim
  says so for the rest of the cycle, so a page another crawler claimed or stored is left to it (a page is
  fetched once per cycle, however many feeds list it and whichever crawler reached them).

Every hold is a Redis key (or zset score) that runs out ``lease_seconds`` after its last renewal, renewed
by a thread of each crawler while it works: the feeds, hosts and pages of a crawler killed mid-cycle go
back to the others when their leases run out, and since the store upserts by article id nothing is stored
twice. What the crawlers must agree on lives in Redis or in the store, never in one process's memory.

Why not scrapy-redis: it shares Scrapy's scheduler queue by pickling requests into Redis, so a request
popped by another process carries a copy of its ``cb_kwargs``, and the feed's FeedRun (the count of open
units that decides when its state may be saved, crawler.polling.run) would be split into copies that never
close; every request here is ``dont_filter`` (the store's seen set decides, not URL fingerprints), so its
shared dupefilter would see none of them; and its one shared queue leaves politeness per process (two
processes would fetch from one host at once). The leases below are a few Lua scripts over redis-py.

While Redis cannot be reached, one ``frontier_unavailable`` line says so and why; the crawler then waits
(calls are refused locally until a retry time that doubles up to BACKOFF_MAX_SECONDS: no busy loop), fetches
only from the hosts whose lease it still holds, and says ``frontier_available`` when Redis answers again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from newswatch.core.config import Config
from newswatch.core.config.settings import FrontierSettings
from newswatch.core.errors import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0
HOST_RETRY_SECONDS = 0.25  # a host another crawler holds is asked for again after this long, not on every pop
SCAN = 64  # entries of the cycle's list looked at per take, for a feed whose host is free


class FrontierUnavailable(StoreUnavailable):
    """The shared frontier (Redis) cannot be reached: like the store, exit 1 (try again when it is back)."""


@dataclass(frozen=True)
class Taken:
    """What ``take`` gave: ``feeds`` to poll now (with ``why``: "due" or "all", how each was planned), or
    none; ``finished`` when the cycle has nothing left anywhere (this crawler may end)."""

    feeds: tuple[tuple[str, str], ...] = ()
    finished: bool = False
    reclaimed: tuple[str, ...] = ()  # feeds whose previous holder's lease ran out


class LocalFrontier:
    """One crawler alone: every planned feed at once, every host and every page are its own."""

    shared = False

    def __init__(self) -> None:
        self._planned: list[tuple[str, str]] = []
        self._given = False

    def check(self) -> None:
        """Nothing to reach."""

    def open_cycle(self, planned: Sequence[tuple[str, str, str]]) -> None:
        self._planned = [(feed, why) for feed, _, why in planned]

    def take(self) -> Taken:
        if self._given:
            return Taken(finished=True)
        self._given = True
        return Taken(feeds=tuple(self._planned))

    def feed_done(self, feed_id: str) -> None:
        pass

    def may_fetch(self, host: str) -> bool:
        return True

    def held_hosts(self) -> list[str]:
        return []

    def release_hosts(self, hosts: Iterable[str], *, waiting: bool = False) -> None:
        pass

    def claim_page(self, article_id: str) -> bool:
        return True

    def pages_done(self, article_ids: Iterable[str]) -> None:
        pass

    def retry_in(self) -> float:
        return 0.0

    def close(self) -> None:
        pass


def open_frontier(config: Config) -> LocalFrontier | RedisFrontier:
    """The frontier of ``crawler.frontier``: local, or Redis (not connected yet: ``check`` connects)."""
    settings = config.settings.crawler.frontier
    if settings.type == "local":
        return LocalFrontier()
    return RedisFrontier(
        settings,
        password=config.env.get(settings.password_env) or None,
        cycle_seconds=config.settings.schedule.crawl_timeout_minutes * 60,
    )


class _Link:
    """Whether Redis answers: one line when it stops and one when it is back; calls while it is down are
    refused here until the next retry time (doubling up to BACKOFF_MAX_SECONDS), so nothing loops on it."""

    def __init__(self, url: str):
        self.url = url  # never holds a password: refused in YAML
        self.lock = threading.Lock()
        self.down_since: float | None = None
        self.retry_at = 0.0
        self.backoff = BACKOFF_FIRST_SECONDS

    def call(self, action: Callable[[], T]) -> T:
        import redis

        with self.lock:
            if self.down_since is not None and time.monotonic() < self.retry_at:
                raise FrontierUnavailable(f"Redis at {self.url} cannot be reached (retrying)")
        try:
            result = action()
        except redis.RedisError as exc:
            self._failed(exc)
            raise FrontierUnavailable(f"Redis at {self.url} cannot be reached: {_reason(exc)}") from None
        with self.lock:
            down, self.down_since, self.backoff = self.down_since, None, BACKOFF_FIRST_SECONDS
        if down is not None:
            log.info("frontier_available backend=redis url=%s after_seconds=%.1f", self.url, time.monotonic() - down)
        return result

    def _failed(self, exc: Exception) -> None:
        with self.lock:
            first = self.down_since is None
            if first:
                self.down_since = time.monotonic()
            else:
                self.backoff = min(self.backoff * 2, BACKOFF_MAX_SECONDS)
            self.retry_at = time.monotonic() + self.backoff
        if first:
            log.warning(
                "frontier_unavailable backend=redis url=%s reason=%s (the crawl waits for it, retrying with "
                "backoff up to %.0f s)",
                self.url,
                _reason(exc),
                BACKOFF_MAX_SECONDS,
            )

    def retry_in(self) -> float:
        with self.lock:
            if self.down_since is None:
                return BACKOFF_FIRST_SECONDS
            return max(self.retry_at - time.monotonic(), 0.05)


def _reason(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# KEYS: none (Redis standalone: the scripts name the keys they touch from the prefix). Times are Redis's own
# clock (TIME), in ms, so the crawlers' clocks need not agree.
_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

# ARGV: cycle key, prefix, new cycle id, ttl ms, then triples feed, host, why. Opens a cycle (or a new one
# when the last is finished: nothing to take, nothing held) and adds the feeds it does not plan yet.
_OPEN = """
local id = redis.call('GET', ARGV[1])
if id then
  local base = ARGV[2] .. ':cycle:' .. id
  if redis.call('LLEN', base .. ':todo') == 0 and redis.call('ZCARD', base .. ':held') == 0 then
    for _, suffix in ipairs({':todo', ':planned', ':held', ':holder', ':feed'}) do redis.call('DEL', base .. suffix) end
    id = false
  end
end
local opened = 0
if not id then id = ARGV[3] opened = 1 end
redis.call('SET', ARGV[1], id, 'PX', ARGV[4])
local base = ARGV[2] .. ':cycle:' .. id
local added = 0
for i = 5, #ARGV, 3 do
  if redis.call('SADD', base .. ':planned', ARGV[i]) == 1 then
    redis.call('RPUSH', base .. ':todo', ARGV[i])
    redis.call('HSET', base .. ':feed', ARGV[i], ARGV[i + 1] .. '\\t' .. ARGV[i + 2])
    added = added + 1
  end
end
for _, suffix in ipairs({':todo', ':planned', ':held', ':holder', ':feed'}) do
  if redis.call('EXISTS', base .. suffix) == 1 then redis.call('PEXPIRE', base .. suffix, 4 * ARGV[4]) end
end
return {id, opened, added, redis.call('LLEN', base .. ':todo')}
"""

# ARGV: cycle base, host prefix, me, ttl ms, scan. A feed whose holder's lease ran out first, then the next
# planned one, each only when its host is free or already this crawler's. Returns {feed, host, why, state}.
_TAKE = (
    _NOW
    + """
local base, hosts, me, ttl, scan = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local function free(host)
  local holder = redis.call('GET', hosts .. host)
  return (not holder) or holder == me
end
local function grant(feed, host, why, state)
  redis.call('ZADD', base .. ':held', now + ttl, feed)
  redis.call('HSET', base .. ':holder', feed, me)
  redis.call('SET', hosts .. host, me, 'PX', ttl)
  return {feed, host, why, state}
end
local function split(feed)
  local entry = redis.call('HGET', base .. ':feed', feed) or '\\tdue'
  local tab = string.find(entry, '\\t', 1, true)
  return string.sub(entry, 1, tab - 1), string.sub(entry, tab + 1)
end
for _, feed in ipairs(redis.call('ZRANGEBYSCORE', base .. ':held', '-inf', now, 'LIMIT', 0, scan)) do
  local host, why = split(feed)
  if free(host) then return grant(feed, host, why, 'reclaimed') end
end
local todo = redis.call('LRANGE', base .. ':todo', 0, scan - 1)
for _, feed in ipairs(todo) do
  local host, why = split(feed)
  if free(host) then
    redis.call('LREM', base .. ':todo', 1, feed)
    return grant(feed, host, why, 'new')
  end
end
if #todo == 0 and redis.call('ZCARD', base .. ':held') == 0 then return {'', '', '', 'finished'} end
return {'', '', '', 'wait'}
"""
)

# ARGV: cycle base, me, feed...: the feeds' new states are in the store; they leave the cycle for good.
_FEEDS_DONE = """
for i = 3, #ARGV do
  local holder = redis.call('HGET', ARGV[1] .. ':holder', ARGV[i])
  if (not holder) or holder == ARGV[2] then
    redis.call('ZREM', ARGV[1] .. ':held', ARGV[i])
    redis.call('HDEL', ARGV[1] .. ':holder', ARGV[i])
  end
end
return 1
"""

# ARGV: cycle base, me, feed...: feeds this crawler took but will not poll (it stops): first in line again.
_GIVE_BACK = """
for i = 3, #ARGV do
  if redis.call('HGET', ARGV[1] .. ':holder', ARGV[i]) == ARGV[2] then
    redis.call('ZREM', ARGV[1] .. ':held', ARGV[i])
    redis.call('HDEL', ARGV[1] .. ':holder', ARGV[i])
    redis.call('LPUSH', ARGV[1] .. ':todo', ARGV[i])
  end
end
return 1
"""

# ARGV: me, ttl ms, key...: take each key that is free or already mine (renewing it); 1 or 0 per key.
_TAKE_KEYS = """
local taken = {}
for i = 3, #ARGV do
  local holder = redis.call('GET', ARGV[i])
  if (not holder) or holder == ARGV[1] then
    redis.call('SET', ARGV[i], ARGV[1], 'PX', ARGV[2])
    taken[#taken + 1] = 1
  else
    taken[#taken + 1] = 0
  end
end
return taken
"""

# ARGV: me, ms, key...: the keys still mine say "done" for ms (a page stored: not fetched again this cycle).
_MARK_DONE = """
for i = 3, #ARGV do
  if redis.call('GET', ARGV[i]) == ARGV[1] then redis.call('SET', ARGV[i], 'done', 'PX', ARGV[2]) end
end
return 1
"""

# ARGV: me, key...: give back the keys that are still mine.
_RELEASE_KEYS = """
for i = 2, #ARGV do
  if redis.call('GET', ARGV[i]) == ARGV[1] then redis.call('DEL', ARGV[i]) end
end
return 1
"""

# ARGV: me, ttl ms, cycle key, cycle id, cycle base, feed count, feeds..., then keys (hosts, pages). Renews
# everything this crawler holds; a hold that vanished (Redis restarted empty) is taken again. Returns the
# indexes (1-based, over feeds then keys) of the holds another crawler has now.
_RENEW = (
    _NOW
    + """
local me, ttl, base = ARGV[1], tonumber(ARGV[2]), ARGV[5]
local cycle = redis.call('GET', ARGV[3])
if ARGV[4] ~= '' and ((not cycle) or cycle == ARGV[4]) then
  redis.call('SET', ARGV[3], ARGV[4], 'PX', ttl)
  for _, suffix in ipairs({':todo', ':planned', ':held', ':holder', ':feed'}) do
    if redis.call('EXISTS', base .. suffix) == 1 then redis.call('PEXPIRE', base .. suffix, 4 * ttl) end
  end
end
local lost = {}
local feeds = tonumber(ARGV[6])
for i = 7, 6 + feeds do
  local holder = redis.call('HGET', base .. ':holder', ARGV[i])
  if (not holder) or holder == me then
    redis.call('ZADD', base .. ':held', now + ttl, ARGV[i])
    redis.call('HSET', base .. ':holder', ARGV[i], me)
  else
    lost[#lost + 1] = i - 6
  end
end
for i = 7 + feeds, #ARGV do
  local holder = redis.call('GET', ARGV[i])
  if (not holder) or holder == me then
    redis.call('SET', ARGV[i], me, 'PX', ttl)
  else
    lost[#lost + 1] = i - 6
  end
end
return lost
"""
)


class RedisFrontier:
    """The frontier shared through Redis (see the module's docstring). Thread-safe: the spider and the
    scheduler call it on the reactor thread, the store pipeline from its writer threads, and a thread of its
    own renews the leases every third of ``lease_seconds``."""

    shared = True

    def __init__(
        self, settings: FrontierSettings, *, password: str | None = None, cycle_seconds: float = 3600, client=None
    ):
        """``cycle_seconds``: how long a stored page's claim says so (a cycle lasts no longer: the crawl
        timeout); a new cycle claims its pages afresh."""
        import redis

        self.settings = settings
        self.ttl_ms = int(settings.lease_seconds * 1000)
        self.me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        timeout = min(2.0, settings.lease_seconds / 4)
        self.redis = client or redis.Redis.from_url(
            settings.url, password=password, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self.link = _Link(settings.url)
        prefix = settings.key_prefix
        self.cycle_key, self.prefix = f"{prefix}:cycle", prefix
        self.host_prefix = f"{prefix}:host:"
        self.done_ms = int(cycle_seconds * 1000)
        self._scripts = {
            name: self.redis.register_script(lua)
            for name, lua in (
                ("open", _OPEN),
                ("take", _TAKE),
                ("feeds_done", _FEEDS_DONE),
                ("give_back", _GIVE_BACK),
                ("take_keys", _TAKE_KEYS),
                ("release_keys", _RELEASE_KEYS),
                ("mark_done", _MARK_DONE),
                ("renew", _RENEW),
            )
        }
        self.lock = threading.Lock()
        self.cycle: str | None = None
        self.feeds: dict[str, str] = {}  # feed id -> host, taken and not done
        self.hosts: dict[str, float] = {}  # host -> monotonic time until which the lease is surely ours
        self.pages: dict[str, str] = {}  # article id -> the key of its claim, while fetched and not stored
        self._done: list[str] = []  # feeds done that Redis has not been told yet (it was down)
        self._host_retry: dict[str, float] = {}
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # -- the connection
    def check(self) -> None:
        """Connect and ping; FrontierUnavailable (where, and why: the command's one line) when Redis does not
        answer. Nothing is logged: this is the question asked before a crawl starts."""
        import redis

        try:
            self.redis.ping()
        except redis.RedisError as exc:
            raise FrontierUnavailable(
                f"the crawl frontier, Redis at {self.settings.url}, cannot be reached: {_reason(exc)}"
            ) from None

    def retry_in(self) -> float:
        """Seconds before Redis is worth asking again (the backoff while it is down)."""
        return self.link.retry_in()

    def _run(self, name: str, args: Sequence[Any]) -> Any:
        return self.link.call(lambda: self._scripts[name](args=list(args)))

    def _base(self) -> str:
        return f"{self.prefix}:cycle:{self.cycle}"

    # -- the cycle
    def open_cycle(self, planned: Sequence[tuple[str, str, str]]) -> None:
        """Join the cycle that is open (or open one) and add the feeds of ``planned`` (feed id, host, why) it
        does not hold yet. FrontierUnavailable when Redis cannot be reached (call again after retry_in)."""
        args: list[Any] = [self.cycle_key, self.prefix, uuid.uuid4().hex[:12], self.ttl_ms]
        for feed, host, why in planned:
            args += [feed, host, why]
        cycle, opened, added, waiting = self._run("open", args)
        with self.lock:
            self.cycle = cycle.decode() if isinstance(cycle, bytes) else str(cycle)
        log.info(
            "frontier_cycle_%s cycle=%s planned=%d added=%d waiting=%d crawler=%s",
            "opened" if opened else "joined",
            self.cycle,
            len(planned),
            added,
            waiting,
            self.me,
        )
        self._start_renewing()

    def take(self) -> Taken:
        """The next feed to poll: one whose holder's lease ran out first, then the next planned one, each
        only when no other crawler holds its host. ``Taken()`` (no feeds, not finished): wait and ask again."""
        self._flush_done()
        feed, host, why, state = (
            part.decode() if isinstance(part, bytes) else str(part)
            for part in self._run("take", [self._base(), self.host_prefix, self.me, self.ttl_ms, SCAN])
        )
        if state == "finished":
            return Taken(finished=True)
        if state == "wait":
            return Taken()
        with self.lock:
            self.feeds[feed] = host
            self.hosts[host] = time.monotonic() + self.settings.lease_seconds * 0.8
        if state == "reclaimed":
            log.info("feed_reclaimed feed=%s host=%s (the lease of the crawler that had it ran out)", feed, host)
        return Taken(feeds=((feed, why),), reclaimed=(feed,) if state == "reclaimed" else ())

    def feed_done(self, feed_id: str) -> None:
        """The feed's new state is in the store: it leaves the cycle. Told to Redis now, or once it is back."""
        with self.lock:
            if self.feeds.pop(feed_id, None) is None:
                return
            self._done.append(feed_id)
        self._flush_done(quiet=True)

    def _flush_done(self, quiet: bool = False) -> None:
        with self.lock:
            done, self._done = self._done, []
        if not done:
            return
        try:
            self._run("feeds_done", [self._base(), self.me, *done])
        except FrontierUnavailable:
            with self.lock:
                self._done = done + self._done
            if not quiet:
                raise

    # -- hosts
    def may_fetch(self, host: str) -> bool:
        """Whether this crawler may send a request to ``host`` now: it holds the host's lease, or takes it
        (no other crawler holds it). While Redis is down, only a lease still surely held counts."""
        now = time.monotonic()
        with self.lock:
            until = self.hosts.get(host)
            if until is not None and now < until:
                return True
            if now < self._host_retry.get(host, 0.0):
                return False
        try:
            (taken,) = self._run("take_keys", [self.me, self.ttl_ms, self.host_prefix + host])
        except FrontierUnavailable:
            taken = 0
        with self.lock:
            if taken:
                self.hosts[host] = now + self.settings.lease_seconds * 0.8
                self._host_retry.pop(host, None)
            else:
                self._host_retry[host] = now + HOST_RETRY_SECONDS
        return bool(taken)

    def held_hosts(self) -> list[str]:
        with self.lock:
            return list(self.hosts)

    def release_hosts(self, hosts: Iterable[str], *, waiting: bool = False) -> None:
        """Give back the leases of ``hosts`` (this crawler has nothing more for them), unless a feed this
        crawler holds is on one of them (its pages are on their way). ``waiting``: this crawler has requests
        for a host another crawler holds, so it gives back those too: two crawlers that each kept their
        feeds' hosts while waiting for a page on the other's would wait for each other for ever."""
        with self.lock:
            feed_hosts = set() if waiting else set(self.feeds.values())
            hosts = [h for h in hosts if h in self.hosts and h not in feed_hosts]
            for host in hosts:
                del self.hosts[host]
        if hosts:
            with contextlib.suppress(FrontierUnavailable):  # else they run out by themselves
                self._run("release_keys", [self.me, *(self.host_prefix + h for h in hosts)])

    # -- pages
    def claim_page(self, article_id: str) -> bool:
        """Claim ``article_id``'s page for this crawler; False when another crawler has it.
        FrontierUnavailable when Redis cannot be reached (wait retry_in, then ask again)."""
        key = self._page_key(article_id)
        (taken,) = self._run("take_keys", [self.me, self.ttl_ms, key])
        if taken:
            with self.lock:
                self.pages[article_id] = key
        return bool(taken)

    def _page_key(self, article_id: str) -> str:
        # Per cycle: the next cycle fetches an updated page again. Without a cycle (one feed asked for), the
        # claim only keeps two crawlers off one page at once.
        return f"{self._base()}:page:{article_id}" if self.cycle else f"{self.prefix}:page:{article_id}"

    def pages_done(self, article_ids: Iterable[str]) -> None:
        """The articles are stored: their pages' claims say so for the rest of the cycle (without a cycle,
        they go: the store's seen set has the pages now)."""
        with self.lock:
            keys = [self.pages.pop(a) for a in article_ids if a in self.pages]
        if keys:
            with contextlib.suppress(FrontierUnavailable):  # else they run out by themselves
                if self.cycle:
                    self._run("mark_done", [self.me, self.done_ms, *keys])
                else:
                    self._run("release_keys", [self.me, *keys])

    # -- renewing, closing
    def _start_renewing(self) -> None:
        if self._renewer is None:
            self._renewer = threading.Thread(target=self._renew_loop, name="frontier-leases", daemon=True)
            self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.settings.lease_seconds / 3):
            try:
                self.renew()
            except FrontierUnavailable:
                continue  # said once by the link; the holds that run out meanwhile are checked when it is back

    def renew(self) -> None:
        """Renew every hold of this crawler (one script call); those another crawler has now are dropped."""
        self._flush_done(quiet=True)
        with self.lock:
            feeds = list(self.feeds)
            hosts = list(self.hosts)
            pages = list(self.pages)
            cycle = self.cycle or ""
            keys = [self.host_prefix + h for h in hosts] + [self.pages[p] for p in pages]
        started = time.monotonic()
        args = [self.me, self.ttl_ms, self.cycle_key, cycle, self._base(), len(feeds), *feeds, *keys]
        lost = self._run("renew", args)
        names = feeds + hosts + pages
        with self.lock:
            for host in hosts:
                if host in self.hosts:
                    self.hosts[host] = started + self.settings.lease_seconds * 0.8
            for index in lost:
                name = names[int(index) - 1]
                kind = "feed" if index <= len(feeds) else "host" if index <= len(feeds) + len(hosts) else "page"
                log.warning("frontier_lease_lost kind=%s name=%s (another crawler has it now)", kind, name)
                {"feed": self.feeds, "host": self.hosts}.get(kind, {}).pop(name, None)
                if kind == "page":
                    self.pages.pop(name, None)

    def close(self) -> None:
        """Stop renewing; give back the feeds taken and not polled to the cycle, and every host and page."""
        self._stop.set()
        if self._renewer is not None and self._renewer.is_alive():
            self._renewer.join(5)
        with self.lock:
            feeds, hosts, pages = list(self.feeds), list(self.hosts), list(self.pages.values())
            self.feeds.clear()
            self.hosts.clear()
            self.pages.clear()
        try:
            self._flush_done(quiet=True)
            if feeds and self.cycle:
                self._run("give_back", [self._base(), self.me, *feeds])
                log.info("frontier_feeds_given_back count=%d (this crawler stops before polling them)", len(feeds))
            keys = [self.host_prefix + h for h in hosts] + pages
            if keys:
                self._run("release_keys", [self.me, *keys])
        except FrontierUnavailable:
            pass  # they run out by themselves
        finally:
            self.redis.close()
