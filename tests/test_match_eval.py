"""Precision and recall of watch matching on the labelled set tests/fixtures/matching/eval.yaml."""

import re
from pathlib import Path

import pytest
import yaml

from alerts.matching.compile import compile_watches
from newswatch.core.config.watches import WatchList

EVAL = Path(__file__).parent / "fixtures" / "matching" / "eval.yaml"
GOLD = re.compile(r"\[\[(?P<surface>[^|\]]+)\|(?P<watch>[^\]]+)\]\]")
MIN_PRECISION = 0.95  # measured 0.988 (docs/matching-eval.md)
MIN_RECALL = 0.95  # measured 0.988


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


def score(tmp_path) -> dict:
    """Match every text; return counts, precision, recall and the misses/false hits by text id."""
    data = yaml.safe_load(EVAL.read_text(encoding="utf-8"))
    matcher = compile_watches(WatchList.model_validate({"watches": data["watches"]}).watches, tmp_path)
    tp = fp = fn = 0
    errors = {}
    for item in data["texts"]:
        text, gold = parse(item["text"])
        found = {(s.watch, s.start, s.end) for s in matcher.find(text)}
        tp += len(found & gold)
        fp += len(found - gold)
        fn += len(gold - found)
        if found != gold:
            errors[item["id"]] = {"missed": sorted(gold - found), "false": sorted(found - gold)}
    return {
        "texts": len(data["texts"]),
        "negatives": sum(bool(t.get("negative")) for t in data["texts"]),
        "languages": sorted({t["lang"] for t in data["texts"]}),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
        "errors": errors,
    }


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return score(tmp_path_factory.mktemp("cache"))


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
    data = yaml.safe_load(EVAL.read_text(encoding="utf-8"))
    known = {t["id"] for t in data["texts"] if t.get("known_error")}
    assert set(result["errors"]) == known, result["errors"]
