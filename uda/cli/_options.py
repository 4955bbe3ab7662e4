"""Options shared by several ``uda`` commands."""

from __future__ import annotations

import click

set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key (dotted; the value is a YAML scalar). Repeatable, e.g. --set trainer.max_iters=100.",
)
"""``--set KEY=VALUE`` (repeatable), passed to the command as ``overrides``: a tuple of dotted overrides."""
