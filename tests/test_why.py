"""Why a watch matched an article and why not (alerts.matching.explain, `newswatch why`, `watch explain`).

Each matched span names the spelling found, where that spelling comes from and what allowed it; each watch
that did not match says why, for every kind of reason. The explanation agrees with the matcher itself.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import yaml

from alerts.matching.explain import (
    CASE,
    EXCLUDED,
    NO_CONTEXT,
    NO_SPELLING,
    NOT_NEAR,
    OVERLAP,
    RULE_EXCLUDED,
    RULE_PART_MISSING,
    Verdict,
    why,
)
from alerts.run import run_alerts
from crawler.urls import article_id
from newswatch.core.config import load_config
from newswatch.core.config.watches import Alias, Watch, WatchList
from newswatch.core.models import Article
from newswatch.core.store import open_store
from tests.conftest import run_cli, write_config
from tests.test_match_eval import EVAL, parse

SEED = (Path(__file__).parent / "fixtures" / "matching" / "seed-afp-2017-11-04.txt").read_text(encoding="utf-8")
SEED_URL = "https://news.example/2017/11/04/deir-ezzor-abu-kamal.html"
AFP_URL = "https://news.example/2017/11/04/syrian-army-retakes-deir-ezzor.html"
AFP_TITLE = "Syrian army retakes Deir Ezzor"
AFP_TEXT = "The Syrian army said on Friday it had retaken all of DEIR EZZOR city from the jihadists."


def article(text: str, title: str = "", url: str = "https://news.example/a") -> Article:
    return Article(id=article_id(url), url=url, title=title, text=text, feed_id="f", outlet="Wire", language="en")


def verdicts(watches: list[Watch], text: str, title: str = "") -> dict[str, Verdict]:
    return {v.watch: v for v in why(watches, article(text, title))}


def test_a_match_names_the_spelling_its_source_and_what_allowed_it():
    """Deir Ezzor matched as written in an alias, as a derived one-word form, and after a joined Arabic
    preposition; Daesh's ambiguous IS counted because of a context word; a case-sensitive acronym as written."""
    watches = [
        Watch(name="Deir Ezzor", kind="place", aliases=["Deir ez-Zor", "دير الزور"]),
        Watch(name="Daesh", kind="group"),
    ]
    text = "Clashes in Deir ez-Zor and Deirezzor; اشتباكات بدير الزور. IS fighters and ISIS cells fled."
    found = verdicts(watches, text)
    deir = found["Deir Ezzor"]
    assert deir.matched and deir.reason is None
    spans = {s.matched: s for s in deir.spans}
    assert spans["Deir ez-Zor"].spelling == "Deir ez-Zor" and spans["Deir ez-Zor"].source == "config alias"
    assert spans["Deir ez-Zor"].reason == "always counts" and spans["Deir ez-Zor"].derived == ""
    assert spans["Deirezzor"].spelling == "Deir Ezzor" and spans["Deirezzor"].source == "config name"
    assert spans["Deirezzor"].derived == "derived form 'deirezzor'"
    assert spans["دير الزور"].derived == "after the joined clitic 'ب'"
    assert all(text[s.start : s.end] == s.matched and s.field == "text" for s in deir.spans)
    daesh = {s.matched: s for s in found["Daesh"].spans}
    assert daesh["IS"].source == "groups.yaml" and daesh["IS"].reason == "context word 'fighters' within 12 words"
    assert daesh["ISIS"].reason == "written as 'ISIS' (case-sensitive)"


def test_why_not_no_spelling_in_the_text():
    found = verdicts([Watch(name="Raqqa", kind="place")], "Nothing happened in Mosul today.")
    assert found["Raqqa"] == Verdict("Raqqa", False, reason="no spelling of it in the title or text", kind=NO_SPELLING)


