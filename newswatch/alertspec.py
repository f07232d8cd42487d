"""The alerts-side config models: recipients (config/recipients.yaml) and delivery settings (docs/delivery.md)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
"""An IANA time zone name, checked against the zone database."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Recipient(_Strict):
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


class RecipientList(_Strict):
    recipients: list[Recipient] = Field(default_factory=list, description="Who gets digests.")

    @field_validator("recipients")
    @classmethod
    def _unique_names(cls, recipients: list[Recipient]) -> list[Recipient]:
        names = [r.name for r in recipients]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"the recipient name {name!r} is used twice (it is their id in the ledger)")
        return recipients


class SmtpSettings(_Strict):
    host: str = Field("localhost", description="SMTP server host.")
    port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    security: Literal["none", "starttls", "tls"] = Field(
        "starttls", description="Transport security: none, starttls (usually port 587) or tls (implicit, port 465)."
    )
    timeout: float = Field(30, gt=0, description="Seconds before the connection is abandoned.")
    ca_file: str | None = Field(
        None, description="CA bundle to verify the server certificate with (default: the system's)."
    )
    verify: bool = Field(True, description="Verify the server certificate and host name (leave on).")


class DeliverySettings(_Strict):
    method: Literal["outbox", "smtp"] = Field(
        "outbox", description="outbox writes .eml files under var/outbox; smtp sends them."
    )
    sender: str = Field("newswatch <newswatch@localhost>", description="From: address of digests.")
    outbox_dir: str = Field("var/outbox", description="Folder of .eml files (outbox method).")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings, description="SMTP server (smtp method).")
    retry_first_seconds: float = Field(60, gt=0, description="Wait after the first failed attempt; doubles each time.")
    retry_max_seconds: float = Field(6 * 3600, gt=0, description="Longest wait between two attempts.")
    silent_feed_hours: float = Field(
        48, gt=0, description="A feed with no successful fetch for this long is listed as silent in digests."
    )
    max_entries_per_watch: int = Field(25, ge=1, description="Stories shown per watch; the rest are counted.")

    @field_validator("sender")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\r" in value or "\n" in value or "@" not in value:
            raise ValueError("must be one address like 'newswatch <newswatch@example.org>'")
        return value
