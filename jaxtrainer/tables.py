"""The one Markdown table every report writes; a cell's text is kept on one line and its `|` escaped,
so that text from elsewhere (a student's error message) cannot break the table."""

from __future__ import annotations

from typing import Iterable, Sequence


def cell(value) -> str:
    """`value` as text that stays in one Markdown table cell."""
    return " ".join(str(value).split()).replace("|", "\\|")


def markdown_table(header: Sequence, rows: Iterable[Sequence]) -> str:
    """The table of `rows` under `header`, no trailing newline; cells shown with `str`."""

    def line(cells) -> str:
        return "| " + " | ".join(cell(c) for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *map(line, rows)])
