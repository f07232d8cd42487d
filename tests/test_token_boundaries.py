"""Token boundaries (issue #15, item 5): a name glued to a following capital or digit is still a word."""

import pytest

from alerts.matching.compile import CACHE_ENV, compile_watches
from newswatch.core.config.watches import Watch, WatchList
from newswatch.core.textnorm import NormalizedText


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))


@pytest.fixture(scope="module")
def matcher(tmp_path_factory):
    watches = WatchList.model_validate(
        {
            "watches": [
                {"name": "Mosul", "kind": "place"},
                {"name": "Al-Qaim", "kind": "place"},
                {"name": "Deir Ezzor", "kind": "place"},
                {"name": "Raqqa", "kind": "place"},
                {"name": "Daesh", "kind": "group"},
            ]
        }
    ).watches
    return compile_watches(watches, tmp_path_factory.mktemp("cache"))


def spans(matcher, text):
    return [(s.watch, s.matched, s.start, s.end) for s in matcher.find(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Smoke over MosulReuters", [("Mosul", "Mosul", 11, 16)]),  # caption glued to its credit
        ("Troops near al-QaimJohn Smith/AFP", [("Al-Qaim", "al-Qaim", 12, 19)]),
        ("Mosul2017: the battle", [("Mosul", "Mosul", 0, 5)]),  # letter -> digit
        ("Deir ez-ZorAFP", [("Deir Ezzor", "Deir ez-Zor", 0, 11)]),  # a name of several words
        ("الموصل2017", [("Mosul", "الموصل", 0, 6)]),  # Arabic letters before a digit
        ("Raqqa's skyline, RaqqaGetty Images", [("Raqqa", "Raqqa", 0, 5), ("Raqqa", "Raqqa", 17, 22)]),
    ],
)
def test_a_name_glued_to_a_capital_or_a_digit_matches(matcher, text, expected):
    """Where extraction joins a caption and its credit, the name before the capital is found, at exact
    original offsets."""
    assert spans(matcher, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mosuled and Mosuline are not Mosul", [("Mosul", "Mosul", 29, 34)]),  # ordinary endings: no join
        ("MOSULREUTERS", []),  # all capitals: no small letter before a capital, so no join
        ("xMosul and 3Mosul", []),  # a join before the name is not a boundary
        ("Raqqawi cooking", []),
    ],
)
def test_a_name_inside_an_ordinary_word_still_does_not_match(matcher, text, expected):
    """Only a small letter -> capital or letter -> digit join is a boundary, and only after the name."""
    assert spans(matcher, text) == expected


def test_glued_acronym_still_needs_its_case_and_context(matcher):
    """An ambiguous acronym glued to a credit passes the same case and context checks as one spaced."""
    assert spans(matcher, "is2017") == []
    assert spans(matcher, "the IS2017 photo") == []  # IS without context
    assert spans(matcher, "ISReuters") == []  # capital after capital: no join
    assert spans(matcher, "IS militants in Mosul, IS2017") == [
        ("Daesh", "IS", 0, 2),
        ("Mosul", "Mosul", 16, 21),
        ("Daesh", "IS", 23, 25),
    ]


def test_a_capital_after_a_short_prefix_does_not_start_a_name():
    """The join only ends a name: 'Donald' in 'McDonald' or 'Phone' in 'iPhone' is not a match."""
    m = compile_watches([Watch(name="Donald", expand=False), Watch(name="Phone", expand=False)])
    assert m.find("McDonald sells no iPhone") == []
    assert [s.matched for s in m.find("Donald, a Phone")] == ["Donald", "Phone"]


def test_glued_positions_are_found_in_normalization():
    """NormalizedText.glued() gives the normalized index of each join, after deletions before it."""
    assert NormalizedText("MosulReuters").glued().tolist() == [5]
    assert NormalizedText("Ma'arratAFP and al-QaimJohn").glued().tolist() == [7, 22]
    assert NormalizedText("Mosul2017").glued().tolist() == [5]
    assert NormalizedText("MOSUL 2017, mosul-Reuters, Mosuled").glued().tolist() == []


def test_batches_find_glued_names_as_texts_alone(matcher):
    """find_many joins texts; a name glued to a credit is found in each, with each text's offsets."""
    texts = ["MosulReuters", "quiet day", "near al-QaimJohn", "Mosul2017"]
    assert [[(s.matched, s.start, s.end) for s in found] for found in matcher.find_many(texts)] == [
        [("Mosul", 0, 5)],
        [],
        [("al-Qaim", 5, 12)],
        [("Mosul", 0, 5)],
    ]
