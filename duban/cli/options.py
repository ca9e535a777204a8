"""What the `duban` command's options accept, and how it says so: each value is checked
while the arguments are parsed, and a bad one is answered with one line naming the option
and the expected format, e.g. ``duban: --date: expected YYYY-MM-DD (got '2026/11/02')``,
exit code 2 (as argparse's own errors)."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date
from typing import NoReturn

from duban.config.sources import source_name_problem
from duban.periods import parse_month, parse_quarter, parse_week, parse_year

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Parser(argparse.ArgumentParser):
    """argparse with errors that read ``duban: --option: problem``."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        # argparse says "argument --date: ..." (or "argument --date/-d: ..."): the option first.
        if message.startswith("argument "):
            name, _, rest = message.removeprefix("argument ").partition(": ")
            message = f"{name.split('/')[0]}: {rest}"
        self.exit(2, f"duban: {message}\n")


def _expected(fmt: str, value: str, why: str = "") -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"expected {fmt}{why} (got {value!r})")


def iso_date(value: str) -> str:
    """YYYY-MM-DD, a day that exists; the value itself (the commands parse it)."""
    text = value.strip()
    if not _DATE.match(text):
        raise _expected("YYYY-MM-DD", value)
    try:
        date.fromisoformat(text)
    except ValueError as exc:
        raise _expected("YYYY-MM-DD", value, f": {exc}") from None
    return text


def month(value: str) -> str:
    """YYYY-MM, e.g. 2026-10."""
    try:
        return parse_month(value).label
    except ValueError:
        raise _expected("YYYY-MM, e.g. 2026-10", value) from None


def week(value: str) -> str:
    """An ISO week YYYY-Www, e.g. 2026-W45, that exists."""
    try:
        return parse_week(value).key
    except ValueError as exc:
        detail = str(exc).removeprefix("--week: ")
        if detail.startswith("expected"):
            raise _expected("YYYY-Www, e.g. 2026-W45", value) from None
        raise argparse.ArgumentTypeError(f"expected YYYY-Www: {detail}") from None


def quarter(value: str) -> str:
    """YYYY-Qn, e.g. 2026-Q3."""
    try:
        return parse_quarter(value).label
    except ValueError:
        raise _expected("YYYY-Qn, e.g. 2026-Q3", value) from None


def year(value: str) -> str:
    """YYYY, e.g. 2026."""
    try:
        return str(parse_year(value))
    except ValueError:
        raise _expected("YYYY, e.g. 2026", value) from None


def source(value: str) -> str:
    """A source name: the mapping config/sources/NAME.yaml (a plain identifier)."""
    if source_name_problem(value) is not None:
        raise _expected("a source name of lower-case letters, digits, _ and -", value)
    return value


def count(value: str) -> int:
    """A whole number, 0 or more."""
    text = value.strip()
    if not text.isdigit():
        raise _expected("a whole number, 0 or more", value)
    return int(text)


def positive(value: str) -> int:
    """A whole number, 1 or more."""
    number = count(value)
    if number < 1:
        raise _expected("a whole number, 1 or more", value)
    return number


def daily_runs(value: str) -> int | None:
    """A number of working days, or 'all' (None)."""
    if value == "all":
        return None
    if not value.strip().isdigit():
        raise _expected("a number of working days or 'all'", value)
    return int(value)
