"""The watch model a user writes in config/watches.yaml (docs/watches.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from newswatch.core.config.fields import refuse_duplicates
from newswatch.core.textnorm import normalize


class Alias(BaseModel):
    """A spelling with matching options, for names that are also ordinary words (IS, Isis, SDF)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, description="The spelling, as it is written.")
    case_sensitive: bool = Field(
        False, description="Match only this capitalization (or all capitals), e.g. IS but not 'is'."
    )
    needs_context: bool = Field(
        False, description="Match only when one of the watch's context words is within `window` words."
    )


class Near(BaseModel):
    """Two terms within a number of words of each other, in the same field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    near: tuple[Rule, Rule] = Field(description="The two terms (names or nested rules).")
    words: int = Field(10, ge=1, le=200, description="At most this many words between the two terms.")


class AllOf(BaseModel):
    """Every sub-rule must match somewhere in the article."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    all: list[Rule] = Field(min_length=1, description="Sub-rules that must all match.")


class AnyOf(BaseModel):
    """At least one sub-rule must match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    any: list[Rule] = Field(min_length=1, description="Sub-rules of which one is enough.")


class Not(BaseModel):
    """The sub-rule must not match anywhere in the article (use inside `all`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    not_: Rule = Field(alias="not", description="Sub-rule that must not match.")


# A term is a name: another watch's name, a known place or group (expanded like a watch of that kind),
# or else a literal keyword.
Rule = str | Near | AllOf | AnyOf | Not
for _model in (Near, AllOf, AnyOf, Not):
    _model.model_rebuild()


class Watch(BaseModel):
    """One thing to watch for: a place, an armed group or a plain keyword, with optional extra spellings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Display name; also matched as a spelling.")
    kind: Literal["place", "group", "keyword"] = Field(
        "keyword", description="What the watch is about: place, group or keyword."
    )
    aliases: list[str | Alias] = Field(default_factory=list, description="Further spellings matched as the same watch.")
    expand: bool = Field(
        True, description="Add the spellings the shipped gazetteer (places) or group table (groups) knows."
    )
    include_towns: bool = Field(
        False, description="For a province or governorate: also match the names of the towns in it."
    )
    context: list[str] = Field(
        default_factory=list, description="Words that confirm an ambiguous alias when within `window` words."
    )
    exclude: list[str] = Field(
        default_factory=list, description="Drop a hit when one of these terms is within `window` words of it."
    )
    window: int = Field(12, ge=1, le=200, description="Words either side searched for context and exclude terms.")
    rule: Rule | None = Field(
        None, description="Match this rule (any/all/not/near of names) instead of the name and aliases."
    )

    @field_validator("aliases", "context", "exclude")
    @classmethod
    def _no_blank(cls, values: list) -> list:
        for value in values:
            if isinstance(value, str) and not value.strip():
                raise ValueError("blank entries are not allowed")
        return values


class WatchList(BaseModel):
    """The top level of a watches file."""

    model_config = ConfigDict(extra="forbid")

    watches: list[Watch] = Field(default_factory=list, description="The watches, matched in every article.")

    @field_validator("watches")
    @classmethod
    def _unique_names(cls, watches: list[Watch]) -> list[Watch]:
        # Names compared as the matcher compares spellings (case, accents, Arabic letter forms folded): two
        # that only differ so would be one watch to it, and each recipient's list names watches by name.
        refuse_duplicates(
            watches,
            where="watches",
            field="name",
            value=lambda w: w.name,
            key=lambda w: normalize(w.name).strip(),
            why="watch names must differ by more than case or accents",
        )
        return watches
