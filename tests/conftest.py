"""Shared fixtures: config folders in tmp_path, a local HTTP site, the newswatch command as a subprocess."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from newswatch.cli import cli
from newswatch.core.logs import quiet_libraries
from newswatch.demo.server import serve_site

pytest_plugins = [f"tests.plugins.{p.stem}" for p in Path(__file__).with_name("plugins").glob("[a-z]*.py")]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _matcher_cache(tmp_path_factory):
    """Compiled matchers are cached per test session, never in the user's own cache folder."""
    os.environ["NEWSWATCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("matcher-cache"))


def matched_spans(matcher, text: str) -> list[tuple[str, str]]:
    """(watch, matched text) of every span ``matcher`` finds in ``text``, checking that each span's offsets
    give its matched text back in the original."""
    spans = matcher.find(text)
    for s in spans:
        assert text[s.start : s.end] == s.matched
    return [(s.watch, s.matched) for s in spans]


@pytest.fixture(autouse=True, scope="session")
def _library_log_levels():
    """Library loggers at the levels every newswatch process sets (e.g. no transport retry tracebacks)."""
    quiet_libraries()


FIXTURES = Path(__file__).with_name("fixtures")
DEMO_SITE = ROOT / "newswatch" / "demo" / "site"


def write_config(folder: Path, *, feeds=(), watches=None, recipients=None, settings=None) -> Path:
    """Write a config folder (settings/feeds/watches/recipients YAML) and return it. The watches default to
    tests/fixtures/watches.yaml (a copy of the shipped ones, so that editing config/ changes no test)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = {"storage": {"sqlite": {"path": "var/newswatch.db"}}, "delivery": {"outbox_dir": "var/outbox"}}
    for key, value in (settings or {}).items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    files = {
        "settings.yaml": base,
        "feeds.yaml": {"feeds": list(feeds)},
        "watches.yaml": {
            "watches": watches
            if watches is not None
            else yaml.safe_load((FIXTURES / "watches.yaml").read_text(encoding="utf-8"))["watches"]
        },
        "recipients.yaml": {
            "recipients": recipients
            if recipients is not None
            else [{"name": "analyst", "email": "analyst@example.org"}]
        },
    }
    for name, data in files.items():
        (folder / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return folder


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """An empty project folder's config path (tmp_path/project/config), to be filled by write_config."""
    return tmp_path / "project" / "config"


@pytest.fixture
def demo_site(tmp_path: Path):
    """The bundled demo news site plus tests/fixtures/site/ (faulty files), on 127.0.0.1; yields its base URL."""
    folder = tmp_path / "site"
    shutil.copytree(DEMO_SITE, folder)
    shutil.copytree(FIXTURES / "site", folder, dirs_exist_ok=True)
    server = serve_site(folder)
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}"
    server.shutdown()
    server.server_close()


def newswatch(
    *args: str, config_dir: Path | None = None, input: str | None = None, timeout: float = 180, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the `newswatch` command in a child process, as a user would, and capture its output (for what
    needs a process of its own: a crawl, whose reactor cannot restart, the service, the demo)."""
    command = [sys.executable, "-m", "newswatch"]
    if config_dir is not None:
        command += ["--config", str(config_dir)]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("NEWSWATCH_CONFIG_DIR", None)
    return subprocess.run(
        command + list(args), capture_output=True, text=True, input=input, timeout=timeout, cwd=ROOT, env=full_env
    )


def run_cli(
    *args: str, config_dir: Path | None = None, input: str | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the `newswatch` command in this process with click's runner; the answer has the fields of a child
    process's (returncode, stdout, stderr), its log lines included in stderr."""
    command = (["--config", str(config_dir)] if config_dir is not None else []) + list(args)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    runner = CliRunner(env={"NEWSWATCH_CONFIG_DIR": None, **(env or {})})
    previous = os.getcwd()
    os.chdir(ROOT)  # as the child processes run: relative paths (var/preview...) are the project's
    try:
        result = runner.invoke(cli, command, input=input, catch_exceptions=False)
    finally:
        os.chdir(previous)
        # the command's log handler wrote to the runner's stream, which is gone now
        root.handlers[:], root.level = handlers, level
    return subprocess.CompletedProcess(["newswatch", *command], result.exit_code, result.stdout, result.stderr)


def spawn(config_dir: Path, *args: str, **popen) -> subprocess.Popen:
    """`newswatch --config CONFIG_DIR ARGS...` started in a child process (unbuffered output), not waited for."""
    env = {k: v for k, v in os.environ.items() if k != "NEWSWATCH_CONFIG_DIR"} | {"PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "newswatch", "--config", str(config_dir), *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, text=True, **popen)


def start_service(config_dir: Path) -> subprocess.Popen:
    """`newswatch run` in a child process, its output (log lines) readable line by line from ``stdout``."""
    return spawn(config_dir, "run", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def stop_service(service: subprocess.Popen, seen: list[str], timeout: float = 60) -> str:
    """SIGTERM the service, wait for it to exit (killed after ``timeout``); returns all it logged."""
    try:
        service.send_signal(signal.SIGTERM)
        rest, _ = service.communicate(timeout=timeout)
    finally:
        if service.poll() is None:
            service.kill()
    return "".join(seen) + rest


def wait_for(process: subprocess.Popen, needle: str, seen: list[str], timeout: float = 120) -> None:
    """Read ``process``'s output into ``seen`` until a line holds ``needle``; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if needle in line:
            return
    raise AssertionError(f"{needle!r} not logged; output:\n{''.join(seen)[-3000:]}")
