"""Tests for alerts.matching.scan: spans, boundaries, offsets, overlaps, case, context and sentences."""

from pathlib import Path

import pytest

from alerts.matching import matcher as matcher_module
from alerts.matching.compile import CACHE_ENV, compile_watches
from alerts.matching.matcher import sentence_around
from alerts.matching.scan import case_ok
from newswatch.core.config.watches import Alias, Watch
from newswatch.core.models import Article


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))


SEED = (Path(__file__).parent / "fixtures" / "matching" / "seed-afp-2017-11-04.txt").read_text(encoding="utf-8")


def kw(name, *aliases, **extra):
    return Watch(name=name, kind="keyword", aliases=list(aliases), expand=False, **extra)


@pytest.fixture(scope="module")
def seed_matcher(tmp_path_factory):
    return compile_watches(
        [kw("Deir Ezzor"), kw("Abu Kamal"), kw("Daesh"), kw("SDF")], tmp_path_factory.mktemp("cache")
    )


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
    m = compile_watches(
        [
            kw(
                "Daesh",
                Alias(text="IS", case_sensitive=True, needs_context=True),
                "Islamic State",
                context=["militants", "jihadist"],
                exclude=["goddess"],
                window=5,
            ),
        ]
    )
    assert [s.matched for s in m.find("IS militants attacked.")] == ["IS"]
    assert [s.matched for s in m.find("The Islamic State (IS) said.")] == ["Islamic State", "IS"]
    assert m.find("What IS the plan? It is not clear.") == []
    assert m.find("IS militants worship the goddess.") == []


def test_context_and_exclude_reach_exactly_window_words_either_side():
    """With window=3, a context word, a plain alias or an exclude term 3 words away counts, 4 words away
    does not, before the match as after it."""
    m = compile_watches(
        [
            kw(
                "Daesh",
                Alias(text="IS", case_sensitive=True, needs_context=True),
                "Islamic State",
                context=["militants"],
                exclude=["goddess"],
                window=3,
            ),
        ]
    )
    assert [s.matched for s in m.find("militants one two IS")] == ["IS"]
    assert m.find("militants one two three IS") == []
    assert [s.matched for s in m.find("IS one two militants")] == ["IS"]
    assert m.find("IS one two three militants") == []
    assert [s.matched for s in m.find("Islamic State one IS")] == ["Islamic State", "IS"]
    assert [s.matched for s in m.find("Islamic State one two IS")] == ["Islamic State"]
    assert m.find("IS militants one goddess") == []
    assert [s.matched for s in m.find("IS militants one two goddess")] == ["IS"]


def test_acronym_hyphenated_to_held_led_backed_is_its_own_context():
    """ "IS-held", "SDF-led": an acronym used as an armed group's name needs no context word; an exclude term
    still wins, and the same letters without the hyphenated qualifier still need context."""
    m = compile_watches(
        [
            kw(
                "Daesh",
                Alias(text="IS", case_sensitive=True, needs_context=True),
                Alias(text="Isis", needs_context=True),
                context=["militants"],
                exclude=["Japan"],
                window=5,
            ),
        ]
    )
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
    m = compile_watches(
        [
            Watch(name="both", rule={"all": ["Raqqa", "Mosul"]}),
            Watch(name="either", rule={"any": ["Raqqa", "Mosul"]}),
            Watch(name="raqqa not mosul", rule={"all": ["Raqqa", {"not": "Mosul"}]}),
        ]
    )
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


# Texts that end or start mid-name, mid-article form, mid-context or mid-rule, when put side by side.
BOUNDARY_PIECES = [
    "Deir",
    "ez-Zor is here",
    "el",
    "Abu el",
    "Kaim",
    "militants",
    "IS",
    "IS attacked",
    "Islamic State (",
    "IS) said",
    "و",
    "الرقة",
    "ابو",
    "Daesh " + "x " * 10,
    "Abu Kamal",
    "Raqqa",
    "Mosul",
    "",
    "...",
    "l'",
    "État islamique",
    "\u0651Raqqa",
    "ﬁghters in Raqqa",
    "Deir ez-Zor province",
    "IS",
    "-held areas",
    SEED,
]


