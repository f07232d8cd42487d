"""What holds message content is its owner's only: var/ (the settings' var_dir), the outbox folder and the
digest previews are made 0700 when newswatch makes them (the .eml files themselves are 0600)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newswatch.core.store.sqlite import SqliteStore
from tests.conftest import run_cli, write_config
from tests.plugins.smtp import sample_articles


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    """The usual umask, under which a folder made without a mode is 0755 (readable by everyone)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_var_dir_outbox_and_eml_files_are_owner_only(config_dir: Path, umask_022):
    """`newswatch alerts` in a fresh project whose store lives elsewhere makes var/ and var/outbox 0700;
    the .eml files in it are 0600."""
    write_config(config_dir, settings={"storage": {"sqlite": {"path": "db/newswatch.db"}}})
    root = config_dir.parent
    with SqliteStore(root / "db" / "newswatch.db") as store:
        store.add_articles(sample_articles(datetime(2017, 11, 5, 9, 0, tzinfo=UTC)))
    result = run_cli("alerts", config_dir=config_dir)
    assert result.returncode == 0, result.stderr
    (eml,) = (root / "var" / "outbox").glob("*.eml")
    assert (_mode(root / "var"), _mode(root / "var" / "outbox"), _mode(eml)) == (0o700, 0o700, 0o600)


def test_an_existing_var_dir_keeps_its_mode(config_dir: Path, umask_022):
    """A var/ the user made (and chose the mode of) is left as it is."""
    write_config(config_dir)
    var = config_dir.parent / "var"
    var.mkdir(mode=0o750)
    assert run_cli("outbox", "list", config_dir=config_dir).returncode == 0
    assert _mode(var) == 0o750


def test_preview_folder_is_owner_only(config_dir: Path, tmp_path: Path, umask_022):
    """`digest --preview --out DIR` makes DIR (and the folders above it that are missing) 0700."""
    write_config(config_dir)
    out = tmp_path / "previews" / "today"
    result = run_cli("digest", "--preview", "--out", str(out), config_dir=config_dir)
    assert result.returncode == 0, result.stderr
    assert _mode(out) == 0o700 and _mode(out.parent) == 0o700
    assert sorted(p.name for p in out.iterdir()) == ["digest-analyst.html", "digest-analyst.txt"]
