"""End to end: real spider → SQLite store → matching → digest delivered to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import newswatch, write_config

pytestmark = pytest.mark.slow  # crawls run in child processes

SEED_TITLE = "Daesh loses last towns in face of twin Syria, Iraq assaults"


def test_feed_to_inbox(config_dir: Path, demo_site: str, smtp_server):
    """A crawl of the demo site and one alerts pass deliver one multipart digest naming the watches hit."""
    write_config(
        config_dir,
        feeds=[{"name": "Levant Monitor", "url": f"{demo_site}/feed.xml", "language": "en"}],
        recipients=[{"name": "analyst", "email": "analyst@example.org"}],
        settings={"delivery": smtp_server.settings()},
    )
    crawl = newswatch("crawl", config_dir=config_dir)
    assert crawl.returncode == 0, crawl.stderr
    alerts = newswatch("alerts", config_dir=config_dir, env=smtp_server.env())
    assert alerts.returncode == 0, alerts.stderr
    assert "Traceback" not in alerts.stderr

    messages = smtp_server.handler.parsed()
    assert len(messages) == 1
    message = messages[0]
    assert message["To"].addresses[0].addr_spec == "analyst@example.org"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for body in (text, html):
        assert "Deir Ezzor" in body and "Daesh" in body and SEED_TITLE in body
        assert f"{demo_site}/2017/11/04/daesh-loses-last-towns.html" in body
    assert "<mark" in html  # matched words highlighted in the snippet
    assert "Amman derby" not in text  # the article no watch matches is not in the digest

    again = newswatch("alerts", config_dir=config_dir, env=smtp_server.env())
    assert again.returncode == 0
    assert len(smtp_server.handler.parsed()) == 1, "a hit already delivered must not be sent again"
