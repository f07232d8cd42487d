"""Cyrillic and Hebrew transcriptions of a watch's Latin names, generated at compile time.

A Latin spelling (Raqqa, Samarra, Deir ez-Zor) is written in Russian press Cyrillic and in consonantal Hebrew
by the rules of data/transliteration.yaml (whole-word conventions such as Deir = Дейр, the article al as
аль- or assimilated эз-, letter groups). A candidate is kept only when it passes the guards, precision
first, in the spirit of Europe Media Monitor's name-variant matching:

- read back to Latin with anyascii (a maintained transliteration library), it has the consonant skeleton of
  its source (the rules and the library agree on what was written);
- it has at least four letters besides the article;
- none of its keys (with the Russian case endings the matcher adds) is a name of another place or group of
  the shipped data, or an ordinary word the data lists;
- it is not already a spelling of the watch.

A short generated Cyrillic name (four letters) is matched capitalized only, as a short Latin one is; a
Hebrew one of fewer than six letters needs a context word (Hebrew has no capitals). Matching itself is
unchanged: the kept candidates are spellings like any other.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from anyascii import anyascii

from alerts.matching import gazetteer
from newswatch.core.errors import ConfigError
from newswatch.core.textnorm import normalize, normalize_many

DATA_FILE = Path(__file__).parent / "data" / "transliteration.yaml"
MAX_PER_SOURCE = 6  # candidates kept per source spelling and script, fewest unusual choices first
_ENUMERATED = 4096  # choice combinations looked at per source before ranking them
_MIN_LETTERS = 4
_HEBREW_CONTEXT_BELOW = 6  # a generated Hebrew name shorter than this needs a context word
_SUN = ("sh", "th", "dh", "t", "d", "r", "z", "s", "n")
_LATIN = re.compile(r"^[a-z]+( [a-z]+)*$")
_HEBREW_FINALS = str.maketrans("כמנפצ", "ךםןףץ")


@dataclass(frozen=True)
class Script:
    """One target script's rules (a section of transliteration.yaml)."""

    name: str
    lang: str
    words: dict[str, list[str]]
    letters: dict[str, list[str]]
    initial: dict[str, list[str]]
    final: dict[str, list[str]]
    sun: list[str]
    moon: list[str]
    single_doubles: bool
    ordinary: frozenset[str]
    context: tuple[str, ...]


@dataclass(frozen=True)
class Generated:
    """A kept transcription: its text, the Latin spelling it transcribes and how it must be matched."""

    text: str
    source: str
    lang: str
    case_sensitive: bool = False
    needs_context: bool = False


