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
HTTP/1.1 keep-alive, feed f on its own host 127.0.0.(f+1). Each run checks that the crawl stored every page
from the page itself (none from its feed item), so both sides handled the same pages. ``--runs N`` repeats
crawl + baselines and prints medians; CPU columns are per page, crawl process (all threads, spider open to
close) + matching against the bare loop. ``--stages`` also splits the crawl's CPU time per page by stage
(see STAGES). Results in docs/benchmarks.md ("Crawling").

    .venv/bin/python bench/crawl.py --feeds 10 --articles 50 --runs 5 [--local] [--stages]
"""

from __future__ import annotations

import argparse
import functools
import html as htmllib
import io
import json
import os
import random
import re
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


def build_site(folder: Path, feeds: int, articles: int, seed: int = 1) -> list[Path]:
    """Write N RSS feeds of M article pages each, pages made of the corpus's paragraphs in new orders (so
    most are distinct stories and some near-duplicates), inside the seed page's real boilerplate; and the
    sites' robots.txt."""
    rng = random.Random(seed)
    template = SEED.read_text(encoding="utf-8")
    start, end = (
        template.index('<div class="entry-content">'),
        template.index("</div>", template.index('<div class="entry-content">')),
    )
    paragraphs = [
        p for path in CORPUS for p in re.findall(r"<p>(.*?)</p>", path.read_text(encoding="utf-8")) if len(p) > 80
    ]
    pages = []
    for f in range(feeds):
        items = []
        for a in range(articles):
            body = "".join(f"<p>{p}</p>\n" for p in rng.sample(paragraphs, 14))
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


def serve(folder: Path, hosts: int) -> tuple[list[ThreadingHTTPServer], int]:
    """One server per loopback address 127.0.0.1..N on one port: N sites, as the crawler sees hosts."""
    first = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    port = first.server_address[1]
    servers = [first] + [
        ThreadingHTTPServer((f"127.0.0.{h}", port), functools.partial(Quiet, directory=str(folder)))
        for h in range(2, hosts + 1)
    ]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return servers, port


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
    AutoThrottle off (see --local).
    """
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    from newswatch.core.config import load_config
    from newswatch.core.logs import setup_logging
    from newswatch.service.crawl import crawl_in_process

    config = load_config(config_dir)
    setup_logging(config.settings.log_level)
    crawlers, cpu, thread = [], {}, {}
    spent = time_stages() if stages else None
    create = CrawlerProcess.create_crawler

    def create_and_watch(self, *args, **kwargs):
        crawler = create(self, *args, **kwargs)
        crawlers.append(crawler)
        if local:
            crawler.settings.set("AUTOTHROTTLE_ENABLED", False, priority="cmdline")
        for name, signal in (("opened", signals.spider_opened), ("closed", signals.spider_closed)):
            crawler.signals.connect(
                lambda name=name, **_: (
                    cpu.setdefault(name, time.process_time()),
                    thread.setdefault(name, time.thread_time()),
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
        "cpu": cpu["closed"] - cpu["opened"],
        "stored": stored,
        "from_feed": stats.get("newswatch/articles/from_feed", 0),
        "responses": stats.get("response_received_count", 0),
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


def _child(*args: str) -> dict:
    """Run this file with ``args`` in a child process; its last stdout line, as JSON."""
    profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
    child = subprocess.run(
        [sys.executable, *(profile if args[0] == "--child" else []), __file__, *args],
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


def write_config(project: Path, port: int, feeds: int) -> Path:
    """A fresh project folder (empty store) whose feeds.yaml lists the N local feeds; stock settings."""
    config_dir = project / "config"
    config_dir.mkdir(parents=True)
    urls = [{"name": f"Feed {f}", "url": f"http://127.0.0.{f + 1}:{port}/f{f}/feed.xml"} for f in range(feeds)]
    files = {
        "settings.yaml": {"storage": {"sqlite": {"path": "var/newswatch.db"}}},
        "feeds.yaml": {"feeds": urls},
        "watches.yaml": yaml.safe_load((ROOT / "config" / "watches.yaml").read_text(encoding="utf-8")),
    }
    for name, data in files.items():
        (config_dir / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return config_dir


def one_run(
    config_dir: Path, listing: Path, pages: int, feed_bodies: list[tuple[bytes, str]], local: bool, stages: bool = False
) -> dict:
    """Bare extraction, crawl + match (the whole path), bare extraction again (the machine's speed drifts:
    the baseline is the mean of the two around the crawl), then the feed parsers, on the same pages."""
    import feedparser

    from alerts.matching.compile import compile_watches
    from crawler.parsing.feeds import parse_feed
    from newswatch.core.config import load_config
    from newswatch.core.store.sqlite import SqliteStore

    before = _child("--bare", str(listing))
    crawl = _child("--child", str(config_dir), *(["--local"] if local else []), *(["--stages"] if stages else []))
    config = load_config(config_dir)
    store = SqliteStore(config.path("var/newswatch.db"))
    articles = store.articles_after(None, limit=100_000)[0]
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
    after = _child("--bare", str(listing))
    bare_wall, bare_cpu = (before["seconds"] + after["seconds"]) / 2, (before["cpu"] + after["cpu"]) / 2
    ours, theirs = best_of_pairs(
        5,
        lambda: [parse_feed(b, u) for b, u in feed_bodies],
        lambda: [feedparser.parse(io.BytesIO(b)) for b, _ in feed_bodies],
    )
    return {
        "crawl_s": crawl["seconds"],
        "match_s": match_wall,
        "responses": crawl["responses"],
        "hits": len(hits),
        "whole": pages / (crawl["seconds"] + match_wall),
        "bare": pages / bare_wall,
        "ratio": bare_wall / (crawl["seconds"] + match_wall),
        "whole_cpu_ms": (crawl["cpu"] + match_cpu) * 1000 / pages,
        "bare_cpu_ms": bare_cpu * 1000 / pages,
        "cpu_ratio": bare_cpu / (crawl["cpu"] + match_cpu),
        "feed_ratio": theirs / ours,
        "stages": {**crawl.get("stages", {}), "matching (alerts, after the crawl)": match_cpu * 1000 / pages},
    }


COLUMNS = [
    ("crawl_s", "crawl s", "{:.2f}"),
    ("match_s", "match s", "{:.2f}"),
    ("whole", "whole pages/s", "{:.1f}"),
    ("bare", "bare pages/s", "{:.1f}"),
    ("ratio", "ratio", "{:.2f}"),
    ("whole_cpu_ms", "whole CPU ms/page", "{:.1f}"),
    ("bare_cpu_ms", "bare CPU ms/page", "{:.1f}"),
    ("cpu_ratio", "CPU ratio", "{:.2f}"),
    ("feed_ratio", "parse_feed/feedparser", "{:.2f}"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=10)
    parser.add_argument("--articles", type=int, default=50)
    parser.add_argument("--runs", type=int, default=1, help="repeat crawl + baselines; medians are printed")
    parser.add_argument(
        "--local",
        action="store_true",
        help="bench-only profile: AutoThrottle off (its delays follow the apparent latency of "
        "127.0.0.x, which is the crawl's own queueing); robots.txt, 2 requests per site "
        "and everything else stay stock. Never a setting of real crawls.",
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="also print the crawl's CPU ms per page by stage (wraps the STAGES functions with "
        "timers, which adds a little to the crawl's own figures)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_crawl(args.child, args.local, args.stages)
        return
    if args.bare:
        bare_child(args.bare)
        return

    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        pages = build_site(site, args.feeds, args.articles)
        listing = Path(tmp) / "pages.txt"
        listing.write_text("\n".join(map(str, pages)), encoding="utf-8")
        feed_bodies = [(p.read_bytes(), f"http://127.0.0.1/{p.name}") for p in sorted(site.glob("f*/feed.xml"))]
        servers, port = serve(site, args.feeds)
        profile = "local (AutoThrottle off)" if args.local else "stock (AutoThrottle on)"
        print(
            f"pages: {len(pages)} ({args.feeds} feeds x {args.articles}); crawl settings: {profile}; whole path = "
            f"crawl + match; bare = trafilatura.bare_extraction; ratios: whole/bare, parse_feed/feedparser"
        )
        print("| run | " + " | ".join(title for _, title, _ in COLUMNS) + " |")
        print("| ---: " * (len(COLUMNS) + 1) + "|")
        runs = []
        for number in range(1, args.runs + 1):
            row = one_run(
                write_config(Path(tmp) / f"project{number}", port, args.feeds),
                listing,
                len(pages),
                feed_bodies,
                args.local,
                args.stages,
            )
            runs.append(row)
            print(f"| {number} | " + " | ".join(fmt.format(row[key]) for key, _, fmt in COLUMNS) + " |", flush=True)
        for server in servers:
            server.shutdown()
    if args.runs > 1:
        print(
            "| median | "
            + " | ".join(fmt.format(statistics.median(r[key] for r in runs)) for key, _, fmt in COLUMNS)
            + " |"
        )
    last = runs[-1]
    print(f"responses {last['responses']} (pages + feeds + robots.txt), hits {last['hits']}")
    if args.stages:
        print("\n| stage (CPU ms per page, median of the runs) | ms |\n| --- | ---: |")
        for label in last["stages"]:
            print(f"| {label} | {statistics.median(r['stages'][label] for r in runs):.2f} |")


if __name__ == "__main__":
    main()
