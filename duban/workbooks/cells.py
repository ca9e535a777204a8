"""One cell of a workbook: its text, header keys, dates, months and progress read from it,
and the display width of what is written into it.

Shared by the plan workbook (duban/ingest/plan.py), the ledger (duban/loops/monthly/ledger.py)
and the spot-check checklist (duban/loops/quarterly/checklist.py).
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime
from typing import Any

__all__ = (
    "PROGRESS_DECIMALS",
    "cell_text",
    "date_of",
    "display_width",
    "header_key",
    "month_of",
    "parse_progress",
    "same_value",
    "word_key",
)

# A progress (0..1) is kept to six decimals: what is read from a cell is rounded to them, the
# ledger writes them, and two progresses that agree to them are the same.
PROGRESS_DECIMALS = 6


def cell_text(value: Any) -> str:
    """A cell as the text a person sees: dates ISO, whole floats without ".0", stripped."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.time() == datetime.min.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def header_key(text: str) -> str:
    """Headers and sheet names compare without case, outer spaces, or " "/"-" against "_"."""
    return re.sub(r"[\s\-]+", "_", unicodedata.normalize("NFKC", text).strip().casefold())


def word_key(value: Any) -> str:
    """A cell holding a word of a drop-down (a status, a verdict) as the key of its table."""
    text = unicodedata.normalize("NFKC", cell_text(value)).strip().lower()
    return re.sub(r"[\s\-]+", "_", text)


def display_width(text: str) -> int:
    """Columns `text` takes on screen: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


_MONTH_RE = (
    re.compile(r"^(\d{4})\s*[-/.]\s*(\d{1,2})$"),
    re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月?$"),
)
_DATE_RE = (
    re.compile(r"^(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})$"),
    re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?$"),
)


def date_of(value: Any) -> date | None:
    """An Excel date cell or a date text (2026-03-15, 2026/3/15, 2026年3月15日); else None."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip()
    text = re.sub(r"[ T]00:00(:00)?$", "", text)  # a date exported with a zero time
    for pattern in _DATE_RE:
        m = pattern.match(text)
        if m:
            try:
                return date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return None
    return None


def month_of(value: Any) -> date | None:
    """The first day of the month: 2026-03, 2026/3, 2026年3月, a date, or an Excel date cell."""
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        for pattern in _MONTH_RE:
            m = pattern.match(text)
            if m:
                month = int(m[2])
                return date(int(m[1]), month, 1) if 1 <= month <= 12 else None
    day = date_of(value)
    return day.replace(day=1) if day else None


def parse_progress(value: Any) -> float | None:
    """0.45, "45%" or 45 (a number above 1 means percent) -> 0.45; None when not a number."""
    percent = False
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        if text.endswith("%"):
            percent, text = True, text[:-1].strip()
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        return None
    if math.isnan(number):
        return None
    if percent or abs(number) > 1:
        number /= 100
    return round(number, PROGRESS_DECIMALS)


def same_value(old: Any, new: Any) -> bool:
    """Whether a value read from a workbook leaves a stored field as it is.

    The only float fields the workbooks set are progresses (0..1): those are the same when
    they agree to PROGRESS_DECIMALS (so a ledger read back gives the stored progress, whatever
    its digits); anything else when equal.
    """
    if isinstance(old, float) and isinstance(new, float):
        return round(old, PROGRESS_DECIMALS) == round(new, PROGRESS_DECIMALS)
    return bool(old == new)
