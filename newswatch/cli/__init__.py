"""The `newswatch` command (README.md, "Everyday use"): one click group, its commands in a few modules.

Commands import what they run (the crawler, the alerts side, the store) only when they run: a crawl child
process never loads the alerts side. User errors are one line on stderr and exit status 2 (cli.group).
"""

from __future__ import annotations

from newswatch.cli import digests, feeds, inspect, search, service, spool, store, web, why
from newswatch.cli.group import cli

for _command in (
    service.check_config,
    service.crawl,
    service.run,
    service.demo,
    digests.alerts,
    digests.digest,
    digests.outbox,
    search.search,
    inspect.extract,
    inspect.feed,
    inspect.match,
    inspect.watch,
    feeds.feeds,
    spool.spool,
    store.store,
    web.web,
    why.why,
):
    cli.add_command(_command)


def main() -> None:
    """Entry point of the `newswatch` console script."""
    cli.main(prog_name="newswatch")
