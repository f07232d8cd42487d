"""The watch model a user writes in config/watches.yaml (docs/watches.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Watch(BaseModel):
    """One thing to watch for: a place, an armed group or a plain keyword, with optional extra spellings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Display name; also matched as a spelling.")
    kind: Literal["place", "group", "keyword"] = Field(
        "keyword", description="What the watch is about: place, group or keyword."
    )
    aliases: list[str] = Field(default_factory=list, description="Further spellings matched as the same watch.")


class WatchList(BaseModel):
    """The top level of a watches file."""

    model_config = ConfigDict(extra="forbid")

    watches: list[Watch] = Field(default_factory=list, description="The watches, matched in every article.")