def test_why_not_excluded_by_a_term():
    """The spelling is there, but an exclude term is within the window: the term is named."""
    watch = Watch(name="Raqqa", kind="place", exclude=["football club"])
    verdict = verdicts([watch], "The Raqqa football club won its match.")["Raqqa"]
    assert not verdict.matched and verdict.kind == EXCLUDED
    assert verdict.reason == "'Raqqa' excluded by 'football club' within 12 words"
    assert [r.matched for r in verdict.rejected] == ["Raqqa"]


def test_why_not_missing_context_word():
    """An alias that needs context, with none of the context words near it: they are listed."""
    watch = Watch(name="Orange", aliases=[Alias(text="Orange", needs_context=True)], context=["telecom", "operator"])
    watch = watch.model_copy(update={"name": "Orange operator"})
    verdict = verdicts([watch], "She drank orange juice at breakfast.")["Orange operator"]
    assert verdict.kind == NO_CONTEXT
    assert verdict.reason == "'orange' needs a context word within 12 words ('telecom', 'operator'): none there"
    assert verdicts([watch], "The telecom giant Orange cut prices.")["Orange operator"].matched


def test_why_not_case_of_a_case_sensitive_spelling():
    watch = Watch(name="SDF", kind="keyword", expand=False)  # an acronym: matched in capitals only
    verdict = verdicts([watch], "the sdf file format is old")["SDF"]
    assert verdict.kind == CASE and verdict.reason == "'sdf' is not written 'SDF' (that spelling is case-sensitive)"


def test_why_not_inside_a_longer_match_of_another_watch():
    watches = [Watch(name="Deir ez-Zor province"), Watch(name="Deir ez-Zor")]
    verdict = verdicts(watches, "Calm returned to Deir ez-Zor province.")["Deir ez-Zor"]
    assert verdict.kind == OVERLAP
    assert verdict.reason == "'Deir ez-Zor' is part of the longer match 'Deir ez-Zor province' (Deir ez-Zor province)"


def test_why_not_outside_a_near_window():
    rule = Watch(name="Deir clashes", rule={"near": ["Deir Ezzor", "clashes"], "words": 3})
    text = "Deir Ezzor was calm; later, far away and much later, clashes erupted."
    verdict = verdicts([rule], text)["Deir clashes"]
    assert verdict.kind == NOT_NEAR
    assert verdict.reason == "'Deir Ezzor' and 'clashes' are 8 words apart at the closest, NEAR allows 3"
    near = verdicts([rule], "Deir Ezzor: heavy clashes erupted.")["Deir clashes"]
    assert near.matched and {s.matched for s in near.spans} == {"Deir Ezzor", "clashes"}
    assert all(s.reason.endswith("rule Deir Ezzor NEAR/3 clashes") for s in near.spans)


def test_why_not_a_rule_part_missing_or_excluded_by_the_rule():
    both = Watch(name="Mosul and Raqqa", rule={"all": ["Mosul", "Raqqa"]})
    without = Watch(name="Raqqa not football", rule={"all": ["Raqqa", {"not": "football"}]})
    found = verdicts([both, without], "Raqqa's football team trained.")
    assert found["Mosul and Raqqa"].kind == RULE_PART_MISSING
    assert found["Mosul and Raqqa"].reason == "rule part missing: no spelling of 'Mosul' in the title or text"
    assert found["Raqqa not football"].kind == RULE_EXCLUDED
    assert found["Raqqa not football"].reason == "excluded by the rule: NOT football ('football' found)"


