"""Why a watch matched or did not, and what to search for it: pure functions over the compiled matcher.

The hot path (scan.scan, Matcher.find / match_articles) decides with arrays and keeps no reasons. This module
walks the same automaton with the same checks, one candidate at a time, and writes down each decision: the
spelling found, where that spelling comes from, and what allowed it (no condition, its case, a context word)
or what stopped it (its case, an exclude term, no context word, a longer match, a rule part). Explaining one
article costs milliseconds, so it is done only when asked (`newswatch why`, `match --explain`, a story's web
page), and what it says is checked against the matcher's own answer (:func:`why`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from alerts.matching.compile import compile_watches
from alerts.matching.matcher import Matcher
from alerts.matching.rules import Node, _words_between, evaluate
from alerts.matching.scan import (
    ACRONYM_QUALIFIER,
    ARABIC_ARTICLE_PREFIXES,
    ARABIC_PREFIXES,
    CompiledSpelling,
    _another_within,
    _clitics,
    _excluded,
    case_ok,
    is_arabic,
    resolve_overlaps,
    space_positions,
    word_windows,
)
from alerts.matching.spellings import Spelling, expand, term_watch, variants
from newswatch.core.config.watches import Watch
from newswatch.core.models import Article
from newswatch.core.store.query import folded_words
from newswatch.core.textnorm import NormalizedText, normalize

log = logging.getLogger(__name__)

# Phrases a watch adds to a search: its spellings, their Arabic forms with joined clitics, then the derived
# forms; one index lookup each, so a watch of a thousand gazetteer names stays a bounded query.
MAX_SEARCH_PHRASES = 300
# Joined before an Arabic name by a conjunction and/or a preposition: what a tokenizing index keeps as part
# of the word (بدير الزور is the token بدير), so the search asks for these forms too.
_ARABIC_CLITICS = ("و", "ف", "ب", "ل", "ك", "وب", "ول", "فب", "فل", "وك")
_ARABIC_CLITICS_BEFORE_ARTICLE = ("و", "ف", "ب", "ك", "وب", "فب", "وك")  # + لل for li + al (للرقة)
_REASONS_SHOWN = 3

# Why a watch did not match (Verdict.kind): the reason kinds, most telling first.
NO_SPELLING = "no_spelling"
EXCLUDED = "excluded"
NO_CONTEXT = "no_context"
CASE = "case"
OVERLAP = "overlap"
NOT_NEAR = "not_near"
RULE_PART_MISSING = "rule_part_missing"
RULE_EXCLUDED = "rule_excluded"


@dataclass(frozen=True)
class Explained:
    """One spelling of a watch found in a field: where (original offsets), as written (``matched``), the
    spelling it is (as configured or listed, ``source`` saying where that is), how the form found derives
    from it (``derived``, "" when written so), and ``reason``: what allowed it or, for a rejected one, what
    stopped it."""

    watch: str
    field: str
    start: int
    end: int
    matched: str
    spelling: str
    source: str
    reason: str
    derived: str = ""


@dataclass(frozen=True)
class Verdict:
    """Whether one watch matches an article and why: its ``spans`` when it matched; otherwise ``kind`` (one
    of the reason kinds above) and ``reason`` (one line), with the spellings found but not counted
    (``rejected``, each saying why)."""

    watch: str
    matched: bool
    spans: tuple[Explained, ...] = ()
    reason: str | None = None
    kind: str | None = None
    rejected: tuple[Explained, ...] = ()


class _Found(NamedTuple):
    """A spelling the automaton found, in normalized offsets, and what the checks made of it (``kind`` ""
    when it passed; ``why`` the reason either way)."""

    start: int
    end: int
    term: int
    entry: CompiledSpelling
    prefix: str  # the Arabic clitics joined before it
    kind: str
    why: str


# -- search


def search_phrases(watches: Sequence[Watch], query: str) -> tuple[Watch | None, list[str]]:
    """The watch a search query names and the phrases to search for it, or ``(None, [])``.

    The query (quotes around it ignored) is normalized as matching normalizes; it names a watch when that is
    the watch's name or one of the forms its spellings are matched under ("Deir ez-Zor", "deir-ez-zor" and
    "دير الزور" all name Deir Ezzor). The phrases are what a full-text index can look up: the spellings as
    written, the Arabic ones with joined clitics (بدير الزور), then the derived forms (Deirezzor), once each,
    at most MAX_SEARCH_PHRASES. Spellings the matcher takes only with a context word (IS, Isis) or in one
    capitalization (Hit, Ana) would find every "is" and "hit" in an index that folds case: they are left out,
    and so is a query in search syntax (OR, -word, word*). A rule watch has no phrases of its own (the
    caller may list its hits instead)."""
    text = query.strip()
    if len(text) > 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    if not text or _in_search_syntax(text):
        return None, []
    key = normalize(text).strip()
    if not key:
        return None, []
    specs = tuple(w.model_dump_json() for w in watches)
    names, forms = _watch_index(specs)
    # A watch's own name first: "SDF" is the SDF watch, whoever else spells it so.
    found = names.get(key, forms.get(key))
    if found is None:
        return None, []
    return watches[found], list(_phrases(specs[found]))


def _in_search_syntax(text: str) -> bool:
    """True for a query that uses the search syntax (store/query.py): OR, -word, word*, a quoted phrase."""
    return '"' in text or any(w == "OR" or w.startswith("-") or w.endswith("*") for w in text.split())


@lru_cache(maxsize=4)
def _watch_index(specs: tuple[str, ...]) -> tuple[dict[str, int], dict[str, int]]:
    """For a list of watches (as JSON): which one each normalized name is, and which one each normalized
    form of an unambiguous spelling is (the first watch that has it). Built once per list of watches."""
    names: dict[str, int] = {}
    forms: dict[str, int] = {}
    for i, spec in enumerate(specs):
        watch = Watch.model_validate_json(spec)
        names.setdefault(normalize(watch.name).strip(), i)
        if watch.rule is not None:
            continue
        morph = watch.kind in ("place", "group")
        for spelling in expand(watch).spellings:
            if not spelling.needs_context:
                for key, _ in variants(normalize(spelling.text).strip(), morph):
                    forms.setdefault(key, i)
    return names, forms


@lru_cache(maxsize=256)
def _phrases(watch_json: str) -> tuple[str, ...]:
    watch = Watch.model_validate_json(watch_json)
    if watch.rule is not None:
        return ()
    morph = watch.kind in ("place", "group")
    usable = [s for s in expand(watch).spellings if _searchable(s)]
    written = [s.text for s in usable]
    clitics = [form for text in written if is_arabic(text[0]) for form in _with_clitics(text)]
    derived = [
        key for s in usable if not s.case_sensitive for key, _ in sorted(variants(normalize(s.text).strip(), morph))
    ]
    seen: set[tuple[str, ...]] = set()
    out: list[str] = []
    for phrase in [*written, *clitics, *derived]:
        words = folded_words(phrase)
        if words and words not in seen:
            seen.add(words)
            out.append(phrase)
    return tuple(out[:MAX_SEARCH_PHRASES])


def _searchable(spelling: Spelling) -> bool:
    """A spelling worth looking up in an index that folds case: not one that needs context, and, among those
    matched in one capitalization, only the longer ones and the acronyms of three letters or more."""
    if spelling.needs_context:
        return False
    if not spelling.case_sensitive:
        return True
    core = "".join(c for c in spelling.text if c.isalpha())
    return len(core) > 4 or (len(core) >= 3 and core.isupper())


def _with_clitics(text: str) -> list[str]:
    """An Arabic name with the clitics that are written joined to it: بدير الزور, والرقة, للرقة."""
    if text.startswith("ال"):
        return [c + text for c in _ARABIC_CLITICS_BEFORE_ARTICLE] + [c + "لل" + text[2:] for c in ("", "و", "ف")]
    return [c + text for c in _ARABIC_CLITICS]


# -- the forms derived from a watch's spellings


def derived_forms(watch: Watch) -> list[tuple[str, str]]:
    """The forms a watch is matched under that none of its spellings is written as, each with how it was
    derived, e.g. ``("deirezzor", "generated from 'Deir Ezzor': written as one word")`` (normalized, as
    the matcher compares them), then one example per Arabic spelling of the clitics that may be joined to
    it (بدير الزور). A rule watch has none of its own: its terms are watches or names of their own."""
    if watch.rule is not None:
        return []
    morph = watch.kind in ("place", "group")
    spellings = list({s.text: s for s in expand(watch).spellings}.values())
    written = {normalize(s.text).strip() for s in spellings}
    rows: dict[str, str] = {}
    for s in spellings:
        base = normalize(s.text).strip()
        notes = [n for n, on in (("case-sensitive", s.case_sensitive), ("needs context", s.needs_context)) if on]
        tail = f" ({', '.join(notes)})" if notes else ""
        for key, after_article in sorted(variants(base, morph)):
            if key in written or key in rows:
                continue
            if after_article:
                how = f"after a joined article only (لل{key}, بال{key})"
            elif " " in base and " " not in key:
                how = "written as one word"
            else:
                how = "article, sun-letter or -a/-ah form"
            rows[key] = f"generated from {s.text!r}: {how}{tail}"
    for s in spellings:
        if is_arabic(s.text[0]):
            how = "and every Arabic form after the joined clitics و ف ب ل ك, alone or paired (وب، ول ...)"
            rows.setdefault("ب" + s.text, f"generated from {s.text!r}: {how}")
    return list(rows.items())


# -- why


def why(watches: Sequence[Watch], article: Article) -> list[Verdict]:
    """For each of ``watches``, in order: whether it matches ``article`` (title and text, as the alerts pass
    matches) and why, or why not. Matched or not is the matcher's own answer; the explanation is checked
    against it (a span the walk did not explain is still listed, as matched)."""
    matcher = compile_watches(watches)
    fields = {"title": article.title or "", "text": article.text or ""}
    real = matcher.match_article(article)
    return _verdicts(matcher, watches, fields, {(h.watch, h.field, h.start, h.end): h.matched for h in real})


def explain_spans(watches: Sequence[Watch], text: str) -> list[Explained]:
    """The spans ``Matcher.find(text)`` gives, in its order, each with its spelling, source and reason."""
    matcher = compile_watches(watches)
    real = matcher.find(text)
    verdicts = _verdicts(
        matcher, watches, {"text": text}, {(s.watch, s.field, s.start, s.end): s.matched for s in real}
    )
    by_span = {(e.watch, e.start, e.end): e for v in verdicts for e in v.spans}
    return [by_span[(s.watch, s.start, s.end)] for s in real]


def _verdicts(
    matcher: Matcher, watches: Sequence[Watch], fields: dict[str, str], real: dict[tuple[str, str, int, int], str]
) -> list[Verdict]:
    sources = _Sources(matcher, watches)
    walks = {name: _Walk(matcher, sources, NormalizedText(text), name) for name, text in fields.items() if text}
    candidates = {name: walk.kept for name, walk in walks.items()}
    verdicts = []
    for name, node in matcher.watches:
        if node[0] == "term":
            explained = [walk.explain(c, name) for walk in walks.values() for c in walk.kept if c[2] == node[1]]
            reason = None if explained else _term_failure(walks, node[1])
        else:
            result = evaluate(node, candidates, lambda f: walks[f].spaces)
            rule = _describe(matcher, node)
            explained = [
                walks[f].explain(c, name, f"rule {rule}") for f, found in (result or {}).items() for c in sorted(found)
            ]
            reason = None if result is not None else _rule_failure(matcher, walks, candidates, node)
        spans = _checked_against(explained, name, real)
        if spans:
            verdicts.append(Verdict(name, True, tuple(spans)))
            continue
        kind, line = reason or (NO_SPELLING, "no spelling of it in the title or text")
        rejected = tuple(r for walk in walks.values() for r in walk.rejected(name, _terms_of(node)))
        verdicts.append(Verdict(name, False, reason=line, kind=kind, rejected=rejected))
    order = {w.name: i for i, w in enumerate(watches)}
    return sorted(verdicts, key=lambda v: order.get(v.watch, len(order)))


def _checked_against(
    explained: list[Explained], watch: str, real: dict[tuple[str, str, int, int], str]
) -> list[Explained]:
    """The explained spans the matcher itself found for ``watch``, and any it found that the walk did not
    (listed as matched, unexplained). The two must agree: a disagreement is logged (tests/test_why.py)."""
    spans = {(e.field, e.start, e.end): e for e in explained if (watch, e.field, e.start, e.end) in real}
    extra = [e for e in explained if (watch, e.field, e.start, e.end) not in real]
    for (name, field, start, end), matched in real.items():
        if name == watch and (field, start, end) not in spans:
            extra.append(Explained(watch, field, start, end, matched, matched, "", "matched"))
            spans[(field, start, end)] = extra[-1]
    if extra:
        log.warning("explain_disagrees watch=%r spans=%r", watch, [(e.field, e.start, e.end) for e in extra])
    return sorted(spans.values(), key=lambda e: (e.field != "title", e.start, e.end))


def _terms_of(node: Node) -> set[int]:
    if node[0] == "term":
        return {node[1]}
    children = node[1] if node[0] in ("any", "all") else node[1:2] if node[0] == "not" else node[1:3]
    return set().union(*(_terms_of(child) for child in children))


class _Sources:
    """Per term of the matcher: where each of its spellings comes from (the watch it stands for expanded)."""

    def __init__(self, matcher: Matcher, watches: Sequence[Watch]):
        by_key = {normalize(w.name).strip(): w for w in watches if w.rule is None}
        self._watches = [by_key.get(normalize(t.name).strip()) or term_watch(t.name) for t in matcher.terms]
        self._sources: dict[int, tuple[dict[str, str], dict[str, str]]] = {}
        self.names: dict[int, list[str]] = {}  # term -> the watches that are just that term
        for name, node in matcher.watches:
            if node[0] == "term":
                self.names.setdefault(node[1], []).append(name)

    def _rows(self, term: int) -> tuple[dict[str, str], dict[str, str]]:
        if term not in self._sources:
            sources: dict[str, str] = {}
            written: dict[str, str] = {}
            for s in expand(self._watches[term]).spellings:
                sources.setdefault(s.text, s.source)
                written.setdefault(normalize(s.text).strip(), s.text)
            self._sources[term] = (sources, written)
        return self._sources[term]

    def source(self, term: int, form: str) -> str:
        """Where the spelling ``form`` of ``term`` comes from (config name, alias, gazetteer...)."""
        return self._rows(term)[0].get(form, "")

    def spelling(self, term: int, found: str, entry: CompiledSpelling) -> str:
        """The spelling a normalized form found is: the one written so (config first), else the compiled
        one it was derived from. A case-sensitive spelling is the one compared."""
        if entry.case_sensitive:
            return entry.form
        return self._rows(term)[1].get(found, entry.form)


class _Walk:
    """One field walked as scan.scan walks it, keeping every decision (see the module's docstring)."""

    def __init__(self, matcher: Matcher, sources: _Sources, norm: NormalizedText, field: str):
        self.matcher, self.sources, self.norm, self.field = matcher, sources, norm, field
        self.found = _walk(matcher, norm)
        passed = list(dict.fromkeys((f.start, f.end, f.term) for f in self.found if not f.kind))
        self._passed = {}
        for f in self.found:
            if not f.kind:
                self._passed.setdefault((f.start, f.end, f.term), f)
        if passed:
            s, e, t = (np.array(column, dtype=np.int64) for column in zip(*passed, strict=True))
            kept = resolve_overlaps(s, e, t)
            self.kept = list(zip(*(column.tolist() for column in kept), strict=True))
        else:
            self.kept = []
        self.spaces = space_positions(norm)
        kept_set = set(self.kept)
        self.dropped = [c for c in passed if c not in kept_set]

    def _span(self, start: int, end: int) -> tuple[int, int, str]:
        return _original(self.norm, start, end)

    def explain(self, candidate: tuple[int, int, int], watch: str, rule: str = "") -> Explained:
        f = self._passed[candidate]
        return self._explained(f, watch, f.why + (f"; {rule}" if rule else ""))

    def _explained(self, f: _Found, watch: str, reason: str) -> Explained:
        o_s, o_e, matched = self._span(f.start, f.end)
        found = self.norm.text[f.start : f.end]
        spelling = self.sources.spelling(f.term, found, f.entry)
        return Explained(
            watch,
            self.field,
            o_s,
            o_e,
            matched,
            spelling,
            self.sources.source(f.term, spelling),
            reason,
            _derivation(found, spelling, f.prefix, f.entry.after_article),
        )

    def rejected(self, watch: str, terms: set[int]) -> list[Explained]:
        """The spellings of ``terms`` found here but not counted, each with why (once per span and reason)."""
        out: dict[tuple[int, int, str], Explained] = {}
        for f in self.found:
            if f.kind and f.term in terms:
                e = self._explained(f, watch, f.why)
                out.setdefault((e.start, e.end, f.kind), e)
        for start, end, term in self.dropped:
            if term in terms:
                f = self._passed[(start, end, term)]
                e = self._explained(f, watch, self._overlap_reason(start, end))
                out.setdefault((e.start, e.end, OVERLAP), e)
        return list(out.values())

    def failures(self, term: int) -> list[tuple[str, str]]:
        """(kind, reason) of each way the spellings of ``term`` found here were not counted."""
        out = [(f.kind, f.why) for f in self.found if f.kind and f.term == term]
        out += [(OVERLAP, self._overlap_reason(s, e)) for s, e, t in self.dropped if t == term]
        return out

    def _overlap_reason(self, start: int, end: int) -> str:
        _, _, inner = self._span(start, end)
        for s, e, t in self.kept:
            if s < end and start < e:
                _, _, outer = self._span(s, e)
                whose = ", ".join(self.sources.names.get(t, [])) or self.matcher.terms[t].name
                return f"{inner!r} is part of the longer match {outer!r} ({whose})"
        return f"{inner!r} overlaps a longer match"


def _walk(matcher: Matcher, norm: NormalizedText) -> list[_Found]:
    """Every spelling the automaton finds in ``norm`` at a word boundary, with the outcome of the case,
    exclude and context checks: scan.scan and scan._checked, one candidate at a time."""
    if not len(matcher.automaton):
        return []
    keys, entries, terms = matcher.keys, matcher.entries, matcher.terms
    padded = f" {norm.text} "
    out: list[_Found] = []
    raw: list[tuple[int, int, CompiledSpelling, str]] = []
    confirmers: list[tuple[int, int]] = []  # (start, term) of unconditional Arabic spellings
    for r, kid in matcher.automaton.iter(padded[::-1]):
        length, lead = int(keys.length[kid]), int(keys.lead[kid])
        last = len(padded) - 2 - r + length
        start, end = last - length + lead, last - 1
        prefix = "" if lead else _clitics(padded, start)
        plain, article = int(keys.plain[kid]), bool(keys.article[kid])
        if plain >= 0:
            if prefix in (ARABIC_ARTICLE_PREFIXES if article else ARABIC_PREFIXES):
                out.append(_Found(start, end, plain, entries[keys.ids[kid][0]], prefix, "", "always counts"))
                if not lead:
                    confirmers.append((start, plain))
            continue
        for entry in map(entries.__getitem__, keys.ids[kid]):
            allowed = ARABIC_ARTICLE_PREFIXES if entry.after_article else ARABIC_PREFIXES
            if (not entry.after_article) if lead else prefix in allowed:
                raw.append((start, end, entry, prefix))
    return out + _checks(raw, terms, norm, confirmers)


def _checks(raw, terms, norm: NormalizedText, confirmers: list[tuple[int, int]]) -> list[_Found]:
    text = norm.text
    out: list[_Found] = []
    plain: dict[int, list[int]] = {}
    qualified: set[int] = set()
    checked = []
    for start, end, entry, prefix in raw:
        if entry.case_sensitive:
            _, o_e, written = _original(norm, start, end)
            if written != entry.form and not case_ok(written, entry.form):
                why = f"{written!r} is not written {entry.form!r} (that spelling is case-sensitive)"
                out.append(_Found(start, end, entry.term, entry, prefix, CASE, why))
                continue
            if entry.needs_context and ACRONYM_QUALIFIER.match(norm.original, o_e):
                qualified.add(start)
        checked.append((start, end, entry, prefix))
        if not entry.needs_context:
            plain.setdefault(entry.term, []).append(start)
    if any(entry.needs_context for _, _, entry, _ in checked):
        for start, term in confirmers:
            plain.setdefault(term, []).append(start)
    for starts in plain.values():
        starts.sort()
    windows = [(0, 0)] * len(checked)
    if any(entry.needs_context or terms[entry.term].exclude for _, _, entry, _ in checked):
        lows, highs = word_windows(
            norm,
            None,
            np.array([c[0] for c in checked]),
            np.array([c[1] for c in checked]),
            np.array([terms[c[2].term].window for c in checked]),
        )
        windows = list(zip(lows, highs, strict=True))
    for (start, end, entry, prefix), (lo, hi) in zip(checked, windows, strict=True):
        term = terms[entry.term]
        written = _original(norm, start, end)[2]
        why = f"written as {entry.form!r} (case-sensitive)" if entry.case_sensitive else "always counts"
        if term.exclude:
            why += f"; none of its exclude terms within {term.window} words"
        kind = ""
        if entry.needs_context or term.exclude:
            window = f" {text[lo:hi]} "
            excluding = _excluding(window, lo, text, start, end, term.exclude)
            if excluding is None and entry.needs_context:
                excluding = _excluding(window, lo, text, start, end, term.ambiguous_exclude)
            if excluding is not None:
                kind = EXCLUDED
                why = f"{written!r} excluded by {excluding!r} within {term.window} words"
            elif entry.needs_context:
                context = next((p for p in term.context if f" {p} " in window), None)
                if start in qualified:
                    why = "an acronym hyphenated to held/led/backed...: context enough"
                elif context is not None:
                    why = f"context word {context!r} within {term.window} words"
                elif _another_within(plain.get(entry.term, []), lo, hi, start):
                    why = f"confirmed by another spelling of it within {term.window} words"
                else:
                    kind = NO_CONTEXT
                    wanted = ", ".join(repr(p) for p in term.context[:5]) + (", ..." if len(term.context) > 5 else "")
                    why = (
                        f"{written!r} needs a context word within {term.window} words ({wanted}): none there"
                        if term.context
                        else f"{written!r} needs a context word, and the watch has none"
                    )
        out.append(_Found(start, end, entry.term, entry, prefix, kind, why))
    return out


def _original(norm: NormalizedText, start: int, end: int) -> tuple[int, int, str]:
    """The original offsets and text of the normalized ``[start, end)`` (as the matcher maps its spans)."""
    o_s, o_e = (int(x[0]) for x in norm.original_spans(np.array([start]), np.array([end])))
    return o_s, o_e, norm.original[o_s:o_e]


def _excluding(window: str, lo: int, text: str, start: int, end: int, phrases: tuple[str, ...]) -> str | None:
    """The first of ``phrases`` that drops the match at ``[start, end)`` (scan._excluded's test), or None."""
    return next((p for p in phrases if _excluded(window, lo, text, start, end, (p,))), None)


def _derivation(found: str, spelling: str, prefix: str, after_article: bool) -> str:
    """How the normalized form found relates to the spelling: "" when it is the spelling normalized."""
    notes = []
    if found != normalize(spelling).strip():
        notes.append(f"derived form {found!r}")
    if prefix:
        notes.append(f"after the joined {'article' if after_article else 'clitic'} {prefix!r}")
    return ", ".join(notes)


def _term_failure(walks: dict[str, _Walk], term: int) -> tuple[str, str] | None:
    """(kind, reason) for a term none of whose spellings counted; None when none was even found."""
    failures = list(dict.fromkeys(f for walk in walks.values() for f in walk.failures(term)))
    if not failures:
        return None
    rank = [EXCLUDED, NO_CONTEXT, CASE, OVERLAP]
    kind = min((k for k, _ in failures), key=rank.index)
    reasons = [r for _, r in failures]
    more = f" (+{len(reasons) - _REASONS_SHOWN} more)" if len(reasons) > _REASONS_SHOWN else ""
    return kind, "; ".join(reasons[:_REASONS_SHOWN]) + more


def _describe(matcher: Matcher, node: Node) -> str:
    """A compiled rule written out: ``Deir Ezzor NEAR/10 (clashes OR fighting)``."""
    kind = node[0]
    if kind == "term":
        return matcher.terms[node[1]].name
    if kind == "not":
        return f"NOT {_describe(matcher, node[1])}"
    if kind == "near":
        return f"{_describe(matcher, node[1])} NEAR/{node[3]} {_describe(matcher, node[2])}"
    joined = f" {'AND' if kind == 'all' else 'OR'} ".join(_describe(matcher, child) for child in node[1])
    return f"({joined})"


def _rule_failure(matcher: Matcher, walks: dict[str, _Walk], candidates, node: Node) -> tuple[str, str]:
    """(kind, reason) for a rule that does not hold: the part missing, the NOT part found, or how far apart
    the two parts of a NEAR are."""

    def holds(n: Node):
        return evaluate(n, candidates, lambda f: walks[f].spaces)

    def missing(n: Node) -> tuple[str, str]:
        kind = n[0]
        if kind == "term":
            name = matcher.terms[n[1]].name
            found = _term_failure(walks, n[1])
            if found is None:
                return NO_SPELLING, f"no spelling of {name!r} in the title or text"
            return found[0], f"{name!r} not counted: {found[1]}"
        if kind == "not":
            found = holds(n[1]) or {}
            shown = [walks[f]._span(c[0], c[1])[2] for f, cands in found.items() for c in sorted(cands)][:3]
            where = f" ({', '.join(map(repr, shown))} found)" if shown else ""
            return RULE_EXCLUDED, f"excluded by the rule: NOT {_describe(matcher, n[1])}{where}"
        if kind == "all":
            return _part(missing(next(c for c in n[1] if holds(c) is None)))
        if kind == "any":
            parts = [missing(c) for c in n[1]]
            return parts[0][0], "none of its parts: " + "; ".join(r for _, r in parts[:_REASONS_SHOWN])
        a, b = holds(n[1]), holds(n[2])
        if a is None or b is None:
            return _part(missing(n[1] if a is None else n[2]))
        closest = None
        for f in set(a) & set(b):
            for ca in a[f]:
                for cb in b[f]:
                    gap = _words_between(ca, cb, walks[f].spaces)
                    if closest is None or gap < closest[0]:
                        closest = (gap, f, ca, cb)
        left, right = _describe(matcher, n[1]), _describe(matcher, n[2])
        if closest is None:
            return NOT_NEAR, f"{left!r} and {right!r} are found, never in the same field (NEAR/{n[3]})"
        gap, f, ca, cb = closest
        first, second = walks[f]._span(ca[0], ca[1])[2], walks[f]._span(cb[0], cb[1])[2]
        return NOT_NEAR, f"{first!r} and {second!r} are {gap} words apart at the closest, NEAR allows {n[3]}"

    return missing(node)


def _part(failure: tuple[str, str]) -> tuple[str, str]:
    """A sub-rule's failure as its parent's: a part missing, unless the part is a NOT that found its term."""
    kind, reason = failure
    return (kind, reason) if kind == RULE_EXCLUDED else (RULE_PART_MISSING, f"rule part missing: {reason}")
