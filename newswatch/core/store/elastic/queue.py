"""The digest queue and ledger in Elasticsearch: digests assigned their hits without transactions."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from elasticsearch import Elasticsearch

from newswatch.core.models import QueuedDigest
from newswatch.core.store.elastic.cluster import each, guarded_updates
from newswatch.core.store.elastic.documents import digest_doc, digest_from
from newswatch.core.times import iso


class DigestQueue:
    """One document per digest (id = Message-ID); the caller turns outages into StoreUnavailable."""

    def __init__(self, client: Elasticsearch, index: str, hits_index: str, *, retries: int, backoff: float):
        self.es, self.index, self.hits_index = client, index, hits_index
        self.retries, self.backoff = retries, backoff

    def queue(self, digest: QueuedDigest) -> None:
        # Atomic where it matters: the digest document is written first and is the truth; its hits are then
        # marked delivered_to the recipient, and a digest left unassigned by a crash is finished later.
        # 409: queued before (a retry after an error): finish its assignment below.
        self.es.options(ignore_status=409).create(
            index=self.index, id=digest.id, document=digest_doc(digest), refresh=True
        )
        self._assign(digest.id, digest.recipient, digest.hit_keys)

    def _assign(self, digest_id: str, recipient: str, hit_keys: Collection[str]) -> None:
        keys = list(hit_keys)
        for _ in range(3 if keys else 0):  # 409: another digest marked the same hit meanwhile; read it again
            got = self.es.mget(index=self.hits_index, ids=keys, source_includes=["delivered_to"])["docs"]
            actions = [
                (
                    {
                        "update": {
                            "_index": self.hits_index,
                            "_id": d["_id"],
                            "if_seq_no": d["_seq_no"],
                            "if_primary_term": d["_primary_term"],
                        }
                    },
                    {"doc": {"delivered_to": (d["_source"].get("delivered_to") or []) + [recipient]}},
                )
                for d in got
                if d.get("found") and recipient not in (d["_source"].get("delivered_to") or [])
            ]
            keys = guarded_updates(self.es, actions, retries=self.retries, backoff=self.backoff)
            if not keys:
                break
        self.es.update(index=self.index, id=digest_id, doc={"assigned": True}, refresh=True)

    def assign_pending(self) -> None:
        """Finish digests a crash left between their document and their hits (before hits are read as owed)."""
        self.es.indices.refresh(index=self.index)
        for hit in each(self.es, self.index, {"term": {"assigned": False}}, [{"id": "asc"}]):
            self._assign(hit["_id"], hit["_source"]["recipient"], hit["_source"]["hit_keys"])

    def pending(self) -> list[QueuedDigest]:
        self.es.indices.refresh(index=self.index)
        query = {"bool": {"must_not": [{"exists": {"field": "sent"}}]}}
        return [
            digest_from(h["_source"]) for h in each(self.es, self.index, query, [{"created": "asc"}, {"id": "asc"}])
        ]

    def sent(self, limit: int) -> list[QueuedDigest]:
        self.es.indices.refresh(index=self.index)
        query, order = {"exists": {"field": "sent"}}, [{"sent": "desc"}, {"id": "asc"}]
        return [digest_from(h["_source"]) for h in each(self.es, self.index, query, order, limit)]

    def mark_sent(self, digest_id: str, when: datetime) -> None:
        self.es.options(ignore_status=404).update(
            index=self.index, id=digest_id, doc={"sent": iso(when), "last_error": None}, refresh=True
        )

    def note_failure(self, digest_id: str, error: str, next_attempt: datetime) -> None:
        for _ in range(3):  # read-modify-write guarded by seq_no: the bare node has no scripts
            doc = self.es.options(ignore_status=404).get(index=self.index, id=digest_id)
            if not doc.get("found"):
                return
            change = {
                "attempts": doc["_source"]["attempts"] + 1,
                "last_error": error,
                "next_attempt": iso(next_attempt),
            }
            result = self.es.options(ignore_status=409).update(
                index=self.index,
                id=digest_id,
                doc=change,
                if_seq_no=doc["_seq_no"],
                if_primary_term=doc["_primary_term"],
                refresh=True,
            )
            if result.get("result") == "updated":
                return
