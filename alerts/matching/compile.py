"""Watches to a compiled matcher: spellings from config, gazetteer and group table, variants, one automaton."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import ahocorasick
import numpy as np
import platformdirs

from alerts.matching import gazetteer
from alerts.matching.matcher import Matcher
from alerts.matching.rules import Node, compile_rule
from alerts.matching.scan import CompiledSpelling, Keys, Term, automaton_key, letters
from alerts.matching.spellings import expand, term_watch, variants
from newswatch.core import textnorm
from newswatch.core.config.watches import AllOf, AnyOf, Near, Not, Watch
from newswatch.core.errors import ConfigError
from newswatch.core.textnorm import normalize, normalize_many

log = logging.getLogger(__name__)

CACHE_ENV = "NEWSWATCH_CACHE_DIR"
_MEMORY: dict[str, Matcher] = {}


def explain(watch: Watch) -> list[tuple[str, str]]:
    """Every name ``watch`` will match and where it came from, e.g. ``("Daech", "groups.yaml")`` or
    ``("Dayr az-Zawr", "gazetteer: GeoNames 170794")``; case-sensitive and context-dependent names say so.
    A rule watch lists the names of its terms. Names are listed once, first source first."""
    if watch.rule is not None:
        return [(name, f"rule term: {source}") for name, source in _rule_spellings(watch.rule)]
    rows: dict[str, str] = {}
    for s in expand(watch).spellings:
        notes = [n for n, on in (("case-sensitive", s.case_sensitive), ("needs context", s.needs_context)) if on]
        rows.setdefault(s.text, f"{s.source} ({', '.join(notes)})" if notes else s.source)
    return list(rows.items())


def _rule_spellings(rule) -> list[tuple[str, str]]:
    if isinstance(rule, str):
        return explain(term_watch(rule))
    children = {Near: lambda r: r.near, AllOf: lambda r: r.all, AnyOf: lambda r: r.any, Not: lambda r: [r.not_]}
    return [pair for child in children[type(rule)](rule) for pair in _rule_spellings(child)]


class _Builder:
    """Accumulates terms and keyed entries, then builds the automaton."""

    def __init__(self) -> None:
        self.terms: list[Term] = []
        self.entries: list[CompiledSpelling] = []
        self.keys: dict[str, list[int]] = {}

    def add_term(self, watch: Watch) -> int:
        term = len(self.terms)
        exp = expand(watch)
        phrases = normalize_many([*exp.context, *watch.exclude, *exp.ambiguous_exclude])
        n_ctx, n_exc = len(exp.context), len(watch.exclude)
        self.terms.append(
            Term(
                watch.name,
                tuple(dict.fromkeys(phrases[:n_ctx])),
                tuple(phrases[n_ctx : n_ctx + n_exc]),
                watch.window,
                tuple(dict.fromkeys(phrases[n_ctx + n_exc :])),
            )
        )
        morph = watch.kind in ("place", "group")
        seen: set[tuple[str, bool, bool, str, bool]] = set()
        for s, norm in zip(exp.spellings, normalize_many([s.text for s in exp.spellings]), strict=True):
            for key, after_article in variants(norm, morph):
                # One entry per key and matching mode; the form only matters when case-sensitive. A key that
                # needs a joined article (الحويجة stripped to حويجه) does not stand for the same key written
                # bare (Persian حویجه), which matches without one: that one is kept too.
                case_sensitive, form = s.case_sensitive, s.text
                if not case_sensitive and morph and _short_latin_word(key) and len(letters(norm)) > len(key):
                    # "Al-Kaim" without its article is a word of four letters: capitalized only, as a short
                    # name is ("Kaim'i kuşattı", not Turkish "kaim", lasting).
                    case_sensitive, form = True, key.capitalize()
                mode = (key, case_sensitive, s.needs_context, form if case_sensitive else "")
                if (*mode, False) in seen or (*mode, after_article) in seen:
                    continue
                seen.add((*mode, after_article))
                self.keys.setdefault(key, []).append(len(self.entries))
                self.entries.append(CompiledSpelling(term, form, case_sensitive, s.needs_context, after_article))
        if any(s.needs_context for s in exp.spellings) and not self.terms[term].context:
            log.warning("watch_context_missing watch=%r", watch.name)
        return term

    def automaton(self) -> tuple[ahocorasick.Automaton, Keys]:
        auto = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        lengths, leads, plains, articles, ids_list = [], [], [], [], []
        for key_id, (key, ids) in enumerate(self.keys.items()):
            stored = automaton_key(key)
            lead = stored[-1] == " "  # reversed: padded on the left
            entries = [self.entries[i] for i in ids]
            # A key with nothing to check but its word boundary is "plain": one term without exclude words,
            # no case or context condition, and all or none of its spellings needing the joined Arabic
            # article (never a Latin key). The scan takes those vectorized, so throughput stays flat as
            # watches grow.
            one_term = len({e.term for e in entries}) == 1 and not self.terms[entries[0].term].exclude
            unconditional = not any(e.case_sensitive or e.needs_context for e in entries)
            article = {e.after_article for e in entries}
            plain = (
                entries[0].term
                if (one_term and unconditional and len(article) == 1 and not (lead and True in article))
                else -1
            )
            auto.add_word(stored, key_id)
            lengths.append(len(stored)), leads.append(int(lead)), plains.append(plain)
            articles.append(plain >= 0 and True in article), ids_list.append(tuple(ids))
        auto.make_automaton()
        return auto, Keys(
            np.array(lengths, np.int64),
            np.array(leads, np.int64),
            np.array(plains, np.int64),
            np.array(articles, bool),
            ids_list,
        )


def build_matcher(watches: Sequence[Watch]) -> Matcher:
    """Compile ``watches`` without any cache. Raises ConfigError when two watches share a name."""
    builder = _Builder()
    by_name: dict[str, int] = {}
    for watch in watches:
        key = normalize(watch.name).strip()
        if key in by_name:
            raise ConfigError(f"watches: two watches are named {watch.name!r}")
        by_name[key] = -1
    for watch in watches:
        if watch.rule is None:
            by_name[normalize(watch.name).strip()] = builder.add_term(watch)
    rule_names = {normalize(w.name).strip(): w.name for w in watches if w.rule is not None}
    terms = {k: v for k, v in by_name.items() if k not in rule_names}  # a rule's name is not a term

    def term_of(name: str) -> int:  # another watch's term, or a new one for a bare name
        key = normalize(name).strip()
        if key not in terms:
            terms[key] = builder.add_term(term_watch(name))
        return terms[key]

    plan: list[tuple[str, Node]] = []
    for watch in watches:
        key = normalize(watch.name).strip()
        node = ("term", terms[key]) if watch.rule is None else compile_rule(watch.rule, term_of)
        plan.append((watch.name, node))
    automaton, keys = builder.automaton()
    return Matcher(automaton, keys, builder.entries, builder.terms, plan)


@lru_cache(maxsize=1)
def _short_latin_word(key: str) -> bool:
    """One word of four Latin letters or fewer (a key, so folded: lower case, no accents)."""
    return len(key) <= 4 and key.isascii() and key.isalpha()


def _code_fingerprint() -> str:
    digest = hashlib.sha256()
    for module in (
        "compile.py",
        "scan.py",
        "matcher.py",
        "rules.py",
        "spellings.py",
        "gazetteer.py",
        "transliteration.py",
    ):
        digest.update((Path(__file__).parent / module).read_bytes())
    digest.update(Path(textnorm.__file__).read_bytes())
    return digest.hexdigest()[:16]


def cache_key(watches: Sequence[Watch]) -> str:
    """Identity of a compiled matcher: the watches, the shipped data and the matching code."""
    spec = json.dumps([w.model_dump(mode="json", by_alias=True) for w in watches], sort_keys=True)
    payload = f"{spec}|{gazetteer.data_fingerprint()}|{_code_fingerprint()}"
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def default_cache_dir() -> Path:
    """``$NEWSWATCH_CACHE_DIR`` if set (the project sets var/cache), else the user cache directory."""
    return Path(os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("newswatch"))


def compile_watches(watches: Sequence[Watch], cache_dir: Path | None = None) -> Matcher:
    """Compile ``watches`` into one :class:`alerts.matching.matcher.Matcher` (a single Aho-Corasick automaton).

    The result is cached in memory and as a pickle under ``cache_dir`` (default :func:`default_cache_dir`),
    keyed by watches, shipped data and code, so a repeat build takes milliseconds. An unreadable or
    unwritable cache only costs a rebuild. Raises ConfigError when two watches share a name.
    """
    started = time.perf_counter()
    key = cache_key(watches)
    if key in _MEMORY:
        return _MEMORY[key]
    path = (cache_dir or default_cache_dir()) / f"matcher-{key}.pickle"
    matcher, source = None, "disk"
    try:
        with path.open("rb") as fh:
            matcher = pickle.load(fh)
    except FileNotFoundError:
        pass
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        log.warning("matcher_cache_unreadable path=%s error=%r", path, exc)
    if not isinstance(matcher, Matcher):
        matcher, source = build_matcher(watches), "built"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as fh:
                pickle.dump(matcher, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("matcher_cache_unwritable path=%s error=%r", path, exc)
    if len(_MEMORY) >= 8:
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[key] = matcher
    log.info(
        "watches_compiled watches=%d keys=%d source=%s seconds=%.3f",
        len(watches),
        len(matcher.automaton),
        source,
        time.perf_counter() - started,
    )
    return matcher
