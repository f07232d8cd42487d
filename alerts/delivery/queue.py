"""The persisted digest queue: deliver what is due, with backoff; list it and retry it (the `outbox` commands)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

from alerts.delivery.transports import Transport, make_transport
from newswatch.core.config import Config
from newswatch.core.config.settings import DeliverySettings
from newswatch.core.errors import DeliveryFailed
from newswatch.core.models import QueuedDigest
from newswatch.core.store import Store
from newswatch.core.times import utc_now

log = logging.getLogger(__name__)


@dataclass
class DeliveryResult:
    """What one delivery round did."""

    sent: int = 0
    failed: int = 0
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
    config: Config, store: Store, *, now: datetime, force: bool = False, transport: Transport | None = None
) -> DeliveryResult:
    """Send every queued digest whose retry time has come (all of them with ``force``).

    The ledger (``mark_digest_sent``) is written right after the server accepts each message; a failure is
    one log line and a retry time with exponential backoff, and the digest stays queued.
    """
    result = DeliveryResult()
    due = [d for d in store.pending_digests() if force or d.next_attempt is None or d.next_attempt <= now]
    if not due:
        return result
    handled: set[str] = set()
    try:
        with (transport or transport_for(config)).session() as session:
            for digest in due:
                handled.add(digest.id)
                try:
                    path = session.send(digest)
                except DeliveryFailed as exc:
                    _note_failure(config, store, digest, str(exc), now)
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
        for digest in waiting:
            _note_failure(config, store, digest, str(exc), now, quiet=True)
        result.failed += len(waiting)
    return result


def retry_delay(attempts: int, settings: DeliverySettings) -> timedelta:
    """Exponential backoff: first wait after one failure, doubling per further failure, capped."""
    seconds = settings.retry_first_seconds * 2 ** max(0, min(attempts - 1, 30))
    return timedelta(seconds=min(seconds, settings.retry_max_seconds))


def _note_failure(config: Config, store: Store, digest: QueuedDigest, reason: str, now: datetime, *, quiet=False):
    next_attempt = now + retry_delay(digest.attempts + 1, config.settings.delivery)
    store.note_digest_failure(digest.id, reason, next_attempt)
    if not quiet:
        log.warning(
            "digest_failed recipient=%s digest=%s attempts=%d next_attempt=%s reason=%s",
            digest.recipient,
            digest.id,
            digest.attempts + 1,
            next_attempt.isoformat(),
            reason,
        )


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


def list_queue(store: Store, *, sent_limit: int = 10) -> list[QueueRow]:
    """Digests waiting to be sent (oldest first), then the most recently sent ones."""
    rows = []
    for digest in [*store.pending_digests(), *store.sent_digests(sent_limit)]:
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
            )
        )
    return rows


def format_queue(rows: list[QueueRow]) -> list[str]:
    """Lines for the terminal: state, created, recipient, hits, attempts, subject, and the last error."""
    if not rows:
        return ["outbox empty: no digest queued or sent yet"]
    lines = []
    for row in rows:
        state = f"sent {row.sent:%Y-%m-%d %H:%M}" if row.sent else "waiting"
        if not row.sent and row.next_attempt:
            state += f" (retry {row.next_attempt:%Y-%m-%d %H:%M})"
        fields = [
            state,
            f"{row.created:%Y-%m-%d %H:%M}",
            row.recipient,
            f"{row.hits} hits",
            f"{row.attempts} attempts",
            row.subject,
        ]
        line = "\t".join(fields)
        lines.append(line + (f"\n\tlast error: {row.last_error}" if row.last_error and not row.sent else ""))
    return lines


def retry_queue(config: Config, store: Store, *, now: datetime | None = None) -> DeliveryResult:
    """`newswatch outbox retry`: send every waiting digest now, ignoring its backoff."""
    return deliver_pending(config, store, now=now or utc_now(), force=True)
