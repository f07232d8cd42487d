"""Near-duplicate clustering: the seed wire story republished three ways is one story; another Deir Ezzor story
is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.charset import decode_html
from crawler.clusters import THRESHOLD, WINDOW, Clusterer, shingles, signature, similarity
from crawler.extract import extract_article
from newswatch.core.errors import StoreUnavailable
from newswatch.core.models import SIGNATURE_CANDIDATES, ClusterSignature
from newswatch.core.store.sqlite import SqliteStore

FIXTURES = Path(__file__).with_name("fixtures")
SEED_PAGE = (
    Path(__file__).resolve().parents[1]
    / "newswatch"
    / "demo"
    / "site"
    / "2017"
    / "11"
    / "04"
    / "daesh-loses-last-towns.html"
)
COPIES = {  # the seed AFP story, republished
    "gulf-daily-daesh-towns": "other site boilerplate, 'Read more' links, a dateline and a credit line",
    "kurdistan-post-daesh": "light edits: spellings, reworded phrases, last four paragraphs cut, a credit added",
    "beirut-times-deir-ezzor": "another headline and a rewritten lead paragraph",
}
OTHER = "deir-ezzor-bakeries"  # a different story about the same town, with the same places and groups
NOW = datetime(2026, 11, 20, tzinfo=UTC)


def _text(path: Path) -> str:
    return extract_article(decode_html(path.read_bytes()), f"https://news.example/{path.stem}").text


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    pages = {name: FIXTURES / "site" / "wire" / f"{name}.html" for name in [*COPIES, OTHER]}
    return {"seed": _text(SEED_PAGE), **{name: _text(path) for name, path in pages.items()}}


def test_the_threshold_separates_copies_from_a_story_on_the_same_town(texts: dict[str, str]):
    """Copies score well above THRESHOLD (estimated Jaccard of word 3-shingles), the other story near zero."""
    seed = signature(texts["seed"])
    for name in COPIES:
        assert similarity(seed, signature(texts[name])) >= THRESHOLD + 0.2, name
    assert similarity(seed, signature(texts[OTHER])) < 0.1
    assert all(name in texts[OTHER] for name in ("Deir Ezzor", "Daesh", "Abu Kamal", "SDF"))


@pytest.fixture
def store(tmp_path: Path):
    with SqliteStore(tmp_path / "newswatch.db") as store:
        yield store


def test_copies_join_the_cluster_of_the_first_seen_and_the_other_story_stays_apart(store, texts):
    """The first article seen is the representative: every later copy gets its id as cluster_id."""
    clusterer = Clusterer(store, NOW)
    assert clusterer.assign("seed", "https://a.example/seed", texts["seed"]) == "seed"
    for name in COPIES:
        assert clusterer.assign(name, f"https://b.example/{name}", texts[name]) == "seed", COPIES[name]
    assert clusterer.assign(OTHER, "https://b.example/other", texts[OTHER]) == OTHER


def test_clusters_survive_a_restart_and_a_refetch_keeps_its_cluster(store, texts):
    """Signatures persist in the store: after a restart a copy still joins; a re-fetch keeps its id."""
    first = Clusterer(store, NOW)
    first.assign("beirut", "https://b.example/beirut", texts["beirut-times-deir-ezzor"])
    store.add_signatures(first.take_new())
    again = Clusterer(store, NOW)
    assert again.assign("seed", "https://a.example/seed", texts["seed"]) == "beirut"
    assert again.assign("beirut", "https://b.example/beirut", "completely rewritten " * 40) == "beirut"


def test_signatures_older_than_the_window_are_not_compared(store, texts):
    """A copy of a story first seen more than WINDOW ago starts a cluster of its own."""
    first = Clusterer(store, NOW - WINDOW - timedelta(hours=1))
    first.assign("beirut", "https://b.example/beirut", texts["beirut-times-deir-ezzor"])
    store.add_signatures(first.take_new())
    assert Clusterer(store, NOW).assign("seed", "https://a.example/seed", texts["seed"]) == "seed"


def test_a_crawl_reads_the_candidates_of_its_articles_not_the_window(store, texts):
    """Each article asks the store for the signatures it could be a copy of: with thousands of other stories
    in the window, an article reads a handful, and its copy is still found."""
    others = [
        ClusterSignature(
            f"other{n}", f"other{n}", f"https://o.example/{n}", NOW - timedelta(days=n % 13), sig.tobytes()
        )
        for n in range(3000)
        if (sig := signature(" ".join(f"word{(n * 7919 + i * 104729) % 50000}" for i in range(200)))) is not None
    ]
    first = Clusterer(store, NOW - timedelta(days=2))
    first.assign("beirut", "https://b.example/beirut", texts["beirut-times-deir-ezzor"])
    store.add_signatures([*first.take_new(), *others])
    read: list[int] = []

    class Counting:
        def similar_signatures(self, *args):
            found = store.similar_signatures(*args)
            read.append(len(found))
            return found

    clusterer = Clusterer(Counting(), NOW)
    assert clusterer.assign("seed", "https://a.example/seed", texts["seed"]) == "beirut"
    assert clusterer.assign(OTHER, "https://b.example/other", texts[OTHER]) == OTHER
    assert read[0] >= 1 and max(read) < 10


def test_a_store_that_cannot_answer_leaves_the_article_in_a_cluster_of_its_own(texts, caplog):
    """The lookup failing (the store down) is one warning per crawl; copies within the crawl still join."""

    class Down:
        def similar_signatures(self, *args):
            raise StoreUnavailable("SQLite store x: disk I/O error")

    clusterer = Clusterer(Down(), NOW)
    assert clusterer.assign("seed", "https://a.example/seed", texts["seed"]) == "seed"
    assert clusterer.assign("copy", "https://b.example/copy", texts["beirut-times-deir-ezzor"]) == "seed"
    assert caplog.text.count("cluster_lookup_unavailable") == 1


def test_short_texts_stay_alone_unless_they_share_a_canonical_url(store, texts):
    """A feed summary is too short to compare; the same canonical URL is the same story all the same."""
    clusterer = Clusterer(store, NOW)
    assert clusterer.assign("long", "https://a.example/story", texts["seed"]) == "long"
    assert clusterer.assign("summary", "https://c.example/s", texts["seed"][:150]) == "summary"
    assert clusterer.assign("amp", "https://a.example/story", "Short AMP version") == "long"


def test_the_estimate_tracks_the_true_jaccard_similarity(texts: dict[str, str]):
    """The MinHash estimate is within 0.1 of the exact Jaccard similarity of the shingle sets."""
    for name in [*COPIES, OTHER]:
        a, b = shingles(texts["seed"]), shingles(texts[name])
        exact = len(a & b) / len(a | b)
        assert abs(similarity(signature(texts["seed"]), signature(texts[name])) - exact) < 0.1, name


def test_shingles_work_for_arabic_and_ignore_case_and_punctuation():
    """Words are Unicode word runs, casefolded: Arabic shingles like Latin ones, and punctuation is dropped."""
    assert shingles("Deir Ezzor, SYRIA: the army!") == shingles("deir ezzor syria the army")
    assert "دير الزور الجيش".encode() in shingles("دير الزور: الجيش السوري")


def test_boilerplate_shared_by_many_articles_does_not_make_every_lookup_read_them_all(store, monkeypatch):
    """200 articles, 45% of each one block of boilerplate (a fifth of them share band keys with any other, in
    the block's keys), are 200 stories; a reprint of one still joins it, from this crawl's signatures and from
    the store's, and each article is compared with at most SIGNATURE_CANDIDATES of them (the most any shares
    keys with is 53)."""
    boilerplate = " ".join(f"boiler{i}" for i in range(135))
    texts = [boilerplate + " " + " ".join(f"story{n}w{i}" for i in range(165)) for n in range(200)]
    compared: list[int] = []

    def counted(first, second):
        compared[-1] += 1
        return similarity(first, second)

    monkeypatch.setattr("crawler.clusters.similarity", counted)
    crawl = Clusterer(store, NOW)
    for n, text in enumerate(texts):
        compared.append(0)
        assert crawl.assign(f"a{n}", f"https://a.example/{n}", text) == f"a{n}"
    compared.append(0)
    assert crawl.assign("reprint", "https://b.example/reprint", texts[5] + " Reuters") == "a5"
    assert max(compared) == SIGNATURE_CANDIDATES  # some share keys with 50 earlier ones
    store.add_signatures(crawl.take_new())
    compared.append(0)
    assert Clusterer(store, NOW).assign("later", "https://c.example/later", texts[7] + " AFP") == "a7"
    assert compared[-1] <= SIGNATURE_CANDIDATES