@pytest.fixture(scope="module")
def batch_matcher(tmp_path_factory):
    """Place and group watches (context words, Arabic clitics, article forms) and rules over them."""
    names = [
        ("Deir Ezzor", "place"),
        ("Abu Kamal", "place"),
        ("Al-Qaim", "place"),
        ("Raqqa", "place"),
        ("Mosul", "place"),
        ("Daesh", "group"),
        ("SDF", "group"),
    ]
    rules = [
        Watch(name="Raqqa and Mosul", rule={"all": ["Raqqa", "Mosul"]}),
        Watch(name="Raqqa not Mosul", rule={"all": ["Raqqa", {"not": "Mosul"}]}),
        Watch(name="Daesh near Abu Kamal", rule={"near": ["Daesh", "Abu Kamal"], "words": 5}),
    ]
    keyword = kw("Abu el")  # "Abu el" + "Kaim" would be read "abu al kaim"
    return compile_watches(
        [Watch(name=n, kind=k) for n, k in names] + [keyword] + rules, tmp_path_factory.mktemp("cache")
    )


def test_texts_matched_in_one_pass_get_the_spans_they_get_alone(batch_matcher):
    """find_many over texts that end and start mid-name, mid-context or mid-rule gives each text the
    spans find gives it alone: nothing is read across from one text into the next."""
    m = batch_matcher
    assert [s.matched for s in m.find("Deir\n\nez-Zor")] == ["Deir\n\nez-Zor"]  # one text: one name
    assert m.find_many(["Deir", "ez-Zor"]) == [[], []]
    assert [s.matched for s in m.find("militants IS")] == ["IS"]
    assert m.find_many(["militants", "IS"]) == [[], []]  # context words of another text do not count
    assert [s.matched for s in m.find("Abu el Kaim")] == ["el Kaim"]
    assert [[s.matched for s in spans] for spans in m.find_many(["Abu el", "Kaim"])] == [["Abu el"], ["Kaim"]]
    texts = [a + b for a in BOUNDARY_PIECES[:-1] for b in ("", " ")] + BOUNDARY_PIECES
    pairs = [[a, b] for a in BOUNDARY_PIECES[:-1] for b in BOUNDARY_PIECES[:-1]]
    for batch in [texts, list(reversed(texts)), *pairs]:
        assert m.find_many(batch) == [m.find(text) for text in batch]
    assert m.find_many([]) == []


@pytest.mark.parametrize("batch_chars", [matcher_module.BATCH_CHARS, 300])
def test_articles_matched_in_one_batch_get_the_hits_they_get_one_by_one(batch_matcher, batch_chars, monkeypatch):
    """match_articles gives exactly the hits of match_article article after article (titles, texts,
    offsets, sentences, rules), for a page of articles as the alerts pass reads one, matched in one pass
    or, past BATCH_CHARS characters, in several."""
    monkeypatch.setattr(matcher_module, "BATCH_CHARS", batch_chars)
    pieces = BOUNDARY_PIECES
    articles = [
        Article(
            id=f"a{i}",
            url="u",
            title=pieces[i * 7 % len(pieces)][:80],
            text=f"{pieces[i % len(pieces)]} {pieces[i * 3 % len(pieces)]}",
            feed_id="f",
            outlet="o",
            language=("en", "ar", "fr", None)[i % 4],
        )
        for i in range(3 * len(pieces))
    ]
    one_by_one = [hit for article in articles for hit in batch_matcher.match_article(article)]
    assert {h.watch for h in one_by_one} >= {"Raqqa", "Mosul", "Daesh", "Raqqa and Mosul", "Raqqa not Mosul"}
    assert batch_matcher.match_articles(articles) == one_by_one
    assert batch_matcher.match_articles([]) == []
