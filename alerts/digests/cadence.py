"""When a recipient is due a digest: from their cadence, their time zone and when they were last served."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from newswatch.core.config.recipients import WEEKDAYS, Recipient

# What may call run_alerts: "crawl" right after a crawl, "tick" every minute ("schedule" is the digest cron,
# treated as a tick), "manual" from the CLI/demo and --send-now (everyone with something owed is due).
TRIGGERS = ("manual", "crawl", "tick", "schedule")


def cursor_name(recipient: str) -> str:
    """The store cursor holding when ``recipient`` was last served (ISO 8601, UTC)."""
    return f"digest:{recipient}"


def latest_slot(recipient: Recipient, now: datetime) -> datetime:
    """The most recent scheduled digest time at or before ``now`` (immediate: ``now`` itself)."""
    local = now.astimezone(recipient.zone)
    if recipient.cadence == "immediate":
        return now
    if recipient.cadence == "hourly":
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    hour, minute = (int(part) for part in recipient.at.split(":"))
    slot = datetime.combine(local.date(), time(hour, minute), tzinfo=recipient.zone)
    if recipient.cadence == "weekly":
        slot -= timedelta(days=(local.weekday() - WEEKDAYS.index(recipient.weekday)) % 7)
    if slot > local:
        slot -= timedelta(days=7 if recipient.cadence == "weekly" else 1)
    return slot.astimezone(UTC)


def is_due(recipient: Recipient, last_served: datetime | None, now: datetime, trigger: str) -> bool:
    """True when a digest should be made now.

    A never-served recipient is due at once (their first digest carries the backlog); afterwards at the
    first run after each slot. Immediate recipients are due at every run: an empty period sends nothing.
    """
    if trigger == "manual" or recipient.cadence == "immediate" or last_served is None:
        return True
    return last_served < latest_slot(recipient, now)
