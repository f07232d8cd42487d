"""Tests for scripts/es-node and the es_node pytest fixtures against a real Elasticsearch."""

import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from elasticsearch import Elasticsearch

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # a real Elasticsearch node

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "es-node"


def es_node_cli(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def port_refuses(url):
    address = urlsplit(url)
    try:
        socket.create_connection((address.hostname, address.port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_cluster_is_healthy(es_client):
    """The node reports a green or yellow cluster."""
    assert es_client.cluster.health()["status"] in ("green", "yellow")


def test_document_round_trip(es_client, es_index_prefix):
    """A document indexed through the 8.x client can be fetched back by id."""
    index = es_index_prefix + "articles"
    es_client.index(index=index, id="1", document={"title": "Abu Kamal"}, refresh=True)
    assert es_client.get(index=index, id="1")["_source"] == {"title": "Abu Kamal"}


def test_restart_keeps_url_and_data(es_node, es_client, es_index_prefix):
    """After stop() the port refuses; after start() the same URL serves the same data."""
    index = es_index_prefix + "outage"
    es_client.index(index=index, id="1", document={"place": "Deir Ezzor"}, refresh=True)
    url = es_node.url

    es_node.stop()
    assert port_refuses(url)

    es_node.start()
    assert es_node.url == url
    with Elasticsearch(url, request_timeout=30) as client:
        assert client.get(index=index, id="1")["_source"] == {"place": "Deir Ezzor"}


def test_start_on_running_node_prints_same_url(es_node):
    """`es-node start` on a running node just prints its URL as the last line."""
    result = es_node_cli("start", "--name", "test")
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1] == es_node.url


def test_status_of_unknown_node_is_stopped():
    """`es-node status` on a node never started prints 'stopped' and exits 1."""
    result = es_node_cli("status", "--name", "never-started")
    assert (result.returncode, result.stdout) == (1, "stopped\n")


def test_bad_node_name_is_one_line_error():
    """An invalid node name gives one line on stderr, no traceback, and a non-zero exit."""
    result = es_node_cli("url", "--name", "../etc")
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
