"""Every spelling a watch stands for: config names, gazetteer and group-table names, and their variants."""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass, field

from alerts.matching import gazetteer
from alerts.matching.scan import is_arabic, letters
from newswatch.core.config.watches import Alias, Watch
from newswatch.core.textnorm import normalize

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


@dataclass
class Expansion:
    """Everything a watch stands for once expanded: its spellings and its context/exclude words."""

    spellings: list[Spelling] = field(default_factory=list)
    context: list[str] = field(default_factory=list)
    ambiguous_exclude: list[str] = field(default_factory=list)


def _is_acronym(text: str) -> bool:
    """All-capital Latin words of up to five letters (IS, SDF, HTS) are acronyms: matched case-sensitively."""
    core = "".join(c for c in text if c.isalpha())
    return 0 < len(core) <= 5 and core.isascii() and core.isupper()


def _is_short_latin(text: str) -> bool:
    """Place names of four letters or fewer ('Hit', 'Ana') are words too: matched capitalized only."""
    core = "".join(c for c in text if c.isalpha())
    return 0 < len(core) <= 4 and not any(is_arabic(c) for c in core)


def _article_options(token: str, first: bool) -> list[str]:
    """Ways a transliterated 'al X' pair is written: al X, alX, azzor/ezzor (sun letters), and X alone."""
    opts = [f"al {token}", f"al{token}"]
    sun = _SUN.match(token)
    if sun:
        opts += [f"a{sun.group(1)}{token}", f"e{sun.group(1)}{token}"]
    if not first or len(token) >= 4:  # "Deir Zor", "Qaim"; not "Bab" for Al-Bab
        opts.append(token)
    return opts


def variants(norm: str, morph: bool = True) -> set[tuple[str, bool]]:
    """Keys a normalized spelling is matched under, each flagged "needs a joined Arabic article".

    With ``morph`` (places and groups), Latin article and sun-letter forms, taa marbuta -a/-ah and the
    joined two/three-word form are added; an Arabic name starting with ال also matches after لل/بال.
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
        if not is_arabic(last[0][-1]):
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
            Spelling(a.text, "groups.yaml", a.case_sensitive or _is_acronym(a.text), a.needs_context)
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
    return out


def _add_place(out: Expansion, place: gazetteer.Place, prefix: str) -> None:
    for text, source in place.names:
        ambiguous = normalize(text).strip() in place.ambiguous
        out.spellings.append(Spelling(text, prefix + source, _is_short_latin(text), ambiguous))
    out.context += place.context
    out.ambiguous_exclude += place.exclude
