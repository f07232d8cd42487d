"""Every command exits the same way: 0 done, 1 the operation failed (a digest not delivered, the store
unreachable or busy), 2 the user's input is wrong (config, arguments, files named). README.md, "Exit codes"."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from newswatch.core.store import open_store
from newswatch.core.store.leases import hold
from tests.conftest import run_cli, write_config
from tests.test_alerts_run import make_project


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def test_done_is_0(config_dir: Path):
    """Commands that did what was asked exit 0, a delivery to the outbox folder included."""
    make_project(config_dir)
    for command in (["check-config"], ["alerts"], ["outbox", "list"], ["outbox", "retry"], ["digest", "--send-now"]):
        result = run_cli(*command, config_dir=config_dir)
        assert result.returncode == 0, (command, result.stderr)
        assert _errors(result) == [], command


def test_a_digest_not_delivered_is_1_for_every_command_that_sends(config_dir: Path):
    """SMTP server down: `alerts`, `digest --send-now` and `outbox retry` exit 1, with their summary and one
    error line; the digest stays queued."""
    smtp = {"host": "127.0.0.1", "port": _free_port(), "security": "none", "timeout": 5}
    config, store = make_project(config_dir, delivery={"method": "smtp", "smtp": smtp})
    store.close()
    expected = ["error: 1 digest was not delivered; it stays queued (see: newswatch outbox list)"]
    for command, summary in (
        (["alerts"], None),
        (["digest", "--send-now"], "digests: articles="),
        (["outbox", "retry"], "outbox retry: sent=0 failed=1"),
    ):
        result = run_cli(*command, config_dir=config_dir)
        assert result.returncode == 1, (command, result.stderr)
        assert _errors(result) == expected, command
        assert "Connection refused" in result.stderr  # the log line of the failure says why
        assert summary is None or result.stdout.startswith(summary), result.stdout
    with open_store(config) as store:
        assert len(store.pending_digests()) == 1


def test_a_store_that_cannot_be_opened_is_1(config_dir: Path):
    """The SQLite file cannot be made (its folder is a file): one error line and exit 1, for each command
    that uses the store."""
    write_config(config_dir, settings={"storage": {"sqlite": {"path": "blocker/newswatch.db"}}})
    (config_dir.parent / "blocker").write_text("not a folder", encoding="utf-8")
    for command in (["alerts"], ["outbox", "list"], ["outbox", "retry"], ["search", "Daesh"], ["feeds", "status"]):
        result = run_cli(*command, config_dir=config_dir)
        assert result.returncode == 1, (command, result.stderr)
        (line,) = result.stderr.splitlines()
        assert line.startswith("error: SQLite store ") and "blocker" in line, line


def test_a_store_another_process_holds_is_1(config_dir: Path):
    """An alerts pass already running on the store (its lease held): `alerts` exits 1 naming the holder."""
    config, store = make_project(config_dir)
    with hold(store, "alerts", "an alerts pass", config.settings.schedule.lease_seconds):
        result = run_cli("alerts", config_dir=config_dir)
    store.close()
    assert result.returncode == 1
    assert _errors(result) and "already runs on this store" in _errors(result)[0]


@pytest.mark.parametrize(
    "command",
    [["alerts"], ["outbox", "list"], ["outbox", "retry"], ["digest", "--send-now"], ["search", "x"], ["crawl"]],
)
def test_a_config_error_is_2(config_dir: Path, command: list[str]):
    """A wrong config file is the user's input: exit 2 with the file and key, whatever the command."""
    write_config(config_dir, settings={"delivery": {"method": "pigeon"}})
    result = run_cli(*command, config_dir=config_dir)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {config_dir / 'settings.yaml'}: delivery.method: ")


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["search", "x", "--since", "soon"], "--since: expected"),
        (["digest"], "give exactly one of --preview or --send-now"),
        (["digest", "--preview", "--recipient", "zoe"], "no recipient named 'zoe'"),
        (["crawl", "--feed", "nope"], "no feed with id 'nope'"),
        (["outbox", "retry", "--id", "nope@newswatch"], "no waiting or dead digest has the id 'nope@newswatch'"),
        (["watch", "explain", "Atlantis"], "no watch named 'Atlantis'"),
        (["feeds", "add", "ftp://example.org/rss"], "feeds add takes an http:// or https:// URL"),
        (["feeds", "add", "https://reader:hunter2@example.org/rss"], "a user name or password in a feed URL"),
        (["outbox", "retry", "--bogus"], "No such option '--bogus'"),
    ],
)
def test_a_bad_argument_is_2(config_dir: Path, command: list[str], says: str):
    """Arguments that are wrong exit 2 saying what (click's usage errors too), before anything is fetched or sent."""
    make_project(config_dir)[1].close()
    result = run_cli(*command, config_dir=config_dir)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr
