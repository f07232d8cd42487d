"""Crawl benchmark: N feeds x M articles on local hosts; the whole crawl path against bare trafilatura/feedparser.

The whole path is `newswatch crawl --all` in its own process (fetch, robots.txt, feed parsing, charset,
extraction, language, clustering, SQLite store) plus the alerts matcher over every stored article
(alerts.watchlist.compile_watches(...).match_article). Pages per second = article pages / (crawl seconds,
from Scrapy's own start/finish stats, + matching seconds). Bare extraction: trafilatura.bare_extraction
(with metadata, default settings) on the same pages in this process. Feed parsing: crawler.feeds.parse_feed
against feedparser.parse on the same feed files. Results in docs/benchmarks.md ("Crawling").

    .venv/bin/python bench/crawl.py --feeds 10 --articles 50
"""

from __future__ import annotations

import argparse
import functools
import html as htmllib
import os
import io
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SEED = ROOT / "newswatch" / "demo_site" / "2017" / "11" / "04" / "daesh-loses-last-towns.html"
CORPUS = [SEED, *sorted((ROOT / "tests" / "fixtures" / "site" / "wire").glob("*.html")),
          ROOT / "newswatch" / "demo_site" / "2017" / "07" / "10" / "mossoul-liberee.html",
          ROOT / "newswatch" / "demo_site" / "2017" / "11" / "05" / "deir-ezzor-ar.html"]


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def build_site(folder: Path, feeds: int, articles: int, seed: int = 1) -> list[Path]:
    """Write N RSS feeds of M article pages each, pages made of the corpus's paragraphs in new orders (so
    most are distinct stories and some near-duplicates), inside the seed page's real boilerplate."""
    rng = random.Random(seed)
    template = SEED.read_text(encoding="utf-8")
    start, end = template.index('<div class="entry-content">'), template.index("</div>", template.index('<div class="entry-content">'))
    paragraphs = [p for path in CORPUS for p in re.findall(r"<p>(.*?)</p>", path.read_text(encoding="utf-8"))
                  if len(p) > 80]
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
            items.append(f"<item><title>{title}</title><link>/f{f}/a{a}.html</link><guid>f{f}a{a}</guid>"
                         f"<pubDate>Sat, 04 Nov 2017 {a % 24:02d}:{a % 60:02d}:00 +0000</pubDate>"
                         f"<description>{htmllib.escape(rng.choice(paragraphs))}</description></item>")
        (folder / f"f{f}" / "feed.xml").write_text(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {f}</title><link>/</link>'
            f'{"".join(items)}</channel></rss>', encoding="utf-8")
    return pages


def serve(folder: Path, hosts: int) -> tuple[list[ThreadingHTTPServer], int]:
    """One server per loopback address 127.0.0.1..N on one port: N sites, as the crawler sees hosts."""
    first = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    port = first.server_address[1]
    servers = [first] + [ThreadingHTTPServer((f"127.0.0.{h}", port), functools.partial(Quiet, directory=str(folder)))
                         for h in range(2, hosts + 1)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return servers, port


def child_crawl(config_dir: str) -> None:
    """In the child process: one crawl of every feed, then its stats as JSON on stdout."""
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    from newswatch.config import load_config
    from newswatch.logs import quiet_libraries, setup_logging

    config = load_config(config_dir)
    setup_logging("WARNING")
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("NEWSWATCH_CONFIG_DIR", config_dir, priority="cmdline")
    settings.set("LOG_LEVEL", "WARNING", priority="cmdline")
    settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")
    process = CrawlerProcess(settings)
    quiet_libraries("WARNING")
    crawler = process.create_crawler("feeds")
    process.crawl(crawler, all="1")
    process.start()
    stats = crawler.stats.get_stats()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": stats["elapsed_time_seconds"], "stored": stats.get("newswatch/articles/stored", 0),
                      "responses": stats.get("response_received_count", 0), "cpu": cpu.ru_utime + cpu.ru_stime}))


def best_of(repeat: int, action) -> float:
    """The fastest of ``repeat`` timings of ``action()``, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=10)
    parser.add_argument("--articles", type=int, default=50)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_crawl(args.child)
        return

    import feedparser
    import trafilatura

    from alerts.watchlist import compile_watches
    from crawler.feeds import parse_feed
    from newswatch.config import load_config
    from newswatch.store.sqlite import SqliteStore

    with tempfile.TemporaryDirectory() as tmp:
        site, project = Path(tmp) / "site", Path(tmp) / "project"
        pages = build_site(site, args.feeds, args.articles)
        servers, port = serve(site, args.feeds)
        config_dir = project / "config"
        config_dir.mkdir(parents=True)
        feeds = [{"name": f"Feed {f}", "url": f"http://127.0.0.{f + 1}:{port}/f{f}/feed.xml"} for f in range(args.feeds)]
        files = {"settings.yaml": {"storage": {"sqlite": {"path": "var/newswatch.db"}}},
                 "feeds.yaml": {"feeds": feeds},
                 "watches.yaml": yaml.safe_load((ROOT / "config" / "watches.yaml").read_text(encoding="utf-8"))}
        for name, data in files.items():
            (config_dir / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

        profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
        child = subprocess.run([sys.executable, *profile, __file__, "--child", str(config_dir)], capture_output=True,
                               text=True, cwd=ROOT, check=True)
        crawl = json.loads(child.stdout.strip().splitlines()[-1])
        config = load_config(config_dir)
        store = SqliteStore(config.path("var/newswatch.db"))
        articles = store.articles_after(None, limit=100_000)[0]
        store.close()
        matcher = compile_watches(config.watches)
        started = time.perf_counter()
        hits = sum(len(matcher.match_article(a)) for a in articles)
        match_seconds = time.perf_counter() - started
        for server in servers:
            server.shutdown()

        html = [(p.read_text(encoding="utf-8"), f"http://127.0.0.1/{p.parent.name}/{p.name}") for p in pages]
        bare = best_of(1, lambda: [trafilatura.bare_extraction(h, url=u, with_metadata=True) for h, u in html])
        bodies = [(p.read_bytes(), f"http://127.0.0.1/{p.name}") for p in sorted(site.glob("f*/feed.xml"))]
        ours = best_of(5, lambda: [parse_feed(b, u) for b, u in bodies])
        theirs = best_of(5, lambda: [feedparser.parse(io.BytesIO(b)) for b, _ in bodies])

    whole = len(pages) / (crawl["seconds"] + match_seconds)
    print(f"pages: {len(pages)} ({args.feeds} feeds x {args.articles}), stored {len(articles)}, hits {hits}, "
          f"responses {crawl['responses']}")
    print(f"whole path: crawl {crawl['seconds']:.2f} s (crawl process CPU {crawl['cpu']:.2f} s, with start-up) "
          f"+ match {match_seconds:.2f} s -> {whole:.1f} pages/s")
    print(f"bare trafilatura: {bare:.2f} s -> {len(pages) / bare:.1f} pages/s; ratio {whole / (len(pages) / bare):.2f}")
    print(f"feed parsing: parse_feed {ours * 1000:.1f} ms, bare feedparser {theirs * 1000:.1f} ms; "
          f"ratio {theirs / ours:.2f}")


if __name__ == "__main__":
    main()
