"""Every spelling a watch stands for: config names, gazetteer and group-table names, and their variants."""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass, field

from alerts.matching import gazetteer, transliteration
from alerts.matching.scan import is_arabic, is_hebrew, letters
from newswatch.core.config.watches import Alias, Watch
from newswatch.core.textnorm import normalize, normalize_many

log = logging.getLogger(__name__)

_SUN = re.compile(r"^(sh|th|dh|[tdrzsn])")
_ASSIMILATED = re.compile(r"^[ae](sh|th|dh|[tdrzsn])\1(\w{2,})$")
_MAX_VARIANTS = 48


@dataclass(frozen=True)
class Spelling:
    """One name a watch matches, where it came from, and how it must be matched."""

    text: str
    source: str
    case_sensitive: bool = False
    needs_context: bool = False
    lang: str = ""  # the language whose press writes it so, when the data says (kmr, ckb, de ...)


@dataclass
class Expansion:
    """Everything a watch stands for once expanded: its spellings and its context/exclude words."""

    spellings: list[Spelling] = field(default_factory=list)
    context: list[str] = field(default_factory=list)
    ambiguous_exclude: list[str] = field(default_factory=list)


def _cased(core: str) -> bool:
    """True when every letter of ``core`` has a case (Latin, Cyrillic, Greek: not Arabic or Hebrew)."""
    return all(c.isupper() or c.islower() for c in core)


def _is_acronym(text: str) -> bool:
    """All-capital words of up to five letters in a cased script (IS, SDF, HTS, ИГИЛ, IŞİD) are acronyms:
    matched case-sensitively."""
    core = "".join(c for c in text if c.isalpha())
    return 0 < len(core) <= 5 and core.isupper() and _cased(core)


def _is_short_latin(text: str) -> bool:
    """Place names of four letters or fewer in a cased script ('Hit', 'Ana', 'Хит') are words too: matched
    capitalized only. (Arabic and Hebrew have no capitals: their short names that are words need context.)"""
    core = "".join(c for c in text if c.isalpha())
    return 0 < len(core) <= 4 and _cased(core)


def _article_options(token: str, first: bool) -> list[str]:
    """Ways a transliterated 'al X' pair is written: al X, alX, azzor/ezzor (sun letters), and X alone."""
    opts = [f"al {token}", f"al{token}"]
    sun = _SUN.match(token)
    if sun:
        opts += [f"a{sun.group(1)}{token}", f"e{sun.group(1)}{token}"]
    if not first or len(token) >= 4:  # "Deir Zor", "Qaim"; not "Bab" for Al-Bab
        opts.append(token)
    return opts


# Russian case endings of a name's last word, by how it ends (after folding, й is и): a name in -а
# (Ракка: Ракки, Ракке, Ракку, Раккой), in -я, in a consonant (Мосул: Мосула, Мосуле, Мосулом), in -ь
# (Абу-Кемаль: Абу-Кемаля), in a vowel + й (Дубай: Дубая). Foreign names in -о, -е, -и, -у stay as they are.
_RUSSIAN_ENDINGS = {
    "а": ("ы", "и", "е", "у", "ой", "ою"),
    "я": ("и", "ю", "е", "ей", "ею"),
    "ь": ("я", "ю", "е", "ем", "и", "ью"),
    "": ("а", "у", "е", "ом", "ым"),
}
_CYRILLIC_VOWELS = "аеиоуыэюяё"


def _is_cyrillic(word: str) -> bool:
    return bool(word) and all("\u0400" <= c <= "\u04ff" for c in word)


def russian_forms(word: str, min_letters: int = 4) -> list[str]:
    """``word`` (normalized Cyrillic) and its case forms, for a name of at least ``min_letters`` letters."""
    if not _is_cyrillic(word) or len(word) < min_letters:
        return [word]
    last = word[-1]
    if last in "ая":
        stem, endings = word[:-1], _RUSSIAN_ENDINGS[last]
        if last == "а" and stem[-1:] in "жшчщц":  # after a hissing letter the instrumental is -ей (Хавиджей)
            endings += ("ей", "ею")
    elif last == "ь":
        stem, endings = word[:-1], _RUSSIAN_ENDINGS["ь"]
    elif last == "и" and len(word) > 1 and word[-2] in _CYRILLIC_VOWELS:  # -ай, -ей: written -аи, -еи
        stem, endings = word[:-1], ("я", "ю", "е", "ем")
    elif last in _CYRILLIC_VOWELS:
        return [word]
    else:
        stem, endings = word, _RUSSIAN_ENDINGS[""]
    return [word] + [stem + e.replace("й", "и") for e in endings]  # й folds to и, as in the text


