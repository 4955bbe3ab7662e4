"""Griffe extension for the API pages: a Google-style ``Example:`` section is rendered as code examples.

Griffe parses ``Examples:`` (plural) into ``>>>`` code blocks but treats ``Example:`` as a Markdown admonition,
where ``x["image"]`` would read as a link. The house style writes ``Example:``; this keeps the docstrings as they
are and renders both alike.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rewrite ``Example:`` section titles to ``Examples:`` before docstrings are parsed."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and "Example:" in obj.docstring.value:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
