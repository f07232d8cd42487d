"""Pytest fixtures for a real single-node Elasticsearch, driven through scripts/es-node."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "es-node"
NODE = "test"
EXIT_MISSING_TOOL = 3  # scripts/es-node: no JDK >= 17, or no mvn while a download is needed


def run_script(*args):
    """Run scripts/es-node for the test node; return the finished process."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--name", NODE],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )


class EsNode:
    """The test node: its URL, and stop()/start() to simulate an outage (same port, same data)."""

    def __init__(self, url=None):
        self.url = url
        self.running = url is not None

    def start(self):
        result = run_script("start")
        if result.returncode == EXIT_MISSING_TOOL:
            pytest.skip(result.stderr.strip())
        if result.returncode != 0:
            raise RuntimeError(result.stderr.strip() or f"es-node start exited {result.returncode}")
        url = result.stdout.strip().splitlines()[-1]
        if self.url is not None and url != self.url:
            # Clients made earlier hold the old URL: a silent move would hide the real failure.
            raise RuntimeError(f"node '{NODE}' came back at {url}, not {self.url}")
        self.url = url
        self.running = True
        return url

    def stop(self):
        result = run_script("stop")
        if result.returncode != 0:
            raise RuntimeError(result.stderr.strip() or f"es-node stop exited {result.returncode}")
        self.running = False

    def ensure_running(self):
        """Restart the node if an earlier test stopped it and failed before starting it again."""
        if not self.running:
            self.start()


@pytest.fixture(scope="session")
def es_node():
    """The session's Elasticsearch node; stopped at the end unless it was already running."""
    preset = os.environ.get("NEWSWATCH_TEST_ES_URL")
    if preset:
        # `make test` started it and will stop it.
        yield EsNode(preset.rstrip("/"))
        return
    already_running = run_script("status").returncode == 0
    node = EsNode()
    node.start()
    yield node
    if not already_running:
        node.stop()


@pytest.fixture
def es_client(es_node):
    """An Elasticsearch client for the test node; removes test-* indices, aliases and templates afterwards."""
    from elasticsearch import Elasticsearch

    es_node.ensure_running()
    client = Elasticsearch(es_node.url, request_timeout=30)
    yield client
    es_node.ensure_running()
    quiet = client.options(ignore_status=404)
    quiet.indices.delete_alias(index="*", name="test-*")
    quiet.indices.delete(index="test-*", expand_wildcards="all")
    quiet.indices.delete_index_template(name="test-*")
    quiet.cluster.delete_component_template(name="test-*")
    client.close()


@pytest.fixture
def es_index_prefix():
    """A unique index/template name prefix for one test, e.g. 'test-1a2b3c4d-'."""
    return f"test-{uuid.uuid4().hex[:8]}-"


CLUSTER = "cluster"
CLUSTER_SIZE = 3


class EsCluster:
    """The test cluster of three nodes on loopback (scripts/es-node start --nodes 3): their URLs, and
    stop(i)/start(i) of one member to take a node away and bring it back (same port, same data)."""

    def __init__(self, urls):
        self.urls = urls

    def member(self, index):
        return f"{CLUSTER}-{index + 1}"

    def stop(self, index):
        result = run_script_for(self.member(index), "stop")
        if result.returncode != 0:
            raise RuntimeError(result.stderr.strip() or f"es-node stop exited {result.returncode}")

    def kill(self, index):
        """SIGKILL one member at once (a crash, not a shutdown); start(index) brings it back."""
        pid = int((SCRIPT.parents[1] / ".cache" / "es" / "nodes" / self.member(index) / "run" / "es.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        while Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid):
            time.sleep(0.1)

    def start(self, index):
        result = run_script_for(self.member(index), "start")
        if result.returncode != 0:
            raise RuntimeError(result.stderr.strip() or f"es-node start exited {result.returncode}")
        return result.stdout.strip().splitlines()[-1]


def _state(pid):
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].split("\n", 1)[0].lower()
    except (OSError, IndexError):
        return "zombie"


def run_script_for(name, *args):
    """scripts/es-node for the node or cluster ``name``."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--name", name],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="session")
def es_cluster():
    """A real three-node Elasticsearch cluster, started for the session (stopped at the end unless it was
    running already); the members are started together and the fixture returns once all have joined."""
    already_running = run_script_for(CLUSTER, "status").returncode == 0
    result = run_script_for(CLUSTER, "start", "--nodes", str(CLUSTER_SIZE))
    if result.returncode == EXIT_MISSING_TOOL:
        pytest.skip(result.stderr.strip())
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip() or f"es-node start --nodes exited {result.returncode}")
    cluster = EsCluster(result.stdout.strip().splitlines()[-CLUSTER_SIZE:])
    yield cluster
    if not already_running:
        run_script_for(CLUSTER, "stop")
