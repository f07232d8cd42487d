"""Crawl benchmark: N feeds x M articles on local hosts; the whole crawl path against bare trafilatura/feedparser.

The whole path is `newswatch crawl --all` (its own code path, crawl_in_process, with the stock settings and
log level) in a child process - fetch, robots.txt, feed parsing, charset, extraction, language, clustering,
SQLite store - plus the alerts matcher over every stored article (compile_watches(...).match_articles, as the
alerts pass calls it) here.
Pages per second = article pages / (crawl seconds, from Scrapy's own spider open/close stats, so process
start-up is excluded, + matching seconds). Bare extraction: trafilatura.bare_extraction (with metadata,
trafilatura's default settings) on the same pages, read into memory first, in a fresh process like the
crawl's, once before and once after the crawl (the mean: the machine's speed drifts). Feed parsing:
crawler.parsing.feeds.parse_feed against feedparser.parse on the same feed files, in turn, best of 5 each.

The site is served from this process (the crawl's is another, so they share no interpreter lock) over
HTTP/1.1 keep-alive, feed f on its own host (127.0.0.(f+1), then 127.0.1.x...). Each run checks that the
crawl stored every page from the page itself (none from its feed item), so both sides handled the same pages.
``--runs N`` repeats crawl + baselines and prints medians; CPU columns are per page, crawl process (all
threads, spider open to close) + matching against the bare loop. ``--stages`` also splits the crawl's CPU
time per page by stage (see STAGES). ``--cycles N`` crawls the same store N-1 more times while nothing
changed on the sites (every feed a 304: wall and CPU seconds of each), then times `newswatch feeds status`;
``--no-baseline`` skips the bare loops (minutes at thousands of feeds). Results in docs/benchmarks.md
("Crawling").

    .venv/bin/python bench/crawl.py --feeds 10 --articles 50 --runs 5 [--local] [--stages]
    .venv/bin/python bench/crawl.py --feeds 5000 --articles 10 --cycles 2 --no-baseline
    .venv/bin/python bench/crawl.py --feeds 20 --articles 50 --workers 2 --runs 3 --local

``--workers N`` runs 1, then 2 ... N crawler processes at once, sharing the crawl through a Redis frontier
(crawler.frontier: redis, a redis-server started for the run) and one SQLite store, and prints pages/s for
each count (the span from the first spider open to the last close) and its ratio to one crawler; results in
docs/benchmarks.md ("Several crawlers").
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import html as htmllib
import io
import json
import os
import random
import re
import selectors
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "newswatch" / "demo" / "site" / "2017" / "11" / "04" / "daesh-loses-last-towns.html"
CORPUS = [
    SEED,
    *sorted((ROOT / "tests" / "fixtures" / "site" / "wire").glob("*.html")),
    ROOT / "newswatch" / "demo" / "site" / "2017" / "07" / "10" / "mossoul-liberee.html",
    ROOT / "newswatch" / "demo" / "site" / "2017" / "11" / "05" / "deir-ezzor-ar.html",
]


class Quiet(SimpleHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, as news sites do: with HTTP/1.0 every page would cost the crawler a
    # new TCP connection and HTTP client set-up, work a real crawl does not do per page.
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass


def build_site(folder: Path, feeds: int, articles: int, seed: int = 1, corpus: str = "mixed") -> list[Path]:
    """Write N RSS feeds of M article pages each inside the seed page's real boilerplate, and the sites'
    robots.txt. The pages' text, by ``corpus``:

    - ``mixed``: 14 of the corpus's paragraphs in a new order, so most are distinct stories and some
      near-duplicates. With only ~140 paragraphs (many of them wire copies of one another), two pages share
      some: each page is a weak match of ~4.5% of all the others, so the clustering candidates of a page
      grow with the number of pages (~90 a page at 4,000 pages, ~1,100 at 50,000);
    - ``stories``: each page its own story, as real news is: 14 paragraphs of the corpus with a fifth of their
      words swapped for others of the same paragraph (still the paragraph's language and names, no longer its
      3-word shingles), and one page in 10 a near-copy of an earlier one (a paragraph dropped), as a wire
      story reprinted by another outlet: the candidates of a page stay a few, whatever the site's size.
    """
    rng = random.Random(seed)
    template = SEED.read_text(encoding="utf-8")
    start, end = (
        template.index('<div class="entry-content">'),
        template.index("</div>", template.index('<div class="entry-content">')),
    )
    paragraphs = [
        p for path in CORPUS for p in re.findall(r"<p>(.*?)</p>", path.read_text(encoding="utf-8")) if len(p) > 80
    ]
    pages, stories = [], []
    for f in range(feeds):
        items = []
        for a in range(articles):
            if corpus == "mixed":
                body = "".join(f"<p>{p}</p>\n" for p in rng.sample(paragraphs, 14))
            else:
                stories.append(_story(rng, paragraphs, stories))
                body = "".join(f"<p>{p}</p>\n" for p in stories[-1])
            title = htmllib.escape(f"Report {f}-{a}: " + re.sub(r"<[^>]+>", "", rng.choice(paragraphs))[:60])
            html = template[:start] + f'<div class="entry-content">\n<h1>{title}</h1>\n{body}' + template[end:]
            html = html.replace("/2017/11/04/daesh-loses-last-towns.html", f"/f{f}/a{a}.html")
            path = folder / f"f{f}" / f"a{a}.html"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(html, encoding="utf-8")
            pages.append(path)
            items.append(
                f"<item><title>{title}</title><link>/f{f}/a{a}.html</link><guid>f{f}a{a}</guid>"
                f"<pubDate>Sat, 04 Nov 2017 {a % 24:02d}:{a % 60:02d}:00 +0000</pubDate>"
                f"<description>{htmllib.escape(rng.choice(paragraphs))}</description></item>"
            )
        (folder / f"f{f}" / "feed.xml").write_text(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {f}</title><link>/</link>'
            f"{''.join(items)}</channel></rss>",
            encoding="utf-8",
        )
    # Every site serves a robots.txt, as news sites do. A 404 instead kept AutoThrottle's start delay for the
    # feed request too (it lowers a delay only on a 200): each site idled ~0.5 s more than a real one would.
    (folder / "robots.txt").write_text("User-agent: *\nDisallow: /wp-admin/\nDisallow: /search\n", encoding="utf-8")
    return pages


def _story(rng: random.Random, paragraphs: list[str], earlier: list[list[str]]) -> list[str]:
    """The paragraphs (HTML) of one page of the ``stories`` corpus (see build_site)."""
    if earlier and rng.random() < 0.1:
        copy = list(rng.choice(earlier))
        del copy[rng.randrange(len(copy))]
        return copy
    story = []
    for paragraph in rng.sample(paragraphs, 14):
        words = htmllib.unescape(re.sub(r"<[^>]+>", "", paragraph)).split()
        story.append(htmllib.escape(" ".join(rng.choice(words) if rng.random() < 0.2 else w for w in words)))
    return story


def host(feed: int) -> str:
    """The loopback address of feed ``feed``'s site: 127.0.0.1 for the first, 127.0.0.(f+1) up to 254 feeds,
    then on through 127.0.1.1... (any 127/8 address is this machine on Linux)."""
    return f"127.0.{feed // 254}.{feed % 254 + 1}"


def serve(folder: Path, hosts: int) -> tuple[list[ThreadingHTTPServer], int, threading.Event]:
    """One server per site's loopback address (``host``) on one port: N sites, as the crawler sees hosts.

    One thread accepts for all of them (a selector over their sockets, what each server's serve_forever
    would do alone); each connection gets its thread, as ThreadingHTTPServer does. A thread polling per site
    was 5,000 threads waking every 0.5 s at 5,000 feeds, on the machine the crawl is measured on. Set the
    returned event to stop accepting."""
    handler = functools.partial(Quiet, directory=str(folder))
    first = ThreadingHTTPServer((host(0), 0), handler)
    port = first.server_address[1]
    servers = [first] + [ThreadingHTTPServer((host(f), port), handler) for f in range(1, hosts)]
    stop = threading.Event()

    def accept() -> None:
        with selectors.DefaultSelector() as selector:
            for server in servers:
                selector.register(server, selectors.EVENT_READ, server)
            while not stop.is_set():
                for key, _ in selector.select(0.5):
                    key.data._handle_request_noblock()

    threading.Thread(target=accept, daemon=True).start()
    return servers, port, stop


# --stages: the functions whose CPU time on the crawl's thread is added up, as (label, module, attribute),
# grouped: a top-level stage, then the parts of it that are timed too (what is left of it is reported as well).
# Each is looked up through its module at call time, so wrapping the module's attribute times every call.
STAGES = {
    ("feed parsing", "crawler.spiders.feeds", "read_source"): [],
    ("charset", "crawler.spiders.feeds", "decode_html"): [],
    ("extraction (extract_article)", "crawler.articles", "extract_article"): [
        ("HTML parse (load_html)", "crawler.extract", "load_html"),
        ("main text (trafilatura bare_extraction)", "crawler.extract", "bare_extraction"),
        ("title, author, date (page_metadata)", "crawler.extract", "page_metadata"),
        ("language (detect_language)", "crawler.extract", "detect_language"),
    ],
    ("clustering (ClusterPipeline)", "crawler.pipelines", "ClusterPipeline.process_item"): [
        ("MinHash (signature)", "crawler.clusters", "signature"),
    ],
}


def time_stages() -> dict[str, float]:
    """Wrap the STAGES functions so each call adds its thread CPU seconds to the returned dict (bench only)."""
    import importlib

    spent: dict[str, float] = {}

    def timed_call(label, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += time.thread_time() - start

        return wrapper

    for label, module_name, attribute in [stage for top, parts in STAGES.items() for stage in (top, *parts)]:
        spent[label] = 0.0
        owner = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, timed_call(label, getattr(owner, name)))
    return spent


def stage_table(spent: dict[str, float], main_cpu: float, process_cpu: float, pages: int) -> dict[str, float]:
    """CPU ms per page by stage (parts indented with "- "). What the crawl thread spent outside the stages is
    Scrapy (fetch, middlewares, scheduling, signals, item hand-offs), the store pipeline's batching and the
    reactor; other threads are the store's writes (asyncio.to_thread)."""
    ms = {label: seconds * 1000 / pages for label, seconds in spent.items()}
    table: dict[str, float] = {}
    for (label, _, _), parts in STAGES.items():
        table[label] = ms[label]
        for part, _, _ in parts:
            table[f"- {part}"] = ms[part]
        if parts:
            table[f"- {label.split(' (')[0]}, the rest"] = ms[label] - sum(ms[part] for part, _, _ in parts)
    table["Scrapy and the rest of the crawl thread"] = main_cpu * 1000 / pages - sum(
        ms[label] for label, _, _ in STAGES
    )
    table["other threads (store writes)"] = (process_cpu - main_cpu) * 1000 / pages
    return table


