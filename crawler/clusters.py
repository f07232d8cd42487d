"""One copy per story: near-duplicate articles share a cluster_id, via MinHash LSH (docs/crawler.md).

Text → word 3-shingles (casefolded, any script) → a 128-value MinHash → LSH banding (32 bands of 4 rows).
Two articles whose estimated Jaccard similarity of shingles is at least THRESHOLD are copies of one story:
wire copy with other boilerplate scores ~0.95, a lightly edited or re-headlined copy 0.75-0.9, a different
story on the same town ~0.0 (tests/test_cluster.py). The first article seen is the representative: its
own id is the cluster_id of every later copy.

The MinHash is datasketch's "affine32" scheme (crc32 of each shingle, MurmurHash3's finalizer, then
128 permutations a*h+b mod 2^32 with odd a), written here in numpy: datasketch itself imports scipy
(~1 s per crawl process, a crawl being a fresh process) for what is ~20 lines here.

Signatures live in the store (both backends), so clusters survive restarts and a crawl on another machine
sees them; each article looks up the few it could be a copy of by their LSH band keys (models.band_keys),
and signatures past WINDOW are pruned when a crawl ends. Stored signatures must stay
comparable: changing the shingling or hashing changes every value (tests/test_crawl_cost.py pins them).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import numpy as np

from newswatch.core.errors import NewswatchError
from newswatch.core.models import (
    SIGNATURE_BANDS,
    SIGNATURE_CANDIDATES,
    SIGNATURE_ROWS,
    SIGNATURE_WINDOW,
    ClusterSignature,
    band_keys,
)

log = logging.getLogger(__name__)

THRESHOLD = 0.5  # estimated Jaccard of word 3-shingles at or above which two texts are one story
NUM_PERM = 128  # the estimate's standard error at J=0.5 is sqrt(.25/128) ≈ 0.044
# 32 bands x 4 rows: a pair at J=0.5 becomes a candidate with p = 1-(1-0.5^4)^32 ≈ 0.87, at J=0.7 with
# p ≈ 0.9998; candidates are then checked against THRESHOLD, so the banding only has to not miss them.
BANDS, ROWS = SIGNATURE_BANDS, SIGNATURE_ROWS
SHINGLE_WORDS = 3
MIN_WORDS = 30  # a shorter text (a feed item's summary) is too short to compare: it stays alone
WINDOW = SIGNATURE_WINDOW  # copies of a story appear within days; older signatures are not compared
_WORD = re.compile(r"\w+")
_RNG = np.random.default_rng(1)  # fixed: signatures are stored and compared across processes
_A = (_RNG.integers(0, 2**32, NUM_PERM, dtype=np.uint64) | 1).astype(np.uint32)[:, None]
_B = _RNG.integers(0, 2**32, NUM_PERM, dtype=np.uint64).astype(np.uint32)[:, None]


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[bytes]:
    """The set of ``size``-word shingles of ``text`` (casefolded words, punctuation dropped), UTF-8 encoded."""
    words = _WORD.findall(text.casefold())
    if len(words) <= size:  # a text shorter than a shingle is one shingle
        return {" ".join(words).encode()} if words else set()
    # zip over shifted lists: the same shingles as slicing words[i:i+size], without a slice per word.
    return {" ".join(gram).encode() for gram in zip(*(words[i:] for i in range(size)), strict=False)}


def _has_words(text: str, count: int) -> bool:
    """True when ``text`` has at least ``count`` words; stops counting there (articles have hundreds)."""
    return sum(1 for _ in itertools.islice(_WORD.finditer(text), count)) == count


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's finalizer: spreads crc32's linear structure over all bits (uint32 arithmetic wraps)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def signature(text: str) -> np.ndarray | None:
    """The MinHash of ``text``'s shingles (NUM_PERM uint32 values), or None below MIN_WORDS words."""
    if not _has_words(text, MIN_WORDS):
        return None
    found = shingles(text)
    hashes = _fmix32(np.fromiter(map(zlib.crc32, found), dtype=np.uint32, count=len(found)))
    with np.errstate(over="ignore"):
        return (_A * hashes[None, :] + _B).min(axis=1)


def similarity(first: np.ndarray, second: np.ndarray) -> float:
    """The estimated Jaccard similarity of the shingle sets behind two signatures."""
    return float(np.count_nonzero(first == second)) / NUM_PERM


class SignatureSource(Protocol):
    """Where the signatures of earlier crawls are read from: the store."""

    def similar_signatures(
        self, article_id: str, url: str | None, bands: Sequence[int], since: datetime
    ) -> list[ClusterSignature]: ...


