"""The cluster's clock: what every process writing or reading one cluster stamps and compares times with.

A writer whose own clock is off (by an hour, or stepped by NTP while it runs) must not stamp articles
where the alerts cursor has already passed, nor let a lease look expired: so times that processes compare
(article seqs, leases, digest claims) are read off the cluster's clock, measured once and carried forward
on this process's monotonic clock, and measured again every few minutes.
"""

from __future__ import annotations

import threading
import time

from elasticsearch import Elasticsearch

_REMEASURE_SECONDS = 300.0


class ClusterClock:
    """Microseconds since the epoch on the clock of the node this client talks to."""

    def __init__(self, client: Elasticsearch):
        self.es = client
        self._lock = threading.Lock()
        self._base: tuple[int, float] | None = None  # (cluster µs, monotonic seconds) measured together

    def now_us(self) -> int:
        with self._lock:
            if self._base is None or time.monotonic() - self._base[1] > _REMEASURE_SECONDS:
                self._base = self._measure()
            cluster_us, measured = self._base
            return cluster_us + int((time.monotonic() - measured) * 1_000_000)

    def _measure(self) -> tuple[int, float]:
        """One node stats request; its timestamp is taken halfway through the round trip, on average."""
        sent = time.monotonic()
        stats = self.es.nodes.stats(node_id="_local", metric="os", filter_path="nodes.*.timestamp")
        back = time.monotonic()
        millis = next(iter(stats["nodes"].values()))["timestamp"]
        return millis * 1000, (sent + back) / 2