def child_crawl(config_dir: str, local: bool, stages: bool = False) -> None:
    """In the child process: `newswatch crawl --all`'s own code path, then its figures as JSON on stdout.

    crawl_in_process is called as the CLI calls it (stock settings and log level, log lines to stderr); the
    crawler it creates is caught only to read its stats and the CPU time between spider open and close (all
    threads of the process, so the store's writer thread counts too), and, with ``local``, to turn
    AutoThrottle and the delay between two requests to one site off (see --local).
    """
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    from newswatch.core.config import load_config
    from newswatch.core.logs import setup_logging
    from newswatch.service.crawl import crawl_in_process

    config = load_config(config_dir)
    setup_logging(config.settings.log_level)
    crawlers, cpu, thread, wall = [], {}, {}, {}
    spent = time_stages() if stages else None
    create = CrawlerProcess.create_crawler

    def create_and_watch(self, *args, **kwargs):
        crawler = create(self, *args, **kwargs)
        crawlers.append(crawler)
        if local:
            crawler.settings.set("AUTOTHROTTLE_ENABLED", False, priority="cmdline")
            crawler.settings.set("DOWNLOAD_DELAY", 0, priority="cmdline")
        for name, signal in (("opened", signals.spider_opened), ("closed", signals.spider_closed)):
            crawler.signals.connect(
                lambda name=name, **_: (
                    cpu.setdefault(name, time.process_time()),
                    thread.setdefault(name, time.thread_time()),
                    wall.setdefault(name, time.time()),  # --workers: the span of all the crawlers together
                ),
                signal=signal,
                weak=False,
            )
        return crawler

    CrawlerProcess.create_crawler = create_and_watch
    crawl_in_process(config, all_feeds=True)
    stats = crawlers[0].stats.get_stats()
    stored = stats.get("newswatch/articles/stored", 0)
    figures = {
        "seconds": stats["elapsed_time_seconds"],
        "opened_at": wall["opened"],
        "closed_at": wall["closed"],
        "cpu": cpu["closed"] - cpu["opened"],
        "stored": stored,
        "from_feed": stats.get("newswatch/articles/from_feed", 0),
        "responses": stats.get("response_received_count", 0),
        "unchanged": stats.get("newswatch/feeds/unchanged", 0),
        "failed": stats.get("newswatch/feeds/failed", 0),
    }
    if spent is not None:
        figures["stages"] = stage_table(spent, thread["closed"] - thread["opened"], figures["cpu"], max(stored, 1))
    print(json.dumps(figures))


