"""Tests for alerts.matching.compile: spelling variants, expansion, explain, compile errors and caching."""

import pickle

import pytest

from alerts.matching import compile as watchlist
from alerts.matching.compile import CACHE_ENV, build_matcher, compile_watches, explain
from alerts.matching.gazetteer import find_place, load_groups, load_places
from alerts.matching.spellings import key_variants
from newswatch.core.config.watches import Watch
from newswatch.core.errors import ConfigError


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def defaults():
    names = [
        ("Deir Ezzor", "place"),
        ("Abu Kamal", "place"),
        ("Al-Qaim", "place"),
        ("Raqqa", "place"),
        ("Mosul", "place"),
        ("Hawija", "place"),
        ("Rawa", "place"),
        ("Daesh", "group"),
        ("SDF", "group"),
    ]
    return build_matcher([Watch(name=n, kind=k) for n, k in names])


def found(matcher, text):
    return [(s.watch, s.matched) for s in matcher.find(text)]


def keys(spelling, morph=True):
    return {k for k, _ in key_variants(spelling, morph)}


def test_latin_article_forms_are_generated():
    """'Deir Ezzor' yields the al/ez/az/joined/dropped article forms a writer may use."""
    assert {"deir al zor", "deir ezzor", "deir azzor", "deir zor", "deirezzor"} <= keys("Deir Ezzor")


def test_leading_article_may_be_dropped_only_before_long_names():
    """'Al-Qaim' also matches 'Qaim', but 'Al-Bab' does not match bare 'Bab'."""
    assert "qaim" in keys("Al-Qaim")
    assert "bab" not in keys("Al-Bab")


def test_taa_marbuta_transliterations():
    """A place ending in -ah also matches -a, and one ending in -a also -ah."""
    assert {"hawija", "hawijah"} <= keys("Hawija")
    assert {"raqqa", "raqqah"} <= keys("Raqqah")


def test_keywords_are_matched_as_given():
    """Without morphology (kind keyword) only the normalized spelling is a key."""
    assert keys("Deir Ezzor", morph=False) == {"deir ezzor"}


def test_arabic_article_variant_needs_the_article_prefix():
    """'الرقة' also yields 'رقه', flagged to match only after a joined article (للرقة)."""
    assert ("رقه", True) in key_variants("الرقة")


def test_explain_lists_config_names_with_their_source():
    """explain() names the config name and aliases, and flags acronyms as case-sensitive."""
    rows = explain(Watch(name="SDF", kind="keyword", aliases=["Syrian Democratic Forces"], expand=False))
    assert rows == [("SDF", "config name (case-sensitive)"), ("Syrian Democratic Forces", "config alias")]


def test_duplicate_watch_names_are_a_config_error():
    """Two watches with the same (normalized) name are refused with ConfigError."""
    with pytest.raises(ConfigError, match="two watches"):
        compile_watches([Watch(name="Raqqa"), Watch(name="RAQQA")])


def test_rule_terms_reuse_watches_of_the_same_name():
    """A rule term naming another watch matches that watch's aliases."""
    m = compile_watches(
        [
            Watch(name="Daesh", aliases=["ISIL"], expand=False),
            Watch(name="Daesh in Raqqa", rule={"near": ["Daesh", "Raqqa"], "words": 3}),
        ]
    )
    assert {s.watch for s in m.find("ISIL left Raqqa")} == {"Daesh", "Daesh in Raqqa"}


def test_gazetteer_holds_small_towns_with_arabic_names():
    """The shipped gazetteer has Hawija and Rawa (small towns) with their Arabic names."""
    hawija, rawa = find_place({"hawija"}), find_place({"rawa"})
    assert hawija.country == rawa.country == "IQ"
    assert "الحويجة" in {n for n, _ in hawija.names} and "راوة" in {n for n, _ in rawa.names}
    assert len(load_places()) > 1000


@pytest.mark.parametrize(
    "spelling", ["Deir ez-Zor", "Dayr az-Zawr", "Deir al-Zour", "دير الزور", "DEIR EZZOR", "بدير الزور", "Deir Ezzor"]
)
def test_place_watch_by_name_alone_finds_every_spelling(defaults, spelling):
    """{name: Deir Ezzor, kind: place} matches transliterations, Arabic and an attached Arabic prefix."""
    hits = found(defaults, f"Shelling hit {spelling} today.")
    assert [w for w, _ in hits] == ["Deir Ezzor"]
    assert hits[0][1] in spelling


@pytest.mark.parametrize("spelling", ["ISIS", "ISIL", "Islamic State", "Daech", "État islamique", "داعش", "Daesh"])
def test_group_watch_by_name_alone_finds_every_spelling(defaults, spelling):
    """{name: Daesh, kind: group} matches ISIS/ISIL/Islamic State/Daech/État islamique/داعش."""
    assert found(defaults, f"Reports said {spelling} withdrew.") == [("Daesh", spelling)]


