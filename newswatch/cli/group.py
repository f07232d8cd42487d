"""The `newswatch` click group: the config folder loaded once per process, and errors turned into exit codes.

Every command exits 0 when it did what was asked, 1 when the operation failed (a digest not delivered, the
store unreachable, busy or refusing a write), 2 when the user's input is wrong (a config error, a bad
argument, a file or feed named that cannot be read); 130 on Ctrl-C. A NewswatchError is one ``error: ...``
line per line of its message on stderr, its code decided inside the group, so click's own runner (and the
tests) see the same as a shell. README.md, "Exit codes".
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from newswatch.core.config import Config, load_config, make_private_dir
from newswatch.core.errors import DeliveryFailed, NewswatchError, StoreBusy, StoreConflict, StoreUnavailable
from newswatch.core.logs import setup_logging

if TYPE_CHECKING:
    from newswatch.core.store import Store

EXIT_FAILED = 1  # the operation failed: delivery, the store
EXIT_USER_ERROR = 2  # the input is wrong: config, arguments, the files and feeds named
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C

# The errors that are the operation's, not the input's: trying again later (or after fixing the server) helps.
OPERATION_ERRORS = (DeliveryFailed, StoreUnavailable, StoreBusy, StoreConflict)


class UserError(click.ClickException):
    """A NewswatchError (or an OSError naming a file) as click reports it: one ``error:`` line per line, exit 2."""

    exit_code = EXIT_USER_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        for line in self.message.splitlines() or ["error"]:
            click.echo(f"error: {line}", err=True)


class OperationFailed(UserError):
    """The operation failed (delivery, the store): the same ``error:`` lines, exit 1."""

    exit_code = EXIT_FAILED


class NewswatchGroup(click.Group):
    """A click group whose commands may raise NewswatchError: exit 1 for OPERATION_ERRORS, else 2 (the
    input); Ctrl-C exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OPERATION_ERRORS as exc:
            raise OperationFailed(str(exc) or type(exc).__name__) from None
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

    def make_var_dir(self) -> None:
        """Make the settings' var_dir for its owner only (0700) when missing, before anything goes in it (the
        store, the spool, the outbox, the matcher cache). One that cannot be made is left to them to report."""
        config = self.config
        with contextlib.suppress(OSError):
            make_private_dir(config.path(config.settings.var_dir))

    def open_store(self) -> Store:
        """The configured store, opened (StoreUnavailable when it cannot be), var_dir made first."""
        from newswatch.core.store import open_store

        self.make_var_dir()
        return open_store(self.config)


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
