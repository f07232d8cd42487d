"""Render the demo digest's HTML part in Debian's headless Chromium (driven by selenium through chromium-driver)
and check what a reader would see: as sent, with its <style> stripped the way Gmail does, in a dark-mode client
(prefers-color-scheme: dark) and under Chromium's forced darkening (what clients that invert mail do). In each,
the 14-day chart's bars and the text must stay visible: measured on the pixels Chromium draws.

Run with NEWSWATCH_UPDATE_SCREENSHOT=1 to refresh docs/digest-screenshot.png (the light rendering).
"""

from __future__ import annotations

import base64
import math
import os
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import yaml

from alerts.run import run_alerts
from newswatch.core.config import load_config
from newswatch.core.feedstate import FeedState
from newswatch.core.models import Article
from newswatch.core.store.sqlite import SqliteStore
from tests.conftest import ROOT, write_config
from tests.plugins.smtp import sample_articles

pytestmark = pytest.mark.slow  # a real headless Chromium

WIDTH = 760  # a phone-to-laptop width
NOW = datetime(2017, 11, 5, 9, 0, tzinfo=UTC)
DOCS_COPY = ROOT / "docs" / "digest-screenshot.png"
BAR = (0x3B, 0x6F, 0xD4)  # the bars' colour as sent; dark mode lightens it (the template's @media block)

# Earlier articles, first stored on the days before NOW (and delivered in an earlier digest), so the charts
# have a history: Deir Ezzor about every other day (today's three copies are a spike), Daesh once 10 days ago
# ("first mention in 10 days"), the other watches never ("first mention on record").
HISTORY = [
    (13, "Water returns to parts of Deir Ezzor after repairs"),
    (11, "Aid convoy reaches the outskirts of Deir Ezzor"),
    (10, "Daesh claims an attack on a checkpoint"),
    (8, "Deir Ezzor airport road reopens"),
    (6, "Schools reopen in western Deir Ezzor"),
    (3, "Fighting reported south of Deir Ezzor"),
    (2, "Residents flee clashes near Deir Ezzor"),
]


def installed(program: str, package: str) -> str:
    """A Debian program, installed with apt-get when absent; the test skips only if that cannot be done."""
    found = shutil.which(program)
    if not found and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", package], capture_output=True, timeout=900)
        found = shutil.which(program)
    if not found:
        pytest.skip(f"Debian's {package} is not installed and cannot be installed here")
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


class Picture:
    """The RGB pixels of a screenshot of part of the page, addressed in page coordinates."""

    def __init__(self, png: bytes, x: int, y: int):
        self.width, self.height, self.rows = pixels(png)
        self.channels = len(self.rows[0]) // self.width
        self.x, self.y = x, y

    def at(self, x: float, y: float) -> tuple[int, int, int]:
        row = self.rows[min(self.height - 1, max(0, int(y) - self.y))]
        i = min(self.width - 1, max(0, int(x) - self.x)) * self.channels
        return row[i], row[i + 1], row[i + 2]

    def inside(self, rect: dict) -> list[tuple[int, int, int]]:
        """The pixels wholly inside ``rect``."""
        xs = range(math.ceil(rect["x"]), math.floor(rect["x"] + rect["width"]))
        ys = range(math.ceil(rect["y"]), math.floor(rect["y"] + rect["height"]))
        return [self.at(x, y) for y in ys for x in xs]


def luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG relative luminance."""
    linear = [c / 255 / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG contrast ratio, 1 to 21."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_contrast(picture: Picture, rect: dict) -> float:
    """Contrast of the text drawn in ``rect`` against its background (its most common colour)."""
    colours = picture.inside(rect)
    background = Counter(colours).most_common(1)[0][0]
    return max(contrast(background, colour) for colour in colours)


def demo_digest_html(config_dir: Path) -> str:
    """The HTML part of the digest the demo writes (demo watches, demo-like articles, one failing feed), after two
    weeks of history."""
    watches = yaml.safe_load((ROOT / "newswatch" / "demo" / "watches.yaml").read_text(encoding="utf-8"))["watches"]
    feeds = [
        {"id": "levant", "name": "The Levant Monitor", "url": "http://127.0.0.1:8000/feed.xml"},
        {"id": "syria-wire", "name": "Syria Wire", "url": "http://127.0.0.1:8001/rss"},
    ]
    recipients = [{"name": "demo", "email": "analyst@example.org", "timezone": "Asia/Damascus"}]
    config = load_config(write_config(config_dir, feeds=feeds, watches=watches, recipients=recipients), env={})
    store = SqliteStore(config.path(config.settings.storage.sqlite.path))
    earlier = []
    for days, title in HISTORY:
        moment = NOW - timedelta(days=days, hours=3)
        slug = re.sub(r"\W+", "-", title.lower())
        url = f"http://127.0.0.1:8000/earlier/{slug}.html"
        text = f"{title}, residents said."
        earlier.append(
            Article(
                id=slug,
                url=url,
                title=title,
                text=text,
                feed_id="levant",
                outlet="The Levant Monitor",
                published=moment,
                fetched=moment,
                language="en",
            )
        )
    store.add_articles(earlier)
    run_alerts(config, store, now=NOW - timedelta(hours=2))  # the earlier stories go in an earlier digest
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


@pytest.fixture(scope="module")
def digest_html(tmp_path_factory) -> str:
    return demo_digest_html(tmp_path_factory.mktemp("project") / "config")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Debian's chromium, headless, driven by selenium through Debian's chromium-driver."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = installed("chromium", "chromium")
    profile = tmp_path_factory.mktemp("chromium-profile")
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(installed("chromedriver", "chromium-driver")))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": 1200, "deviceScaleFactor": 1, "mobile": False}
    )
    yield driver
    driver.quit()


# What each reader's client does to the message: (drop the <style> block, prefers-color-scheme, force dark).
MODES = {
    "as sent": (False, "light", False),
    "gmail without style": (True, "light", False),
    "dark mode": (False, "dark", False),
    "forced dark": (False, "light", True),
}

# The page boxes the checks look at: the first two charts with a history (their bars, an empty day's column, the
# day counts), the headline, a story title, a snippet and the page's own background.
LAYOUT_SCRIPT = """
const box = e => { const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; };
// A day's bar is its cell's bottom border: a day of 0 a 2 px baseline, a day with no data none.
const border = d => parseFloat(getComputedStyle(d).borderBottomWidth) || 0;
const bar = d => {
  const r = box(d), w = border(d);
  return {x: r.x, y: r.y + r.height - w, width: r.width, height: w};
};
const charts = [...document.querySelectorAll('table.chart')]
  .filter(t => /Articles first seen per day/.test(t.textContent) && t.rows[1].cells.length === 14)
  // the charts of watches with a history (Deir Ezzor, Daesh): days with and without articles
  .filter(t => [...t.rows[1].cells].some(d => border(d) === 2));