def test_ambiguous_group_names_need_context(defaults):
    """'IS' and 'Isis' count only near context words; the goddess and 'is' never do."""
    assert found(defaults, "IS militants attacked the town.") == [("Daesh", "IS")]
    assert found(defaults, "Isis fighters fled.") == [("Daesh", "Isis")]
    assert found(defaults, "The goddess Isis was worshipped at Philae.") == []
    assert found(defaults, "WHAT IS THE PLAN? It is unclear.") == []


def test_sdf_name_is_ambiguous_but_its_long_forms_are_not(defaults):
    """'SDF' needs Syrian context (not Japan's Self-Defense Forces); 'قسد' and the full name need none."""
    assert found(defaults, "Japan's Self-Defense Forces (SDF) held drills near Tokyo.") == []
    assert found(defaults, "Kurdish-led SDF fighters advanced.") == [("SDF", "SDF")]
    assert found(defaults, "أعلنت قسد السيطرة") == [("SDF", "قسد")]


def test_curated_removals_and_ambiguous_places(defaults):
    """Husaybah is not Al-Qaim, Mosel is not Mosul, and Arabic القائم needs a place context."""
    assert found(defaults, "The Husaybah border post and the Mosel valley.") == []
    assert found(defaults, "قال القائم بالأعمال إن الوضع القائم مستمر") == []
    assert found(defaults, "دخلت القوات مدينة القائم") == [("Al-Qaim", "القائم")]


def test_explain_names_sources_for_places_and_groups():
    """explain() says where each name comes from: GeoNames id, places.yaml or groups.yaml."""
    place = dict(explain(Watch(name="Deir Ezzor", kind="place")))
    assert place["Dayr az-Zawr"] == "gazetteer: GeoNames 170794"
    assert place["Deir Ezzor"] == "config name"
    group = dict(explain(Watch(name="Daesh", kind="group")))
    assert group["Daech"] == "groups.yaml"
    assert group["IS"] == "groups.yaml (case-sensitive, needs context)"


def test_group_table_has_the_required_groups_with_sources():
    """The curated table covers Daesh, SDF, HTS, YPG, PKK, PMF, Hezbollah and SOHR, each with sources."""
    groups = {g.name: g for g in load_groups()}
    assert {"Daesh", "SDF", "HTS", "YPG", "PKK", "PMF", "Hezbollah", "Syrian Observatory for Human Rights"} <= set(
        groups
    )
    assert all(g.sources for g in groups.values())


def test_governorate_can_include_its_towns():
    """A governorate watch matches its towns only with include_towns (Anbar -> Rawa, Al-Qaim)."""
    text = "Fighting in Anbar province spread to Rawa."
    assert found(build_matcher([Watch(name="Anbar", kind="place")]), text) == [("Anbar", "Anbar province")]
    towns = build_matcher([Watch(name="Anbar", kind="place", include_towns=True)])
    assert found(towns, text) == [("Anbar", "Anbar province"), ("Anbar", "Rawa")]
    assert any(
        src.startswith("town of Anbar Governorate")
        for _, src in explain(Watch(name="Anbar", kind="place", include_towns=True))
    )


def test_unknown_place_keeps_its_given_names():
    """A place the gazetteer lacks still matches its name and aliases."""
    m = build_matcher([Watch(name="Nowhereville", kind="place", aliases=["Nulle Part"])])
    assert found(m, "From Nowhereville to Nulle Part.") == [
        ("Nowhereville", "Nowhereville"),
        ("Nowhereville", "Nulle Part"),
    ]


def test_compiled_matcher_is_cached_on_disk_and_in_memory(cache_dir):
    """A second compile of the same watches comes from memory, a fresh process's from the disk cache."""
    watches = [Watch(name="Raqqa", kind="place")]
    first = compile_watches(watches)
    assert compile_watches(watches) is first
    files = list(cache_dir.glob("matcher-*.pickle"))
    assert len(files) == 1
    watchlist._MEMORY.clear()
    again = compile_watches(watches)
    assert again is not first and found(again, "in Raqqa") == [("Raqqa", "Raqqa")]
    assert isinstance(pickle.loads(files[0].read_bytes()), type(first))


def test_unreadable_cache_is_rebuilt(cache_dir):
    """A corrupt cache file costs a rebuild, not an error."""
    watches = [Watch(name="Mosul", kind="place")]
    compile_watches(watches)
    watchlist._MEMORY.clear()
    for path in cache_dir.glob("matcher-*.pickle"):
        path.write_bytes(b"not a pickle")
    assert found(compile_watches(watches), "in Mosul") == [("Mosul", "Mosul")]
