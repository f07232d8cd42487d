"""The floors hold (import-linter's contracts in pyproject.toml), and a crawl child never loads the alerts side."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from newswatch.core.config import load_config
from newswatch.service.crawl import CrawlProcess
from tests.conftest import ROOT, write_config


def test_import_contracts_hold():
    """import-linter's contracts are all kept: the layers (exhaustive), no cycles, no Scrapy below the crawler."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 8 kept, 0 broken." in result.stdout


# Imported by Python at start-up when its folder is on PYTHONPATH: writes the child's sys.modules at exit.
_REPORT_MODULES = """
import atexit, os, sys
atexit.register(lambda: open(os.environ["MODULES_REPORT"], "w").write("\\n".join(sorted(sys.modules))))
"""


@pytest.mark.slow
def test_a_crawl_child_process_imports_the_crawler_and_not_the_alerts_side(
    tmp_path: Path, config_dir: Path, demo_site: str
):
    """The very command the service runs for each crawl loads Scrapy and the crawler, and no module of the
    alerts side (its sys.modules, written when it exits)."""
    write_config(config_dir, feeds=[{"name": "Demo Wire", "url": f"{demo_site}/feed.xml"}], watches=[])
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_REPORT_MODULES, encoding="utf-8")
    report = tmp_path / "modules.txt"
    env = {**os.environ, "PYTHONPATH": str(hook), "MODULES_REPORT": str(report)}
    result = subprocess.run(
        CrawlProcess(load_config(config_dir)).args, capture_output=True, text=True, timeout=180, cwd=ROOT, env=env
    )
    assert result.returncode == 0 and "crawl_finished" in result.stderr, result.stderr[-2000:]
    imported = set(report.read_text(encoding="utf-8").split())
    assert {"crawler.spiders.feeds", "crawler.pipelines", "scrapy"} <= imported
    assert sorted(name for name in imported if name.split(".")[0] == "alerts") == []
