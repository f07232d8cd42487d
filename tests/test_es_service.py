"""`newswatch run` on the Elasticsearch backend fills the index and sends digests from it (real node, real SMTP)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli, start_service, stop_service, wait_for, write_config

pytestmark = pytest.mark.slow  # the service on a real Elasticsearch node

SEED_TITLE = "Daesh loses last towns in face of twin Syria, Iraq assaults"


@pytest.mark.timeout(600)
def test_service_on_elasticsearch_indexes_and_delivers(
    config_dir, demo_site, smtp_server, es_node, es_client, es_index_prefix, monkeypatch
):
    """One service run crawls into Elasticsearch, the digest read back from it reaches the SMTP server."""
    write_config(
        config_dir,
        feeds=[{"name": "Levant Monitor", "url": f"{demo_site}/feed.xml", "language": "en"}],
        recipients=[{"name": "analyst", "email": "analyst@example.org", "cadence": "immediate"}],
        settings={
            "storage": {
                "backend": "elasticsearch",
                "elasticsearch": {"hosts": [es_node.url], "index_prefix": es_index_prefix},
            },
            "delivery": smtp_server.settings(),
            "schedule": {"crawl_every_minutes": 60},
        },
    )
    for name, value in smtp_server.env().items():
        monkeypatch.setenv(name, value)
    service = start_service(config_dir)
    seen: list[str] = []
    try:
        wait_for(service, "alerts_done trigger=crawl", seen, timeout=300)
    finally:
        output = stop_service(service, seen, timeout=120)
    assert service.returncode == 0 and "Traceback" not in output, output[-3000:]

    es_client.indices.refresh(index=f"{es_index_prefix}*")
    assert es_client.count(index=f"{es_index_prefix}articles")["count"] == 5
    messages = smtp_server.handler.parsed()
    assert len(messages) == 1
    text = messages[0].get_body(("plain",)).get_content()
    assert SEED_TITLE in text and "Deir Ezzor" in text and "Daesh" in text

    found = run_cli("search", "Abu Kamal", "--watch", "Abu Kamal", "--json", config_dir=config_dir)
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)
    # The watch's spellings are searched too (the Arabic story names البوكمال): the wire story is among them.
    (seed,) = [r for r in results if r["title"] == SEED_TITLE]
    # Plain text with the offsets of the highlighted words, no markup.
    marked = [f["text"][start:end] for f in seed["fragments"] for start, end in f["marks"]]
    assert any(m.startswith("Abu") for m in marked) and "<mark>" not in json.dumps(results)
