"""The persisted digest queue: deliver what is due, with backoff; list it and retry it (the `outbox` commands)."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

from alerts.delivery.transports import Transport, eml_name, make_transport
from alerts.digests.render import COUNT_HEADERS
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
                    "digest_sent recipient=%s digest=%s attempts=%d%s%s",
                    digest.recipient,
                    digest.id,
                    digest.attempts + 1,
                    "".join(f" {name}={n}" for name, n in message_counts(digest.message).items()),
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
    # Running totals for the web page's /metrics.
    store.record_metrics(
        counts={"digests_sent": result.sent, "digests_failed": result.failed, "digests_dead": result.dead},
        latest={"last_digest_sent": now.timestamp()} if result.sent else None,
    )
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


STATES = ("queued", "waiting", "sent", "dead")  # not tried yet / failed, retried later / accepted / given up


@dataclass(frozen=True)
class QueueRow:
    """One digest of `newswatch outbox list`, with its counts in the digest's own words."""

    id: str
    recipient: str
    subject: str
    created: datetime
    attempts: int  # sends tried: the failed ones, and the one that worked for a sent digest
    last_error: str | None
    next_attempt: datetime | None
    sent: datetime | None
    dead: datetime | None = None
    stories: int | None = None  # None: a digest queued before messages carried their counts
    articles: int | None = None
    mentions: int = 0
    eml: Path | None = None  # the .eml file the outbox method wrote for it, if it is there

    @property
    def state(self) -> str:
        """queued, waiting, sent or dead (STATES)."""
        if self.sent:
            return "sent"
        if self.dead:
            return "dead"
        return "waiting" if self.attempts else "queued"

    @property
    def hits(self) -> int:
        """The mentions it carries (its hits), by their older name."""
        return self.mentions


def message_counts(message: bytes) -> dict[str, int]:
    """The X-Newswatch-* counts a queued message carries (alerts.digests.render.COUNT_HEADERS), by name."""
    headers = BytesHeaderParser(policy=policy.default).parsebytes(message)
    counts = {}
    for name, header in COUNT_HEADERS.items():
        value = str(headers.get(header, "")).strip()
        if value.isdigit():
            counts[name] = int(value)
    return counts


def eml_folder(config: Config) -> Path:
    """Where the outbox delivery method writes .eml files (delivery.outbox_dir, against the project)."""
    folder = Path(config.settings.delivery.outbox_dir)
    return folder if folder.is_absolute() else config.root / folder


def list_queue(store: Store, *, sent_limit: int = 10, eml_dir: Path | None = None) -> list[QueueRow]:
    """Digests waiting to be sent (oldest first), the dead ones, then the most recently sent ones; with
    ``eml_dir`` (eml_folder), each row names the .eml file written for it when there is one."""
    rows = []
    for digest in [*store.pending_digests(), *store.dead_digests(), *store.sent_digests(sent_limit)]:
        headers = BytesHeaderParser(policy=policy.default).parsebytes(digest.message)
        counts = message_counts(digest.message)
        eml = eml_dir / eml_name(digest) if eml_dir else None
        rows.append(
            QueueRow(
                id=digest.id,
                recipient=digest.recipient,
                subject=str(headers.get("Subject", "")),
                created=digest.created,
                # The store counts failed attempts; a sent digest also had the one that worked.
                attempts=digest.attempts + (1 if digest.sent else 0),
                last_error=digest.last_error,
                next_attempt=digest.next_attempt,
                sent=digest.sent,
                dead=digest.dead,
                stories=counts.get("stories"),
                articles=counts.get("articles"),
                mentions=counts.get("mentions", len(digest.hit_keys)),
                eml=eml if eml and eml.is_file() else None,
            )
        )
    return rows


_COLUMNS = ("state", "created", "recipient", "stories", "articles", "mentions", "attempts", "when")
_NUMERIC = {"stories", "articles", "mentions", "attempts"}


def _cells(row: QueueRow) -> dict[str, str]:
    if row.state == "sent":  # when: sent at, dead since, or when it is tried (again)
        when = f"{row.sent:%Y-%m-%d %H:%M}"
    elif row.state == "dead":
        when = f"{row.dead:%Y-%m-%d %H:%M}"
    elif row.next_attempt:
        when = f"retry {row.next_attempt:%Y-%m-%d %H:%M}"
    else:
        when = "next pass"
    return {
        "state": row.state,
        "created": f"{row.created:%Y-%m-%d %H:%M}",
        "recipient": row.recipient,
        "stories": "-" if row.stories is None else str(row.stories),
        "articles": "-" if row.articles is None else str(row.articles),
        "mentions": str(row.mentions),
        "attempts": str(row.attempts),
        "when": when,
    }


def format_queue(rows: list[QueueRow], *, header: bool = False) -> list[str]:
    """One entry per digest for the terminal: a line of columns (state, created, recipient, stories,
    articles, mentions, attempts, and when it was sent, given up, or is tried next), then its subject, id,
    .eml file and last error, indented: about 100 columns. With ``header``, the first entry is the header."""
    if not rows:
        return ["outbox empty: no digest queued or sent yet"]
    cells = [_cells(row) for row in rows]
    width = {c: max(len(c), *(len(cell[c]) for cell in cells)) for c in _COLUMNS}

    def line(values: dict[str, str]) -> str:
        parts = [values[c].rjust(width[c]) if c in _NUMERIC else values[c].ljust(width[c]) for c in _COLUMNS]
        return "  ".join(parts).rstrip()

    lines = [line({c: c.upper() for c in _COLUMNS})] if header else []
    for row, values in zip(rows, cells, strict=True):
        entry = [line(values), f"    {row.subject}", f"    id {row.id}"]
        if row.eml:
            entry.append(f"    eml {row.eml}")
        if row.last_error and not row.sent:
            entry.append(f"    last error: {row.last_error}")
        lines.append("\n".join(entry))
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