def variants(norm: str, morph: bool = True) -> set[tuple[str, bool]]:
    """Keys a normalized spelling is matched under, each flagged "needs a joined article" (Arabic al,
    Hebrew ha).

    With ``morph`` (places and groups), Latin article and sun-letter forms, taa marbuta -a/-ah and the
    joined two/three-word form are added; an Arabic name starting with ال also matches after لل/بال, a
    Hebrew one starting with ה after ב ל כ (which swallow it); a Cyrillic name's last word takes the
    Russian case endings (Ракка: Ракки, Ракке ...; Дейр-эз-Зор: Дейр-эз-Зора).
    """
    if not norm:
        return set()
    keys = {(norm, False)}
    if morph:
        tokens = norm.split(" ")
        # "Ezzor" inside a name is an assimilated article: read it as "al zor" so every form is generated.
        canon = [tokens[0]] + [
            f"al {m.group(1)}{m.group(2)}" if (m := _ASSIMILATED.match(t)) else t for t in tokens[1:]
        ]
        tokens = " ".join(canon).split(" ")
        choices: list[list[str]] = []
        i = 0
        while i < len(tokens):
            if tokens[i] == "al" and i + 1 < len(tokens) and not is_arabic(tokens[i + 1][0]):
                choices.append(_article_options(tokens[i + 1], first=i == 0))
                i += 2
            else:
                choices.append([tokens[i]])
                i += 1
        last = choices[-1]
        if _is_cyrillic(last[0]):
            choices[-1] = russian_forms(last[0], 3 if len(choices) > 1 else 4)
        elif not is_arabic(last[0][-1]):
            choices[-1] = (
                last + [w[:-1] for w in last if w.endswith("ah")] + [w + "h" for w in last if re.search(r"[^a]a$", w)]
            )
        for combo in itertools.islice(itertools.product(*choices), _MAX_VARIANTS):
            variant = " ".join(combo)
            keys.add((variant, False))
            if 2 <= len(combo) <= 3:
                keys.add((variant.replace(" ", ""), False))
    for key, _ in list(keys):
        # li + al is written لل: "للرقة" holds "رقه", not "الرقه"; the stripped key needs that prefix.
        if key.startswith("ال") and len(key.split(" ")[0]) > 4:
            keys.add((key[2:], True))
        # be-/le-/ke- + ha is written ב ל כ: "במדינה האסלאמית"; the stripped key needs one of them.
        if morph and key.startswith("ה") and is_hebrew(key[1:2]) and len(key.split(" ")[0]) > 3:
            keys.add((key[1:], True))
    return {(k, a) for k, a in keys if len(k.replace(" ", "")) >= 2}


def key_variants(spelling: str, morph: bool = True) -> set[tuple[str, bool]]:
    """:func:`variants` of a spelling as written."""
    return variants(normalize(spelling).strip(), morph)


def term_watch(name: str) -> Watch:
    """The watch a bare name in a rule stands for: a known group, else a known place, else a keyword."""
    keys = {k for k, _ in key_variants(name)}
    if gazetteer.find_group(keys):
        return Watch(name=name, kind="group")
    if gazetteer.find_place(keys):
        return Watch(name=name, kind="place")
    return Watch(name=name, kind="keyword")


