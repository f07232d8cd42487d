"""Which stories of a digest are updates: clusters the recipient already got an article of in an earlier digest.

Read from the store per cluster of the owed hits (Store.cluster_articles, then Store.hits_for_articles of the
other copies), never by scanning the recipient's ledger. A copy with a hit of one of the recipient's watches
that is not owed, although it was first stored inside the owed window, was put in a digest for them
(Store.owed_hits owes every other such hit); a copy older than the window proves nothing and is left out.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from newswatch.core.models import OwedHit
from newswatch.core.store import Store
from newswatch.core.times import to_utc


def delivered_clusters(
    store: Store, owed: Sequence[OwedHit], watches: Collection[str], *, since: datetime
) -> frozenset[str]:
    """Cluster ids among ``owed`` of which the recipient (reading ``watches``, owed hits since ``since``) got
    another article in an earlier digest: build_digest(delivered=...) shows them as updates."""
    owed_articles = {item.article.id for item in owed}
    clusters = {item.article.cluster_id for item in owed if item.article.cluster_id}
    delivered = set()
    for cluster in sorted(clusters):
        others = [
            article.id
            for article in store.cluster_articles(cluster)
            if article.id not in owed_articles and article.fetched and to_utc(article.fetched) >= to_utc(since)
        ]
        if others and any(hit.watch in watches for hit in store.hits_for_articles(others)):
            delivered.add(cluster)
    return frozenset(delivered)
