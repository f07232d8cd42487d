"""`newswatch web`: the read-only web page on the configured store (docs/web.md)."""

from __future__ import annotations

import click

from newswatch.cli.group import CliContext, pass_context


@click.command()
@click.option("--host", help="Address to listen on (default: web.host, 127.0.0.1). Others need credentials.")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: web.port; 0: any free port).")
@pass_context
def web(ctx: CliContext, host: str | None, port: int | None) -> None:
    """Serve the read-only web page: watches, stories, search, sources, outbox, /api/, /healthz, /metrics.

    Listening on an address other than 127.0.0.1 (or ::1, localhost) needs $NEWSWATCH_WEB_TOKEN, or
    $NEWSWATCH_WEB_USER and $NEWSWATCH_WEB_PASSWORD (the variables web.token_env, web.user_env and
    web.password_env name). Ctrl-C or SIGTERM stops it."""
    from newswatch.web.server import serve

    ctx.make_var_dir()
    serve(ctx.config, host=host, port=port)
