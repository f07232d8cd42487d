"""Articles/s through ElasticStore.add_articles (the pipeline's path) versus raw helpers.bulk, one node, one run.

    .venv/bin/python bench/index.py [--url http://127.0.0.1:9200] [--articles 20000] [--batch 100] [--rounds 3]

Without --url it starts (and afterwards stops) a local node named "bench" with scripts/es-node. Both sides
write the same documents (the pipeline's own output, read back) into fresh indices made from the same
template; rounds alternate pipeline and raw so both see the same node state. It prints the best and the median
round of each side, and the median of the per-round ratios (each taken within one round).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import Elasticsearch, helpers

from newswatch.core.models import Article
from newswatch.core.store.elastic import ElasticStore

ROOT = Path(__file__).resolve().parents[1]

SENTENCES = [
    "Syrian government forces and their allies retook the last towns held by the jihadists in Deir Ezzor province.",
    "Iraqi troops captured Al-Qaïm on the border after a two-week offensive backed by coalition air strikes.",
    "Les forces démocratiques syriennes ont annoncé la prise de Raqqa après quatre mois de combats.",
    "أعلنت قوات سوريا الديمقراطية السيطرة على مدينة الرقة بعد معارك عنيفة مع تنظيم الدولة الإسلامية.",
    "Aid agencies said thousands of families had fled towards camps near al-Hol, where water is short.",
    "Le ministère a indiqué que les routes vers Abou Kamal restaient fermées jusqu'à nouvel ordre.",
    "وقال مسؤول محلي إن الطريق بين دير الزور والبوكمال أعيد فتحه أمام الشاحنات التجارية.",
]


def make_articles(count: int, seed: int = 7) -> list[Article]:
    """``count`` articles of 20-40 sentences (about 2-5 KB), mixed English, French and Arabic."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Article(
            id=uuid.UUID(int=rng.getrandbits(128)).hex,
            url=f"https://news.example/{n}",
            title=rng.choice(SENTENCES)[:80],
            text=" ".join(rng.choice(SENTENCES) for _ in range(rng.randint(20, 40))),
            feed_id=f"feed-{n % 40}",
            outlet=f"Outlet {n % 40}",
            published=start + timedelta(minutes=n),
            fetched=start + timedelta(minutes=n),
            language=rng.choice(["en", "fr", "ar"]),
            author="Staff",
        )
        for n in range(count)
    ]


def open_store(url: str, spool_dir: str) -> ElasticStore:
    """A fresh store (own client, own indices) on the node."""
    return ElasticStore(
        Elasticsearch(url, request_timeout=120),
        prefix=f"bench-{uuid.uuid4().hex[:8]}",
        spool_path=Path(spool_dir) / f"{uuid.uuid4().hex}.db",
    )


def pipeline_round(url: str, articles: list[Article], batch: int, spool_dir: str) -> tuple[float, ElasticStore]:
    """Seconds to add every article through a fresh ElasticStore, ``batch`` at a time, as the pipeline does."""
    store = open_store(url, spool_dir)
    started = time.perf_counter()
    for i in range(0, len(articles), batch):
        store.add_articles(articles[i : i + batch])
    store.flush()  # the last bulk request is acknowledged: only then is the pipeline done
    return time.perf_counter() - started, store


def raw_round(es: Elasticsearch, url: str, docs: list[dict], batch: int, spool_dir: str) -> float:
    """Seconds for helpers.bulk to write the same documents into a fresh index from the same template."""
    store = open_store(url, spool_dir)  # only to install the template and create the index
    (index,) = es.indices.get_alias(name=store.alias)
    actions = [{"_op_type": "create", "_index": index, "_id": d["id"], "_source": d} for d in docs]
    started = time.perf_counter()
    ok, errors = helpers.bulk(es, actions, chunk_size=batch, raise_on_error=False)
    elapsed = time.perf_counter() - started
    assert ok == len(docs) and not errors, errors[:1]
    drop(es, store)
    return elapsed


def drop(es: Elasticsearch, store: ElasticStore) -> None:
    """Delete a round's indices and templates so rounds do not pile up on the node."""
    store.close()
    es.options(ignore_status=404).indices.delete(index=f"{store.base}*")
    es.options(ignore_status=404).indices.delete_index_template(name=f"{store.base}*")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running node (default: start scripts/es-node --name bench)")
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100, help="articles per add_articles call and per raw bulk")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    node = [sys.executable, str(ROOT / "scripts" / "es-node")]
    url = (
        args.url
        or subprocess.run(
            [*node, "start", "--name", "bench"], check=True, capture_output=True, text=True
        ).stdout.split()[-1]
    )
    es = Elasticsearch(url, request_timeout=120)
    try:
        articles = make_articles(args.articles)
        spool_dir = tempfile.mkdtemp()
        version = es.cluster.stats()["nodes"]["versions"][0]
        print(
            f"node {url} Elasticsearch {version}; {len(articles)} articles "
            f"({sum(len(a.text) for a in articles) / len(articles) / 1024:.1f} KiB text each), batch {args.batch}"
        )
        drop(es, pipeline_round(url, articles[:2000], args.batch, spool_dir)[1])  # warm-up (JIT, caches): not counted
        pipeline, raw = [], []
        for n in range(args.rounds):
            seconds, store = pipeline_round(url, articles, args.batch, spool_dir)
            assert store.count_articles() == len(articles) and store.spool.count() == 0
            docs = [hit["_source"] for hit in helpers.scan(es, index=store.alias, size=1000)]
            drop(es, store)
            pipeline.append(len(articles) / seconds)
            raw.append(len(articles) / raw_round(es, url, docs, args.batch, spool_dir))
            print(
                f"round {n + 1}: pipeline {pipeline[-1]:,.0f}/s  raw helpers.bulk {raw[-1]:,.0f}/s  "
                f"ratio {pipeline[-1] / raw[-1]:.2f}"
            )
        for label, pick in (("best", max), ("median", statistics.median)):
            print(
                f"{label}: pipeline (ElasticStore.add_articles) {pick(pipeline):,.0f} articles/s, "
                f"raw helpers.bulk {pick(raw):,.0f} articles/s, "
                f"ratio {pick(pipeline) / pick(raw):.2f} (target >= 0.80)"
            )
        # Each round's ratio is taken within that round (the node's speed drifts between rounds).
        ratios = [p / r for p, r in zip(pipeline, raw, strict=True)]
        print(
            f"per-round ratios: median {statistics.median(ratios):.2f}, "
            f"range {min(ratios):.2f}-{max(ratios):.2f} (target >= 0.80)"
        )
    finally:
        es.close()
        if not args.url:
            subprocess.run([*node, "stop", "--name", "bench"], check=False)


if __name__ == "__main__":
    main()
