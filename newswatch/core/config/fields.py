"""What every config model shares: unknown keys refused, and the value types checked the same way everywhere."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError


class Strict(BaseModel):
    """A config section: a key it does not define is an error (a typo must not be ignored silently)."""

    model_config = ConfigDict(extra="forbid")


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
"""An IANA time zone name, checked against the zone database."""


def refuse_duplicates(
    items: Sequence[Any], *, where: str, field: str, value: Callable[[Any], str], key: Callable[[Any], str], why: str
) -> None:
    """A ValidationError at ``[i].<field>`` of each item whose ``key`` (the name casefolded, say) an earlier
    item has: ``'daesh' is also the name of watches[1] ('Daesh'); <why>``. ``where`` names the list."""
    first: dict[str, int] = {}
    details = []
    for i, item in enumerate(items):
        seen = first.setdefault(key(item), i)
        if seen != i:
            message = "{value} is also the {field} of {where}[{seen}] ({other}); {why}"
            context = {"value": repr(value(item)), "field": field, "where": where, "seen": seen}
            context |= {"other": repr(value(items[seen])), "why": why}
            details.append(
                InitErrorDetails(
                    type=PydanticCustomError("duplicate", message, context), loc=(i, field), input=value(item)
                )
            )
    if details:
        raise ValidationError.from_exception_data(where, details)


def refuse_credentials(url: str, *, reason: str) -> str:
    """``url`` unless it carries a user name or password (``http://user:pass@host``): then ValueError(reason).
    The reason never repeats the URL, so the password is not printed again."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url  # not a URL at all: the field's own check says so
    if parts.username is not None or parts.password is not None:
        raise ValueError(reason)
    return url
