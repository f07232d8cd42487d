"""The web page in a real browser: Debian's headless Chromium, driven by selenium through chromium-driver.

Over the demo's own data (`newswatch demo` crawls the bundled site into a store) plus one article a hostile
feed wrote: every page loads with nothing refused by the content security policy, dashboard → watch → story
can be followed, another spelling finds the story, Arabic reads right to left, the hostile title is inert,
and nothing is wider than a 400 px screen. Set NEWSWATCH_UPDATE_SCREENSHOT=1 to refresh docs/web-*.png.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from alerts.run import run_alerts
from newswatch.core.config import Config, load_config
from newswatch.core.store import open_store
from newswatch.core.times import utc_now
from newswatch.web.server import WebServer
from tests.conftest import FIXTURES, ROOT, newswatch
from tests.test_web import HOSTILE_TITLE, hostile_article

pytestmark = pytest.mark.slow  # the demo's crawl in a child process, and a real Chromium

SEED_TITLE = "Daesh loses last towns in face of twin Syria, Iraq assaults"
ARABIC_TITLE = "الجيش السوري يعلن السيطرة الكاملة على مدينة دير الزور"
PAGES = ["/", "/watch/Deir%20Ezzor", "/story/hostile-1", "/search?q=" + quote("Deir ez-Zor"), "/sources", "/outbox"]
DOCS = ROOT / "docs"


def browser_binaries() -> tuple[str, str]:
    """Debian's chromium and chromedriver, installed with apt-get when absent (as root); the tests skip, saying
    why, only when that cannot be done."""
    if (
        not (shutil.which("chromium") and shutil.which("chromedriver"))
        and shutil.which("apt-get")
        and os.geteuid() == 0
    ):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"],
            capture_output=True,
            timeout=900,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("Debian's chromium and chromium-driver are not installed and cannot be installed here (not root)")
    return chromium, driver


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    """The folder `newswatch demo` leaves: its config, its store (the bundled site crawled and matched)."""
    base = tmp_path_factory.mktemp("web-demo")
    folder = base / "config"
    folder.mkdir()
    shutil.copyfile(FIXTURES / "watches.yaml", folder / "watches.yaml")
    result = newswatch("demo", "--workdir", str(base / "demo"), config_dir=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return base / "demo"


def serve(config: Config) -> Iterator[str]:
    server = WebServer(config, port=0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def site(demo_dir: Path, tmp_path_factory) -> Iterator[str]:
    """The page over a copy of the demo's store with a hostile article added and matched."""
    workdir = tmp_path_factory.mktemp("web-hostile") / "demo"
    shutil.copytree(demo_dir, workdir)
    config = load_config(workdir / "config", env={})
    with open_store(config) as store:
        store.add_articles([hostile_article(utc_now())])
        run_alerts(config, store)
    yield from serve(config)


