"""The `newswatch` click group: the config folder loaded once per process, and errors turned into exit codes.

A NewswatchError (a user's mistake or an outage) is one ``error: ...`` line per line of its message on stderr
and exit status 2, decided inside the group, so click's own runner (and the tests) see the same as a shell.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import click

from newswatch.core.config import Config, load_config
from newswatch.core.errors import NewswatchError
from newswatch.core.logs import setup_logging

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C


class UserError(click.ClickException):
    """A NewswatchError (or an OSError naming a file) as click reports it: one ``error:`` line per line."""

    exit_code = EXIT_USER_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        for line in self.message.splitlines() or ["error"]:
            click.echo(f"error: {line}", err=True)


class NewswatchGroup(click.Group):
    """A click group whose commands may raise NewswatchError: it becomes a UserError (exit 2), Ctrl-C exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewswatchError as exc:
            raise UserError(str(exc) or type(exc).__name__) from None
        except (KeyboardInterrupt, EOFError, click.Abort):
            click.echo("aborted", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:  # `newswatch search ... | head`: the reader has all it wanted
            raise click.exceptions.Exit(0) from None
        except OSError as exc:
            raise UserError(f"{exc.filename or ''}: {exc.strerror or exc}") from None


class CliContext:
    """What every command shares: the config folder given, and the Config loaded from it at first use."""

    def __init__(self, config_dir: Path | None):
        self.config_dir = config_dir
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        """The loaded config (ConfigError on a bad file); logging is set up from it on first use."""
        if self._config is None:
            self._config = load_config(self.config_dir)
            setup_logging(self._config.settings.log_level)
        return self._config


pass_context = click.make_pass_decorator(CliContext)


@click.group(cls=NewswatchGroup)
@click.option(
    "--config",
    "config_dir",
    type=click.Path(path_type=Path),
    envvar="NEWSWATCH_CONFIG_DIR",
    help="Config folder (default: ./config, or $NEWSWATCH_CONFIG_DIR).",
)
@click.pass_context
def cli(ctx: click.Context, config_dir: Path | None) -> None:
    """Watch regional news feeds for places and groups, and email digests of what appears."""
    ctx.obj = CliContext(config_dir)
