"""The Elasticsearch store: monthly indices behind an alias, bulk writes, a spool when down (docs/storage.md)."""

from newswatch.core.store.elastic.store import ElasticStore

__all__ = ["ElasticStore"]
