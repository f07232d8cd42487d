"""Scale: stores of 10k, 100k (and 1M) articles grown as a desk would grow them, timed through the real CLI.

    .venv/bin/python bench/scale.py [--sizes 10000,100000] [--backends sqlite,elastic] [--runs 3] [--url URL]

Issue 13, item 7. Each store is built once through the store API (newswatch.core.store, opened from a config
as the CLI opens it) and cached under .cache/bench-scale/<backend>-<size> (Elasticsearch: the indices
``scale-<size>-*`` on the node, made read-only, with their meta.json there); --rebuild builds again. The
history: synthetic news copy of 3-5 kB an article (a vocabulary of a few thousand words, Zipf-distributed,
so full-text search sees realistic postings), 5,480 articles a day dated backwards from the build (1M spans
about six months), 10% naming one or two of the demo watches (newswatch/demo/watches.yaml: "Deir Ezzor",
"Abu Kamal", "Daesh", "SDF" ...). Their hits go in with add_hits, one digest a day holding them is queued
and marked sent (so nothing old is owed), the crawler's cluster signatures are kept for the last 14 days, and
every alerts cursor is set to the end, so only new articles are unmatched.

Each timing run works on a fresh copy of the cached store (SQLite: the file copied; Elasticsearch: every
index cloned under another prefix): 1,000 new articles are added (10% naming a watch) and `newswatch alerts`
is timed (digests go to an SMTP server the bench runs on 127.0.0.1); then 1,000 more and `newswatch digest
--preview`; then `newswatch search` of a common word, the same `--since 7d`, and of "Deir Ezzor"; then
`newswatch store stats` and `newswatch store prune --older-than 365d` (n/a when the command fails). Every
command is a child process of `.venv/bin/newswatch`: wall time and peak RSS (os.wait4) of each; the median
of --runs runs, sizes interleaved within each run. `newswatch check-config` is timed as the start-up floor.

The tables give, per backend and size, each figure and its growth exponent between two sizes,
log(v2/v1) / log(n2/n1): 0 is flat, 1 grows as the store does. "net" is the exponent of the time above the
start-up floor (what the command itself costs).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from itertools import accumulate, pairwise
from pathlib import Path

import yaml
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alerts.digests import cadence  # noqa: E402
from alerts.matching.compile import compile_watches  # noqa: E402
from alerts.run import watch_cursor  # noqa: E402
from newswatch.core.config import Config, load_config  # noqa: E402
from newswatch.core.models import SIGNATURE_WINDOW, Article, ClusterSignature, Hit, QueuedDigest  # noqa: E402
from newswatch.core.store import Store, open_store  # noqa: E402
from newswatch.core.times import iso, utc_now  # noqa: E402

CACHE = ROOT / ".cache" / "bench-scale"
NEWSWATCH = ROOT / ".venv" / "bin" / "newswatch"
WATCHES = ROOT / "newswatch" / "demo" / "watches.yaml"
ES_NODE = "bench-scale"  # scripts/es-node --name: its own data folder, so the cached indices stay
GENERATOR = 1  # bump when the synthetic history changes: cached stores are built again
PER_DAY = 5480
NEW = 1000
HIT_SHARE = 0.10
BATCH = 1000
RECIPIENT = "analyst"
COMMON = "officials"  # the common-term search (in about 2 articles of 3)
PLACE = "Deir Ezzor"
FEEDS = 60

# News words, most frequent first; generated words fill the vocabulary's tail up to VOCABULARY.
NEWS_WORDS = """the of and to in a on said for that was with by is at from as were have has it an be are not
he they after their this but had been its which who about two government forces police people year will
would more also over killed city since last security new three region military than against told attack
could into other killed week border reported officials minister president group first some local when
one area where town army troops fighting soldiers party four under while there there only during near
statement between most days them what all her him his she before while country national capital northern
southern eastern western province district villages village camp camps families water aid supplies road
roads bridge river convoy convoys checkpoint checkpoints residents civilians children women men hospital
doctors medical election elections vote votes council parliament court judge trial prison prisoners
release released talks ceasefire agreement deal plan plans budget oil gas prices price market markets
trade exports imports company companies workers strike strikes protest protesters protests crowd crowds
rally rallies leaders leader spokesman spokeswoman agency agencies ministry office offices report reports
according sources source news media journalists journalist television radio online social network
networks phone calls call meeting meetings visit visited delegation foreign affairs interior defence
defense health education schools school students university teachers farmers crops harvest drought rain
flood floods winter summer night morning evening monday tuesday wednesday thursday friday saturday sunday
january february march april may june july august september october november december month months hours
hour minutes early late later earlier again already still back down off out up around across along
through toward towards without within despite because however although though several many few dozens
hundreds thousands millions large small major minor heavy light long short high low big old young
historic ancient modern public private official unofficial international regional central federal
economic political religious tribal armed unarmed displaced returned return returning fled fleeing left
leaving arrived arrive arriving opened closed reopened blocked built rebuilt destroyed damaged repaired
shelling airstrike airstrikes drone drones rocket rockets mortar mortars mine mines explosion explosions
bomb bombs car truck trucks bus buses plane planes airport port ports station stations power electricity
fuel bread food prices shortage shortages queue queues salaries salary pay paid bank banks currency
dollar dollars pound pounds loans debt growth crisis crises reform reforms corruption investigation
arrest arrests arrested detained detention charges charged accused denied confirmed announced warned
called asked urged demanded promised pledged signed agreed rejected welcomed condemned criticised
praised described added noted explained stressed insisted claimed"""
VOCABULARY = 4000
SYLLABLES = """ba be bi bo bu da de di do du fa fe fi fo ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu
pa pe pi po ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo za ze zi zo dar mel tor vin sul"""
ENTITY_SENTENCES = [  # each with a context word (Syrian, coalition) within reach: SDF needs one
    "Fighting was reported around {} overnight, Syrian residents said.",
    "Aid convoys reached the {} area after a week of delays, a Syrian official said.",
    "The coalition statement named {} among those responsible for the attack.",
    "Syrian officials gave no figures for the displaced in the {} area.",
    "Reporters who visited the {} front described empty markets, a coalition spokesman said.",
    "Syrian talks about {} are expected to resume next week.",
]


class Newsroom:
    """Deterministic synthetic news copy: a pool of sentences over a Zipf vocabulary, checked against the demo
    watches so that only the inserted names are hits."""

    def __init__(self, config: Config, seed: int = 13):
        rng = random.Random(seed)
        words, syllables = list(dict.fromkeys(NEWS_WORDS.split())), SYLLABLES.split()
        while len(words) < VOCABULARY:
            word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
            if word not in words:
                words.append(word)
        cum = list(accumulate(1 / (rank + 1) for rank in range(len(words))))
        drawn = rng.choices(words, cum_weights=cum, k=60_000 * 16)
        pool, at = [], 0
        while at < len(drawn):
            n = rng.randint(8, 24)
            chunk = drawn[at : at + n]
            at += n
            pool.append(chunk[0].capitalize() + " " + " ".join(chunk[1:]) + ".")
        self.matcher = compile_watches(config.watches, cache_dir=CACHE / "var" / "cache")  # the CLI's cache
        self.pool = [s for s, spans in zip(pool, self.matcher.find_many(pool), strict=True) if not spans]
        self.entities = []  # (sentence, watch, matched, start, end) for each template and watch name
        for template in ENTITY_SENTENCES:
            for watch in config.watches:
                sentence = template.format(watch.name)
                spans = self.matcher.find(sentence)
                assert [s.watch for s in spans] == [watch.name], (sentence, spans)
                self.entities.append((sentence, spans[0].watch, spans[0].matched, spans[0].start, spans[0].end))

    def article(self, rng: random.Random, key: str, published: datetime, fetched: datetime) -> tuple[Article, list]:
        """One article of 3-5 kB; 10% with one or two watch names (their hits returned with it)."""
        target = rng.randint(3000, 5000)
        pool, size = self.pool, len(self.pool)
        body, length = [], 0
        while length < target:
            sentence = pool[rng.randrange(size)]
            body.append(sentence)
            length += len(sentence) + 1
        named = [rng.choice(self.entities) for _ in range(0 if rng.random() >= HIT_SHARE else rng.choice((1, 1, 2)))]
        slots = sorted(rng.sample(range(len(body) + len(named)), len(named)))
        article_id = hashlib.sha1(key.encode()).hexdigest()
        parts, offset, found, sentences = [], 0, [], iter(body)
        for i in range(len(body) + len(named)):
            if i in slots:
                sentence, watch, matched, start, end = named[slots.index(i)]
                found.append(Hit(article_id, watch, matched, offset + start, offset + end, "text", sentence))
            else:
                sentence = next(sentences)
            separator = "\n\n" if i % 6 == 5 else " "
            parts += [sentence, separator]
            offset += len(sentence) + len(separator)
        feed = int(article_id[:4], 16) % FEEDS
        article = Article(
            id=article_id,
            url=f"https://news{feed}.example/{published:%Y/%m/%d}/{key.replace(':', '-')}",
            title=pool[rng.randrange(size)][:100].rstrip("."),
            text="".join(parts).rstrip(),
            feed_id=f"feed-{feed:02d}",
            outlet=f"Outlet {feed}",
            published=published,
            fetched=fetched,
            language="en",
            author="Staff",
        )
        return article, found


# -- configs, stores, copies


def write_config(folder: Path, storage: dict, *, smtp_port: int | None = None) -> Config:
    """A config folder for one store (the demo watches, one daily recipient), loaded as the CLI loads it."""
    folder.mkdir(parents=True, exist_ok=True)
    delivery: dict = {"outbox_dir": str(folder.parent / "outbox")}
    if smtp_port:
        delivery |= {"method": "smtp", "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"}}
    settings = {"var_dir": str(CACHE / "var"), "log_level": "INFO", "storage": storage, "delivery": delivery}
    recipient = {"name": RECIPIENT, "email": "analyst@example.org", "watches": "all", "cadence": "daily"}
    files = {
        "settings.yaml": settings,
        "feeds.yaml": {"feeds": []},
        "watches.yaml": yaml.safe_load(WATCHES.read_text(encoding="utf-8")),
        "recipients.yaml": {"recipients": [recipient | {"at": "07:00", "timezone": "UTC"}]},
    }
    for name, data in files.items():
        (folder / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(folder, env={})


def storage_for(backend: str, where: Path, *, url: str | None = None, prefix: str | None = None) -> dict:
    if backend == "sqlite":
        return {"backend": "sqlite", "sqlite": {"path": str(where / "newswatch.db")}}
    return {
        "backend": "elasticsearch",
        "elasticsearch": {
            "hosts": [url],
            "index_prefix": prefix,
            "spool_dir": str(where / "spool"),
            "request_timeout": 300,
        },
    }


def es_client(url: str):
    from elasticsearch import Elasticsearch

    return Elasticsearch(url, request_timeout=600)


def drop_prefix(es, base: str) -> None:
    """Delete the indices and templates named ``base``*."""
    es.options(ignore_status=404).indices.delete(index=f"{base}*", expand_wildcards="all")
    es.options(ignore_status=404).indices.delete_index_template(name=f"{base}*")


def clone_prefix(es, source: str, target: str) -> None:
    """Every index ``source``* cloned as ``target``* (hard links on one node), aliases renamed, writable."""
    drop_prefix(es, target)
    for name, body in es.indices.get(index=f"{source}*").items():
        aliases = {
            target + alias[len(source) :]: {k: v for k, v in spec.items() if k == "is_write_index"}
            for alias, spec in body.get("aliases", {}).items()
        }
        es.indices.clone(
            index=name,
            target=target + name[len(source) :],
            settings={"index.blocks.write": None},
            aliases=aliases,
            wait_for_active_shards="1",
        )


def es_bytes(es, base: str) -> int:
    es.indices.refresh(index=f"{base}*")
    es.indices.flush(index=f"{base}*")
    return es.indices.stats(index=f"{base}*", metric="store")["_all"]["primaries"]["store"]["size_in_bytes"]


def sqlite_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in (folder / "newswatch.db", folder / "newswatch.db-wal") if p.exists())


def advance(store: Store, cursor: str | None, count: int) -> str | None:
    """Read ``count`` articles after ``cursor`` (as the desk's alerts pass read each article once)."""
    read = 0
    while read < count:
        articles, cursor = store.articles_after(cursor, limit=min(count - read, 5000))
        if not articles:
            raise SystemExit(f"scale: the store gave back {read} of the {count} articles just written")
        read += len(articles)
    return cursor


def signatures(rng: random.Random, articles: list[Article]) -> list[ClusterSignature]:
    """Signatures as the crawler keeps them (random MinHash values: only their size and keys matter here)."""
    return [ClusterSignature(a.id, a.id, a.url, a.fetched, rng.randbytes(512)) for a in articles]


def message(day: str, hits: int) -> bytes:
    """A stand-in for one day's sent digest (about 8 kB)."""
    head = f"Message-ID: <{day}.scale@bench.newswatch>\r\nSubject: newswatch digest {day} ({hits} hits)\r\n\r\n"
    return (head + "A day of hits, already delivered. " * 240).encode()


# -- building


class Laps:
    """Seconds spent per stage of the build, each lap ending the previous one."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self.last
        self.last = now

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:,.0f} s" for name, seconds in self.seconds.items())


def build(backend: str, size: int, url: str | None) -> None:
    """Child process: grow one store of ``size`` articles and write its meta.json into the cache."""
    final = CACHE / f"{backend}-{size}"
    work = CACHE / f"{backend}-{size}.building"
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
    work.mkdir(parents=True)
    prefix = f"scale-{size}"
    if backend == "elastic":
        es = es_client(url)
        drop_prefix(es, prefix + "-")
    config = write_config(work / "config", storage_for(backend, work, url=url, prefix=prefix))
    newsroom = Newsroom(config)
    rng = random.Random(f"history-{size}")
    end = utc_now() - timedelta(minutes=10)
    step = 86400 / PER_DAY
    cursor, hits_total, common, sampled = None, 0, 0, 0
    laps = Laps()
    started = last = time.perf_counter()
    store = open_store(config)
    laps.lap("open")
    try:
        for day, first in enumerate(range(0, size, PER_DAY)):
            day_started = time.perf_counter()
            count = min(PER_DAY, size - first)
            day_articles, day_hits = [], []
            for n in range(first, first + count):
                published = end - timedelta(seconds=(size - n) * step - rng.uniform(0, step))
                fetched = min(end, published + timedelta(seconds=rng.uniform(60, 1800)))
                article, hits = newsroom.article(rng, f"h:{n}", published, fetched)
                day_articles.append(article)
                day_hits += hits
                if n % 97 == 0:
                    sampled += 1
                    common += bool(re.search(rf"\b{COMMON}\b", article.text, re.IGNORECASE))
            recent = [a for a in day_articles if a.fetched >= end - SIGNATURE_WINDOW]
            laps.lap("generate")
            for at in range(0, count, BATCH):
                store.add_articles(day_articles[at : at + BATCH])
            laps.lap("add_articles")
            if recent:
                store.add_signatures(signatures(rng, recent))
            laps.lap("add_signatures")
            cursor = advance(store, cursor, count)
            laps.lap("articles_after")
            served = day_articles[-1].fetched + timedelta(minutes=5)
            store.add_hits(day_hits, found=served)
            laps.lap("add_hits")
            digest_id = f"{served:%Y%m%d}.{day}.scale@bench.newswatch"
            store.queue_digest(
                QueuedDigest(
                    id=digest_id,
                    recipient=RECIPIENT,
                    hit_keys=tuple(h.key for h in day_hits),
                    message=message(digest_id, len(day_hits)),
                    created=served,
                )
            )
            store.mark_digest_sent(digest_id, served)
            laps.lap("digests")
            hits_total += len(day_hits)
            done, now = first + count, time.perf_counter()
            if now - last > 15 or done == size:
                rate = done / (now - started)
                print(
                    f"  build {backend} {size:,}: {done:,} articles, {rate:,.0f}/s (last day "
                    f"{count / (now - day_started):,.0f}/s), {now - started:,.0f} s, "
                    f"ETA {(size - done) / rate:,.0f} s; {laps}",
                    flush=True,
                )
                last = now
        for watch in config.watches:
            store.set_cursor(watch_cursor(watch), cursor)
        store.set_cursor(cadence.cursor_name(RECIPIENT), iso(end))
        stored = store.count_articles()
    finally:
        store.close()
    laps.lap("close")
    seconds = time.perf_counter() - started
    if backend == "elastic":
        disk = es_bytes(es, prefix + "-")
        es.indices.put_settings(index=f"{prefix}-*", settings={"index.blocks.write": True})
        es.close()
    else:
        disk = sqlite_bytes(work)
    meta = {
        "backend": backend,
        "size": size,
        "generator": GENERATOR,
        "end": iso(end),
        "seconds": seconds,
        "articles": stored,
        "hits": hits_total,
        "bytes": disk,
        "prefix": prefix,
        "common_share": common / max(sampled, 1),
        "stages": laps.seconds,
    }
    shutil.rmtree(work / "config")
    (work / "meta.json").write_text(json.dumps(meta, indent=1))
    work.rename(final)


def cached(backend: str, size: int, es) -> dict | None:
    """The cached store's meta, or None when it must be built (missing, another generator, indices gone)."""
    path = CACHE / f"{backend}-{size}" / "meta.json"
    if not path.exists():
        return None
    meta = json.loads(path.read_text())
    if meta.get("generator") != GENERATOR:
        return None
    if backend == "sqlite" and not (CACHE / f"{backend}-{size}" / "newswatch.db").exists():
        return None
    if backend == "elastic" and not es.indices.exists(index=f"{meta['prefix']}-hits"):
        return None
    return meta


# -- timing


# Runs one command and reports its wall time and its own peak RSS. The bench process is large (the sentence pool,
# the matcher), and Linux carries the RSS a child had before exec (a copy of its parent's) into its ru_maxrss:
# children are started from this small launcher, so what they inherit is below what any command uses.
LAUNCHER = """
import json, os, sys, time
report, *command = sys.argv[1:]
started = time.perf_counter()
pid = os.posix_spawn(command[0], command, os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(report, "w") as out:
    json.dump({"seconds": seconds, "rss": usage.ru_maxrss * 1024, "rc": os.waitstatus_to_exitcode(status)}, out)
"""


def measure(command: list[str], *, cwd: Path, capture: bool = True) -> dict:
    """Run one child to its end: wall seconds, peak RSS (bytes, os.wait4), exit status, and its output."""
    env = {k: v for k, v in os.environ.items() if k != "NEWSWATCH_CONFIG_DIR"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile() as report:
        streams = {"stdout": out, "stderr": err} if capture else {}
        launcher = [sys.executable, "-S", "-c", LAUNCHER, report.name, *command]
        subprocess.run(launcher, cwd=cwd, env=env, stdin=subprocess.DEVNULL, check=True, **streams)
        out.seek(0)
        err.seek(0)
        return json.loads(Path(report.name).read_text()) | {
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
        }


def add_new(config: Config, label: str, newsroom: Newsroom) -> float:
    """Add 1,000 new articles (the same ones every run), dated over the last hours; seconds to write them."""
    rng = random.Random(f"new-{label}")
    now = utc_now()
    step = 86400 / PER_DAY
    articles = []
    for i in range(NEW):
        published = now - timedelta(seconds=(NEW - i) * step + 120)
        articles.append(newsroom.article(rng, f"{label}:{i}", published, now - timedelta(seconds=NEW - i))[0])
    store = open_store(config)
    started = time.perf_counter()
    try:
        for at in range(0, NEW, 100):  # the crawler pipeline's batch size
            store.add_articles(articles[at : at + 100])
        store.add_signatures(signatures(rng, articles))
    finally:
        store.close()  # Elasticsearch: the last bulk request acknowledged
    return time.perf_counter() - started


COMMANDS = [
    ("check-config", ["check-config"], None),
    ("alerts", ["alerts"], "A"),
    ("digest --preview", ["digest", "--preview", "--out", "{run}/preview"], "B"),
    (f"search {COMMON}", ["search", COMMON], None),
    (f"search {COMMON} --since 7d", ["search", COMMON, "--since", "7d"], None),
    (f'search "{PLACE}"', ["search", PLACE], None),
    ("store stats", ["store", "stats"], None),
    ("store prune --older-than 365d", ["store", "prune", "--older-than", "365d"], None),
]


def timing_run(backend: str, meta: dict, url: str | None, smtp: Mailbox, newsroom: Newsroom, run: int) -> dict:
    """One run on a fresh copy of the cached store: {figure: value}; failed commands give None."""
    size = meta["size"]
    folder = CACHE / "runs" / f"{backend}-{size}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    prefix = f"scalerun-{size}"
    if backend == "sqlite":
        for name in ("newswatch.db", "newswatch.db-wal"):
            if (CACHE / f"sqlite-{size}" / name).exists():
                shutil.copyfile(CACHE / f"sqlite-{size}" / name, folder / name)
    else:
        es = es_client(url)
        clone_prefix(es, meta["prefix"] + "-", prefix + "-")
    copy_s = time.perf_counter() - started
    config = write_config(folder / "config", storage_for(backend, folder, url=url, prefix=prefix), smtp_port=smtp.port)
    figures: dict = {}
    notes: list[str] = []
    for name, args, batch in COMMANDS:
        if batch:
            figures[f"add {NEW:,} articles ({batch}, store API) s"] = add_new(config, batch, newsroom)
        sent = len(smtp.messages)
        args = [a.replace("{run}", str(folder)) for a in args]
        result = measure([str(NEWSWATCH), "--config", str(folder / "config"), *args], cwd=folder)
        ok = result["rc"] == 0
        figures[f"{name} s"] = result["seconds"] if ok else None
        figures[f"{name} peak MiB"] = result["rss"] / 2**20 if ok else None
        if not ok:
            tail = (result["stderr"].strip().splitlines() or ["(no output)"])[-1]
            notes.append(f"{name}: exit {result['rc']}: {tail[:200]}")
        if name == "alerts" and ok:
            queued = re.search(r"digest_queued .*?mentions=(\d+)", result["stderr"])
            figures["alerts mentions queued"] = int(queued.group(1)) if queued else 0
            figures["alerts digests sent"] = len(smtp.messages) - sent
        if name.startswith("store stats") and ok:
            figures["store stats output"] = result["stdout"].strip()
    if backend == "elastic":
        drop_prefix(es, prefix + "-")
        es.close()
    shutil.rmtree(folder, ignore_errors=True)
    line = ", ".join(
        f"{k.removesuffix(' s')} {v:.2f}" for k, v in figures.items() if k.endswith(" s") and isinstance(v, float)
    )
    print(f"  run {run} {backend} {size:,} (copy {copy_s:.1f} s): {line}", flush=True)
    for note in notes:
        print(f"    {note}", flush=True)
    return figures


# -- SMTP sink


class EphemeralController(Controller):
    """aiosmtpd's Controller on port 0: learn the port the OS chose before aiosmtpd connects to it."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class Mailbox:
    """A local SMTP server that accepts every digest."""

    def __init__(self):
        self.messages: list[bytes] = []
        self.controller = EphemeralController(self, hostname="127.0.0.1", port=0)
        self.controller.start()
        self.port = self.controller.port

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0)
        self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"

    def stop(self) -> None:
        self.controller.stop()


# -- the tables


def exponent(v1, v2, n1: int, n2: int) -> float | None:
    if not isinstance(v1, int | float) or not isinstance(v2, int | float) or v1 <= 0 or v2 <= 0:
        return None
    return math.log(v2 / v1) / math.log(n2 / n1)


def cell(value, width: int = 11) -> str:
    if value is None:
        return f"{'n/a':>{width}}"
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"
        return f"{text:>{width}}"
    return f"{value:>{width},}" if isinstance(value, int) else f"{value!s:>{width}}"


def print_table(backend: str, sizes: list[int], rows: dict[int, dict], runs: int) -> None:
    floor = {n: rows[n].get("check-config s") for n in sizes}
    names = list(dict.fromkeys(k for n in sizes for k in rows[n] if k != "store stats output"))
    header = f"{'figure':<40}" + "".join(cell(f"{n:,}") for n in sizes)
    pairs = list(pairwise(sizes))
    header += "".join(f"{'exp':>7}{'net':>6}" for _ in pairs)
    print(f"\n{backend}: medians of {runs} runs; exp = log(v2/v1)/log(n2/n1) between sizes; net: above start-up")
    print(header)
    for name in names:
        line = f"{name:<40}" + "".join(cell(rows[n].get(name)) for n in sizes)
        for n1, n2 in pairs:
            e = exponent(rows[n1].get(name), rows[n2].get(name), n1, n2)
            net = None
            v1, v2 = rows[n1].get(name), rows[n2].get(name)
            cli = name.endswith(" s") and not name.startswith(("build", "add", "check-config"))
            if cli and all(isinstance(v, float) for v in (v1, v2, floor[n1], floor[n2])):
                net = exponent(v1 - floor[n1], v2 - floor[n2], n1, n2)
            line += f"{e:>7.2f}" if e is not None else f"{'':>7}"
            line += f"{net:>6.2f}" if net is not None else f"{'':>6}"
        print(line)
    for n in sizes:
        stats = rows[n].get("store stats output")
        if stats:
            print(f"  {n:,}: {stats.splitlines()[0]}")


def median(values: list):
    numbers = [v for v in values if isinstance(v, int | float)]
    return statistics.median(numbers) if len(numbers) == len(values) and numbers else None


def parse_sizes(text: str) -> list[int]:
    sizes = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        scale = {"k": 1000, "m": 1_000_000}.get(part[-1:], 1)
        sizes.append(int(float(part.rstrip("km")) * scale))
    return sorted(set(sizes))


def start_node() -> tuple[str, bool]:
    """The bench's Elasticsearch node (scripts/es-node --name bench-scale, a 2 GB heap unless NEWSWATCH_ES_HEAP
    says otherwise): its URL, and whether we started it."""
    script = [sys.executable, str(ROOT / "scripts" / "es-node")]
    running = subprocess.run([*script, "status", "--name", ES_NODE], capture_output=True).returncode == 0
    # A million articles of 3-5 kB: the node's default 512 MB heap builds them at ~260 articles/s, 2 GB at ~700.
    env = {"NEWSWATCH_ES_HEAP": "2g", **os.environ}
    started = subprocess.run([*script, "start", "--name", ES_NODE], capture_output=True, text=True, env=env)
    if started.returncode != 0:
        raise SystemExit(f"scale: the Elasticsearch node did not start: {started.stderr.strip()}")
    return started.stdout.strip().splitlines()[-1], not running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="store sizes, e.g. 10000,100000,1M (1M: opt-in)")
    parser.add_argument("--backends", default="sqlite,elastic", help="sqlite, elastic or both")
    parser.add_argument("--runs", type=int, default=3, help="timing runs per store (median)")
    parser.add_argument("--url", help="a running Elasticsearch node (default: scripts/es-node --name bench-scale)")
    parser.add_argument("--rebuild", action="store_true", help="build the stores again instead of the cached ones")
    parser.add_argument("--json", action="store_true", help="also print every figure as JSON")
    parser.add_argument("--build-one", help=argparse.SUPPRESS)  # BACKEND:SIZE, in a child process
    args = parser.parse_args()
    if args.build_one:
        backend, size = args.build_one.split(":")
        build(backend, int(size), args.url)
        return
    sizes = parse_sizes(args.sizes)
    backends = [b.strip().replace("elasticsearch", "elastic") for b in args.backends.split(",")]
    url, own_node = args.url, False
    if "elastic" in backends and not url:
        url, own_node = start_node()
    CACHE.mkdir(parents=True, exist_ok=True)
    smtp = Mailbox()
    results: dict[str, dict[int, dict]] = {}
    try:
        newsroom = Newsroom(write_config(CACHE / "config", storage_for("sqlite", CACHE / "unused")))
        metas: dict[tuple[str, int], dict] = {}
        for backend in backends:
            es = es_client(url) if backend == "elastic" else None
            for size in sizes:
                meta = None if args.rebuild else cached(backend, size, es)
                if meta is None:
                    print(f"building {backend} {size:,} ...", flush=True)
                    command = [sys.executable, __file__, "--build-one", f"{backend}:{size}"]
                    child = measure(command + (["--url", url] if url else []), cwd=ROOT, capture=False)
                    if child["rc"] != 0:
                        raise SystemExit(f"scale: building {backend} {size:,} failed (exit {child['rc']})")
                    meta = json.loads((CACHE / f"{backend}-{size}" / "meta.json").read_text())
                    meta["peak_rss"] = child["rss"]
                    (CACHE / f"{backend}-{size}" / "meta.json").write_text(json.dumps(meta, indent=1))
                age = utc_now() - datetime.fromisoformat(meta["end"])
                print(
                    f"{backend} {size:,}: {meta['articles']:,} articles, {meta['hits']:,} hits, built in "
                    f"{meta['seconds']:,.0f} s ({meta['articles'] / meta['seconds']:,.0f}/s), "
                    f"{meta['bytes'] / meta['articles']:,.0f} bytes/article; '{COMMON}' in "
                    f"{meta['common_share']:.0%} of articles; history ends {age.total_seconds() / 3600:,.1f} h ago",
                    flush=True,
                )
                if age > timedelta(days=1):
                    print("  (an old cache: --since 7d covers less of it than at build time; --rebuild)")
                metas[backend, size] = meta
            if es is not None:
                es.close()
        per_run: dict[tuple[str, int], list[dict]] = {key: [] for key in metas}
        for run in range(1, args.runs + 1):
            for backend in backends:
                for size in sizes:
                    per_run[backend, size].append(timing_run(backend, metas[backend, size], url, smtp, newsroom, run))
        for backend in backends:
            results[backend] = {}
            for size in sizes:
                meta, runs = metas[backend, size], per_run[backend, size]
                row: dict = {
                    "build s": meta["seconds"],
                    **{f"build: {stage} s": v for stage, v in meta.get("stages", {}).items() if stage != "close"},
                    "build peak MiB": meta.get("peak_rss", 0) / 2**20 or None,
                    "disk bytes/article": meta["bytes"] / meta["articles"],
                }
                for name in dict.fromkeys(k for r in runs for k in r):
                    values = [r.get(name) for r in runs]
                    row[name] = values[-1] if name == "store stats output" else median(values)
                results[backend][size] = row
            print_table(backend, sizes, results[backend], args.runs)
    finally:
        smtp.stop()
        if own_node:
            subprocess.run([sys.executable, str(ROOT / "scripts" / "es-node"), "stop", "--name", ES_NODE], check=False)
    if args.json:
        print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
