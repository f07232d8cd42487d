"""Precision and recall of watch matching on the labelled sets in tests/fixtures/matching/: eval.yaml
(English, Arabic, French) and eval-languages.yaml (the region's other news languages, issue #15)."""

import re
from pathlib import Path

import pytest
import yaml

from alerts.matching.compile import compile_watches
from newswatch.core.config.watches import WatchList

FIXTURES = Path(__file__).parent / "fixtures" / "matching"
EVAL = FIXTURES / "eval.yaml"
EVAL_LANGUAGES = FIXTURES / "eval-languages.yaml"
GOLD = re.compile(r"\[\[(?P<surface>[^|\]]+)\|(?P<watch>[^\]]+)\]\]")
MIN_PRECISION = 0.95  # measured 0.988 (docs/matching-eval.md)
MIN_RECALL = 0.95  # measured 0.988
# Per language of eval-languages.yaml: (precision, recall) floors, a little under what was measured
# (docs/matching-eval.md has the figures and the reasons for each miss).
LANGUAGE_FLOORS = {
    "ru": (0.97, 0.97),  # measured 1.000, 1.000
    "tr": (0.97, 0.94),  # measured 1.000, 0.966
    "fa": (0.97, 0.97),  # measured 1.000, 1.000
    "ckb": (0.97, 0.97),  # measured 1.000, 1.000
    "kmr": (0.97, 0.97),  # measured 1.000, 1.000
    "he": (0.97, 0.97),  # measured 1.000, 1.000
    "de": (0.97, 0.97),  # measured 1.000, 1.000
    "es": (0.97, 0.97),  # measured 1.000, 1.000
    "pt": (0.97, 0.97),  # measured 1.000, 1.000
}


def parse(marked: str) -> tuple[str, set[tuple[str, int, int]]]:
    """Strip [[surface|Watch]] marks; return the plain text and the gold (watch, start, end) spans."""
    parts, gold, pos, out_len = [], set(), 0, 0
    for m in GOLD.finditer(marked):
        parts.append(marked[pos : m.start()])
        out_len += m.start() - pos
        surface = m.group("surface")
        gold.add((m.group("watch"), out_len, out_len + len(surface)))
        parts.append(surface)
        out_len += len(surface)
        pos = m.end()
    parts.append(marked[pos:])
    return "".join(parts), gold


def _figures(tp: int, fp: int, fn: int) -> dict:
    return {"tp": tp, "fp": fp, "fn": fn, "precision": tp / (tp + fp), "recall": tp / (tp + fn)}


def score(tmp_path, path: Path = EVAL) -> dict:
    """Match every text of ``path``; return counts, precision, recall (overall and per language) and the
    misses/false hits by text id."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    matcher = compile_watches(WatchList.model_validate({"watches": data["watches"]}).watches, tmp_path)
    counts: dict[str, list[int]] = {}
    errors = {}
    for item in data["texts"]:
        text, gold = parse(item["text"])
        found = {(s.watch, s.start, s.end) for s in matcher.find(text)}
        c = counts.setdefault(item["lang"], [0, 0, 0])
        c[0] += len(found & gold)
        c[1] += len(found - gold)
        c[2] += len(gold - found)
        if found != gold:
            errors[item["id"]] = {"missed": sorted(gold - found), "false": sorted(found - gold)}
    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    return {
        "texts": len(data["texts"]),
        "negatives": sum(bool(t.get("negative")) for t in data["texts"]),
        "languages": sorted(counts),
        "per_language": {lang: _figures(*c) for lang, c in counts.items()},
        "texts_per_language": {lang: sum(t["lang"] == lang for t in data["texts"]) for lang in counts},
        "negatives_per_language": {
            lang: sum(t["lang"] == lang and bool(t.get("negative")) for t in data["texts"]) for lang in counts
        },
        **_figures(*total),
        "errors": errors,
        "known": {t["id"] for t in data["texts"] if t.get("known_error")},
    }


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return score(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def languages(tmp_path_factory):
    return score(tmp_path_factory.mktemp("cache"), EVAL_LANGUAGES)


def test_eval_set_is_large_and_multilingual(result):
    """The set has at least 30 texts in English, Arabic and French, hard negatives included."""
    assert result["texts"] >= 30
    assert result["languages"] == ["ar", "en", "fr"]
    assert result["negatives"] >= 10


def test_gold_marks_parse_to_exact_offsets():
    """A [[surface|Watch]] mark becomes the surface in the text and a span at its offsets."""
    text, gold = parse("in [[Raqqa|Raqqa]] and ل[[داعش|Daesh]]")
    assert text == "in Raqqa and لداعش"
    assert gold == {("Raqqa", 3, 8), ("Daesh", 14, 18)}


def test_precision_and_recall_meet_the_floor(result):
    """Name-and-kind watches reach the recorded precision and recall floors (docs/matching-eval.md)."""
    assert result["precision"] >= MIN_PRECISION, result["errors"]
    assert result["recall"] >= MIN_RECALL, result["errors"]


def test_only_known_errors_remain(result):
    """Every text is matched exactly (hard negatives get no hit), except those marked known_error."""
    assert set(result["errors"]) == result["known"], result["errors"]


def test_language_set_has_every_language_with_hard_negatives(languages):
    """At least 15 texts in each of the nine languages, three of them or more hard negatives."""
    assert languages["languages"] == sorted(LANGUAGE_FLOORS)
    for lang in LANGUAGE_FLOORS:
        assert languages["texts_per_language"][lang] >= 15, lang
        assert languages["negatives_per_language"][lang] >= 3, lang


@pytest.mark.parametrize("lang", sorted(LANGUAGE_FLOORS))
def test_language_precision_and_recall_meet_the_floor(languages, lang):
    """Each language reaches its recorded floors (docs/matching-eval.md)."""
    figures = languages["per_language"][lang]
    min_precision, min_recall = LANGUAGE_FLOORS[lang]
    errors = {k: v for k, v in languages["errors"].items() if k.split("-")[0] == lang}
    assert figures["precision"] >= min_precision, errors
    assert figures["recall"] >= min_recall, errors


def test_language_set_has_only_known_errors(languages):
    """Every text of the language set is matched exactly, except those marked known_error."""
    assert set(languages["errors"]) == languages["known"], languages["errors"]
