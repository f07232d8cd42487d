"""`newswatch search` on a real store of each backend: a watch's name or any spelling of it finds the watch's stories in
every language, `--watch` lists a watch's hits, results are one row per story, `--json` is plain text with
offsets, and a query the store cannot parse is one line and exit 2."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from alerts.matching.explain import MAX_SEARCH_PHRASES, search_phrases
from alerts.run import run_alerts
from newswatch.core.config import load_config
from newswatch.core.config.watches import WatchList
from newswatch.core.models import Article
from newswatch.core.store import open_store
from newswatch.core.times import utc_now
from tests.conftest import FIXTURES, run_cli, write_config

UTC = dt.UTC


def _article(key: str, title: str, text: str, language: str, day: int, **extra) -> Article:
    return Article(
        id=key,
        url=f"https://{extra.pop('host', 'news.example')}/{key}",
        title=title,
        text=text,
        feed_id=extra.pop("feed_id", "wire"),
        outlet=extra.pop("outlet", "Wire"),
        language=language,
        published=dt.datetime(2026, 11, day, 9, 0, tzinfo=UTC),
        fetched=utc_now() - dt.timedelta(hours=30 - day),
        **extra,
    )


ARTICLES = [
    # One story, two outlets (one cluster), English and French.
    _article(
        "afp-en",
        "Syrian army retakes Deir ez-Zor",
        "The Syrian army said on Friday it had retaken the city of Deir ez-Zor from the jihadists.",
        "en",
        4,
        outlet="Levant Monitor",
        cluster_id="story-deir",
    ),
    _article(
        "afp-fr",
        "L'armée syrienne reprend Deir Ezzor",
        "L'armée syrienne a annoncé vendredi avoir repris la ville de Deir Ezzor aux jihadistes.",
        "fr",
        4,
        outlet="Journal du Levant",
        cluster_id="story-deir",
    ),
    # Arabic, the name after a joined preposition: the index holds the token بدير.
    _article(
        "ar-1",
        "معارك عنيفة في الشرق السوري",
        "اندلعت معارك عنيفة بدير الزور صباح اليوم بين الجيش ومسلحين.",
        "ar",
        5,
        outlet="مرصد المشرق",
    ),
    # Written as one word: a derived form.
    _article("joined-1", "Floods hit Deirezzor", "Heavy rain flooded parts of Deirezzor overnight.", "en", 6),
    # Daesh under three other names; one of them (IS) only counts with a context word.
    _article("daesh-1", "Islamic State claims attack", "The Islamic State group claimed the attack in Raqqa.", "en", 7),
    _article("daesh-2", "ISIS cell dismantled", "Police dismantled an ISIS cell near Mosul, officials said.", "en", 8),
    _article(
        "daesh-3",
        "Checkpoint attacked",
        "IS fighters attacked a checkpoint overnight, the militants fled east.",
        "en",
        9,
    ),
    _article("daesh-4", "هجوم في الموصل", "تبنى تنظيم داعش الهجوم على نقطة تفتيش.", "ar", 10, outlet="مرصد المشرق"),
    # Two names of Daesh in one sentence: two hits, one sentence.
    _article(
        "daesh-5",
        "Attentat revendiqué",
        "Le groupe État islamique, ou Daech, a revendiqué l'attentat. La police enquête.",
        "fr",
        3,
        outlet="Journal du Levant",
    ),
    # Nothing of either watch.
    _article("sport-1", "Al-Wehdat win the Amman derby", "Al-Wehdat beat Al-Faisaly 2-1 in Amman.", "en", 11),
]
DEIR = {"afp-en", "afp-fr", "ar-1", "joined-1"}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.slow)])
def project(request, tmp_path_factory) -> Iterator[Path]:
    """A config folder with the shipped watches and a store holding ARTICLES, matched by an alerts pass: the
    SQLite file, then an index on the real Elasticsearch node (removed afterwards)."""
    settings = {}
    if request.param == "elasticsearch":
        node = request.getfixturevalue("es_node")
        node.ensure_running()
        prefix = f"test-{uuid.uuid4().hex[:8]}-"
        settings = {
            "storage": {"backend": "elasticsearch", "elasticsearch": {"hosts": [node.url], "index_prefix": prefix}}
        }
    config_dir = write_config(tmp_path_factory.mktemp("search") / "project" / "config", settings=settings)
    config = load_config(config_dir)
    with open_store(config) as store:
        store.add_articles(ARTICLES)
        run_alerts(config, store)
    yield config_dir
    if request.param == "elasticsearch":
        from elasticsearch import Elasticsearch

        with Elasticsearch(node.url, request_timeout=30) as client:
            quiet = client.options(ignore_status=404)
            quiet.indices.delete_alias(index="*", name=f"{prefix}*")
            quiet.indices.delete(index=f"{prefix}*", expand_wildcards="all")
            quiet.indices.delete_index_template(name=f"{prefix}*")
            quiet.cluster.delete_component_template(name=f"{prefix}*")


def search_json(project: Path, *args: str) -> list[dict]:
    result = run_cli("search", *args, "--json", config_dir=project)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def article_ids(stories: list[dict]) -> set[str]:
    return {a["id"] for story in stories for a in story["articles"] if a["in_results"]}


@pytest.mark.parametrize("query", ["Deir ez-Zor", "deir-ez-zor", "دير الزور", '"Deir Ezzor"', "Dayr az-Zawr"])
def test_a_spelling_of_a_watch_finds_its_stories_in_every_language(project: Path, query: str):
    """Any spelling of the Deir Ezzor watch finds the English, French and Arabic stories, the one written
    as one word, and the one whose Arabic name has a joined preposition; nothing else."""
    stories = search_json(project, query)
    assert article_ids(stories) == DEIR
    assert {a["language"] for s in stories for a in s["articles"]} == {"en", "fr", "ar"}
    assert all("Deir Ezzor" in s["watches"] for s in stories)


def test_a_watch_name_finds_every_story_the_watch_matched(project: Path):
    """`search Daesh` finds all four Daesh stories, including the one only a context word made a hit."""
    with open_store(load_config(project)) as store:
        matched = {h.article_id for h in store.hits_for_articles([a.id for a in ARTICLES]) if h.watch == "Daesh"}
    assert matched == {"daesh-1", "daesh-2", "daesh-3", "daesh-4", "daesh-5"}
    assert article_ids(search_json(project, "Daesh")) == matched
    # Plain words stay plain words: nothing of a watch is added to them.
    assert article_ids(search_json(project, "checkpoint")) == {"daesh-3"}


def test_a_story_is_one_row_with_every_outlet_and_copy(project: Path):
    """The two copies of the AFP story are one story: its outlets, both articles, the watches it matched."""
    stories = search_json(project, "Deir Ezzor")
    afp = [s for s in stories if s["id"] == "story-deir"]
    assert len(afp) == 1 and len(stories) == 3
    story = afp[0]
    assert set(story) >= {"title", "url", "watches", "outlets", "articles", "fragments"}
    assert story["outlets"] == ["Levant Monitor", "Journal du Levant"] or set(story["outlets"]) == {
        "Levant Monitor",
        "Journal du Levant",
    }
    assert {a["id"] for a in story["articles"]} == {"afp-en", "afp-fr"}
    assert set(story["articles"][0]) >= {"id", "url", "outlet", "language", "published"}
    assert story["watches"] == ["Deir Ezzor"]
    assert story["url"] in {a["url"] for a in story["articles"]}


def test_json_fragments_are_plain_text_with_offsets(project: Path):
    """Fragments carry the text as it is (an apostrophe, not &#x27;; no <mark>), and marks that slice it at
    the highlighted words."""
    stories = search_json(project, "armée")
    assert article_ids(stories) == {"afp-fr"}
    raw = json.dumps(stories, ensure_ascii=False)
    assert "<mark>" not in raw and "&#x27;" not in raw and "&amp;" not in raw
    fragment = stories[0]["fragments"][0]
    assert "L'armée" in fragment["text"]
    assert [fragment["text"][s:e] for s, e in fragment["marks"]] == ["armée"]


def test_watch_without_a_query_lists_its_hits_newest_first_with_the_sentence(project: Path):
    """`search --watch Daesh` lists the watch's stories, newest first (the hits were found together, so by
    date), each with the sentence it was found in and the matched words marked."""
    stories = search_json(project, "--watch", "daesh")  # the name as typed, any case
    assert [s["id"] for s in stories] == ["daesh-4", "daesh-3", "daesh-2", "daesh-1", "daesh-5"]
    by_id = {s["id"]: s for s in stories}
    fragment = by_id["daesh-3"]["fragments"][0]
    assert fragment["text"].startswith("IS fighters attacked a checkpoint")
    assert [fragment["text"][s:e] for s, e in fragment["marks"]] == ["IS"]
    assert all(s["found"] and "Daesh" in s["watches"] for s in stories)
    # --watch with a query keeps the articles with a hit of that watch (Mosul is a watch too: الموصل as well).
    assert article_ids(search_json(project, "Mosul", "--watch", "Daesh")) == {"daesh-2", "daesh-4"}
    assert article_ids(search_json(project, "officials", "--watch", "Daesh")) == {"daesh-2"}


def test_the_table_is_one_row_per_story_and_fits_100_columns(project: Path):
    """Without --json: a table as wide as the terminal says, each story once with its other outlets."""
    result = run_cli("search", "Deir Ezzor", config_dir=project, env={"COLUMNS": "100"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    # The AFP story once, its other outlet named on its row.
    assert result.stdout.count("Journal du Levant") == result.stdout.count("Levant Monitor") == 1
    assert "; also " in result.stdout
    assert lines[-1] == "3 stories (4 articles found)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (['"Deir Ezzor'], "unbalanced quote"),
        (["Deir OR"], "OR needs a word on each side"),
        (["--", "-Daesh"], "only excluded words"),
        ([], "give a QUERY, or --watch NAME"),
    ],
)
def test_a_query_that_cannot_be_read_is_one_line_and_exit_2(project: Path, args: list[str], message: str):
    """A query the store cannot parse (or none at all) is one `error:` line, exit 2, no traceback."""
    result = run_cli("search", *args, config_dir=project)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert result.stdout == ""


def test_search_phrases_resolve_a_watch_from_any_spelling_and_leave_out_the_ambiguous_ones():
    """The pure part: a spelling, however written, names its watch; its phrases are the spellings an index can
    look up (never IS, which would find every "is"), the Arabic ones after joined clitics, the derived forms;
    plain words and search syntax name no watch."""
    watches = WatchList.model_validate(yaml.safe_load((FIXTURES / "watches.yaml").read_text(encoding="utf-8"))).watches
    for query in ("Deir ez-Zor", "DEIR-EZ-ZOR", "دير الزور", "Deirezzor", '"Dayr az-Zawr"'):
        watch, phrases = search_phrases(watches, query)
        assert watch is not None and watch.name == "Deir Ezzor", query
        assert {"Deir ez-Zor", "دير الزور", "بدير الزور", "deirezzor"} <= set(phrases)
        assert len(phrases) <= MAX_SEARCH_PHRASES and len(set(phrases)) == len(phrases)
    watch, phrases = search_phrases(watches, "daesh")
    assert watch.name == "Daesh" and {"ISIS", "Islamic State", "داعش"} <= set(phrases) and "IS" not in phrases
    for query in ("checkpoint", "Deir OR Raqqa", "Raqqa -football", "Deir*", "", "  "):
        assert search_phrases(watches, query) == (None, []), query


def test_a_sentence_with_two_hits_is_one_fragment_with_both_marked(project: Path):
    """The French story holds two names of Daesh in one sentence: that sentence once, both names marked (in
    order, not overlapping), with --watch as with a query; the table prints it once."""
    for args in (["--watch", "Daesh"], ["Daesh"]):
        (story,) = [s for s in search_json(project, *args) if s["id"] == "daesh-5"]
        texts = [f["text"] for f in story["fragments"]]
        assert len(texts) == len(set(texts)), texts
        (fragment,) = [f for f in story["fragments"] if "État islamique" in f["text"]]
        marks = fragment["marks"]
        assert marks == sorted(marks) and all(a[1] <= b[0] for a, b in itertools.pairwise(marks))
        words = [fragment["text"][a:b] for a, b in marks]
        assert len(words) == 2 and words[0].endswith("État islamique") and words[1] == "Daech", (args, words)
    table = run_cli("search", "--watch", "Daesh", config_dir=project, env={"COLUMNS": "200"})
    assert table.returncode == 0 and table.stdout.count("ou Daech, a revendiqué") == 1, table.stdout


@pytest.mark.parametrize("name", ["Deir ez-Zor", "deir ezzor", "دير الزور", "DEIR-EZ-ZOR"])
def test_watch_is_resolved_like_a_query_from_its_name_or_any_spelling(project: Path, name: str):
    """`--watch` takes the watch's name in any case or any of its spellings, as a query naming it does."""
    stories = search_json(project, "--watch", name)
    assert article_ids(stories) == DEIR and all("Deir Ezzor" in s["watches"] for s in stories)
    assert article_ids(search_json(project, "army", "--watch", name)) == {"afp-en"}


@pytest.mark.parametrize("args", [["--watch", "Nope"], ["army", "--watch", "Atlantis"]])
def test_an_unknown_watch_is_one_line_naming_watches_yaml_and_exit_2(project: Path, args: list[str]):
    """A watch that is neither a configured name nor a spelling of one is refused, as `why` refuses it."""
    result = run_cli("search", *args, config_dir=project)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: no watch named {args[-1]!r} in {project / 'watches.yaml'}"], result.stderr
