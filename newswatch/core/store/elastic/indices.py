"""Index setup: the JSON templates, the fixed indices, and the monthly article indices behind an alias."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from elasticsearch import ApiError, Elasticsearch

from newswatch.core.store.elastic.cluster import reason

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).with_name("templates")


def load_templates(base: str) -> dict[str, dict]:
    """The index templates of templates/*.json for names starting with ``base``, each with its file's hash in _meta."""
    templates = {}
    for path in sorted(TEMPLATES.glob("*.json")):
        raw = path.read_text(encoding="utf-8")
        body = json.loads(raw.replace("{base}", json.dumps(base)[1:-1]))
        body["_meta"]["sha256"] = hashlib.sha256(raw.encode()).hexdigest()[:16]
        templates[base + path.stem] = body
    return templates


def install_templates(es: Elasticsearch, base: str) -> None:
    """Put each template whose hash differs from the installed one (or that is missing)."""
    for name, body in load_templates(base).items():
        got = es.options(ignore_status=404).indices.get_index_template(name=name).get("index_templates")
        if got and got[0]["index_template"].get("_meta", {}).get("sha256") == body["_meta"]["sha256"]:
            continue
        es.indices.put_index_template(name=name, **{k.lstrip("_"): v for k, v in body.items()})
        log.info("es_template_installed name=%s", name)
        if got:  # existing indices take the additive part of a changed mapping; new ones get all of it
            mappings = {k.lstrip("_"): v for k, v in body["template"]["mappings"].items()}
            try:
                es.indices.put_mapping(index=body["index_patterns"], allow_no_indices=True, **mappings)
            except ApiError as exc:
                log.warning("es_mapping_not_updated template=%s reason=%s", name, reason(exc))


def create_index(es: Elasticsearch, index: str) -> None:
    if not es.indices.exists(index=index):
        es.options(ignore_status=400).indices.create(index=index)  # 400: another process was first


class ArticleIndices:
    """The monthly article indices behind ``alias``; new articles go to this month's (the write index)."""

    def __init__(self, client: Elasticsearch, alias: str):
        self.es, self.alias = client, alias
        self.month, self.indices, self.listed_at = "", [], 0.0  # this month, every monthly index, when listed

    def forget(self) -> None:
        """List the indices again at the next use (another process, or an outage, may have changed them)."""
        self.month = ""

    def ensure_write_index(self) -> None:
        """Point the write alias at this month's index (created from the template); refresh our list of the
        monthly indices once a minute, so one created or dropped by another process is noticed."""
        month = datetime.now(UTC).strftime("%Y.%m")
        if month == self.month and time.monotonic() - self.listed_at < 60:
            return
        index = f"{self.alias}-{month}"
        create_index(self.es, index)
        current = self.es.indices.get_alias(name=self.alias)
        actions = [
            {"add": {"index": name, "alias": self.alias, "is_write_index": name == index}}
            for name, spec in current.items()
            if spec["aliases"][self.alias].get("is_write_index", False) != (name == index)
        ]
        if index not in current:
            actions.append({"add": {"index": index, "alias": self.alias, "is_write_index": True}})
        if actions:
            self.es.indices.update_aliases(actions=actions)  # atomic: never two write indices
        self.month, self.indices, self.listed_at = month, sorted({*current, index}), time.monotonic()

    def lookup(self, ids: Iterable[str], **source) -> dict[str, dict]:
        """Realtime (no refresh needed): the stored copy of each id, from whichever monthly index holds it."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        self.ensure_write_index()
        docs = [{"_index": index, "_id": i} for index in self.indices for i in ids]
        found = {}
        for start in range(0, len(docs), 10_000):
            for doc in self.es.mget(docs=docs[start : start + 10_000], **source)["docs"]:
                if doc.get("found"):
                    found[doc["_id"]] = doc
        return found
