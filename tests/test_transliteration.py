"""Cyrillic and Hebrew transcriptions generated for Latin watch names (issue #15 item 4), through the real
matcher: a place whose Cyrillic and Hebrew names the data lacks (Samarra) is found in Russian and Hebrew
copy, `watch explain` says those spellings are generated, and the guards keep ordinary words out."""

import pytest

from alerts.matching import transliteration
from alerts.matching.compile import compile_watches, explain
from alerts.matching.gazetteer import find_place
from newswatch.core.config.watches import Watch
from newswatch.core.textnorm import normalize
from tests.conftest import matched_spans

WATCHES = [("Samarra", "place"), ("Rawa", "place"), ("Qarah", "place"), ("Deir Ezzor", "place"), ("Daesh", "group")]


@pytest.fixture(scope="module")
def matcher(tmp_path_factory):
    return compile_watches([Watch(name=n, kind=k) for n, k in WATCHES], tmp_path_factory.mktemp("cache"))


def test_samarra_has_no_cyrillic_or_hebrew_name_in_the_data():
    """The premise of the tests below: every Cyrillic or Hebrew spelling of Samarra is generated."""
    place = find_place({"samarra"})
    assert place is not None and place.country == "IQ"
    assert not [n for n, _ in place.names if any("\u0400" <= c <= "\u05ff" for c in n)]


@pytest.mark.parametrize("form", ["Самарра", "Самарры", "Самарре", "Самарру", "Самаррой"])
def test_russian_transcription_with_case_endings(matcher, form):
    assert matched_spans(matcher, f"Иракские войска продвигаются к {form} после боёв.") == [("Samarra", form)]


def test_hebrew_transcription_with_a_context_word_and_a_joined_prefix(matcher):
    text = "כוחות הצבא העיראקי נכנסו לסמארה בלילה."
    assert matched_spans(matcher, text) == [("Samarra", "סמארה")]


def test_short_hebrew_transcription_needs_context(matcher):
    """סמארה is five letters: without a word of the place's news nearby it is not taken for the town."""
    assert matched_spans(matcher, "הוא קרא לכלב שלו סמארה מאז ומעולם.") == []


def test_explain_lists_the_transcriptions_as_generated():
    rows = dict(explain(Watch(name="Samarra", kind="place")))
    assert rows["Самарра"] == "generated: transliteration of 'Samarra'"
    assert rows["סמארה"] == "generated: transliteration of 'Samarra' (needs context)"
    cyrillic_or_hebrew = [src for text, src in rows.items() if any("\u0400" <= c <= "\u05ff" for c in text)]
    assert cyrillic_or_hebrew and all(src.startswith("generated: transliteration") for src in cyrillic_or_hebrew)


def test_given_names_are_not_generated_again():
    """Deir ez-Zor's Cyrillic and Hebrew names come from the data with their sources; a transcription
    that equals one of them is not listed a second time as generated."""
    rows = explain(Watch(name="Deir Ezzor", kind="place"))
    generated = [normalize(t).strip() for t, src in rows if "transliteration" in src]
    given = {normalize(t).strip() for t, src in rows if "transliteration" not in src}
    assert generated and len(generated) == len(set(generated)) and not set(generated) & given
    assert dict(rows)["Дейр-эз-Зор"].startswith("gazetteer")


def test_a_group_gets_no_transcription_where_its_table_has_names():
    assert not [src for _, src in explain(Watch(name="Daesh", kind="group")) if "transliteration" in src]


# -- hard negatives: ordinary words that a short name transcribes to


@pytest.mark.parametrize(
    "text",
    [
        "Это кара небесная, сказал он.",  # Qarah -> Кара, "punishment"
        "Не бойтесь кары за правду.",
        "עמדנו מול חלון ראווה ברחוב הראשי.",  # Rawa -> ראווה, "display"
        "השדה היה רווה מים אחרי הגשם.",  # Rawa -> רווה, "saturated"
    ],
)
def test_ordinary_words_are_not_names(matcher, text):
    assert matched_spans(matcher, text) == []


def test_ordinary_words_are_dropped_from_the_generated_spellings():
    for name in ("Qarah", "Rawa"):
        generated = {t for t, src in explain(Watch(name=name, kind="place")) if "transliteration" in src}
        assert not {normalize(t).strip() for t in generated} & {"кара", "ראווה", "רווה"}


def test_every_kept_transcription_has_its_sources_consonant_skeleton():
    for text, src in explain(Watch(name="Samarra", kind="place")):
        if "transliteration" in src:
            assert transliteration.skeleton(transliteration.read_back(text)) == transliteration.skeleton("samarra")


def test_skeleton_reads_the_article_and_the_scripts_alike():
    assert transliteration.skeleton("deir al zor") == transliteration.skeleton(transliteration.read_back("Дейр-эз-Зор"))
    assert transliteration.skeleton("hawija") == transliteration.skeleton(transliteration.read_back("חוויג'ה"))
    assert transliteration.skeleton("mosul") != transliteration.skeleton(transliteration.read_back("Масса"))
