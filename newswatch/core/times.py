"""Time helpers: every moment newswatch keeps is aware, and stored as ISO 8601 in UTC.

A time without a zone (a feed's bare date, a naive value from an old store) is read as UTC, never as the
machine's local time.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """``moment`` with UTC attached when it carries no zone; an aware moment is returned unchanged."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def to_utc(moment: datetime) -> datetime:
    """``moment`` (naive read as UTC) converted to UTC."""
    return aware(moment).astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    """``moment`` as ISO 8601 in UTC, as the stores keep it; None stays None."""
    return to_utc(moment).isoformat() if moment else None


def from_iso(value: str | None) -> datetime | None:
    """An ISO 8601 text written by :func:`iso` back to a datetime; None or "" is None.

    Raises ValueError on a text that is not ISO 8601 (stored values are ours: a bad one is a bug).
    """
    return datetime.fromisoformat(value) if value else None


def parse_utc(value: object) -> datetime | None:
    """An ISO 8601 date or time from outside (a page, a sitemap, an old state) as aware UTC; None when
    ``value`` is empty, not a string, or not ISO 8601."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return to_utc(datetime.fromisoformat(value))
    except ValueError:
        return None
