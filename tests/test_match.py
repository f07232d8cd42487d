"""Tests for alerts.match: spans, boundaries, offsets, overlaps, case, context and sentences."""

from pathlib import Path

import pytest

from alerts.match import case_ok
from alerts.matcher import sentence_around
from alerts.watchlist import CACHE_ENV, compile_watches
from newswatch.models import Article
from newswatch.watchspec import Alias, Watch

@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))


SEED = (Path(__file__).parent / "fixtures" / "matching" / "seed-afp-2017-11-04.txt").read_text(encoding="utf-8")


def kw(name, *aliases, **extra):
    return Watch(name=name, kind="keyword", aliases=list(aliases), expand=False, **extra)


@pytest.fixture(scope="module")
def seed_matcher(tmp_path_factory):
    return compile_watches([kw("Deir Ezzor"), kw("Abu Kamal"), kw("Daesh"), kw("SDF")],
                           tmp_path_factory.mktemp("cache"))


def test_spans_are_original_slices_at_original_offsets(seed_matcher):
    """Every span's matched text equals the original text at its offsets, and spans are sorted."""
    spans = seed_matcher.find(SEED)
    assert spans
    assert [s.start for s in spans] == sorted(s.start for s in spans)
    for s in spans:
        assert SEED[s.start : s.end] == s.matched
        assert s.field == "text"
    assert {s.watch for s in spans} == {"Deir Ezzor", "Abu Kamal", "Daesh", "SDF"}
    assert sum(s.watch == "Deir Ezzor" for s in spans) == SEED.count("Deir Ezzor") + SEED.count("DEIR EZZOR")


def test_case_diacritics_and_separators_do_not_matter():
    """One alias matches its capitalized, accented and hyphenated forms and reports them as written."""
    m = compile_watches([kw("Deir ez-Zor")])
    text = "DEIR EZ ZOR; Deïr ez Zor; deir-ez-zor; Deir  ez‐Zor."
    assert [s.matched for s in m.find(text)] == ["DEIR EZ ZOR", "Deïr ez Zor", "deir-ez-zor", "Deir  ez‐Zor"]


def test_word_boundaries_are_respected():
    """A name inside a longer word is not a match ('Raqqa' in 'Raqqawi', 'SDF' in 'SDFX')."""
    m = compile_watches([kw("Raqqa"), kw("Mosul")])
    assert m.find("Raqqawi and xMosul and Mosuls") == []
    assert [s.matched for s in m.find("(Raqqa), Mosul.")] == ["Raqqa", "Mosul"]


def test_arabic_attached_prefixes_are_word_boundaries():
    """An Arabic name after joined و ب ل ف ال (and لل) is found, and its span excludes the prefix."""
    m = compile_watches([kw("دير الزور"), kw("الرقة")])
    text = "قصف بدير الزور ووصل والرقة ثم للرقة وفيدير الزور"
    found = [(s.watch, s.matched) for s in m.find(text)]
    assert found == [("دير الزور", "دير الزور"), ("الرقة", "الرقة"), ("الرقة", "رقة")]


def test_longest_match_wins_on_overlap():
    """Of overlapping names the longest is reported once ('Islamic State' over 'State')."""
    m = compile_watches([kw("Islamic State"), kw("State")])
    spans = m.find("The Islamic State group and the State Department.")
    assert [(s.watch, s.matched) for s in spans] == [("Islamic State", "Islamic State"), ("State", "State")]


def test_acronyms_are_case_sensitive():
    """An all-capitals alias (SDF) matches SDF but not 'sdf'; case_ok accepts all capitals of a mixed form."""
    m = compile_watches([kw("SDF")])
    assert [s.matched for s in m.find("the SDF and the sdf")] == ["SDF"]
    assert case_ok("ISIS", "Isis") and not case_ok("isis", "Isis")


def test_ambiguous_alias_needs_context_and_respects_exclude():
    """A needs-context alias matches only near a context word or a plain alias, never near an exclude term."""
    m = compile_watches([
        kw("Daesh", Alias(text="IS", case_sensitive=True, needs_context=True), "Islamic State",
           context=["militants", "jihadist"], exclude=["goddess"], window=5),
    ])
    assert [s.matched for s in m.find("IS militants attacked.")] == ["IS"]
    assert [s.matched for s in m.find("The Islamic State (IS) said.")] == ["Islamic State", "IS"]
    assert m.find("What IS the plan? It is not clear.") == []
    assert m.find("IS militants worship the goddess.") == []