def bare_child(listing: str) -> None:
    """In a child process, as fresh as the crawl's: bare trafilatura over the pages, read into memory first."""
    import trafilatura

    pages = [Path(line) for line in Path(listing).read_text(encoding="utf-8").splitlines()]
    html = [(p.read_text(encoding="utf-8"), f"http://127.0.0.1/{p.parent.name}/{p.name}") for p in pages]
    wall, cpu = timed(lambda: [trafilatura.bare_extraction(h, url=u, with_metadata=True) for h, u in html])
    print(json.dumps({"seconds": wall, "cpu": cpu}))


def _child(*args: str, profile_to: str | None = None) -> dict:
    """Run this file with ``args`` in a child process; its last stdout line, as JSON."""
    profile_to = profile_to or os.environ.get("BENCH_PROFILE")
    profile = ["-m", "cProfile", "-o", profile_to] if profile_to and args[0] == "--child" else []
    child = subprocess.run(
        [sys.executable, *profile, __file__, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if child.returncode != 0:
        sys.exit(f"{args[0]} failed (exit {child.returncode}):\n{child.stderr[-3000:]}")
    return {**json.loads(child.stdout.strip().splitlines()[-1]), "log": child.stderr}


def timed(action) -> tuple[float, float]:
    """Wall and CPU seconds of one ``action()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def best_of_pairs(repeat: int, first, second) -> tuple[float, float]:
    """The fastest wall timings of ``first()`` and ``second()``, run in turn ``repeat`` times each (in turn,
    so a slow spell of the machine does not fall on one side only)."""
    times = [(timed(first)[0], timed(second)[0]) for _ in range(repeat)]
    return min(t[0] for t in times), min(t[1] for t in times)


def start_es_node() -> str:
    """The URL of the bench's Elasticsearch node (scripts/es-node --name bench-crawl), started when it is not."""
    started = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "es-node"), "start", "--name", "bench-crawl"],
        capture_output=True,
        text=True,
        env={"NEWSWATCH_ES_HEAP": "2g", **os.environ},
    )
    if started.returncode != 0:
        sys.exit(f"the Elasticsearch node did not start: {started.stderr.strip()}")
    return started.stdout.strip().splitlines()[-1]