return {
  height: document.documentElement.scrollHeight,
  charts: charts.slice(0, 2).map(chart => {
    const days = [...chart.rows[1].cells];
    const counts = [...chart.rows[2].cells];
    return {
      box: box(chart),
      bars: days.filter(d => border(d) > 2).map(bar),
      empty: days.filter(d => border(d) === 2).map(box),
      counts: counts.map(c => ({box: box(c), text: c.textContent.trim()})),
    };
  }),
  headline: box([...document.querySelectorAll('p')].find(p => /new stories for/.test(p.textContent))),
  title: box(document.querySelector('p[dir] a')),
  snippet: box(document.querySelector('mark').parentElement),
};
"""


def shoot(driver, box: dict) -> Picture:
    """The pixels of the page inside ``box`` (page coordinates, beyond the window if need be)."""
    x, y = math.floor(box["x"]), math.floor(box["y"])
    width, height = math.ceil(box["x"] + box["width"]) - x, math.ceil(box["y"] + box["height"]) - y
    clip = {"x": x, "y": y, "width": width, "height": height, "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    return Picture(base64.b64decode(shot["data"]), x, y)


def render(driver, html: str, folder: Path, mode: str) -> dict:
    """Load the digest in ``driver`` as the ``mode`` client shows it; returns the layout of the parts checked."""
    strip, scheme, force_dark = MODES[mode]
    if strip:
        html = re.sub(r"<style[^>]*>.*?</style>", "", html, flags=re.S)
        assert "<style" not in html
    page = folder / "digest.html"
    page.write_text(html, encoding="utf-8")
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
    )
    driver.execute_cdp_cmd("Emulation.setAutoDarkModeOverride", {"enabled": True} if force_dark else {})
    driver.get(page.as_uri())
    return driver.execute_script(LAYOUT_SCRIPT)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", list(MODES))
def test_chart_bars_and_text_stay_visible(browser, digest_html, tmp_path, mode):
    """In every client the charts show their bars against the background (WCAG non-text contrast 3:1), their day
    counts as readable text, and the headline, titles and snippets stay readable (4.5:1); dark clients draw a
    dark page."""
    layout = render(browser, digest_html, tmp_path, mode)
    assert len(layout["charts"]) == 2, "every section shows its 14-day chart"
    for chart in layout["charts"]:
        box = chart["box"]
        picture = shoot(browser, box)
        assert chart["bars"] and chart["empty"], "the demo history has days with and without articles"
        background = picture.at(chart["empty"][0]["x"] + 2, chart["empty"][0]["y"] + 8)
        for bar in chart["bars"]:
            colour = picture.at(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)
            assert contrast(colour, background) >= 3, (mode, colour, background)
            if mode in ("as sent", "gmail without style"):
                assert max(abs(c - b) for c, b in zip(colour, BAR, strict=True)) <= 6, colour
        for count in chart["counts"]:
            assert count["text"].isdigit() or count["text"] == "–"  # "–": before the first mention on record
            assert text_contrast(picture, count["box"]) >= (4.5 if count["text"] not in ("0", "–") else 3), (
                mode,
                count,
            )
    for part in ("headline", "title", "snippet"):
        box = layout[part]
        picture = shoot(browser, box)
        assert text_contrast(picture, box) >= 4.5, (mode, part)
    corner = shoot(browser, {"x": 0, "y": 0, "width": 8, "height": 8}).at(4, 4)
    dark = mode in ("dark mode", "forced dark")
    assert luminance(corner) < 0.1 if dark else luminance(corner) > 0.7, (mode, corner)


COLOURS_SCRIPT = """
const box = e => { const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; };
return {
  masthead: box(document.querySelector('div > div > div')),
  mark: box(document.querySelector('mark')),
  failing: box([...document.querySelectorAll('span')].find(s => s.textContent.startsWith('failing'))),
  bar: (() => {
    const width = c => parseFloat(getComputedStyle(c).borderBottomWidth);
    const d = [...document.querySelector('table.chart').rows[1].cells].find(c => width(c) > 2);
    const r = box(d), w = width(d);
    return {x: r.x, y: r.y + r.height - w, width: r.width, height: w};
  })(),
};
"""


@pytest.mark.timeout(900)
def test_demo_digest_screenshot(browser, digest_html, tmp_path):
    """The digest as sent: navy masthead, yellow highlights, red failing-feed note, blue chart bars, the Deir
    Ezzor spike and Daesh's first mention in 10 days; the copy in docs/ is refreshed on request."""
    layout = render(browser, digest_html, tmp_path, "as sent")
    expected = {"masthead": (0x1F, 0x2A, 0x44), "mark": (0xFF, 0xE3, 0x8A), "failing": (0xB3, 0x26, 0x1E), "bar": BAR}
    for part, box in browser.execute_script(COLOURS_SCRIPT).items():
        picture = shoot(browser, box)
        assert any(
            max(abs(c - e) for c, e in zip(colour, expected[part], strict=True)) <= 6 for colour in picture.inside(box)
        ), part
    text = browser.find_element("tag name", "body").text
    assert re.search(r"▲ \d+\N{MULTIPLICATION SIGN} its 7-day average", text) and "first mention in 10 days" in text
    if os.environ.get("NEWSWATCH_UPDATE_SCREENSHOT"):
        clip = {"x": 0, "y": 0, "width": WIDTH, "height": layout["height"], "scale": 1}
        shot = browser.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        DOCS_COPY.write_bytes(base64.b64decode(shot["data"]))
