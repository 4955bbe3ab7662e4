"""The ``uda`` command line (click).

Every command is thin: it builds an experiment config and calls one library function
([`uda.engine.train`][uda.engine.train], [`uda.evaluation.evaluate`][uda.evaluation.evaluate], [`uda.data.check_dataset`][uda.data.check_dataset], ...).
User errors exit with code 2 and one line on stderr; ``uda --debug ...`` shows the traceback.

Example:
    >>> from click.testing import CliRunner
    >>> from uda.cli import main
    >>> CliRunner().invoke(main, ["list", "recipe", "mlfa", "--json"]).output
    '["mlfa"]\\n'
"""

from ._main import main

__all__ = ["main"]