@pytest.fixture(scope="module")
def clean_site(demo_dir: Path) -> Iterator[str]:
    """The page over the demo's own store, as a new user sees it (the screenshots in docs/)."""
    yield from serve(load_config(demo_dir / "config", env={}))


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, driver_path = browser_binaries()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=1280,1000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver) -> list[str]:
    """What the page's console reported as errors since the last call (a CSP refusal is one)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_every_page_loads_with_nothing_refused(browser, site: str):
    console_errors(browser)
    for path in PAGES:
        browser.get(site + path)
        assert browser.find_element("css selector", "h1").text, path
        assert "newswatch" in browser.title, path
        assert console_errors(browser) == [], path


def test_dashboard_to_watch_to_story(browser, site: str):
    browser.get(site + "/")
    browser.find_element("link text", "Deir Ezzor").click()
    assert browser.current_url == site + "/watch/Deir%20Ezzor"
    titles = [a.text for a in browser.find_elements("css selector", ".story h3 a")]
    assert SEED_TITLE in titles and ARABIC_TITLE in titles
    browser.find_element("link text", SEED_TITLE).click()
    assert "/story/" in browser.current_url
    assert browser.find_element("css selector", "h1").text == SEED_TITLE
    copies = browser.find_elements("css selector", ".copies li")
    assert copies and "Demo Wire" in copies[0].text
    matched = [h.text for h in browser.find_elements("css selector", ".verdict h3")]
    assert "Deir Ezzor" in matched and "Daesh" in matched


def test_search_with_another_spelling_finds_the_story(browser, site: str):
    for spelling in ("Deir ez-Zor", "دير الزور"):
        browser.get(site + "/")
        box = browser.find_element("name", "q")
        box.send_keys(spelling)
        box.submit()
        assert "/search?q=" in browser.current_url
        titles = [a.text for a in browser.find_elements("css selector", ".story h3 a")]
        assert SEED_TITLE in titles and ARABIC_TITLE in titles, (spelling, titles)


def test_arabic_reads_right_to_left(browser, site: str):
    browser.get(site + "/watch/Deir%20Ezzor")
    direction = "return getComputedStyle(arguments[0]).direction"
    arabic = [
        element
        for element in browser.find_elements("css selector", "blockquote.snippet, .story h3")
        if "دير الزور" in element.text
    ]
    assert arabic, "no Arabic snippet on the page"
    assert all(browser.execute_script(direction, element) == "rtl" for element in arabic)
    english = browser.find_element("xpath", f"//h3[a[text()={SEED_TITLE!r}]]")
    assert browser.execute_script(direction, english) == "ltr"


def test_a_hostile_title_is_inert(browser, site: str):
    from selenium.common.exceptions import NoAlertPresentException

    for path in ["/", "/watch/Deir%20Ezzor", "/story/hostile-1", "/search?q=Deir"]:
        browser.get(site + path)
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.accept()
        assert browser.execute_script("return document.scripts.length") == 0, path
        assert browser.execute_script("return document.images.length") == 0, path
        hrefs = browser.execute_script("return [...document.links].map(a => a.protocol)")
        assert set(hrefs) <= {"http:", "https:"}, path
    browser.get(site + "/story/hostile-1")
    assert browser.find_element("css selector", "h1").text == HOSTILE_TITLE  # shown as the text it is


def test_nothing_overflows_a_400_px_screen(browser, site: str):
    widest = "return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 400, "height": 860, "deviceScaleFactor": 1, "mobile": True}
    )
    try:
        for path in PAGES:
            browser.get(site + path)
            assert browser.execute_script("return window.innerWidth") == 400
            assert browser.execute_script(widest) <= 400, path
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def full_page_png(browser, width: int) -> bytes:
    """The whole page at ``width`` CSS pixels, as a PNG."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        return browser.get_screenshot_as_png()
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_screenshots_of_the_dashboard_and_a_watch(browser, clean_site: str, tmp_path: Path):
    """The dashboard and the Deir Ezzor page as a reader sees them, whole, at 1100 px: the masthead, the bars
    and the highlights drawn in their colours."""
    colour = "return getComputedStyle(document.querySelector(arguments[0]))[arguments[1]]"
    shots = {}
    for name, path in (("web-dashboard.png", "/"), ("web-watch.png", "/watch/Deir%20Ezzor")):
        browser.get(clean_site + path)
        assert browser.execute_script(colour, ".masthead", "backgroundColor") == "rgb(31, 42, 68)"
        if path == "/":
            assert browser.execute_script(colour, ".spark rect:not(.base)", "fill") == "rgb(61, 90, 153)"
        else:
            assert browser.execute_script(colour, "mark", "backgroundColor") == "rgb(255, 227, 138)"
        shots[name] = full_page_png(browser, 1100)
        (tmp_path / name).write_bytes(shots[name])
    for name, png in shots.items():
        assert png[:8] == b"\x89PNG\r\n\x1a\n", name
        width, height = struct.unpack(">II", png[16:24])
        assert width == 1100 and height > 400, (name, width, height)
    if os.environ.get("NEWSWATCH_UPDATE_SCREENSHOT"):
        for name, png in shots.items():
            (DOCS / name).write_bytes(png)
