# Two commands set everything up: `make run` and `make test` (see README.md).
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run test test-fast lint demo es-node chromium redis clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

run: install
	$(VENV)/bin/newswatch run

demo: install
	$(VENV)/bin/newswatch demo

# The Elasticsearch test node (Maven Central's integ-test zip, cached under .cache/es). Exit 3 means no JDK
# or no Maven on this machine: the Elasticsearch tests then skip and say so, the rest still runs.
es-node:
	scripts/es-node fetch || [ $$? -eq 3 ]

# Headless Chromium renders the digest and drives the web page in tests (selenium through chromium-driver);
# Debian's packages, installed when missing.
chromium:
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) || echo "chromium: not installed (need root for apt-get)"; }

# Redis, for the shared crawl frontier's tests (tests/plugins/redis_server.py starts redis-server on a free
# port); Debian's package, installed when missing.
redis:
	@command -v redis-server >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) || echo "redis: not installed (need root for apt-get)"; }

# The linter, the formatter and the import contracts (the floors of README.md, "How it is built").
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# Everything: the lint, then every test (a real Elasticsearch node, Chromium, Redis, child processes).
test: install es-node chromium redis lint
	$(PY) -m pytest

# The unit layer, for the edit-test loop: no Elasticsearch node, no Chromium, no child processes (< 1 min).
test-fast: install
	$(PY) -m pytest -m "not slow" -q

clean:
	rm -rf $(VENV) var .pytest_cache
