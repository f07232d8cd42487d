"""config/recipients.yaml: who receives digests, of which watches, how often (docs/delivery.md)."""

from __future__ import annotations

import re
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from newswatch.core.config.fields import Strict, TimeZoneName, refuse_duplicates

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Recipient(Strict):
    """Someone who receives digests: which watches, how often, and in which time zone."""

    name: str = Field(
        min_length=1, pattern=r"^[^\r\n\t]+$", description="Recipient's display name; also their id in the ledger."
    )
    email: str = Field(pattern=r"^[^@\s<>\",;]+@[^@\s<>\",;]+$", description="Email address.")
    watches: list[str] | Literal["all"] = Field("all", description="Watch names to receive, or 'all'.")
    cadence: Literal["immediate", "hourly", "daily", "weekly"] = Field(
        "daily",
        description="immediate: after the crawl that found a hit; hourly; daily at `at`; weekly on `weekday` at `at`.",
    )
    at: str = Field("07:00", description="Local time (HH:MM, 24-hour) of daily and weekly digests.")
    weekday: Literal[WEEKDAYS] = Field("monday", description="Day of weekly digests.")  # type: ignore[valid-type]
    timezone: TimeZoneName = Field("UTC", description="IANA time zone of `at` and of times shown in the digest.")
    send_empty: bool = Field(False, description="Send a digest saying 'nothing new' when a period had no hits.")
    digest_layout: Literal["stories", "watches"] = Field(
        "stories",
        description=(
            "stories: each story once, with every watch it matched, then a short section per watch; "
            "watches: the stories grouped under each watch (a story of two watches is shown under both)."
        ),
    )
    notify_urls: list[str] = Field(
        default_factory=list,
        description="Apprise notification URLs (slack://, tgram://, matrix://...) also told of immediate alerts.",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _name_the_recipient(cls, data: Any, handler: Any) -> Recipient:
        # Pydantic locates errors by list index; a reader of a long recipients.yaml needs the name as well.
        try:
            return handler(data)
        except ValidationError as exc:
            name = data.get("name") if isinstance(data, dict) else None
            if not isinstance(name, str) or not name:
                raise
            details = [
                InitErrorDetails(
                    type=PydanticCustomError(err["type"], f"recipient {name!r}: {err['msg']}"),
                    loc=err["loc"],
                    input=err.get("input"),
                )
                for err in exc.errors()
            ]
            raise ValidationError.from_exception_data(cls.__name__, details) from None

    @field_validator("at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
        if not match:
            raise ValueError("must be a 24-hour time like 07:00")
        return f"{int(match[1]):02d}:{match[2]}"

    @field_validator("notify_urls")
    @classmethod
    def _url_schemes(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if "://" not in url:
                raise ValueError(f"{url!r} is not a notification URL (scheme://...)")
        return urls

    @property
    def zone(self) -> ZoneInfo:
        """The recipient's time zone."""
        return ZoneInfo(self.timezone)


class RecipientList(Strict):
    recipients: list[Recipient] = Field(default_factory=list, description="Who gets digests.")

    @field_validator("recipients")
    @classmethod
    def _unique_names(cls, recipients: list[Recipient]) -> list[Recipient]:
        refuse_duplicates(
            recipients,
            where="recipients",
            field="name",
            value=lambda r: r.name,
            key=lambda r: " ".join(r.name.casefold().split()),
            why="a recipient's name is their id in the ledger and names their files: make it differ by more than case",
        )
        return recipients