def test_acronym_hyphenated_to_held_led_backed_is_its_own_context():
    """"IS-held", "SDF-led": an acronym used as an armed group's name needs no context word; an exclude term
    still wins, and the same letters without the hyphenated qualifier still need context."""
    m = compile_watches([
        kw("Daesh", Alias(text="IS", case_sensitive=True, needs_context=True),
           Alias(text="Isis", needs_context=True), context=["militants"], exclude=["Japan"], window=5),
    ])
    assert [s.matched for s in m.find("IS-held territory shrank.")] == ["IS"]
    assert [s.matched for s in m.find("IS\u2011controlled villages emptied.")] == ["IS"]
    assert m.find("The IS held its ground. Nothing more.") == []  # no hyphen: an ordinary word
    assert m.find("IS-held drills near Japan.") == []
    assert m.find("IS-heldover stock.") == []  # the qualifier is a whole word
    assert m.find("Isis-inspired jewellery sold out.") == []  # only capitalized acronyms qualify


def test_match_article_covers_title_and_text_with_sentences(seed_matcher):
    """Hits come from title and text; each holds the sentence around it, at most 300 characters."""
    article = Article(id="a1", url="u", title="Daesh loses Abu Kamal", text=SEED, feed_id="f", outlet="o")
    hits = seed_matcher.match_article(article)
    assert {h.field for h in hits} == {"title", "text"}
    first = next(h for h in hits if h.field == "text" and h.watch == "SDF")
    assert first.sentence.startswith("In October, it lost its one-time de facto Syrian capital Raqqa")
    assert all(len(h.sentence) <= 300 and h.matched in h.sentence for h in hits)
    assert all(h.article_id == "a1" for h in hits)


def test_long_sentence_is_trimmed_around_the_match():
    """A sentence longer than 300 characters is cut to 300 around the match, with ellipses."""
    text = "word " * 100 + "Raqqa" + " word" * 100 + "."
    sentence = sentence_around(text, 500, 505)
    assert len(sentence) <= 300 and "Raqqa" in sentence and sentence.startswith("…") and sentence.endswith("…")


def test_near_rule_requires_both_terms_within_n_words():
    """NEAR(Daesh, Abu Kamal, 5) reports both spans when close, nothing when far apart."""
    m = compile_watches([Watch(name="Daesh near Abu Kamal", rule={"near": ["Daesh", "Abu Kamal"], "words": 5})])
    close = m.find("Daesh fighters fled to Abu Kamal.")
    assert [s.matched for s in close] == ["Daesh", "Abu Kamal"]
    assert {s.watch for s in close} == {"Daesh near Abu Kamal"}
    assert m.find("Daesh " + "x " * 10 + "Abu Kamal") == []


def test_all_any_not_rules():
    """ALL needs every term, ANY one of them, NOT vetoes the whole rule."""
    m = compile_watches([
        Watch(name="both", rule={"all": ["Raqqa", "Mosul"]}),
        Watch(name="either", rule={"any": ["Raqqa", "Mosul"]}),
        Watch(name="raqqa not mosul", rule={"all": ["Raqqa", {"not": "Mosul"}]}),
    ])
    assert {s.watch for s in m.find("Raqqa and Mosul")} == {"both", "either"}
    assert {s.watch for s in m.find("Raqqa alone")} == {"either", "raqqa not mosul"}


def test_arabic_name_after_joined_letters_that_are_not_clitics_is_not_a_match():
    """Only clitics may be joined before an Arabic name: 'الرقة' is found in 'والرقة', not in 'ابوالرقة'."""
    m = compile_watches([kw("الرقة"), kw("داعش")])
    assert [s.matched for s in m.find("زار ابوالرقة وعناصرداعش ثم والرقة")] == ["الرقة"]


def test_ambiguous_alias_is_confirmed_by_an_arabic_spelling_nearby():
    """An unconditional Arabic spelling of the same watch nearby confirms a needs-context alias."""
    m = compile_watches([kw("Daesh", "داعش", Alias(text="IS", case_sensitive=True, needs_context=True))])
    assert [s.matched for s in m.find("داعش (IS) said")] == ["داعش", "IS"]
    assert [s.matched for s in m.find("وداعش IS said")] == ["داعش", "IS"]
    assert m.find("What IS the plan?") == []
