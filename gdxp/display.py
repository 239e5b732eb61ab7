"""HTML tables for notebooks: Jupyter shows an object's ``_repr_html_``, the terminal its plain text.

Every cell is escaped; the objects that show themselves this way (:class:`gdxp.trace.Trace`,
:class:`gdxp.architecture.Summary`, :class:`gdxp.history.History`) give the cells as text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

__all__ = ["table"]


def table(caption: str, header: Sequence[str], rows: Iterable[Sequence[object]], *,
          preformatted: Sequence[int] = ()) -> str:
    """An HTML table under ``caption``, a row of ``header`` cells, then ``rows``; the cells of the columns
    numbered in ``preformatted`` are kept as laid out (arrays), the others left-aligned text."""
    head = "".join(f"<th style='text-align:left'>{html.escape(str(cell))}</th>" for cell in header)
    body = []
    for row in rows:
        cells = (f"<pre style='margin:0'>{html.escape(str(cell))}</pre>" if column in preformatted
                 else html.escape(str(cell)) for column, cell in enumerate(row))
        body.append("<tr>" + "".join(f"<td style='text-align:left'>{cell}</td>" for cell in cells) + "</tr>")
    return (f"<table><caption style='text-align:left'>{html.escape(caption)}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
