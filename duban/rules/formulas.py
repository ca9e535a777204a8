"""Formula injection (CSV injection): text that a spreadsheet would run as a formula.

OWASP's rule: a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return and is not
a number is a formula to Excel, LibreOffice and Google Sheets (`=HYPERLINK(…)`, `@SUM(…)`,
`=cmd|' /C calc'!A0`). Citizen text, unit names, plan titles and evidence reach our workbooks
and CSV files, so every such cell is written as text: in a workbook its cell type is set to
text (the value is kept exactly), in a CSV file it is prefixed with a single quote.
Pure functions.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ("FORMULA_STARTS", "csv_safe", "looks_like_formula")

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?%?")


def looks_like_formula(value: Any) -> bool:
    """True for text a spreadsheet would take as a formula (numbers such as -5 are not)."""
    return (
        isinstance(value, str)
        and value.startswith(FORMULA_STARTS)
        and _NUMBER.fullmatch(value.strip()) is None
    )


def csv_safe(value: Any) -> Any:
    """The value for a CSV cell: formula-like text prefixed with ', anything else as it is."""
    return "'" + value if looks_like_formula(value) else value
