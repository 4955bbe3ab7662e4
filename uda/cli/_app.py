"""The click group behind ``uda``: global options and the one error policy.

User errors ([`uda.UdaError`][uda.UdaError] and click usage errors) end with exit code 2 and ONE line on stderr that
names the problem and the fix; ``uda --debug ...`` (or ``UDA_DEBUG=1``) prints the traceback as well.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from .._errors import NonFiniteLossError, UdaError

USER_ERROR = 2


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).strip().splitlines() if part.strip())


def _wants_debug(argv: list[str]) -> bool:
    if os.environ.get("UDA_DEBUG", "") not in ("", "0"):
        return True
    head = argv[: argv.index("--")] if "--" in argv else argv
    return "--debug" in head


class UdaGroup(click.Group):
    """A click group that turns user errors into one line on stderr and exit code 2."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        debug = _wants_debug(argv)
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:  # bare `uda` or `uda data`: show the help
            click.echo(e.ctx.get_help() if e.ctx is not None else e.format_message())
            sys.exit(0)
        except click.UsageError as e:
            if debug:
                traceback.print_exc()
            hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
            click.echo(f"error: {_one_line(e.format_message())}{hint}", err=True)
            sys.exit(USER_ERROR)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        except click.ClickException as e:
            if debug:
                traceback.print_exc()
            click.echo(f"error: {_one_line(e.format_message())}", err=True)
            sys.exit(e.exit_code)
        except UdaError as e:
            if debug:
                traceback.print_exc()
            click.echo(f"error: {_one_line(str(e))}", err=True)
            sys.exit(USER_ERROR)
        except NonFiniteLossError as e:
            if debug:
                traceback.print_exc()
            click.echo(f"error: {_one_line(str(e))}", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)
