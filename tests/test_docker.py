"""docker/: the compose file runs newswatch in its roles (two crawlers sharing the work through Redis, one
alerts service, one web page) against Elasticsearch and Mailpit, and its settings load."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from newswatch.core.config import load_config
from newswatch.core.config.settings import Settings
from newswatch.web.access import WebAccessRefused, access_for
from tests.conftest import ROOT

DOCKER = shutil.which("docker")
COMPOSE_FILE = ROOT / "docker" / "docker-compose.yml"
CONFIG_DIR = "/srv/newswatch/config"
VAR_DIR = "/srv/newswatch/var"
SERVICES = {"elasticsearch", "mailpit", "redis", "crawler", "alerts", "web"}
ROLES = {"crawler": "crawl", "alerts": "alerts", "web": "web"}  # the newswatch services and their roles
# The compose file asks for the web page's token (`${NEWSWATCH_WEB_TOKEN:?...}`) whatever the command.
WEB_TOKEN = "compose-test-token-0123456789"


def _compose_available() -> bool:
    if DOCKER is None:
        return False
    return subprocess.run([DOCKER, "compose", "version"], capture_output=True, timeout=60).returncode == 0


# `docker compose config` needs the client and its compose plugin, not an engine. Debian's docker client
# ships without the plugin; building it from source would cost CI minutes for a YAML check, so without it
# the tests that need it skip and say why (the file itself is checked without docker below).
needs_compose = pytest.mark.skipif(not _compose_available(), reason="no docker client with the compose plugin")


@pytest.fixture(scope="module")
def compose() -> dict:
    """The compose model as `docker compose config` resolves it (no engine needed)."""
    result = subprocess.run(
        [DOCKER, "compose", "-f", str(COMPOSE_FILE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "NEWSWATCH_WEB_TOKEN": WEB_TOKEN},
    )
    assert result.returncode == 0, f"docker compose config failed (is the compose plugin installed?): {result.stderr}"
    return json.loads(result.stdout)


def _settings_from(config_files: dict[str, Path], content: str, folder: Path) -> Settings:
    """The settings the containers load: the mounted feeds, watches and recipients, and ``content`` as
    settings.yaml, in ``folder``."""
    folder.mkdir()
    for name, source in config_files.items():
        shutil.copy(source, folder / name)
    (folder / "settings.yaml").write_text(content, encoding="utf-8")
    return load_config(folder, env={}).settings


@pytest.mark.slow  # the docker client
@needs_compose
def test_compose_has_redis_the_roles_elasticsearch_and_mailpit(compose):
    """Elasticsearch 8, Mailpit with its web UI published, Redis, and newswatch as two crawlers, one alerts
    service and one web page, each built from docker/Dockerfile."""
    services = compose["services"]
    assert set(services) == SERVICES
    assert services["elasticsearch"]["image"].startswith("docker.elastic.co/elasticsearch/elasticsearch:8.")
    assert services["elasticsearch"]["environment"]["discovery.type"] == "single-node"
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    assert [p["target"] for p in services["mailpit"]["ports"]] == [8025]
    assert services["redis"]["image"].startswith("redis:")
    for name, role in ROLES.items():
        service = services[name]
        assert service["command"] == ["newswatch", "run", "--role", role]
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert Path(service["build"]["context"]).resolve() == ROOT.resolve()
        assert service["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
    crawler = services["crawler"]
    assert crawler["deploy"]["replicas"] == 2
    assert crawler["depends_on"]["redis"]["condition"] == "service_healthy"
    (var,) = [m for m in crawler["volumes"] if m["target"] == VAR_DIR]
    assert var["type"] == "volume" and not var.get("source")  # anonymous: a spool per replica
    (var,) = [m for m in services["alerts"]["volumes"] if m["target"] == VAR_DIR]
    assert var["source"] == "newswatch-var"
    web = services["web"]
    assert [(p.get("host_ip"), p["target"], str(p["published"])) for p in web["ports"]] == [("127.0.0.1", 8080, "8080")]
    assert web["environment"]["NEWSWATCH_WEB_TOKEN"] == WEB_TOKEN


@pytest.mark.slow  # the docker client
@needs_compose
def test_service_config_selects_elasticsearch_redis_and_mailpit(compose, tmp_path: Path):
    """Every newswatch service's mounted config folder loads: Elasticsearch, the Redis frontier, SMTP to
    Mailpit, the web page on 0.0.0.0:8080."""
    for name in ROLES:
        service = compose["services"][name]
        assert service["environment"]["NEWSWATCH_CONFIG_DIR"] == CONFIG_DIR
        mounts = {
            Path(m["target"]).name: Path(m["source"])
            for m in service["volumes"]
            if m["type"] == "bind" and m["target"].startswith(CONFIG_DIR + "/")
        }
        assert set(mounts) == {"feeds.yaml", "watches.yaml", "recipients.yaml"}
        (config_mount,) = service["configs"]
        assert config_mount["target"] == f"{CONFIG_DIR}/settings.yaml"
        content = compose["configs"][config_mount["source"]]["content"]
        settings = _settings_from(mounts, content, tmp_path / name)
        assert settings.storage.backend == "elasticsearch"
        assert settings.storage.elasticsearch.hosts == ["http://elasticsearch:9200"]
        assert (settings.crawler.frontier.type, settings.crawler.frontier.url) == ("redis", "redis://redis:6379/0")
        smtp = settings.delivery.smtp
        assert (settings.delivery.method, smtp.host, smtp.port) == ("smtp", "mailpit", 1025)
        assert (settings.web.host, settings.web.port) == ("0.0.0.0", 8080)


def test_compose_file_runs_the_roles_and_its_settings_load(tmp_path: Path):
    """Without docker: the file as YAML (its anchors merged) has Redis with a health check, two crawl
    replicas, one alerts and one web service, each mounting the config folder, and its settings load with
    Elasticsearch, the Redis frontier and the web page on 0.0.0.0, which refuses to start without the token
    the file asks for and starts with one."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == SERVICES
    redis = services["redis"]
    assert redis["image"].startswith("redis:")
    assert redis["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    for name, role in ROLES.items():
        service = services[name]
        assert service["command"] == ["newswatch", "run", "--role", role], name
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert (COMPOSE_FILE.parent / service["build"]["context"]).resolve() == ROOT.resolve()
        assert service["environment"]["NEWSWATCH_CONFIG_DIR"] == CONFIG_DIR
        assert service["configs"] == [{"source": "settings", "target": f"{CONFIG_DIR}/settings.yaml"}]
        assert service["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
        assert any(v.endswith(VAR_DIR) for v in service["volumes"]), name
    crawler, alerts, web = services["crawler"], services["alerts"], services["web"]
    assert crawler["deploy"]["replicas"] == 2
    assert crawler["depends_on"]["redis"]["condition"] == "service_healthy"
    assert VAR_DIR in crawler["volumes"]  # anonymous: a spool per replica
    assert f"newswatch-var:{VAR_DIR}" in alerts["volumes"] and "newswatch-var" in compose["volumes"]
    assert alerts["depends_on"]["mailpit"]["condition"] == "service_started"
    assert web["ports"] == ["127.0.0.1:8080:8080"]
    token = web["environment"]["NEWSWATCH_WEB_TOKEN"]
    assert token.startswith("${NEWSWATCH_WEB_TOKEN:?") and "16 characters" in token  # says why when unset

    mounts = {}
    for volume in crawler["volumes"]:
        source, _, target = volume.partition(":")
        if target.startswith(CONFIG_DIR + "/"):
            mounts[Path(target.removesuffix(":ro")).name] = COMPOSE_FILE.parent / source
    assert set(mounts) == {"feeds.yaml", "watches.yaml", "recipients.yaml"}
    for service in (alerts, web):
        assert [v for v in service["volumes"] if CONFIG_DIR in v] == [v for v in crawler["volumes"] if CONFIG_DIR in v]
    settings = _settings_from(mounts, compose["configs"]["settings"]["content"], tmp_path / "config")
    assert settings.storage.backend == "elasticsearch"
    assert settings.storage.elasticsearch.hosts == ["http://elasticsearch:9200"]
    frontier = settings.crawler.frontier
    assert (frontier.type, frontier.url) == ("redis", "redis://redis:6379/0")
    smtp = settings.delivery.smtp
    assert (settings.delivery.method, smtp.host, smtp.port) == ("smtp", "mailpit", 1025)
    assert (settings.web.host, settings.web.port) == ("0.0.0.0", 8080)
    with pytest.raises(WebAccessRefused, match=r"refusing to listen on 0\.0\.0\.0 without credentials"):
        access_for(settings.web, settings.web.host, {})
    assert access_for(settings.web, settings.web.host, {settings.web.token_env: WEB_TOKEN}).required


def test_dockerfile_runs_the_service_from_the_project():
    """The image installs the project and its command is `newswatch run` (the compose file picks the role)."""
    text = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install ." in text
    assert 'CMD ["newswatch", "run"]' in text
