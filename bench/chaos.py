"""Chaos run: faults at random moments against a local site and a local SMTP server; counts what was lost or
doubled. Figures in docs/reliability.md.

For each backend (SQLite, and a real Elasticsearch node started by scripts/es-node), with a seeded random
order: SIGKILL of `newswatch crawl`, of `newswatch alerts` and of `newswatch run` (its crawl child with it),
a crawl and an alerts pass at once, two alerts passes and an `outbox retry` at once, a crawl whose clock is
an hour behind or ahead, and an SMTP server that refuses for a while (451) or answers slowly while two
senders race. The site publishes new articles between faults, so there is always work in flight.

Then a clean finish (crawl and alerts until nothing is left owed), and the count:
- articles: every page the site published is stored once (by URL);
- (article, watch) pairs: what the matcher finds in the stored articles (computed here, independently of the
  alerts cursor), against what the SMTP server received: a pair in no message is lost; a pair under two
  different Message-IDs is doubled. The same Message-ID received twice (a resend after a kill between the
  server's acceptance and the ledger) is counted apart: that is the at-least-once edge SMTP leaves, and
  mail clients fold it.

A shifted clock is time.time/time_ns moved in the crawl process by a sitecustomize hook (a real system clock
cannot be set for one process here); datetime.now is not moved.

    .venv/bin/python bench/chaos.py [--backend sqlite|elasticsearch|both] [--faults 24] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alerts.matching.compile import compile_watches  # noqa: E402
from newswatch.core.config import load_config  # noqa: E402
from newswatch.core.store import open_store  # noqa: E402

PLACES = ["Deir Ezzor", "Abu Kamal", "Raqqa", "Mosul", "Al-Qaim", "Hawija", "Daesh", "SDF"]
FILLER = (
    "Residents said the fighting went on through the night along the river road, and aid groups asked for "
    "safe passage for families leaving the villages. Officials gave no figures. "
)
FEEDS = 3
FAULTS = [
    "kill-crawl",
    "kill-alerts",
    "kill-service",
    "crawl-with-alerts",
    "concurrent-passes",
    "clock-behind",
    "clock-ahead",
    "smtp-refuses",
    "smtp-slow-race",
]
CLOCK_HOOK = """import os, time
_shift = float(os.environ.get("NEWSWATCH_CHAOS_CLOCK_SHIFT") or 0)
if _shift:
    _time, _ns = time.time, time.time_ns
    time.time = lambda: _time() + _shift
    time.time_ns = lambda: _ns() + int(_shift * 1e9)
"""


class Site:
    """Articles published over time, listed by FEEDS feeds (the newest 40 each)."""

    def __init__(self, rng: random.Random):
        self.rng, self.published, self.lock = rng, [], threading.Lock()

    def publish(self, count: int) -> None:
        with self.lock:
            for _ in range(count):
                n = len(self.published)
                places = self.rng.sample(PLACES, self.rng.randint(1, 3))
                text = " ".join(f"Clashes were reported near {p} on day {n}. {FILLER}" for p in places) * 2
                self.published.append((n, f"Report {n}: {' and '.join(places)}", text))

    def handler(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                host = f"127.0.0.1:{self.server.server_address[1]}"
                with site.lock:
                    published = list(site.published)
                if self.path.startswith("/feed"):
                    feed = int(self.path.removeprefix("/feed").removesuffix(".xml"))
                    items = "".join(
                        f"<item><title>{title}</title><link>http://{host}/story/{n}</link><guid>s{n}</guid></item>"
                        for n, title, _ in [p for p in published if p[0] % FEEDS == feed][-40:]
                    )
                    channel = f"<channel><title>Wire {feed}</title>{items}</channel>"
                    body = f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'
                    self._reply(200, "application/rss+xml", body)
                elif self.path.startswith("/story/"):
                    n = int(self.path.rsplit("/", 1)[1])
                    if n >= len(published):
                        return self._reply(404, "text/plain", "")
                    _, title, text = published[n]
                    article = f"<article><h1>{title}</h1><p>{text}</p></article>"
                    page = f"<html><head><title>{title}</title></head><body>{article}</body></html>"
                    self._reply(200, "text/html; charset=utf-8", page)
                else:
                    self._reply(404, "text/plain", "")

            def _reply(self, status, kind, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler


class SiteServer(ThreadingHTTPServer):
    """The site's server: a killed crawl resetting its connection is what this run does, not an error."""

    def handle_error(self, request, client_address):
        pass


class EphemeralController(Controller):
    """aiosmtpd's Controller on port 0: learn the port the OS chose before aiosmtpd connects to it."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class Mailbox:
    """The SMTP server's side: every message accepted, and a mode ("ok", "refuse": 451, "slow": 2 s)."""

    def __init__(self):
        self.messages: list[bytes] = []
        self.mode = "ok"

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "refuse":
            return "451 4.3.0 try again later"
        if self.mode == "slow":
            await asyncio.sleep(2)
        self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"


