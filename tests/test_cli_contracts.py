"""The CLI contracts acceptance checks call: extract, feed, match and search (stable output formats)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import DEMO_SITE, run_cli, write_config

SEED_PAGE = DEMO_SITE / "2017" / "11" / "04" / "daesh-loses-last-towns.html"


def test_extract_prints_one_json_object_per_file():
    """`extract --json` gives file, title, text, published (ISO 8601) and language for each page."""
    arabic = next((DEMO_SITE / "2017" / "11" / "05").glob("*.html"))
    result = run_cli("extract", "--json", str(SEED_PAGE), str(arabic))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in records] == [str(SEED_PAGE), str(arabic)]
    seed = records[0]
    assert seed["title"] == "Daesh loses last towns in face of twin Syria, Iraq assaults"
    assert seed["published"].startswith("2017-11-04")
    assert seed["language"] == "en" and "Abu Kamal" in seed["text"]
    assert records[1]["language"] == "ar"


def test_extract_missing_file_is_one_line_not_a_traceback(tmp_path: Path):
    """A file that cannot be read gives an error line on stderr and a non-zero exit."""
    result = run_cli("extract", "--json", str(tmp_path / "missing.html"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "missing.html" in result.stderr


def test_feed_prints_items_as_a_json_array():
    """`feed --json FILE` lists every item with title, link, published and summary."""
    result = run_cli("feed", "--json", str(DEMO_SITE / "feed.xml"))
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert len(items) == 5
    assert all({"title", "link", "published", "summary"} <= set(item) for item in items)
    assert any(item["title"].startswith("Daesh loses last towns") for item in items)


def test_feed_url_served_locally(demo_site: str):
    """`feed --json URL` fetches over HTTP and resolves relative links against the feed URL."""
    result = run_cli("feed", "--json", f"{demo_site}/feed.xml")
    assert result.returncode == 0, result.stderr
    assert all(item["link"].startswith(demo_site) for item in json.loads(result.stdout))


def test_feed_that_cannot_be_read_exits_2_with_one_line(tmp_path: Path, demo_site: str):
    """Malformed XML, a 404 and a missing file each exit 2 with exactly one line on stderr."""
    page = tmp_path / "page.html"
    page.write_text("<html><body><p>not a feed</p></body></html>", encoding="utf-8")
    for source in (f"{demo_site}/broken.xml", f"{demo_site}/nope.xml", str(tmp_path / "none.xml"), str(page)):
        result = run_cli("feed", "--json", source)
        assert result.returncode == 2, source
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_match_reports_hits_with_offsets_into_the_text(tmp_path: Path):
    """`match --json` prints watch, matched text and offsets that slice the input exactly."""
    watchlist = tmp_path / "watches.yaml"
    watchlist.write_text(
        yaml.safe_dump(
            {
                "watches": [
                    {"name": "Deir Ezzor", "kind": "place"},
                    {"name": "Daesh", "kind": "group", "aliases": ["ISIS", "Islamic State"]},
                ]
            }
        ),
        encoding="utf-8",
    )
    text = "Fighting near DEIR EZZOR: the Islamic State (ISIS) lost ground, Daesh said nothing."
    result = run_cli("match", "--watchlist", str(watchlist), "--json", "-", input=text)
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert [(h["watch"], h["matched"]) for h in hits] == [
        ("Deir Ezzor", "DEIR EZZOR"),
        ("Daesh", "Islamic State"),
        ("Daesh", "ISIS"),
        ("Daesh", "Daesh"),
    ]
    assert all(text[h["start"] : h["end"]] == h["matched"] for h in hits)
    assert set(hits[0]) == {"watch", "matched", "start", "end"}


def test_match_explain_says_which_spelling_matched_and_what_allowed_it(tmp_path: Path):
    """`match --explain --json` gives each hit's keys of `match --json` and its spelling, the source of that
    spelling, how the form found derives from it and what allowed it."""
    watchlist = tmp_path / "watches.yaml"
    watches = [
        {"name": "Deir Ezzor", "kind": "place", "aliases": ["Deir ez-Zor", "دير الزور"]},
        {"name": "Daesh", "kind": "group", "aliases": ["ISIS"]},
    ]
    watchlist.write_text(yaml.safe_dump({"watches": watches}, allow_unicode=True), encoding="utf-8")
    text = "IS fighters left Deirezzor; اشتباكات بدير الزور."
    result = run_cli("match", "--watchlist", str(watchlist), "--json", "--explain", "-", input=text)
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert [(h["watch"], h["matched"], h["spelling"], h["source"], h["derived"]) for h in hits] == [
        ("Daesh", "IS", "IS", "groups.yaml", ""),
        ("Deir Ezzor", "Deirezzor", "Deir Ezzor", "config name", "derived form 'deirezzor'"),
        ("Deir Ezzor", "دير الزور", "دير الزور", "config alias", "after the joined clitic 'ب'"),
    ]
    assert hits[0]["reason"] == "context word 'fighters' within 12 words"
    assert hits[1]["reason"] == "always counts"
    assert all(text[h["start"] : h["end"]] == h["matched"] for h in hits)
    plain = run_cli("match", "--watchlist", str(watchlist), "--json", "-", input=text)
    assert json.loads(plain.stdout) == [{k: h[k] for k in ("watch", "matched", "start", "end")} for h in hits]


def test_search_json_prints_stories_with_title_url_and_watches(tmp_path: Path):
    """`search --json` prints a JSON array of stories, each with at least `title`, `url` and `watches`; two
    outlets' copies of one story are one story; fragments are plain text with offsets."""
    from alerts.run import run_alerts
    from newswatch.core.config import load_config
    from newswatch.core.store import open_store
    from newswatch.core.times import utc_now
    from tests.plugins.smtp import sample_articles

    config_dir = write_config(tmp_path / "project" / "config")
    config = load_config(config_dir)
    with open_store(config) as store:
        store.add_articles(sample_articles(utc_now()))
        run_alerts(config, store)
    result = run_cli("search", "Deir Ezzor", "--json", config_dir=config_dir)
    assert result.returncode == 0, result.stderr
    stories = json.loads(result.stdout)
    assert all({"title", "url", "watches", "outlets", "articles", "fragments"} <= set(s) for s in stories)
    by_id = {s["id"]: s for s in stories}
    assert set(by_id) == {"story-deir-ezzor", "mashriq-1"}
    story = by_id["story-deir-ezzor"]
    assert set(story["outlets"]) == {"The Levant Monitor", "Gulf Wire"} and len(story["articles"]) == 2
    assert {"Deir Ezzor", "Daesh"} <= set(story["watches"])
    for fragment in story["fragments"]:
        assert all(fragment["text"][a:b] for a, b in fragment["marks"]) and "<mark>" not in fragment["text"]


