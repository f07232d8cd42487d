"""Render the demo digest's HTML part in Debian's headless Chromium and check what a reader would see."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import yaml

from alerts.run import run_alerts
from newswatch.core.config import load_config
from newswatch.core.feedstate import FeedState
from newswatch.core.store.sqlite import SqliteStore
from tests.conftest import ROOT, write_config
from tests.plugins.smtp import sample_articles

pytestmark = pytest.mark.slow  # a real headless Chromium

WIDTH, HEIGHT = 760, 2600  # the whole demo digest at a phone-to-laptop width
NOW = datetime(2017, 11, 5, 9, 0, tzinfo=UTC)
# Set NEWSWATCH_UPDATE_SCREENSHOT=1 to refresh the copy kept in the docs.
DOCS_COPY = ROOT / "docs" / "digest-screenshot.png"


def chromium() -> str:
    """Debian's chromium, installed with apt-get when absent; the test skips only if that cannot be done."""
    found = shutil.which("chromium")
    if not found and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], capture_output=True, timeout=900)
        found = shutil.which("chromium")
    if not found:
        pytest.skip("Debian's chromium is not installed and cannot be installed here")
    return found


def pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and unfiltered RGB(A) rows of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, color = struct.unpack(">IIBB", png[16:26])
    assert depth == 8 and color in (2, 6)
    channels = 3 if color == 2 else 4
    data, position = b"", 8
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position : position + 8])
        if kind == b"IDAT":
            data += png[position + 8 : position + 8 + length]
        position += 12 + length
    raw, stride, rows, previous = zlib.decompress(data), width * channels, [], bytes(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, rows


def has_colour(rows: list[bytes], rgb: tuple[int, int, int], channels: int, tolerance: int = 6) -> bool:
    """True when some pixel is within ``tolerance`` of ``rgb``."""
    for row in rows[::3]:
        for x in range(0, len(row), channels):
            if all(abs(row[x + c] - rgb[c]) <= tolerance for c in range(3)):
                return True
    return False


def demo_digest_html(config_dir: Path) -> str:
    """The HTML part of the digest the demo writes: demo watches, demo-like articles, one failing feed."""
    watches = yaml.safe_load((ROOT / "newswatch" / "demo" / "watches.yaml").read_text(encoding="utf-8"))["watches"]
    feeds = [
        {"id": "levant", "name": "The Levant Monitor", "url": "http://127.0.0.1:8000/feed.xml"},
        {"id": "syria-wire", "name": "Syria Wire", "url": "http://127.0.0.1:8001/rss"},
    ]
    recipients = [{"name": "demo", "email": "analyst@example.org", "timezone": "Asia/Damascus"}]
    config = load_config(write_config(config_dir, feeds=feeds, watches=watches, recipients=recipients), env={})
    store = SqliteStore(config.path(config.settings.storage.sqlite.path))
    store.add_articles(sample_articles(NOW - timedelta(minutes=20)))
    store.set_feed_state(
        "syria-wire",
        FeedState.from_json(
            {
                "name": "Syria Wire",
                "healthy": False,
                "consecutive_failures": 6,
                "last_success": (NOW - timedelta(days=2)).isoformat(),
                "last_error": "HTTP 503 Service Unavailable",
            }
        ),
    )
    (path,) = run_alerts(config, store, now=NOW).written
    store.close()
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    return message.get_body(("html",)).get_content()


@pytest.mark.timeout(900)
def test_demo_digest_renders_in_headless_chromium(config_dir, tmp_path):
    """Chromium draws the digest: navy masthead, yellow highlights, red failing-feed note, on a full-width page."""
    browser = chromium()
    page = tmp_path / "digest.html"
    page.write_text(demo_digest_html(config_dir), encoding="utf-8")
    shot = tmp_path / "digest.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            f"--window-size={WIDTH},{HEIGHT}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert shot.exists(), "chromium wrote no screenshot"
    png = shot.read_bytes()
    width, height, rows = pixels(png)
    channels = len(rows[0]) // width
    assert (width, height) == (WIDTH, HEIGHT)
    assert has_colour(rows, (0x1F, 0x2A, 0x44), channels)  # masthead
    assert has_colour(rows, (0xFF, 0xE3, 0x8A), channels)  # <mark> highlight
    assert has_colour(rows, (0xB3, 0x26, 0x1E), channels)  # "failing" in the source-health section
    if os.environ.get("NEWSWATCH_UPDATE_SCREENSHOT"):
        DOCS_COPY.write_bytes(png)
