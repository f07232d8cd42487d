"""`newswatch demo`: offline, it crawls the bundled site and writes a digest; its last line is the .eml path."""

from __future__ import annotations

import shutil
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, newswatch

pytestmark = pytest.mark.slow  # the demo runs in a child process


def _config(tmp_path: Path) -> Path:
    """A --config folder holding only a watches.yaml (the shipped watches), which the demo then uses."""
    folder = tmp_path / "config"
    folder.mkdir()
    shutil.copyfile(FIXTURES / "watches.yaml", folder / "watches.yaml")
    return folder


def test_demo_writes_a_digest_naming_deir_ezzor_and_daesh(tmp_path: Path):
    """The digest written by the demo names Deir Ezzor and Daesh and carries the seed article's title."""
    result = newswatch("demo", "--workdir", str(tmp_path / "demo"), config_dir=_config(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    eml = Path(result.stdout.strip().splitlines()[-1])
    assert eml.suffix == ".eml" and eml.is_file()
    assert eml.is_relative_to(tmp_path / "demo" / "outbox")
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    text = message.get_body(("plain",)).get_content()
    for expected in ("Deir Ezzor", "Daesh", "Daesh loses last towns in face of twin Syria, Iraq assaults"):
        assert expected in text
    html = message.get_body(("html",)).get_content()
    assert "Deir Ezzor" in html and "<mark" in html


def test_demo_runs_again_from_scratch(tmp_path: Path):
    """A second demo run starts from an empty store and writes a fresh digest (nothing 'already sent')."""
    config = _config(tmp_path)
    first = newswatch("demo", "--workdir", str(tmp_path / "demo"), config_dir=config)
    second = newswatch("demo", "--workdir", str(tmp_path / "demo"), config_dir=config)
    assert first.returncode == 0 and second.returncode == 0, second.stderr[-2000:]
    assert Path(second.stdout.strip().splitlines()[-1]).is_file()
    assert len(list((tmp_path / "demo" / "outbox").glob("*.eml"))) == 1