def test_the_explanation_agrees_with_the_matcher(caplog):
    """On the labelled evaluation set and the seed story, every span the matcher finds is explained (with a
    spelling and its source) and the walk finds nothing the matcher does not: no disagreement is logged."""
    data = yaml.safe_load(EVAL.read_text(encoding="utf-8"))
    watches = WatchList.model_validate({"watches": data["watches"]}).watches
    texts = [parse(item["text"])[0] for item in data["texts"]] + [SEED]
    caplog.set_level(logging.WARNING, logger="alerts.matching.explain")
    spans = 0
    for n, text in enumerate(texts):
        for verdict in why(watches, article(text, title=text[:60], url=f"https://news.example/{n}")):
            spans += len(verdict.spans)
            assert all(s.spelling and s.source and s.reason for s in verdict.spans), verdict
            assert verdict.matched or verdict.kind, verdict
    assert spans > 100
    assert "explain_disagrees" not in caplog.text


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A config folder with the shipped watches and a store holding the AFP seed story (every shipped watch
    matches it) and a short report of it, matched."""
    config_dir = write_config(tmp_path_factory.mktemp("why") / "project" / "config")
    config = load_config(config_dir)
    seed_title = "Daesh loses last towns in face of twin Syria, Iraq assaults"
    with open_store(config) as store:
        store.add_articles([article(SEED, title=seed_title, url=SEED_URL), article(AFP_TEXT, AFP_TITLE, AFP_URL)])
        run_alerts(config, store)
    return config_dir


def test_why_command_by_id_or_url_says_what_matched_and_why_not(project: Path):
    by_id = run_cli("why", article_id(AFP_URL), config_dir=project)
    assert by_id.returncode == 0, by_id.stderr
    assert "matched (" in by_id.stdout and "not matched (" in by_id.stdout
    assert re.search(r"^  Deir Ezzor$", by_id.stdout, re.M)
    assert "  Mosul: no spelling of it in the title or text" in by_id.stdout
    assert "text 53-63 'DEIR EZZOR': spelling 'Deir Ezzor' (config name); always counts" in by_id.stdout
    seed = run_cli("why", SEED_URL, config_dir=project)
    assert seed.returncode == 0 and "not matched" not in seed.stdout and "(+" in seed.stdout
    # The URL as shared (tracking parameters, another case of host) is the same article.
    by_url = run_cli("why", AFP_URL.replace("news.example", "NEWS.example") + "?utm_source=x", config_dir=project)
    assert by_url.returncode == 0 and by_url.stdout == by_id.stdout


def test_why_command_for_one_watch_and_as_json(project: Path):
    one = run_cli("why", AFP_URL, "raqqa", config_dir=project)
    assert one.returncode == 0, one.stderr
    assert "  Raqqa: no spelling of it in the title or text" in one.stdout
    assert one.stdout.endswith("also matched: Deir Ezzor\n")
    as_json = run_cli("why", AFP_URL, "--json", config_dir=project)
    record = json.loads(as_json.stdout)
    assert record["article"]["url"] == AFP_URL
    by_watch = {v["watch"]: v for v in record["verdicts"]}
    assert by_watch["Deir Ezzor"]["matched"] and by_watch["Deir Ezzor"]["spans"][0]["spelling"]
    assert by_watch["Mosul"] == {
        "watch": "Mosul",
        "matched": False,
        "kind": "no_spelling",
        "reason": "no spelling of it in the title or text",
        "spans": [],
        "rejected": [],
    }
    assert set(record["stored_hits"]) == {v["watch"] for v in record["verdicts"] if v["matched"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["https://news.example/never-stored"], "no stored article with the id or URL"),
        (["0123abcd"], "no stored article with the id or URL '0123abcd'"),
        ([AFP_URL, "Atlantis"], "no watch named 'Atlantis'"),
    ],
)
def test_why_command_unknown_article_or_watch_is_one_line_exit_2(project: Path, args: list[str], message: str):
    result = run_cli("why", *args, config_dir=project)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


def test_watch_explain_lists_the_generated_forms(project: Path):
    """`watch explain` lists the spellings, then the forms generated from them, marked as generated: the
    one-word Deirezzor, the Arabic name after a joined clitic."""
    result = run_cli("watch", "explain", "Deir Ezzor", config_dir=project)
    assert result.returncode == 0, result.stderr
    rows = dict(line.split("\t", 1) for line in result.stdout.splitlines())
    assert rows["Deir ez-Zor"] == "config alias"
    assert rows["deirezzor"] == "generated from 'Deir Ezzor': written as one word"
    assert rows["بدير الزور"].startswith("generated from 'دير الزور': ")
    assert list(rows).index("deirezzor") > list(rows).index("Deir ez-Zor")
