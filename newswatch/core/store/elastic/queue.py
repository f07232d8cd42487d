"""The digest queue and ledger in Elasticsearch: digests, the claims on their hits, and claims to send them.

There are no transactions; what makes "each hit once" hold is documents created with op_type ``create``,
which exactly one writer wins: one claim document per (recipient, hit), as SQLite's digest_hits primary
key, and compare-and-set (``if_seq_no``) updates of the digest document to claim it for sending.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection
from datetime import datetime

from elasticsearch import Elasticsearch

from newswatch.core.errors import StoreConflict, StoreUnavailable
from newswatch.core.models import QueuedDigest
from newswatch.core.store.elastic.clock import ClusterClock
from newswatch.core.store.elastic.cluster import bulk, each, guarded_updates
from newswatch.core.store.elastic.documents import digest_doc, digest_from
from newswatch.core.store.leases import claim_vanished
from newswatch.core.times import iso

log = logging.getLogger(__name__)

# A digest whose hits are still unclaimed this long after it was queued lost its queuing pass (a crash):
# a later pass finishes it, or drops it when another digest took its hits meanwhile.
_ORPHAN_US = 120_000_000


def claim_id(recipient: str, hit_key: str) -> str:
    return hashlib.sha1(f"{recipient}\n{hit_key}".encode()).hexdigest()


class DigestQueue:
    """One document per digest (id = Message-ID); the caller turns outages into StoreUnavailable."""

    def __init__(
        self,
        client: Elasticsearch,
        index: str,
        *,
        hits_index: str,
        claims_index: str,
        clock: ClusterClock,
        retries: int,
        backoff: float,
    ):
        self.es, self.index, self.hits_index, self.claims_index = client, index, hits_index, claims_index
        self.clock, self.retries, self.backoff = clock, retries, backoff

    def queue(self, digest: QueuedDigest) -> None:
        # The digest document first (409: queued before, a retry after an error), then a claim on each of its
        # hits; a claim another digest holds means an overlapping pass was first: ours is taken back whole.
        self.es.options(ignore_status=409).create(
            index=self.index, id=digest.id, document=digest_doc(digest, self.clock.now_us()), refresh=True
        )
        taken = self._claim_hits(digest.id, digest.recipient, digest.hit_keys)
        if taken:
            self._withdraw(digest.id, digest.recipient, digest.hit_keys)
            raise StoreConflict(
                f"digest {digest.id}: {len(taken)} of its hits are already queued for {digest.recipient}"
            )
        if not self._assign(digest.id, digest.recipient, digest.hit_keys):
            raise StoreConflict(f"digest {digest.id}: withdrawn by another pass while it was queued")

    def _claim_hits(self, digest_id: str, recipient: str, hit_keys: Collection[str]) -> list[str]:
        """Create the claims of ``hit_keys``; returns the keys another digest holds.

        The lowest claim id first, alone, then the rest: two passes queuing the same hits race for that one
        claim, so one of them takes them all. (Sent together, each could win some and both withdraw.)"""
        by_id = {claim_id(recipient, key): key for key in hit_keys}
        pending, taken = sorted(by_id), []
        for _ in range(3):  # a claim found taken, then gone (its digest withdrawn meanwhile): create it again
            gone: list[str] = []
            for batch in (pending[:1], pending[1:]):
                docs = self._create_claims(digest_id, recipient, {cid: by_id[cid] for cid in batch})
                taken += [by_id[d["_id"]] for d in docs if d.get("found") and d["_source"]["digest"] != digest_id]
                gone += [d["_id"] for d in docs if not d.get("found")]
                if taken:
                    return taken
            if not gone:
                break
            pending = sorted(gone)
        return taken

    def _create_claims(self, digest_id: str, recipient: str, keys: dict[str, str]) -> list[dict]:
        """Create the claims ``keys`` (claim id: hit key); returns the claims found existing, as they are now."""
        actions = [
            (
                {"create": {"_index": self.claims_index, "_id": cid}},
                {"recipient": recipient, "hit_key": key, "digest": digest_id},
            )
            for cid, key in keys.items()
        ]
        held = []
        for ok, item in bulk(self.es, actions, retries=self.retries, backoff=self.backoff, refresh="wait_for"):
            result = item["create"]
            if not ok and result.get("status") == 409:
                held.append(result["_id"])
            elif not ok:
                raise StoreUnavailable(f"Elasticsearch refused a digest claim: {result.get('error')}")
        return self.es.mget(index=self.claims_index, ids=held)["docs"] if held else []

    def _withdraw(self, digest_id: str, recipient: str, hit_keys: Collection[str]) -> None:
        """Take back a digest that lost a claim: its own claims, then its document."""
        ids = [claim_id(recipient, key) for key in hit_keys]
        for start in range(0, len(ids), 1000):
            docs = self.es.mget(index=self.claims_index, ids=ids[start : start + 1000])["docs"]
            actions = [
                (
                    {
                        "delete": {
                            "_index": self.claims_index,
                            "_id": d["_id"],
                            "if_seq_no": d["_seq_no"],
                            "if_primary_term": d["_primary_term"],
                        }
                    },
                    None,
                )
                for d in docs
                if d.get("found") and d["_source"]["digest"] == digest_id
            ]
            for ok, item in bulk(self.es, actions, retries=self.retries, backoff=self.backoff, refresh="wait_for"):
                if not ok and item["delete"].get("status") not in (404, 409):
                    raise StoreUnavailable(f"Elasticsearch refused to drop a digest claim: {item['delete']}")
        self.es.options(ignore_status=404).delete(index=self.index, id=digest_id, refresh=True)

    def _assign(self, digest_id: str, recipient: str, hit_keys: Collection[str]) -> bool:
        """Mark the claimed hits delivered_to the recipient (what owed_hits filters on), then the digest
        assigned; False when the digest document is gone (withdrawn by a recovering pass)."""
        if not self.es.options(ignore_status=404).get(index=self.index, id=digest_id, source=False).get("found"):
            return False  # withdrawn by a recovering pass: its hits are marked for nobody
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
        done = self.es.options(ignore_status=404).update(
            index=self.index, id=digest_id, doc={"assigned": True}, refresh=True
        )
        return done.get("result") in ("updated", "noop")

    def assign_pending(self) -> None:
        """Finish digests whose queuing pass died between their document and their claims (before hits are
        read as owed); a digest whose hits another one claimed meanwhile is dropped, never sent."""
        self.es.indices.refresh(index=self.index)
        cutoff = self.clock.now_us() - _ORPHAN_US
        query = {
            "bool": {
                "filter": [{"term": {"assigned": False}}],
                "should": [
                    {"range": {"queued": {"lt": cutoff}}},
                    {"bool": {"must_not": [{"exists": {"field": "queued"}}]}},
                ],
                "minimum_should_match": 1,
            }
        }
        for hit in list(each(self.es, self.index, query, [{"id": "asc"}])):
            digest_id, recipient, keys = hit["_id"], hit["_source"]["recipient"], hit["_source"]["hit_keys"]
            if self._claim_hits(digest_id, recipient, keys):
                self._withdraw(digest_id, recipient, keys)
                log.warning(
                    "digest_withdrawn recipient=%s digest=%s reason=its hits were queued by another digest",
                    recipient,
                    digest_id,
                )
            else:
                self._assign(digest_id, recipient, keys)

    def pending(self) -> list[QueuedDigest]:
        self.es.indices.refresh(index=self.index)
        query = {
            "bool": {
                "filter": [{"term": {"assigned": True}}],
                "must_not": [{"exists": {"field": "sent"}}, {"exists": {"field": "dead"}}],
            }
        }
        return [
            digest_from(h["_source"]) for h in each(self.es, self.index, query, [{"created": "asc"}, {"id": "asc"}])
        ]

    def dead(self) -> list[QueuedDigest]:
        self.es.indices.refresh(index=self.index)
        query = {"bool": {"filter": [{"exists": {"field": "dead"}}], "must_not": [{"exists": {"field": "sent"}}]}}
        return [
            digest_from(h["_source"]) for h in each(self.es, self.index, query, [{"created": "asc"}, {"id": "asc"}])
        ]

    def sent(self, limit: int) -> list[QueuedDigest]:
        self.es.indices.refresh(index=self.index)
        query, order = {"exists": {"field": "sent"}}, [{"sent": "desc"}, {"id": "asc"}]
        return [digest_from(h["_source"]) for h in each(self.es, self.index, query, order, limit)]

    def claim(self, digest_id: str, holder: str, seconds: float) -> bool:
        now = self.clock.now_us()
        doc = self.es.options(ignore_status=404).get(index=self.index, id=digest_id)
        if not doc.get("found"):
            return False
        src = doc["_source"]
        if src.get("sent") or src.get("dead") or not src.get("assigned"):
            return False
        taken = src.get("claimed_by") not in (None, holder) and (src.get("claim_expires") or 0) > now
        if taken and not claim_vanished(src.get("claimed_by")):
            return False
        result = self.es.options(ignore_status=409).update(
            index=self.index,
            id=digest_id,
            doc={"claimed_by": holder, "claim_expires": now + int(seconds * 1_000_000)},
            if_seq_no=doc["_seq_no"],
            if_primary_term=doc["_primary_term"],
            refresh=True,
        )
        return result.get("result") in ("updated", "noop")

    def mark_sent(self, digest_id: str, when: datetime) -> None:
        self.es.options(ignore_status=404).update(
            index=self.index,
            id=digest_id,
            doc={"sent": iso(when), "last_error": None, "claimed_by": None, "claim_expires": None},
            refresh=True,
        )

    def note_failure(
        self, digest_id: str, error: str, next_attempt: datetime, permanent: bool, dead: datetime | None
    ) -> None:
        self._change(
            digest_id,
            lambda src: {
                "attempts": src["attempts"] + 1,
                "refusals": (src.get("refusals") or 0) + int(permanent),
                "last_error": error,
                "next_attempt": iso(next_attempt),
                "dead": iso(dead),
                "claimed_by": None,
                "claim_expires": None,
            },
        )

    def revive(self, digest_id: str) -> bool:
        return self._change(digest_id, lambda _src: {"dead": None, "next_attempt": None, "refusals": 0})

    def _change(self, digest_id: str, change) -> bool:
        """Read-modify-write of an unsent digest, guarded by seq_no (the bare node has no scripts)."""
        for _ in range(3):
            doc = self.es.options(ignore_status=404).get(index=self.index, id=digest_id)
            if not doc.get("found") or doc["_source"].get("sent"):
                return False
            result = self.es.options(ignore_status=409).update(
                index=self.index,
                id=digest_id,
                doc=change(doc["_source"]),
                if_seq_no=doc["_seq_no"],
                if_primary_term=doc["_primary_term"],
                refresh=True,
            )
            if result.get("result") in ("updated", "noop"):
                return True
        return False