def test_match_invalid_watchlist_names_the_key(tmp_path: Path):
    """A watchlist with a wrong key is one error line naming file and key, exit 2."""
    watchlist = tmp_path / "w.yaml"
    watchlist.write_text("watches:\n  - name: Raqqa\n    kinds: place\n", encoding="utf-8")
    result = run_cli("match", "--watchlist", str(watchlist), "--json", "-", input="Raqqa")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {watchlist}: watches[0].kinds: unknown key"


def test_extract_missing_file_is_exit_2_with_the_path_said_once(tmp_path: Path):
    """A page that cannot be read is the user's input: one error line naming it once, exit 2; stdout keeps
    one JSON record per file, that one with its error, after the pages that could be read."""
    missing = tmp_path / "missing.html"
    result = run_cli("extract", "--json", str(SEED_PAGE), str(missing))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: cannot read {missing}: No such file or directory"]
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in records] == [str(SEED_PAGE), str(missing)]
    assert records[1]["error"] == f"cannot read {missing}: No such file or directory" and records[1]["text"] is None
    assert set(records[1]) == set(records[0]) | {"error"}


def test_match_with_an_empty_watch_list_finds_nothing(tmp_path: Path):
    """`watches: []` is a valid list that matches nothing: `[]` on stdout, one warning line, exit 0."""
    watchlist = tmp_path / "w.yaml"
    watchlist.write_text("watches: []\n", encoding="utf-8")
    result = run_cli("match", "--watchlist", str(watchlist), "--json", "-", input="Daesh near Deir Ezzor")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert result.stderr.splitlines() == [f"warning: {watchlist}: no watches in it, so no hits"]


def test_match_refuses_watch_names_differing_only_in_case(tmp_path: Path):
    """A watch list with 'Daesh' and 'daesh' is one line naming the file and the second name's key, exit 2."""
    watchlist = tmp_path / "w.yaml"
    watchlist.write_text("watches:\n  - name: Daesh\n  - name: daesh\n", encoding="utf-8")
    result = run_cli("match", "--watchlist", str(watchlist), "--json", "-", input="Daesh")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {watchlist}: watches[1].name: 'daesh' is also the name of watches[0] ('Daesh'); "
        "watch names must differ by more than case or accents"
    ]
