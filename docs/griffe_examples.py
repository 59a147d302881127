"""Griffe extension for the API reference: graft's docstrings title their doctests ``Example:``.

Griffe's Google-style parser knows ``Examples:`` (a doctest section rendered as code) but reads
the singular as an admonition of Markdown text, where ``>>> ds[0][0]`` becomes a broken reference
link. This renames the title before the docstrings are parsed; the source stays as it is.

Example:
    mkdocs.yml: ``plugins: mkdocstrings: handlers: python: options: extensions: [docs/griffe_examples.py]``
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

EXAMPLE_TITLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class ExamplesSection(Extension):
    """Turn every ``Example:`` section title into ``Examples:``."""

    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = EXAMPLE_TITLE.sub(r"\1Examples:", obj.docstring.value)