class Run:
    """One backend's chaos run in its own folder."""

    def __init__(self, backend: str, es_url: str | None, rng: random.Random, folder: Path):
        self.backend, self.rng, self.folder = backend, rng, folder
        self.site = Site(rng)
        self.server = SiteServer(("127.0.0.1", 0), self.site.handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.mailbox = Mailbox()
        self.smtp = EphemeralController(self.mailbox, hostname="127.0.0.1", port=0)
        self.smtp.start()
        port = self.smtp.port
        site = f"http://127.0.0.1:{self.server.server_address[1]}"
        storage = {"backend": "sqlite", "sqlite": {"path": "var/newswatch.db"}}
        if backend == "elasticsearch":
            self.prefix = f"chaos-{uuid.uuid4().hex[:8]}"
            storage = {"backend": "elasticsearch", "elasticsearch": {"hosts": [es_url], "index_prefix": self.prefix}}
        settings = {
            "storage": storage,
            "schedule": {"crawl_every_minutes": 0.05, "digest_cron": "* * * * *", "lease_seconds": 5},
            "delivery": {
                "method": "smtp",
                "sender": "newswatch <newswatch@example.org>",
                "smtp": {"host": "127.0.0.1", "port": port, "security": "none", "timeout": 5},
                "retry_first_seconds": 1,
                "retry_max_seconds": 2,
            },
            "crawler": {"store_flush_seconds": 0.5, "store_batch_size": 5},
        }
        watches = yaml.safe_load((ROOT / "config" / "watches.yaml").read_text(encoding="utf-8"))
        config_dir = folder / "config"
        config_dir.mkdir(parents=True)
        files = {
            "settings.yaml": settings,
            "feeds.yaml": {"feeds": [{"name": f"Wire {f}", "url": f"{site}/feed{f}.xml"} for f in range(FEEDS)]},
            "watches.yaml": watches,
            "recipients.yaml": {
                "recipients": [{"name": "analyst", "email": "analyst@example.org", "cadence": "immediate"}]
            },
        }
        for name, data in files.items():
            (config_dir / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        self.config_dir = config_dir
        hook = folder / "clockhook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(CLOCK_HOOK)
        self.hook = hook
        self.faults: collections.Counter = collections.Counter()

    def spawn(self, *args: str, shift: float = 0.0) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if k != "NEWSWATCH_CONFIG_DIR"}
        if shift:
            env |= {"PYTHONPATH": str(self.hook), "NEWSWATCH_CHAOS_CLOCK_SHIFT": str(shift)}
        command = [sys.executable, "-m", "newswatch", "--config", str(self.config_dir), *args]
        return subprocess.Popen(
            command, cwd=self.folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )

    def run(self, *args: str, shift: float = 0.0) -> int:
        process = self.spawn(*args, shift=shift)
        _, err = process.communicate(timeout=600)
        if "Traceback" in err:
            print(f"    traceback from {' '.join(args)}:\n{err[-2000:]}", file=sys.stderr)
        return process.returncode

    def kill_after(self, process: subprocess.Popen, low: float, high: float) -> None:
        time.sleep(self.rng.uniform(low, high))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)

    def fault(self, kind: str) -> None:
        self.faults[kind] += 1
        if kind == "kill-crawl":
            self.kill_after(self.spawn("crawl", "--all"), 1.0, 4.0)
        elif kind == "kill-alerts":
            self.kill_after(self.spawn("alerts"), 0.5, 3.0)
        elif kind == "kill-service":
            self.kill_after(self.spawn("run"), 3.0, 10.0)
        elif kind == "crawl-with-alerts":
            crawl, alerts = self.spawn("crawl", "--all"), self.spawn("alerts")
            for process in (crawl, alerts):
                process.communicate(timeout=600)
        elif kind == "concurrent-passes":
            self.run("crawl", "--all")
            processes = [self.spawn("alerts"), self.spawn("alerts"), self.spawn("outbox", "retry")]
            for process in processes:
                process.communicate(timeout=600)
        elif kind in ("clock-behind", "clock-ahead"):
            self.run("crawl", "--all", shift=-3600 if kind == "clock-behind" else 3600)
            self.run("alerts")
        elif kind == "smtp-refuses":
            self.mailbox.mode = "refuse"
            self.run("crawl", "--all")
            self.run("alerts")
            self.mailbox.mode = "ok"
        elif kind == "smtp-slow-race":
            self.mailbox.mode = "refuse"
            self.run("crawl", "--all")
            self.run("alerts")  # the digest waits in the outbox
            self.mailbox.mode = "slow"
            processes = [self.spawn("outbox", "retry"), self.spawn("outbox", "retry")]
            for process in processes:
                process.communicate(timeout=600)
            self.mailbox.mode = "ok"

    def finish(self) -> dict:
        """Crawl and alert until nothing is owed, then count."""
        self.mailbox.mode = "ok"
        config = load_config(self.config_dir)
        for _ in range(10):
            self.run("crawl", "--all")
            self.run("alerts")
            with open_store(config) as store:
                waiting = store.pending_digests() + store.dead_digests()
                owed = store.owed_hits("analyst")
            if not waiting and not owed:
                break
            time.sleep(2.5)  # retry backoff
        with open_store(config) as store:
            stored, cursor = [], None
            while True:
                page, cursor = store.articles_after(cursor, limit=500)
                if not page:
                    break
                stored += page
            digests = {d.id: d for d in store.sent_digests(limit=100_000) + store.pending_digests()}
        urls = collections.Counter(a.url for a in stored)
        matcher = compile_watches(config.watches, cache_dir=self.folder / "cache")
        expected = {(h.article_id, h.watch) for h in matcher.match_articles(stored)}
        by_pair: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
        ids = collections.Counter()
        for raw in self.mailbox.messages:
            message_id = str(message_from_bytes(raw, policy=policy.default)["Message-ID"]).strip("<>")
            ids[message_id] += 1
            for key in digests[message_id].hit_keys if message_id in digests else ():
                article_id, rest = key.split(":", 1)
                by_pair[(article_id, rest.rsplit(":", 3)[0])].add(message_id)
        return {
            "backend": self.backend,
            "faults": sum(self.faults.values()),
            "by_kind": dict(sorted(self.faults.items())),
            "published": len(self.site.published),
            "stored": len(urls),
            "stored_twice": sum(1 for c in urls.values() if c > 1),
            "lost_articles": len(self.site.published) - len(urls),
            "pairs": len(expected),
            "lost_pairs": len(expected - set(by_pair)),
            "doubled_pairs": sum(1 for p in expected if len(by_pair.get(p, ())) > 1),
            "messages": len(self.mailbox.messages),
            "resent_same_id": sum(c - 1 for c in ids.values() if c > 1),
        }

    def close(self, es_url: str | None) -> None:
        self.server.shutdown()
        self.smtp.stop()
        if self.backend == "elasticsearch":
            from elasticsearch import Elasticsearch

            es = Elasticsearch(es_url)
            es.options(ignore_status=404).indices.delete(index=f"{self.prefix}-*", expand_wildcards="all")
            for template in es.indices.get_index_template(name=f"{self.prefix}-*")["index_templates"]:
                es.indices.delete_index_template(name=template["name"])


