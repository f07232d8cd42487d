"""The alerts pass: match new articles → build each due recipient's digest → queue it → deliver the queue."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

from alerts.delivery.notify import AppriseNotifier
from alerts.delivery.queue import deliver_pending
from alerts.delivery.transports import Transport
from alerts.digests import cadence
from alerts.digests.build import Digest, build_digest
from alerts.digests.followups import delivered_clusters
from alerts.digests.health import source_health
from alerts.digests.render import build_message, headline, message_id_for, render_digest
from alerts.digests.trends import watch_trends
from alerts.matching.compile import compile_watches
from newswatch.core.config import Config
from newswatch.core.config.recipients import Recipient
from newswatch.core.config.watches import Watch
from newswatch.core.errors import NewswatchError, StoreConflict
from newswatch.core.models import QueuedDigest
from newswatch.core.store import Store
from newswatch.core.store.leases import hold
from newswatch.core.times import aware, iso, parse_utc, utc_now

log = logging.getLogger(__name__)


@dataclass
class AlertsReport:
    """Counts of one alerts pass, and the .eml files it wrote (outbox delivery)."""

    trigger: str = "manual"
    articles: int = 0
    new_hits: int = 0  # mentions (matched spans) found in them
    queued: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    written: list[Path] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"articles={self.articles} new_mentions={self.new_hits} queued={self.queued} sent={self.sent} "
            f"failed={self.failed}" + (f" dead={self.dead}" if self.dead else "")
        )


def watch_cursor(watch: Watch) -> str:
    """``match:<name>:<hash of its definition>``: a new or edited watch starts over every stored article."""
    digest = hashlib.sha256(watch.model_dump_json().encode()).hexdigest()[:12]
    return f"match:{watch.name}:{digest}"


def match_new_articles(config: Config, store: Store, *, now: datetime) -> tuple[int, int]:
    """Match every watch against the articles after its cursor; returns (articles read, new hits).

    Watches at the same cursor share one compiled matcher, which matches each page of articles in one
    pass. Hits are stored before the cursor moves, so a crash only repeats work (add_hits ignores hits
    it already has).
    """
    groups: dict[str | None, list[Watch]] = {}
    for watch in config.watches:
        groups.setdefault(store.get_cursor(watch_cursor(watch)), []).append(watch)
    articles_read = new_hits = 0
    for position, watches in groups.items():
        matcher = compile_watches(watches, cache_dir=config.path(config.settings.var_dir) / "cache")
        while True:
            articles, following = store.articles_after(position)
            if not articles or following == position:
                break
            hits = matcher.match_articles(articles)
            new_hits += store.add_hits(hits, found=now)
            for watch in watches:
                store.set_cursor(watch_cursor(watch), following)
            articles_read, position = articles_read + len(articles), following
    return articles_read, new_hits


def watch_names(config: Config, recipient: Recipient) -> list[str]:
    """The watches a recipient reads, in config order."""
    chosen = recipient.watches
    return [w.name for w in config.watches if chosen == "all" or w.name in chosen]


def digest_for(config: Config, store: Store, recipient: Recipient, *, now: datetime) -> Digest:
    """The digest of everything owed to ``recipient`` now, with trends and source health."""
    names = watch_names(config, recipient)
    delivery = config.settings.delivery
    since = now - timedelta(days=delivery.owed_days)
    owed = store.owed_hits(recipient.name, names, since=since)
    feeds = {feed.id: feed.name for feed in config.feeds if feed.enabled}
    health = source_health(
        store.all_feed_states(), feeds, now=now, silent_after=timedelta(hours=delivery.silent_feed_hours)
    )
    watched = sorted({item.hit.watch for item in owed})
    return build_digest(
        recipient.name,
        owed,
        generated=now,
        watch_order=names,
        source_health=health,
        trends=watch_trends(store, watched, now=now, zone=recipient.zone),
        timezone=recipient.timezone,
        limit_per_watch=delivery.max_entries_per_watch,
        layout=recipient.digest_layout,
        delivered=delivered_clusters(store, owed, names, since=since),
    )


def compose(config: Config, recipient: Recipient, digest: Digest) -> QueuedDigest:
    """Render the digest into the complete message to persist, under its stable Message-ID."""
    sender = config.settings.delivery.sender
    message_id = message_id_for(recipient.name, digest.hit_keys, sender, digest.generated)
    rendered = render_digest(digest)
    message = build_message(
        rendered,
        sender=sender,
        to_name=recipient.name,
        to_email=recipient.email,
        message_id=message_id,
        date=digest.generated,
        counts=digest.counts,
    )
    return QueuedDigest(
        id=message_id.strip("<>"),
        recipient=recipient.name,
        hit_keys=digest.hit_keys,
        message=message.as_bytes(policy=policy.SMTP),
        created=digest.generated,
    )


def queue_due_digests(config: Config, store: Store, *, now: datetime, trigger: str) -> int:
    """Queue a digest for every due recipient with something to say; returns how many were queued."""
    queued = 0
    for recipient in config.recipients:
        served = parse_utc(store.get_cursor(cadence.cursor_name(recipient.name)))
        if not cadence.is_due(recipient, served, now, trigger):
            continue
        digest = digest_for(config, store, recipient, now=now)
        # An empty period sends nothing unless asked; never for immediate alerts, which run every minute.
        wants_empty = recipient.send_empty and recipient.cadence != "immediate" and served is not None
        if digest.is_empty and not wants_empty:
            store.set_cursor(cadence.cursor_name(recipient.name), iso(now))
            continue
        entry = compose(config, recipient, digest)
        try:
            store.queue_digest(entry)  # persisted with its hits before any attempt to send
        except StoreConflict as exc:  # a concurrent pass (e.g. --send-now during a tick) took these hits
            log.warning("digest_skipped recipient=%s reason=%s", recipient.name, exc)
            continue
        store.set_cursor(cadence.cursor_name(recipient.name), iso(now))
        queued += 1
        counts = digest.counts
        log.info(
            "digest_queued recipient=%s digest=%s stories=%d articles=%d mentions=%d watches=%d updates=%d",
            recipient.name,
            entry.id,
            counts.stories,
            counts.articles,
            counts.mentions,
            counts.watches,
            counts.updates,
        )
        if recipient.notify_urls and recipient.cadence == "immediate" and not digest.is_empty:
            AppriseNotifier(recipient.notify_urls).notify(
                title=message_subject(entry), body=f"{headline(counts)}; digest {entry.id}"
            )
    return queued


def message_subject(entry: QueuedDigest) -> str:
    """The Subject header of a queued digest."""
    return str(message_from_bytes(entry.message, policy=policy.default).get("Subject", ""))


def run_alerts(
    config: Config,
    store: Store,
    *,
    now: datetime | None = None,
    send: bool = True,
    trigger: str = "manual",
    transport: Transport | None = None,
) -> AlertsReport:
    """One alerts pass; all state lives in the store, so every call may come from a fresh process.

    ``trigger``: "crawl" (right after a crawl), "tick" (every minute; "schedule" is the same), or "manual"
    (CLI, demo, --send-now: every recipient with owed hits gets a digest now, whatever their cadence).
    With ``send=False`` digests are queued but not delivered; ``transport`` (default: the configured one)
    is how they leave.
    """
    if trigger not in cadence.TRIGGERS:
        raise NewswatchError(f"unknown alerts trigger {trigger!r} (expected one of {', '.join(cadence.TRIGGERS)})")
    now = aware(now or utc_now())
    report = AlertsReport(trigger=trigger)
    # One pass at a time per store (StoreBusy names the other); the store refuses overlapping digests and
    # double sends by itself too, so this lease is what keeps the work single, not what keeps it correct.
    with hold(store, "alerts", "an alerts pass", config.settings.schedule.lease_seconds):
        report.articles, report.new_hits = match_new_articles(config, store, now=now)
        report.queued = queue_due_digests(config, store, now=now, trigger=trigger)
        if send:
            delivered = deliver_pending(config, store, now=now, force=trigger == "manual", transport=transport)
            report.sent, report.failed, report.written = delivered.sent, delivered.failed, delivered.written
            report.dead = delivered.dead
        # Running totals for the web page's /metrics (a pass may run in a process of its own, as the crawl does).
        store.record_metrics(
            counts={"alerts_passes": 1, "hits": report.new_hits, "digests_queued": report.queued},
            latest={"last_alerts_pass": now.timestamp()},
        )
    return report


def send_now(config: Config, store: Store, *, now: datetime | None = None) -> AlertsReport:
    """`newswatch digest --send-now`: every recipient's owed hits, queued and sent now, whatever the cadence."""
    return run_alerts(config, store, now=now, trigger="manual")


def preview_digests(
    config: Config,
    store: Store,
    out_dir: Path | None = None,
    *,
    recipient: str | None = None,
    now: datetime | None = None,
) -> list[Path]:
    """`newswatch digest --preview`: write the HTML and text each recipient would get now, queuing nothing.

    Files go to ``out_dir`` (default: <var_dir>/preview) as digest-<recipient>.html and .txt.
    """
    out_dir = out_dir or config.path(config.settings.var_dir) / "preview"
    chosen = [r for r in config.recipients if recipient is None or r.name == recipient]
    if recipient is not None and not chosen:
        raise NewswatchError(f"no recipient named {recipient!r} in {config.config_dir / 'recipients.yaml'}")
    now = aware(now or utc_now())
    match_new_articles(config, store, now=now)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for person in chosen:
        rendered = render_digest(digest_for(config, store, person, now=now), preview_note="Preview: not sent.")
        stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in person.name)
        for suffix, body in ((".html", rendered.html), (".txt", rendered.text)):
            path = out_dir / f"digest-{stem}{suffix}"
            path.write_text(body, encoding="utf-8")
            written.append(path)
    return written
