"""CSV/formula injection (pack §6, §14): a spreadsheet runs a cell that starts with `=`, `+`,
`-` or `@` (and some also after a tab or carriage return) as a formula. Exports prefix such a
cell with `'`, which spreadsheets show as text and do not run.

Rule for our exports: every cell of user-supplied text goes through `neutralise`. A column of
validated E.164 numbers (`+` then digits only, checked before they were stored) is written as
is: it cannot hold a formula, and `'+61…` would corrupt the number for whoever imports it.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """`cell`, prefixed with `'` when a spreadsheet would read it as a formula."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell
