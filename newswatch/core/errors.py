"""The errors newswatch reports to a user as one line (never a traceback)."""


class NewswatchError(Exception):
    """Base of every error that is the user's or the environment's, not a bug: shown as one line."""


class ConfigError(NewswatchError):
    """A configuration file is missing, unreadable or invalid; the message names file, key path and why."""


class StoreUnavailable(NewswatchError):
    """The store (SQLite file or Elasticsearch cluster) cannot be reached or written."""


class StoreConflict(NewswatchError):
    """Another process wrote the same thing first (e.g. two alerts passes queued the same hits)."""


class QuerySyntaxError(NewswatchError):
    """A search query the store cannot parse (FTS5 or Elasticsearch query syntax); the message says where."""


class StoreBusy(NewswatchError):
    """Another process holds the lease this one needs (a second service or alerts pass on the same store)."""


class DeliveryFailed(NewswatchError):
    """A digest could not be handed to the mail server; it stays in the outbox and is retried.

    ``permanent``: the server refused it for good (a 5xx reply); after a few of those it is a dead letter.
    """

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class FeedError(NewswatchError):
    """A feed could not be fetched or parsed; the message says why."""


class ExtractionError(NewswatchError):
    """No article text could be extracted from a page."""