def expand(watch: Watch) -> Expansion:
    """Every spelling ``watch`` matches with its source: config name and aliases, then, for a place or
    group with ``expand``, the gazetteer's or group table's names (and a governorate's towns on request)."""
    out = Expansion(context=list(watch.context))
    out.spellings.append(Spelling(watch.name, "config name", _is_acronym(watch.name)))
    for alias in watch.aliases:
        if isinstance(alias, Alias):
            out.spellings.append(
                Spelling(
                    alias.text, "config alias", alias.case_sensitive or _is_acronym(alias.text), alias.needs_context
                )
            )
        else:
            out.spellings.append(Spelling(alias, "config alias", _is_acronym(alias)))
    if not watch.expand or watch.kind == "keyword":
        return out
    keys = {k for s in out.spellings for k, _ in key_variants(s.text)}
    if watch.kind == "group":
        group = gazetteer.find_group(keys)
        if group is None:
            log.warning("watch_not_in_group_table watch=%r", watch.name)
            return out
        table = [
            Spelling(
                a.text,
                f"groups.yaml ({a.source})" if a.source else "groups.yaml",
                a.case_sensitive or _is_acronym(a.text),
                a.needs_context,
                a.lang,
            )
            for a in (gazetteer.GroupAlias(group.name), *group.aliases)
        ]
        # A name that is also one of the table's ambiguous names (SDF, IS) is just as ambiguous, unless the
        # config spelled out how to match it (an Alias object).
        # Compared as written: "ISIS" is not ambiguous although "Isis" is.
        ambiguous = {letters(s.text) for s in table if s.needs_context}
        explicit = {alias.text for alias in watch.aliases if isinstance(alias, Alias)}
        out.spellings = [
            Spelling(s.text, s.source, s.case_sensitive, True)
            if s.text not in explicit and letters(s.text) in ambiguous
            else s
            for s in out.spellings + table
        ]
        out.context += group.context
        out.ambiguous_exclude += group.exclude
        out.spellings += inflections(out.spellings, "group")
        _add_transcriptions(out, [group.name], f"group:{group.name}", "group")
        return out
    place = gazetteer.find_place(keys)
    if place is None:
        log.warning("watch_not_in_gazetteer watch=%r", watch.name)
        return out
    _add_place(out, place, "")
    # A config spelling that the gazetteer knows to be an ordinary word too (القائم) needs context as well.
    explicit = {alias.text for alias in watch.aliases if isinstance(alias, Alias)}
    out.spellings = [
        Spelling(s.text, s.source, s.case_sensitive, True)
        if s.text not in explicit and normalize(s.text).strip() in place.ambiguous
        else s
        for s in out.spellings
    ]
    if watch.include_towns:
        if place.kind != "governorate":
            log.warning("watch_include_towns_ignored watch=%r reason=not_a_governorate", watch.name)
        for town in gazetteer.towns_of(place):
            _add_place(out, town, f"town of {place.name}: ")
    out.spellings += inflections(out.spellings, "place")
    _add_transcriptions(out, [place.name], place.key, "place")
    return out


def _add_transcriptions(out: Expansion, primary: list[str], owner: str, kind: str) -> None:
    """The Cyrillic and Hebrew transcriptions of the watch's own Latin names and of its place's or group's
    main name (transliteration.py), as generated spellings. A group gets them only in a script its table
    has no name in."""
    sources = [s.text for s in out.spellings if s.source in ("config name", "config alias")] + primary
    scripts = ("cyrillic", "hebrew")
    if kind == "group":
        scripts = tuple(
            n
            for n, test in (("cyrillic", _is_cyrillic), ("hebrew", is_hebrew))
            if not any(test(c) for s in out.spellings for c in s.text)
        )
    own = set(normalize_many([s.text for s in out.spellings]))
    generated = transliteration.transcriptions(
        sources, {o.strip() for o in own}, owner, kind, lambda n: {k for k, _ in variants(n)}, scripts
    )
    out.spellings += [
        Spelling(g.text, f"generated: transliteration of {g.source!r}", g.case_sensitive, g.needs_context, g.lang)
        for g in generated
    ]
    if any(g.needs_context for g in generated):
        out.context += [
            w for lang in {g.lang for g in generated if g.needs_context} for w in transliteration.context_words(lang)
        ]


def _add_place(out: Expansion, place: gazetteer.Place, prefix: str) -> None:
    langs = dict(place.languages)
    for text, source in place.names:
        ambiguous = normalize(text).strip() in place.ambiguous
        out.spellings.append(Spelling(text, prefix + source, _is_short_latin(text), ambiguous, langs.get(text, "")))
    out.context += place.context
    out.ambiguous_exclude += place.exclude


