"""Watch rules (ANY, ALL, NOT, NEAR): compiled from the watch model, evaluated over found candidates."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

from alerts.matching.scan import Candidate
from newswatch.core.config.watches import AllOf, Near, Not

# A compiled rule: ("term", i) | ("any", nodes) | ("all", nodes) | ("not", node) | ("near", a, b, words)
Node = tuple


def compile_rule(rule, term_of: Callable[[str], int]) -> Node:
    """The compiled form of a watch rule: names become ``("term", i)`` through ``term_of``; the
    operators become ``("any"|"all", children)``, ``("not", child)`` and ``("near", a, b, words)``."""
    if isinstance(rule, str):
        return ("term", term_of(rule))
    if isinstance(rule, Near):
        return ("near", compile_rule(rule.near[0], term_of), compile_rule(rule.near[1], term_of), rule.words)
    if isinstance(rule, Not):
        return ("not", compile_rule(rule.not_, term_of))
    children = rule.all if isinstance(rule, AllOf) else rule.any
    return ("all" if isinstance(rule, AllOf) else "any", tuple(compile_rule(c, term_of) for c in children))


def evaluate(node: Node, fields: dict[str, list[Candidate]], word_index) -> dict[str, set[Candidate]] | None:
    """Evaluate a compiled rule over the candidates of each field. Returns the candidates that make it
    true, by field (possibly empty for a satisfied NOT), or None when the rule does not hold."""
    kind = node[0]
    if kind == "term":
        found = {f: {c for c in cands if c[2] == node[1]} for f, cands in fields.items()}
        return found if any(found.values()) else None
    if kind == "not":
        return None if evaluate(node[1], fields, word_index) is not None else {}
    if kind in ("any", "all"):
        results = [evaluate(child, fields, word_index) for child in node[1]]
        if kind == "all" and any(r is None for r in results):
            return None
        hits = [r for r in results if r is not None]
        if not hits:
            return None
        merged: dict[str, set[Candidate]] = {}
        for r in hits:
            for f, cands in r.items():
                merged.setdefault(f, set()).update(cands)
        return merged
    a, b = evaluate(node[1], fields, word_index), evaluate(node[2], fields, word_index)
    if a is None or b is None:
        return None
    merged = {}
    for f in set(a) & set(b):
        for ca in a[f]:
            for cb in b[f]:
                if _words_between(ca, cb, word_index(f)) <= node[3]:
                    merged.setdefault(f, set()).update((ca, cb))
    return merged or None


def _words_between(a: Candidate, b: Candidate, spaces: list[int]) -> int:
    first, second = (a, b) if a[0] <= b[0] else (b, a)
    if second[0] < first[1]:
        return 0
    return max(0, bisect_left(spaces, second[0]) - bisect_left(spaces, first[1]) - 1)
