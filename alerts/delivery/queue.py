"""The persisted digest queue: deliver what is due, with backoff; list it and retry it (the `outbox` commands)."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

from alerts.delivery.transports import Transport, make_transport
from newswatch.core.config import Config
from newswatch.core.config.settings import DeliverySettings
from newswatch.core.errors import DeliveryFailed, NewswatchError
from newswatch.core.models import LeaseHolder, QueuedDigest
from newswatch.core.store import Store
from newswatch.core.store.leases import this_process
from newswatch.core.times import utc_now

log = logging.getLogger(__name__)

# How long a sender holds a digest it is sending: longer than one send can take (the SMTP deadline). If the
# sender dies holding it, another sends it after this, under the same Message-ID.
CLAIM_SECONDS = 900.0


@dataclass
class DeliveryResult:
    """What one delivery round did."""

    sent: int = 0
    failed: int = 0
    dead: int = 0
    written: list[Path] = field(default_factory=list)


def transport_for(config: Config) -> Transport:
    """The configured transport, with SMTP credentials from the environment."""
    return make_transport(
        config.settings.delivery,
        root=config.root,
        username=config.secret("smtp_username"),
        password=config.secret("smtp_password"),
    )


def deliver_pending(
    config: Config,
    store: Store,
    *,
    now: datetime,
    force: bool = False,
    transport: Transport | None = None,
    only: Collection[str] | None = None,
) -> DeliveryResult:
    """Send every queued digest whose retry time has come (all of them with ``force``).

    Each digest is claimed first (``claim_digest``): one another process is sending is left to it, so two
    passes or two `outbox retry` at once send each digest once. The ledger (``mark_digest_sent``) is written
    right after the server accepts each message; a failure is one log line and a retry time with
    exponential backoff, and the digest stays queued; one refused for good too often is a dead letter.
    """
    result = DeliveryResult()
    due = [d for d in store.pending_digests() if force or d.next_attempt is None or d.next_attempt <= now]
    due = [d for d in due if only is None or d.id in only]
    holder = this_process()
    if not due:
        return result
    handled: set[str] = set()
    try:
        with (transport or transport_for(config)).session() as session:
            for digest in due:
                handled.add(digest.id)
                if not _claimed(store, digest, holder):  # claimed right before its send, one at a time
                    continue
                try:
                    path = session.send(digest)
                except DeliveryFailed as exc:
                    result.dead += _note_failure(config, store, digest, exc, now)
                    result.failed += 1
                    continue
                store.mark_digest_sent(digest.id, now)
                result.sent += 1
                if path:
                    result.written.append(path)
                log.info(
                    "digest_sent recipient=%s digest=%s attempts=%d%s",
                    digest.recipient,
                    digest.id,
                    digest.attempts + 1,
                    f" path={path}" if path else "",
                )
    except DeliveryFailed as exc:
        # The destination could not be opened at all: one line for the whole batch, each digest waits.
        waiting = [d for d in due if d.id not in handled]
        log.warning("delivery_unavailable digests=%d reason=%s", len(waiting), exc)
        for digest in waiting:  # claimed first: one another process is sending is not ours to count
            if store.claim_digest(digest.id, holder, CLAIM_SECONDS):
                _note_failure(config, store, digest, exc, now, quiet=True)
        result.failed += len(waiting)
    return result


def _claimed(store: Store, digest: QueuedDigest, holder: LeaseHolder) -> bool:
    if store.claim_digest(digest.id, holder, CLAIM_SECONDS):
        return True
    log.info("digest_skipped recipient=%s digest=%s reason=another process is sending it", digest.recipient, digest.id)
    return False


def retry_delay(attempts: int, settings: DeliverySettings) -> timedelta:
    """Exponential backoff: first wait after one failure, doubling per further failure, capped."""
    seconds = settings.retry_first_seconds * 2 ** max(0, min(attempts - 1, 30))
    return timedelta(seconds=min(seconds, settings.retry_max_seconds))


def _note_failure(
    config: Config, store: Store, digest: QueuedDigest, error: DeliveryFailed, now: datetime, *, quiet=False
) -> int:
    """Record a failed attempt; returns 1 when it made the digest a dead letter (logged once, then)."""
    settings, attempts, reason = config.settings.delivery, digest.attempts + 1, str(error)
    next_attempt = now + retry_delay(attempts, settings)
    dead = error.permanent and digest.refusals + 1 >= settings.dead_after_failures
    store.note_digest_failure(digest.id, reason, next_attempt, permanent=error.permanent, dead=dead)
    if dead:
        log.error(
            "digest_dead recipient=%s digest=%s attempts=%d reason=%s (revive it with: newswatch outbox retry --id %s)",
            digest.recipient,
            digest.id,
            attempts,
            reason,
            digest.id,
        )
    elif not quiet:
        log.warning(
            "digest_failed recipient=%s digest=%s attempts=%d next_attempt=%s reason=%s",
            digest.recipient,
            digest.id,
            digest.attempts + 1,
            next_attempt.isoformat(),
            reason,
        )
    return int(dead)


@dataclass(frozen=True)
class QueueRow:
    """One line of `newswatch outbox list`."""

    id: str
    recipient: str
    subject: str
    hits: int
    created: datetime
    attempts: int
    last_error: str | None
    next_attempt: datetime | None
    sent: datetime | None
    dead: datetime | None = None


def list_queue(store: Store, *, sent_limit: int = 10) -> list[QueueRow]:
    """Digests waiting to be sent (oldest first), the dead ones, then the most recently sent ones."""
    rows = []
    for digest in [*store.pending_digests(), *store.dead_digests(), *store.sent_digests(sent_limit)]:
        headers = message_from_bytes(digest.message, policy=policy.default)
        rows.append(
            QueueRow(
                id=digest.id,
                recipient=digest.recipient,
                subject=str(headers.get("Subject", "")),
                hits=len(digest.hit_keys),
                created=digest.created,
                attempts=digest.attempts,
                last_error=digest.last_error,
                next_attempt=digest.next_attempt,
                sent=digest.sent,
                dead=digest.dead,
            )
        )
    return rows


def format_queue(rows: list[QueueRow]) -> list[str]:
    """Lines for the terminal: state, created, recipient, hits, attempts, subject, id, and the last error."""
    if not rows:
        return ["outbox empty: no digest queued or sent yet"]
    lines = []
    for row in rows:
        state = f"sent {row.sent:%Y-%m-%d %H:%M}" if row.sent else "waiting"
        if row.dead and not row.sent:
            state = f"dead {row.dead:%Y-%m-%d %H:%M}"
        elif not row.sent and row.next_attempt:
            state += f" (retry {row.next_attempt:%Y-%m-%d %H:%M})"
        fields = [
            state,
            f"{row.created:%Y-%m-%d %H:%M}",
            row.recipient,
            f"{row.hits} hits",
            f"{row.attempts} attempts",
            row.subject,
            f"id {row.id}",
        ]
        line = "\t".join(fields)
        lines.append(line + (f"\n\tlast error: {row.last_error}" if row.last_error and not row.sent else ""))
    return lines


def retry_queue(
    config: Config, store: Store, *, now: datetime | None = None, ids: Collection[str] = ()
) -> DeliveryResult:
    """`newswatch outbox retry`: send every waiting digest now, ignoring its backoff; with ``ids``, revive
    those digests (dead or waiting) and send only them. An id that is neither is the user's error."""
    wanted = [digest_id.strip("<>") for digest_id in ids]  # as listed, or as the Message-ID header has it
    for digest_id in wanted:
        if not store.revive_digest(digest_id):
            raise NewswatchError(f"no waiting or dead digest has the id {digest_id!r} (see: newswatch outbox list)")
    return deliver_pending(config, store, now=now or utc_now(), force=True, only=set(wanted) or None)