# -- grammatical forms the press of a language writes a name in, which no shared rule of normalization
# or variants gives: generated from the spellings the data tags with that language (Russian's case
# endings need no tag: variants() gives them to every Cyrillic name).

_SORANI_LETTERS = frozenset("\u06d5\u06c6\u06ce\u0695\u06b5\u06be")  # ە ۆ ێ ڕ ڵ ھ: Sorani, not Arabic
_SORANI_VOWEL_END = frozenset("\u06d5\u0627\u0648\u06c6\u06ce\u06cc\u064a")
_KURMANJI_VOWELS = frozenset("aeiouêîûAEIOUÊÎÛ")
_GERMAN_ADJECTIVE = re.compile(r"^(\w*isch)(e|er|en|es|em)?$", re.IGNORECASE)
_GERMAN_ADJECTIVE_ENDINGS = ("e", "er", "en", "es", "em")


def _language_of(s: Spelling) -> str:
    if s.lang:
        return s.lang
    return "ckb" if any(c in _SORANI_LETTERS for c in s.text) else ""


def _kurmanji(text: str, kind: str) -> list[tuple[str, str]]:
    """Kurmanji's oblique case, written on the name: li Reqayê, li Mûsilê, çekdarên DAIŞê."""
    if len([c for c in text if c.isalpha()]) < 3 or not text[-1].isalpha():
        return []
    glue = "y" if text[-1] in _KURMANJI_VOWELS else ""
    return [(f"{text}{glue}ê", "Kurmanji oblique case"), (f"{text}{glue}î", "Kurmanji oblique case")]


def _sorani(text: str, kind: str) -> list[tuple[str, str]]:
    """Sorani's joined postpositions and particles: لە موسڵدا (in), لە ڕەققەوە (from), داعشیش (also), and
    the izafe joining a name to what follows (کۆنتڕۆڵی ڕەققەی کرد)."""
    if len(text) < 3 or not is_arabic(text[-1]):
        return []
    from_ = "وە" if text[-1] in _SORANI_VOWEL_END else "ەوە"
    return [
        (text + "دا", "Sorani postposition -da"),
        (text + from_, "Sorani postposition -ewe"),
        (text + "یش", "Sorani -ish"),
        (text + "ی", "Sorani izafe -î"),
    ]


def _german(text: str, kind: str) -> list[tuple[str, str]]:
    """German declension: the -isch adjective's endings (der Islamische Staat, des Islamischen Staates) and
    the genitive -s of a place or one-word name (Mossuls Altstadt, Rakkas Einnahme)."""
    words = text.split(" ")
    out = []
    choices = [
        [m.group(1) + e for e in _GERMAN_ADJECTIVE_ENDINGS] if (m := _GERMAN_ADJECTIVE.match(w)) else [w] for w in words
    ]
    for combo in itertools.islice(itertools.product(*choices), _MAX_VARIANTS):
        form = " ".join(combo)
        if form != text:
            out.append((form, "German adjective ending"))
    last = words[-1]
    if (
        (kind == "place" or len(words) == 1)
        and len(last) >= 4
        and last[-1].isalpha()
        and last[-1].lower() not in "sxzß"
    ):
        out.append((f"{text}s", "German genitive -s"))
    return out


_INFLECT = {"kmr": _kurmanji, "ckb": _sorani, "de": _german}


def inflections(spellings: list[Spelling], kind: str) -> list[Spelling]:
    """The grammatical forms of the language-tagged ``spellings`` (a place's or a group's) as spellings of
    their own, each saying it is generated and from what; forms already listed are left out."""
    listed = {s.text for s in spellings}
    out = []
    for s in spellings:
        rule = _INFLECT.get(_language_of(s))
        if rule is None:
            continue
        for form, how in rule(s.text, kind):
            if form not in listed:
                listed.add(form)
                out.append(Spelling(form, f"generated: {how} of {s.text!r}", s.case_sensitive, s.needs_context, s.lang))
    return out