def write_config(
    project: Path, port: int, feeds: int, *, db: str = "var/newswatch.db", crawler=None, storage=None
) -> Path:
    """A fresh project folder (empty store) whose feeds.yaml lists the N local feeds; stock settings (but
    ``crawler``, a crawler: section, and ``db``, the SQLite file, for --workers; ``storage``, a storage:
    section, for --backend elastic)."""
    config_dir = project / "config"
    config_dir.mkdir(parents=True)
    urls = [{"name": f"Feed {f}", "url": f"http://{host(f)}:{port}/f{f}/feed.xml"} for f in range(feeds)]
    files = {
        "settings.yaml": {"storage": storage or {"sqlite": {"path": db}}, **({"crawler": crawler} if crawler else {})},
        "feeds.yaml": {"feeds": urls},
        "watches.yaml": yaml.safe_load((ROOT / "config" / "watches.yaml").read_text(encoding="utf-8")),
    }
    for name, data in files.items():
        (config_dir / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return config_dir


def one_run(
    config_dir: Path,
    listing: Path,
    pages: int,
    feed_bodies: list[tuple[bytes, str]],
    local: bool,
    stages: bool = False,
    baseline: bool = True,
    cycles: int = 1,
) -> dict:
    """Bare extraction, crawl + match (the whole path), bare extraction again (the machine's speed drifts:
    the baseline is the mean of the two around the crawl), then the feed parsers, on the same pages. With
    ``cycles`` > 1, as many more crawls of every feed against the unchanged site (each feed a 304), then
    `feeds status`. Without ``baseline``, the bare loops and the feed parsers are skipped."""
    import feedparser

    from alerts.matching.compile import compile_watches
    from crawler.parsing.feeds import parse_feed
    from newswatch.core.config import load_config
    from newswatch.core.store import open_store

    flags = [*(["--local"] if local else []), *(["--stages"] if stages else [])]
    profile = os.environ.get("BENCH_PROFILE")
    before = _child("--bare", str(listing)) if baseline else None
    crawl = _child("--child", str(config_dir), *flags)
    config = load_config(config_dir)
    store = open_store(config)
    articles, cursor = [], None
    while True:
        batch, cursor = store.articles_after(cursor, limit=5000)
        if not batch:
            break
        articles += batch
    store.close()
    # Both sides must have handled the same pages: every page fetched and extracted, none stood in for by
    # its feed item (that would skip extraction and flatter the crawl).
    if crawl["stored"] != pages or crawl["from_feed"] or len(articles) != pages:
        sys.exit(
            f"the crawl did not extract every page: {crawl['stored']} stored, {crawl['from_feed']} from "
            f"feeds, {len(articles)} in the store\n{crawl['log'][-3000:]}"
        )
    matcher = compile_watches(config.watches)
    hits = []
    match_wall, match_cpu = timed(lambda: hits.extend(matcher.match_articles(articles)))
    articles.clear()
    row = {
        "crawl_s": crawl["seconds"],
        "match_s": match_wall,
        "responses": crawl["responses"],
        "hits": len(hits),
        "crawl_pages_s": pages / crawl["seconds"],
        "whole": pages / (crawl["seconds"] + match_wall),
        "whole_cpu_ms": (crawl["cpu"] + match_cpu) * 1000 / pages,
        "stages": {**crawl.get("stages", {}), "matching (alerts, after the crawl)": match_cpu * 1000 / pages},
        "again": [],
    }
    if baseline:
        after = _child("--bare", str(listing))
        bare_wall, bare_cpu = (before["seconds"] + after["seconds"]) / 2, (before["cpu"] + after["cpu"]) / 2
        ours, theirs = best_of_pairs(
            5,
            lambda: [parse_feed(b, u) for b, u in feed_bodies],
            lambda: [feedparser.parse(io.BytesIO(b)) for b, _ in feed_bodies],
        )
        row |= {
            "bare": pages / bare_wall,
            "ratio": bare_wall / (crawl["seconds"] + match_wall),
            "bare_cpu_ms": bare_cpu * 1000 / pages,
            "cpu_ratio": bare_cpu / (crawl["cpu"] + match_cpu),
            "feed_ratio": theirs / ours,
        }
    feeds = len(feed_bodies)
    for cycle in range(2, cycles + 1):
        # Nothing changed on the site: every feed answers 304, no page is fetched, nothing is stored.
        again = _child("--child", str(config_dir), *flags, profile_to=f"{profile}.{cycle}" if profile else None)
        if again["stored"] or again["unchanged"] != feeds or again["failed"]:
            sys.exit(
                f"cycle {cycle} was not a 'nothing changed' cycle: {again['stored']} stored, {again['unchanged']} "
                f"of {feeds} feeds unchanged, {again['failed']} failed\n{again['log'][-3000:]}"
            )
        row["again"].append({"cycle": cycle, **{k: again[k] for k in ("seconds", "cpu", "responses", "unchanged")}})
    if cycles > 1:
        row["status_s"], row["status_in_process_s"] = time_status(config_dir, feeds)
    return row


def time_status(config_dir: Path, feeds: int) -> tuple[float, float]:
    """Wall seconds of `newswatch feeds status` as a user runs it (a new process: start-up, imports, the
    table), and of the command's own work inside a process (click's runner, once warmed up by one call)."""
    command = [sys.executable, "-m", "newswatch", "--config", str(config_dir), "feeds", "status"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if result.returncode != 0 or f"{feeds} feeds, 0 unhealthy" not in result.stdout:
        sys.exit(f"feeds status failed (exit {result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    from click.testing import CliRunner

    from newswatch.cli import cli

    runner = CliRunner()
    runner.invoke(cli, ["--config", str(config_dir), "feeds", "status"])
    start = time.perf_counter()
    runner.invoke(cli, ["--config", str(config_dir), "feeds", "status"])
    return wall, time.perf_counter() - start


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    """Debian's redis-server on a free loopback port, its files in ``folder`` (nothing saved); its URL."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return server, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    server.kill()
    sys.exit("redis-server did not start")


def workers_run(folder: Path, port: int, feeds: int, pages: int, workers: int, redis_url: str, local: bool) -> dict:
    """``workers`` crawler processes at once (`newswatch crawl --all`'s code path each, as --child runs it),
    one config folder each, on one SQLite store and one Redis frontier (a key prefix of their own per run):
    pages/s over the span from the first spider open to the last spider close. Checks that every page was
    stored once, from the page itself, and fetched once."""
    from newswatch.core.store.sqlite import SqliteStore

    db = folder / "newswatch.db"
    frontier = {"type": "redis", "url": redis_url, "key_prefix": folder.name}
    configs = [
        write_config(folder / f"crawler{n}", port, feeds, db=str(db), crawler={"frontier": frontier})
        for n in range(workers)
    ]
    flags = ["--local"] if local else []
    figures = []
    with contextlib.ExitStack() as files:
        logs = [files.enter_context(open(folder / f"crawler{n}.log", "w+", encoding="utf-8")) for n in range(workers)]
        children = [
            subprocess.Popen(
                [sys.executable, __file__, "--child", str(c), *flags],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=ROOT,
            )
            for c, log in zip(configs, logs, strict=True)
        ]
        for child, log in zip(children, logs, strict=True):
            out, _ = child.communicate()
            log.seek(0)
            if child.returncode != 0:
                sys.exit(f"a crawler failed (exit {child.returncode}):\n{log.read()[-3000:]}")
            figures.append(json.loads(out.strip().splitlines()[-1]))
    store = SqliteStore(db)
    articles = store.articles_after(None, limit=10_000_000)[0]
    store.close()
    stored = sum(f["stored"] for f in figures)
    if len(articles) != pages or len({a.id for a in articles}) != pages or any(a.source != "page" for a in articles):
        sys.exit(f"{workers} crawlers: {len(articles)} articles in the store for {pages} pages")
    span = max(f["closed_at"] for f in figures) - min(f["opened_at"] for f in figures)
    return {
        "workers": workers,
        "span": span,
        "pages_s": pages / span,
        "shares": [f["stored"] for f in figures],
        "stored": stored,  # more than pages: a page written twice (a second crawler fetched it)
        "cpu": sum(f["cpu"] for f in figures),
        "spans": [(f["opened_at"] - min(g["opened_at"] for g in figures), f["seconds"]) for f in figures],
    }


def main_workers(args, site: Path, port: int, pages: int, tmp: Path) -> None:
    """--workers N: 1, then 2 ... N crawler processes sharing the crawl through Redis, ``--runs`` times in
    turn (so a slow spell of the machine does not fall on one count only); medians and the ratio to one."""
    server, redis_url = start_redis(tmp)
    rows: dict[int, list[dict]] = {}
    try:
        for number in range(1, args.runs + 1):
            for workers in range(1, args.workers + 1):
                folder = tmp / f"run{number}-w{workers}"
                folder.mkdir()
                row = workers_run(folder, port, args.feeds, pages, workers, redis_url, args.local)
                rows.setdefault(workers, []).append(row)
                print(
                    f"| {number} | {workers} | {row['span']:.2f} | {row['pages_s']:.1f} | "
                    f"{row['cpu'] / pages * 1000:.1f} | {' / '.join(map(str, row['shares']))} | "
                    + ", ".join(f"+{start:.2f} s for {seconds:.2f} s" for start, seconds in row["spans"])
                    + " |",
                    flush=True,
                )
    finally:
        server.kill()
        server.wait()
    one = statistics.median(r["pages_s"] for r in rows[1])
    print("\n| crawlers | pages/s (median) | ratio to 1 crawler |\n| ---: | ---: | ---: |")
    for workers, runs in rows.items():
        rate = statistics.median(r["pages_s"] for r in runs)
        print(f"| {workers} | {rate:.1f} | {rate / one:.2f} |")


COLUMNS = [
    ("crawl_s", "crawl s", "{:.2f}"),
    ("match_s", "match s", "{:.2f}"),
    ("crawl_pages_s", "crawl pages/s", "{:.1f}"),
    ("whole", "whole pages/s", "{:.1f}"),
    ("bare", "bare pages/s", "{:.1f}"),
    ("ratio", "ratio", "{:.2f}"),
    ("whole_cpu_ms", "whole CPU ms/page", "{:.1f}"),
    ("bare_cpu_ms", "bare CPU ms/page", "{:.1f}"),
    ("cpu_ratio", "CPU ratio", "{:.2f}"),
    ("feed_ratio", "parse_feed/feedparser", "{:.2f}"),
]
BASELINE_COLUMNS = {"bare", "ratio", "bare_cpu_ms", "cpu_ratio", "feed_ratio"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=10)
    parser.add_argument("--articles", type=int, default=50)
    parser.add_argument("--runs", type=int, default=1, help="repeat crawl + baselines; medians are printed")
    parser.add_argument(
        "--cycles",
        type=int,
        default=1,
        help="crawls per run on the same store: the first crawl, then cycles-1 crawls of every feed where "
        "nothing changed (each feed a 304; wall and CPU seconds printed); with 2 or more, `feeds status` "
        "is timed at the end",
    )
    parser.add_argument(
        "--corpus",
        choices=("mixed", "stories"),
        default="mixed",
        help="the pages' text (see build_site): mixed (the default, the figures of docs/benchmarks.md) draws "
        "paragraphs from one small pool, so every page is a weak match of a share of all the others; "
        "stories makes each page its own story, one in 10 a near-copy of an earlier one",
    )
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip bare trafilatura and the feed parsers' comparison (minutes at thousands of feeds)",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="bench-only profile: no delay between two requests to one site and AutoThrottle off (its delays "
        "follow the apparent latency of 127.0.0.x, which is the crawl's own queueing; the floor caps one site at "
        "4 pages/s, which at 10 feeds is the whole figure); robots.txt, 2 requests per site and everything else "
        "stay stock. Never a setting of real crawls.",
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="also print the crawl's CPU ms per page by stage (wraps the STAGES functions with "
        "timers, which adds a little to the crawl's own figures)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run 1, then 2 ... N crawler processes at once against the site, sharing the crawl through a "
        "Redis frontier (a redis-server started here) and one store, and print pages/s for each count and "
        "its ratio to one crawler (no matching, no baseline)",
    )
    parser.add_argument(
        "--backend",
        choices=("sqlite", "elastic"),
        default="sqlite",
        help="the store the crawl writes to: the embedded SQLite file, or an Elasticsearch node (scripts/es-node "
        "--name bench-crawl, started here; each run its own index prefix)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workers and args.backend != "sqlite":
        parser.error("--workers runs on the sqlite backend only")
    if args.child:
        child_crawl(args.child, args.local, args.stages)
        return
    if args.bare:
        bare_child(args.bare)
        return

    columns = [c for c in COLUMNS if args.baseline or c[0] not in BASELINE_COLUMNS]
    es_url = start_es_node() if args.backend == "elastic" else None
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        pages = build_site(site, args.feeds, args.articles, corpus=args.corpus)
        listing = Path(tmp) / "pages.txt"
        listing.write_text("\n".join(map(str, pages)), encoding="utf-8")
        feed_bodies = [(p.read_bytes(), f"http://127.0.0.1/{p.name}") for p in sorted(site.glob("f*/feed.xml"))]
        servers, port, stop = serve(site, args.feeds)
        if args.workers:
            profile = "local (no delays per site)" if args.local else "stock (a delay per site, AutoThrottle on)"
            print(
                f"pages: {len(pages)} ({args.feeds} feeds x {args.articles}, {args.corpus} corpus); crawl settings: "
                f"{profile}; crawlers share the crawl through Redis; pages/s over the first spider open to the "
                "last close\n| run | crawlers | wall s | pages/s | CPU ms/page | pages per crawler | each crawler |\n"
                "| ---: | ---: | ---: | ---: | ---: | --- | --- |",
                flush=True,
            )
            try:
                main_workers(args, site, port, len(pages), Path(tmp))
            finally:
                stop.set()
                for server in servers:
                    server.server_close()
            return
        profile = "local (no delays per site)" if args.local else "stock (a delay per site, AutoThrottle on)"
        print(
            f"pages: {len(pages)} ({args.feeds} feeds x {args.articles}, {args.corpus} corpus); crawl settings: "
            f"{profile}; whole path = "
            "crawl + match"
            + ("; bare = trafilatura.bare_extraction; ratios: whole/bare, parse_feed/feedparser" * args.baseline)
        )
        print("| run | " + " | ".join(title for _, title, _ in columns) + " |")
        print("| ---: " * (len(columns) + 1) + "|", flush=True)
        runs = []
        for number in range(1, args.runs + 1):
            storage = None
            if args.backend == "elastic":
                storage = {
                    "backend": "elasticsearch",
                    "elasticsearch": {"hosts": [es_url], "index_prefix": f"bench-crawl-{os.getpid()}-{number}"},
                }
            row = one_run(
                write_config(Path(tmp) / f"project{number}", port, args.feeds, storage=storage),
                listing,
                len(pages),
                feed_bodies,
                args.local,
                args.stages,
                args.baseline,
                args.cycles,
            )
            runs.append(row)
            print(f"| {number} | " + " | ".join(fmt.format(row[key]) for key, _, fmt in columns) + " |", flush=True)
        stop.set()
        for server in servers:
            server.server_close()
    if es_url:
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "es-node"), "stop", "--name", "bench-crawl"], check=False
        )
    if args.runs > 1:
        print(
            "| median | "
            + " | ".join(fmt.format(statistics.median(r[key] for r in runs)) for key, _, fmt in columns)
            + " |"
        )
    last = runs[-1]
    print(f"responses {last['responses']} (pages + feeds + robots.txt), hits {last['hits']}")
    if args.cycles > 1:
        print(
            f"\nnothing-changed cycles ({args.feeds} feeds, each a 304; wall = Scrapy's spider open to close)\n"
            "| run | cycle | wall s | CPU s | CPU ms/feed | responses |\n| ---: | ---: | ---: | ---: | ---: | ---: |"
        )
        for number, row in enumerate(runs, 1):
            for again in row["again"]:
                print(
                    f"| {number} | {again['cycle']} | {again['seconds']:.2f} | {again['cpu']:.2f} | "
                    f"{again['cpu'] * 1000 / args.feeds:.2f} | {again['responses']} |"
                )
        print(
            f"\n`feeds status` at {args.feeds} feeds: "
            + ", ".join(
                f"{r['status_s']:.2f} s as a command ({r['status_in_process_s']:.2f} s of it in process)" for r in runs
            )
        )
    if args.stages:
        print("\n| stage (CPU ms per page, median of the runs) | ms |\n| --- | ---: |")
        for label in last["stages"]:
            print(f"| {label} | {statistics.median(r['stages'][label] for r in runs):.2f} |")


if __name__ == "__main__":
    main()
