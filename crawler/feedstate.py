"""What the crawler remembers about each feed between runs (kept in the store, not in memory)."""

from __future__ import annotations

from datetime import datetime

UNHEALTHY_AFTER = 5  # consecutive failures before a feed is reported unhealthy


def record_success(state: dict | None, *, name: str, now: datetime, items: int, new_items: int) -> dict:
    """The feed's state after a successful fetch and parse of ``items`` entries, ``new_items`` unseen."""
    state = dict(state or {})
    state.update(
        name=name,
        last_success=now.isoformat(),
        last_attempt=now.isoformat(),
        consecutive_failures=0,
        healthy=True,
        items_seen=int(state.get("items_seen", 0)) + new_items,
        last_items=items,
    )
    if new_items:
        state["last_new_item"] = now.isoformat()
    return state


def record_failure(state: dict | None, *, name: str, now: datetime, reason: str) -> dict:
    """The feed's state after a failed fetch or parse, with the reason kept for `feeds status`."""
    state = dict(state or {})
    failures = int(state.get("consecutive_failures", 0)) + 1
    state.update(
        name=name,
        last_error=reason,
        last_error_at=now.isoformat(),
        last_attempt=now.isoformat(),
        consecutive_failures=failures,
        healthy=failures < UNHEALTHY_AFTER,
    )
    return state
