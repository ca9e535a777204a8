"""The periods the loops report on — an ISO week, a calendar month, a quarter, a year, a span
of days — parsed from what a person types, with errors that say what to type instead.
Pure: no clock, no database."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)
_YEAR = re.compile(r"^\d{4}$")


# ---------------------------------------------------------------- days


def period(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """[date_from 00:00, date_to + 1 day 00:00): `date_to` is included."""
    if date_to < date_from:
        raise ValueError(f"--to {date_to} is before --from {date_from}")
    return datetime.combine(date_from, time()), datetime.combine(date_to + timedelta(1), time())


def repeat_window(date_to: date, days: int) -> tuple[datetime, datetime]:
    """The window of repeat complaints ending with day `date_to`: the last `days` days."""
    end = datetime.combine(date_to + timedelta(1), time())
    return end - timedelta(days=days), end


# ---------------------------------------------------------------- the ISO week


class WeekError(ValueError):
    """A --week value that is not an ISO week such as 2026-W45."""


@dataclass(frozen=True)
class IsoWeek:
    year: int
    week: int

    @property
    def key(self) -> str:
        """The period key of the notices: "2026-W45"."""
        return f"{self.year}-W{self.week:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.monday, time())

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=7)

    def previous(self) -> IsoWeek:
        return week_of(self.monday - timedelta(days=7))


def week_of(day: date) -> IsoWeek:
    year, week, _ = day.isocalendar()
    return IsoWeek(year, week)


def parse_week(value: str) -> IsoWeek:
    """ "2026-W45" -> IsoWeek(2026, 45); a clear WeekError naming the value otherwise."""
    text = str(value).strip()
    match = _WEEK.fullmatch(text)
    if not match:
        raise WeekError(
            f"--week: expected an ISO week written YYYY-Www, such as 2026-W45 (got {value!r})"
        )
    year, week = int(match.group(1)), int(match.group(2))
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise WeekError(
            f"--week: {value!r} does not exist: {year} has weeks 01 to "
            f"{date(year, 12, 28).isocalendar()[1]:02d}"
        ) from None
    return IsoWeek(year, week)


# ---------------------------------------------------------------- the month


@dataclass(frozen=True)
class MonthPeriod:
    """A calendar month: [start, end) with `end` the first day of the next month."""

    label: str  # "2026-10"
    start: date
    end: date

    @property
    def as_of(self) -> date:
        """The month's last day: figures "as of the end of the month"."""
        return self.end - timedelta(days=1)

    @property
    def title(self) -> str:
        return f"{self.start.year}年{self.start.month}月"


def parse_month(value: str | date) -> MonthPeriod:
    """ "YYYY-MM" (or any date in the month) → the month; a clear error otherwise."""
    if isinstance(value, date):
        year, month = value.year, value.month
    else:
        match = _MONTH.match(str(value).strip())
        if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
            raise ValueError(f"month: expected YYYY-MM, e.g. 2026-10 (got {value!r})")
        year, month = int(match.group(1)), int(match.group(2))
    start = date(year, month, 1)
    end = date(year + month // 12, month % 12 + 1, 1)
    return MonthPeriod(f"{year:04d}-{month:02d}", start, end)


# ---------------------------------------------------------------- the quarter


@dataclass(frozen=True)
class QuarterPeriod:
    """A calendar quarter: [start, end) with `end` the first day of the next quarter."""

    label: str  # "2026-Q3"
    year: int
    quarter: int
    start: date
    end: date

    @property
    def last_day(self) -> date:
        return date.fromordinal(self.end.toordinal() - 1)

    @property
    def title(self) -> str:
        return f"{self.year}年第{'一二三四'[self.quarter - 1]}季度"


def parse_quarter(value: str) -> QuarterPeriod:
    """ "YYYY-Qn" (also "YYYYQn", any case) -> the quarter; a clear error otherwise."""
    match = _QUARTER.match(str(value).strip())
    if not match or int(match.group(1)) < 2000:
        raise ValueError(f"quarter: expected YYYY-Qn, e.g. 2026-Q3 (got {value!r})")
    year, quarter = int(match.group(1)), int(match.group(2))
    start = date(year, 3 * quarter - 2, 1)
    end = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return QuarterPeriod(f"{year}-Q{quarter}", year, quarter, start, end)


# ---------------------------------------------------------------- the year


def parse_year(value: str | int) -> int:
    """ "2026" (or 2026) → 2026; a clear error otherwise."""
    text = str(value).strip()
    if not _YEAR.match(text) or not 2000 <= int(text) <= 2100:
        raise ValueError(f"year: expected YYYY, e.g. 2026 (got {value!r})")
    return int(text)