@lru_cache(maxsize=1)
def load_scripts() -> tuple[Script, ...]:
    try:
        data = yaml.safe_load(DATA_FILE.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{DATA_FILE}: cannot read shipped data: {exc}") from exc
    scripts = []
    for name, lang in (("cyrillic", "ru"), ("hebrew", "he")):
        d = data[name]
        scripts.append(
            Script(
                name,
                lang,
                {k: list(v) for k, v in d.get("words", {}).items()},
                {k: list(v) for k, v in d["letters"].items()},
                {k: list(v) for k, v in d.get("initial", {}).items()},
                {k: list(v) for k, v in d.get("final", {}).items()},
                list(d["article"]["sun"]),
                list(d["article"]["moon"]),
                d.get("doubles") == "single",
                frozenset(normalize_many(d.get("ordinary", []))),
                tuple(d.get("context", ())),
            )
        )
    return tuple(scripts)


# -- the consonant skeleton both sides are compared on (ASCII, after anyascii for the candidate)

_DIGRAPHS = (
    ("shch", "s"),
    ("dzh", "g"),
    ("dj", "g"),
    ("zh", "g"),
    ("gh", "g"),
    ("sh", "s"),
    ("ch", "s"),
    ("kh", "k"),
    ("ts", "s"),
    ("tz", "s"),
    ("th", "t"),
    ("dh", "d"),
    ("ph", "f"),
    ("x", "ks"),
)
# One class per sound the scripts do not tell apart the same way: k q c h (Hebrew כ reads kh, Russian х
# writes h), j g, b v w (Russian в for w, Hebrew ב reads v); vowels and y are not part of a skeleton.
_CLASSES = str.maketrans({"q": "k", "c": "k", "h": "k", "j": "g", "v": "b", "w": "b", "p": "f"})
_VOWELS = re.compile(r"[aeiouy]")


def skeleton(latin: str) -> str:
    """The consonant skeleton of a Latin (ASCII) name: classes of consonants, no vowels, no doubles, and
    no article word (al, el, ez, an-: a word of one consonant before another word)."""
    words = [w for w in re.split(r"[^a-z]+", latin.lower().replace("'", "")) if w]
    out = []
    for word in words:
        for digraph, cls in _DIGRAPHS:
            word = word.replace(digraph, cls.upper())  # upper: not read again by a later digraph
        if word.endswith("h") and len(word) > 1:  # a final h is a vowel's (Raqqah, Hebrew ה)
            word = word[:-1]
        out.append(_VOWELS.sub("", word.lower().translate(_CLASSES)))
    if len(out) > 1:
        out = [w for i, w in enumerate(out) if len(w) != 1 or i == len(out) - 1]
    return re.sub(r"(.)\1+", r"\1", "".join(out))


def read_back(text: str) -> str:
    """``text`` (Cyrillic or Hebrew) in Latin letters, by anyascii. Hebrew vav is a vowel letter, doubled
    (וו) the consonant w, which anyascii reads v alike."""
    return anyascii(text.replace("וו", "w").replace("ו", "u"))


# -- generation


def _segments(word: str, script: Script) -> list[list[str]] | None:
    """Per letter group of ``word`` (normalized Latin), the ways ``script`` writes it; None if a letter
    has no rule."""
    if word in script.words:
        return [script.words[word]]
    out = []
    i = 0
    while i < len(word):
        if script.single_doubles and i and word[i] == word[i - 1] and word[i] not in "aeiou":
            i += 1
            continue
        for size in range(min(4, len(word) - i), 0, -1):
            seg = word[i : i + size]
            options = (
                (script.initial.get(seg) if i == 0 else None)
                or (script.final.get(seg) if i + size == len(word) else None)
                or script.letters.get(seg)
            )
            if options:
                out.append(options)
                i += size
                break
        else:
            return None
    return out


def _article(word: str, script: Script) -> list[str]:
    """How "al" before ``word`` is written: assimilated before a sun letter, else the moon form."""
    sun = next((s for s in _SUN if word.startswith(s)), None)
    if sun is None:
        return script.moon
    first = script.letters[sun][0]
    return [form.format(x=first) for form in script.sun]


def candidates(latin: str, script: Script, joiner: str) -> list[str]:
    """Transcriptions of the normalized Latin spelling ``latin`` into ``script``, the usual choices first;
    words joined by ``joiner`` and an article hyphenated to its word."""
    tokens = latin.split(" ")
    parts: list[list[list[str]]] = []  # per word: its segments' options
    articles: list[int] = []  # indexes of article words, whose written form ends with a hyphen
    for i, token in enumerate(tokens):
        if token == "al" and i + 1 < len(tokens):
            parts.append([_article(tokens[i + 1], script)])
            articles.append(i)
            continue
        segs = _segments(token, script)
        if segs is None:
            return []
        parts.append(segs)
    flat = [opts for word in parts for opts in word]
    bounds = list(itertools.accumulate(len(word) for word in parts))
    ranked = sorted(
        itertools.islice(itertools.product(*(range(len(o)) for o in flat)), _ENUMERATED),
        key=lambda choice: sum(c > 0 for c in choice),
    )
    out = []
    for choice in ranked:
        pieces = [flat[k][c] for k, c in enumerate(choice)]
        words = ["".join(pieces[lo:hi]) for lo, hi in zip([0, *bounds[:-1]], bounds, strict=True)]
        text = ""
        for i, w in enumerate(words):
            if script.name == "cyrillic" and (i == 0 or i not in articles):
                w = w[:1].upper() + w[1:]
            if script.name == "hebrew":
                w = re.sub(r"[כמנפצ]$", lambda m: m.group().translate(_HEBREW_FINALS), w)
            sep = "" if i == 0 else ("-" if i - 1 in articles else joiner)
            text += sep + w
        if text and text not in out:
            out.append(text)
        if len(out) >= MAX_PER_SOURCE:
            break
    return out


@lru_cache(maxsize=1)
def _shipped_names() -> dict[str, frozenset[str]]:
    """Every normalized name of the shipped places and groups, with the keys (places and groups) it names."""
    owners: dict[str, set[str]] = {}
    pairs = [(p.key, n) for p in gazetteer.load_places() for n, _ in p.names]
    pairs += [(f"group:{g.name}", n) for g in gazetteer.load_groups() for n in [g.name, *(a.text for a in g.aliases)]]
    for (owner, _), norm in zip(pairs, normalize_many([n for _, n in pairs]), strict=True):
        owners.setdefault(norm.strip(), set()).add(owner)
    return {k: frozenset(v) for k, v in owners.items()}


def _letters(text: str) -> int:
    return sum(c.isalpha() for c in text)


def transcriptions(
    sources: Iterable[str],
    own: set[str],
    owner: str,
    kind: str,
    keys_of: Callable[[str], set[str]],
    scripts: Iterable[str] = ("cyrillic", "hebrew"),
) -> list[Generated]:
    """The guarded Cyrillic and Hebrew transcriptions of the Latin ``sources`` of one watch.

    ``own`` holds the watch's spellings, normalized (never generated again); ``owner`` is its place's key
    (``geonames:170794``) or ``group:NAME``, whose own names are no collision; ``keys_of`` gives the keys a
    normalized spelling is matched under (spellings.variants, with the Russian case endings); ``scripts``
    limits the target scripts (a group gets only those its table has no name in).
    """
    names = _shipped_names()
    wanted = [s for s in load_scripts() if s.name in scripts]
    ordinary = {s.name: {k for w in s.ordinary for k in keys_of(w)} for s in wanted}
    out: list[Generated] = []
    seen = set(own)
    for text in dict.fromkeys(sources):
        core = [c for c in text if c.isalpha()]
        if len(core) <= 5 and "".join(core).isupper():  # an acronym is no name to transcribe
            continue
        latin = normalize(text).strip()
        if not _LATIN.match(latin):
            continue
        want = skeleton(latin)
        if len(want) < 2:
            continue
        # a place of the same Latin name (Sinjar the town and the district) shares its transcription too
        namesakes = names.get(latin, frozenset()) | {owner}
        for script in wanted:
            for cand in candidates(latin, script, "-" if kind == "place" and script.name == "cyrillic" else " "):
                norm = normalize(cand).strip()
                words = norm.split(" ")
                body = [w for i, w in enumerate(words) if not (i < len(words) - 1 and w in _article_forms(script))]
                if norm in seen or _letters("".join(body)) < _MIN_LETTERS:
                    continue
                if skeleton(read_back(cand)) != want:
                    continue
                keys = keys_of(norm)
                if keys & ordinary[script.name] or any(names.get(k, frozenset()) - namesakes for k in keys):
                    continue
                seen.add(norm)
                short = _letters(norm) <= 4
                if script.name == "hebrew" and _letters(norm) < _HEBREW_CONTEXT_BELOW:
                    if kind != "place":  # a group's table names it in Hebrew already: no guesswork
                        continue
                    out.append(Generated(cand, text, script.lang, needs_context=True))
                else:
                    out.append(Generated(cand, text, script.lang, case_sensitive=script.name == "cyrillic" and short))
    return out


def _article_forms(script: Script) -> set[str]:
    forms = {normalize(f).strip() for f in script.moon}
    forms |= {normalize(f.format(x=script.letters[s][0])).strip() for f in script.sun for s in _SUN}
    return forms


def context_words(lang: str) -> tuple[str, ...]:
    """The words of a place's news in ``lang`` that confirm a generated spelling needing context."""
    return next((s.context for s in load_scripts() if s.lang == lang), ())
