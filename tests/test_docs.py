"""Docs stay current: the config reference is generated from the models, every command is in the README."""

from __future__ import annotations

import click
from pydantic import BaseModel

from newswatch.cli import cli
from newswatch.core.config.feeds import Feed
from newswatch.core.config.recipients import Recipient
from newswatch.core.config.reference import render
from newswatch.core.config.settings import Settings
from newswatch.core.config.watches import Watch
from tests.conftest import ROOT


def _models(model: type[BaseModel]):
    yield model
    for field in model.model_fields.values():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _models(field.annotation)


def test_configuration_reference_is_current():
    """docs/configuration.md equals what `python -m newswatch.core.config.reference` renders now."""
    assert (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8") == render(), (
        "regenerate with: .venv/bin/python -m newswatch.core.config.reference > docs/configuration.md"
    )


def test_every_config_field_has_a_description():
    """Each key a user can write carries a description (it becomes the reference's 'meaning' column)."""
    missing = [
        f"{model.__name__}.{name}"
        for root in (Settings, Feed, Watch, Recipient)
        for model in _models(root)
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert missing == []


def test_every_command_is_in_the_readme():
    """Each `newswatch` command and sub-command is named in the README."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = []
    for name, command in cli.commands.items():
        names.append(name)
        if isinstance(command, click.Group):
            names += [f"{name} {sub}" for sub in command.commands]
    assert [n for n in names if f"newswatch {n}" not in readme] == []
