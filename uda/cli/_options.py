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


def _import_now(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    from ..plugins import import_modules

    return tuple(import_modules(value, what="--import")) if value else ()


import_option = click.option(
    "--import",
    "imports",
    multiple=True,
    metavar="FILE.py|MODULE",
    is_eager=True,  # before the other options are checked: --source may name a dataset the module registers
    callback=_import_now,
    help="Import a user module first (a .py file or a dotted module name), so that the recipes, aligners, models, "
         "datasets and configs it registers can be named. Repeatable; a run records its imports.",
)
"""``--import FILE.py|MODULE`` (repeatable): imported while the command line is parsed, passed as ``imports``: the
specs as recorded (files as absolute paths)."""