def es_node_url() -> str:
    started = subprocess.run([str(ROOT / "scripts" / "es-node"), "start"], capture_output=True, text=True)
    if started.returncode != 0:
        raise SystemExit(f"chaos: the Elasticsearch node did not start: {started.stderr.strip()}")
    return started.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "elasticsearch", "both"], default="both")
    parser.add_argument("--faults", type=int, default=24, help="Faults per backend.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON lines.")
    args = parser.parse_args()
    backends = ["sqlite", "elasticsearch"] if args.backend == "both" else [args.backend]
    results = []
    for backend in backends:
        es_url = es_node_url() if backend == "elasticsearch" else None
        rng = random.Random(args.seed)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"chaos-{backend}-") as folder:
            run = Run(backend, es_url, rng, Path(folder))
            try:
                run.site.publish(12)
                order = [FAULTS[i % len(FAULTS)] for i in range(args.faults)]
                rng.shuffle(order)
                for n, kind in enumerate(order, 1):
                    run.site.publish(rng.randint(3, 8))
                    print(f"  {backend} fault {n}/{len(order)}: {kind}", file=sys.stderr)
                    run.fault(kind)
                result = run.finish()
            finally:
                run.close(es_url)
        result["seconds"] = round(time.monotonic() - started)
        results.append(result)
    for result in results:
        if args.json:
            print(json.dumps(result))
            continue
        print(
            f"{result['backend']}: {result['faults']} faults in {result['seconds']} s "
            f"({', '.join(f'{k} {v}' for k, v in result['by_kind'].items())})\n"
            f"  articles: published {result['published']}, stored {result['stored']}, "
            f"lost {result['lost_articles']}, stored twice {result['stored_twice']}\n"
            f"  (article, watch) pairs: {result['pairs']}, lost {result['lost_pairs']}, "
            f"doubled {result['doubled_pairs']}; messages {result['messages']}, "
            f"resent under the same Message-ID {result['resent_same_id']}"
        )
    if any(r["lost_pairs"] or r["doubled_pairs"] or r["lost_articles"] or r["stored_twice"] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