class Clusterer:
    """Assigns cluster ids against the signatures of the last WINDOW and collects the signatures it makes for
    the caller to store (:meth:`take_new`), before their articles.

    Each article asks the store for the few signatures it could be a copy of (its own, its URL's, those
    sharing a band key: Store.similar_signatures), so a crawl pays for its own articles, not for the window;
    the signatures this crawl made are kept here too, as they reach the store only with their batch. Of
    either, an article is compared with at most SIGNATURE_CANDIDATES signatures found by band key (models)."""

    def __init__(self, source: SignatureSource, now: datetime, threshold: float = THRESHOLD):
        self.source, self.now, self.threshold = source, now, threshold
        self._buckets: dict[int, list[str]] = defaultdict(list)  # band key -> ids of this crawl's articles
        self._clusters: dict[str, str] = {}  # article id -> cluster id, for the articles this crawl assigned
        self._by_url: dict[str, str] = {}  # canonical URL -> cluster id of the first article stored under it
        self._signatures: dict[str, np.ndarray] = {}
        self._order: dict[str, int] = {}  # article id -> its place among this crawl's signatures (newest highest)
        self._new: list[ClusterSignature] = []
        self._unavailable = False  # the store could not answer once: said once, then this crawl's own only

    def assign(self, article_id: str, url: str, text: str) -> str:
        """The cluster id of an article, recording it: the cluster it already has (a re-fetch), that of an
        article with the same canonical URL, that of its most similar earlier copy, or its own id; earlier
        articles are those of the window (WINDOW). An article re-fetched after the window keeps the cluster
        the store holds for it all the same (a stored cluster_id is never replaced)."""
        if article_id in self._clusters:
            return self._clusters[article_id]
        sig = signature(text)
        keys = band_keys(sig.tobytes()) if sig is not None else ()
        stored = self._stored(article_id, url, keys)
        cluster = next((s.cluster_id for s in stored if s.article_id == article_id), None)
        cluster = cluster or self._by_url.get(url) or next((s.cluster_id for s in stored if s.url == url), None)
        if cluster is None and sig is not None:
            cluster = self._nearest(sig, keys, stored)
        cluster = cluster or article_id
        self._clusters[article_id] = cluster
        self._by_url.setdefault(url, cluster)
        if sig is not None:
            self._signatures[article_id] = sig
            self._order[article_id] = len(self._order)
            for key in keys:
                self._buckets[key].append(article_id)
        self._new.append(
            ClusterSignature(article_id, cluster, url, self.now, sig.tobytes() if sig is not None else None)
        )
        return cluster

    def _stored(self, article_id: str, url: str, keys: Sequence[int]) -> list[ClusterSignature]:
        """The store's candidates; none (one warning per crawl) when it cannot answer: the article is then
        compared with this crawl's own, and stored all the same."""
        try:
            return self.source.similar_signatures(article_id, url, keys, self.now - WINDOW)
        except NewswatchError as exc:
            if not self._unavailable:
                log.warning("cluster_lookup_unavailable article=%s reason=%s", article_id, exc)
                self._unavailable = True
            return []

    def _nearest(self, sig: np.ndarray, keys: Sequence[int], stored: list[ClusterSignature]) -> str | None:
        """The cluster of the most similar candidate at or above the threshold (banding also lets some less
        similar pairs through, so each candidate is checked against the estimate): the store's candidates,
        then this crawl's own articles sharing a band key."""
        candidates = {
            s.article_id: (s.cluster_id, np.frombuffer(s.signature, dtype=np.uint32)) for s in stored if s.signature
        }
        # As the store does: the SIGNATURE_CANDIDATES sharing the most keys, the newest first among equals.
        shared = Counter(itertools.chain.from_iterable(self._buckets.get(key, ()) for key in keys))
        order = self._order
        for known in heapq.nlargest(SIGNATURE_CANDIDATES, shared, key=lambda known: (shared[known], order[known])):
            candidates.setdefault(known, (self._clusters[known], self._signatures[known]))
        best, best_score = None, self.threshold
        for candidate in sorted(candidates):
            score = similarity(sig, candidates[candidate][1])
            if score >= best_score:
                best, best_score = candidates[candidate][0], score
        return best

    def take_new(self) -> list[ClusterSignature]:
        """The signatures assigned since the last call, for the store. The crawl writes them before each
        batch of articles (crawler.pipelines), so a stored article's signature is never lost to a crash."""
        new, self._new = self._new, []
        return new
