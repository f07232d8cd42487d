"""A place the curated data knows but the gazetteer lacks is a place of its own (issue #15, item 2)."""

import logging

from alerts.matching.compile import build_matcher, explain
from alerts.matching.gazetteer import find_place
from newswatch.core.config.watches import Watch


def found(watches, text):
    return [(s.watch, s.matched) for s in build_matcher(watches).find(text)]


def test_husaybah_is_a_place_with_its_own_spellings(caplog):
    """{name: Husaybah, kind: place} expands to the names places.yaml knows, without a warning."""
    with caplog.at_level(logging.WARNING):
        names = dict(explain(Watch(name="Husaybah", kind="place")))
    assert "watch_not_in_gazetteer" not in caplog.text
    assert {"Qusaybah", "Husaiba", "حصيبة", "الحصيبة"} <= set(names)
    assert names["Qusaybah"] == "places.yaml (split from GeoNames 92138)"
    place = find_place({"qusaybah"})
    assert (place.name, place.country, place.admin1, place.kind) == ("Husaybah", "IQ", "01", "town")


def test_husaybah_and_al_qaim_match_apart():
    """Each watch finds its own town: Al-Qaim no longer holds Husaybah's names, and the reverse."""
    watches = [Watch(name="Husaybah", kind="place"), Watch(name="Al-Qaim", kind="place")]
    text = "Troops crossed from Qusaybah to Al-Qaim; وصلت القوات إلى الحصيبة ومدينة القائم"
    assert found(watches, text) == [
        ("Husaybah", "Qusaybah"),
        ("Al-Qaim", "Al-Qaim"),
        ("Husaybah", "الحصيبة"),
        ("Al-Qaim", "القائم"),
    ]
    assert found([Watch(name="Al-Qaim", kind="place")], "The Husaybah border post.") == []


def test_anbar_with_its_towns_includes_husaybah():
    """The split town keeps its governorate: Anbar with include_towns finds it."""
    watches = [Watch(name="Anbar", kind="place", include_towns=True)]
    assert found(watches, "Strikes near Husaybah.") == [("Anbar", "Husaybah")]
