"""The working-day calendar (工作日) and the deadline rule.

China's official holidays and make-up working days (调休) come from the ``chinese_calendar``
package, which knows 2004-2026 (version 1.11). ``config/calendar.yaml`` can override single
days and can supply whole years the package does not know. See docs/calendar.md.

The deadline rule: a deadline of N working days ends at the close (23:59:59, local time) of
the N-th working day after the day of receipt. A ticket received on a non-working day
therefore counts from the next working day, which is day 1.

Pure code: no database, no I/O. Each year is computed once into a sorted tuple of working
days; lookups and day arithmetic bisect those tuples instead of walking day by day.
"""

from __future__ import annotations

import functools
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

import chinese_calendar

__all__ = ["CalendarError", "UnknownYearError", "WorkCalendar"]

DUE_TIME = time(23, 59, 59)
_ONE_DAY = timedelta(days=1)
_CONFIG_FILE = "config/calendar.yaml"


class CalendarError(ValueError):
    """The working-day calendar is misconfigured or cannot answer."""


class UnknownYearError(CalendarError):
    """A date's year is neither known to chinese_calendar nor supplied by config."""

    def __init__(self, year: int, note: str = "") -> None:
        self.year = year
        self.note = note
        first, last = _package_range()
        message = (
            f"the working-day calendar does not know {year}: chinese-calendar "
            f"{_package_version()} covers {first}-{last}; add the year's holidays and make-up "
            f"working days to {_CONFIG_FILE} (years: [{year}], holidays: [...], workdays: [...])"
        )
        super().__init__(f"{message}; {note}" if note else message)

    def __reduce__(self) -> tuple[type[UnknownYearError], tuple[int, str]]:
        return (type(self), (self.year, self.note))


def _package_version() -> str:
    version = str(getattr(chinese_calendar, "__version__", "?"))
    return ".".join(version.split(".")[:2])


@functools.cache
def _package_range() -> tuple[int, int]:
    """First and last year chinese_calendar has data for (the package's own rule)."""
    years = [d.year for d in chinese_calendar.holidays]
    return min(years), max(years)


@functools.cache
def _package_working_days(year: int) -> frozenset[date] | None:
    """The working days of `year` per chinese_calendar alone, or None if it lacks the year.

    Shared by every WorkCalendar: the package's data never changes within a process.
    """
    day = date(year, 1, 1)
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return None
    days: list[date] = []
    while day.year == year:
        if chinese_calendar.is_workday(day):
            days.append(day)
        day += _ONE_DAY
    return frozenset(days)


def _as_date(day: date) -> date:
    """A plain date (datetime and pandas.Timestamp are date subclasses that do not compare)."""
    return day.date() if isinstance(day, datetime) else day


class WorkCalendar:
    """Which days are working days, and deadline arithmetic over them.

    holidays: extra non-working days; workdays: extra working days (e.g. a make-up Saturday).
    In other years these overrides win over chinese_calendar. supplied_years: years defined by
    config alone: a day is a working day iff it is Mon-Fri and not in `holidays`, or it is in
    `workdays`; the package is not consulted for them.

    Raises CalendarError if a date is both a holiday and a workday override, and
    UnknownYearError (a CalendarError, so a ValueError) whenever a computation needs a year
    that is neither known to chinese_calendar nor supplied.
    """

    def __init__(
        self,
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        supplied_years: Iterable[int] = (),
    ) -> None:
        self.holidays: frozenset[date] = frozenset(_as_date(d) for d in holidays)
        self.workdays: frozenset[date] = frozenset(_as_date(d) for d in workdays)
        self.supplied_years: frozenset[int] = frozenset(int(y) for y in supplied_years)
        both = sorted(self.holidays & self.workdays)
        if both:
            listed = ", ".join(d.isoformat() for d in both)
            raise CalendarError(
                f"{listed}: listed both under holidays and under workdays; keep one of them"
            )
        self._years: dict[int, tuple[date, ...]] = {}
        self._sets: dict[int, frozenset[date]] = {}
        self._due: dict[tuple[date, int], date] = {}

    def __repr__(self) -> str:
        return (
            f"WorkCalendar(holidays={len(self.holidays)}, workdays={len(self.workdays)}, "
            f"supplied_years={sorted(self.supplied_years)})"
        )

    # ------------------------------------------------------------------ per year

    def working_days_of_year(self, year: int) -> tuple[date, ...]:
        """The working days of `year`, sorted (computed once per year)."""
        days = self._years.get(year)
        if days is None:
            days = self._compute_year(year)
            self._years[year] = days
            self._sets[year] = frozenset(days)
        return days

    def _compute_year(self, year: int) -> tuple[date, ...]:
        extra_off = {d for d in self.holidays if d.year == year}
        extra_on = {d for d in self.workdays if d.year == year}
        if year in self.supplied_years:
            first = date(year, 1, 1)
            length = (date(year + 1, 1, 1) - first).days
            every_day = (first + timedelta(days=i) for i in range(length))
            base = {d for d in every_day if d.weekday() < 5}
        else:
            package = _package_working_days(year)
            if package is None:
                note = ""
                if extra_off or extra_on:
                    note = (
                        f"{_CONFIG_FILE} lists days of {year} under holidays/workdays, "
                        f"but {year} is not under years"
                    )
                raise UnknownYearError(year, note)
            base = set(package)
        return tuple(sorted((base - extra_off) | extra_on))

    def _working_set(self, year: int) -> frozenset[date]:
        found = self._sets.get(year)
        if found is None:
            self.working_days_of_year(year)
            found = self._sets[year]
        return found

    # ------------------------------------------------------------------ single days

    def is_working_day(self, day: date) -> bool:
        day = _as_date(day)
        return day in self._working_set(day.year)

    def add_working_days(self, day: date, n: int) -> date:
        """The n-th working day strictly after `day` (n >= 1).

        n == 0: `day` itself if it is a working day, else the next working day.
        Crosses year boundaries; needs every year it passes through.
        """
        if n < 0:
            raise ValueError(f"n must be 0 or more, got {n}")
        day = _as_date(day)
        year = day.year
        days = self.working_days_of_year(year)
        if n == 0:
            index = bisect_left(days, day)  # first working day on or after `day`
            remaining = 1
        else:
            index = bisect_right(days, day)  # first working day strictly after `day`
            remaining = n
        # `remaining` counts working days from days[index] on (days[index] is number 1).
        while index + remaining > len(days):
            remaining -= len(days) - index
            year += 1
            days = self.working_days_of_year(year)
            index = 0
        return days[index + remaining - 1]

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        return self.add_working_days(day, 1)

    def working_day_on_or_after(self, day: date) -> date:
        """`day` if it is a working day, else the next working day."""
        return self.add_working_days(day, 0)

    # ------------------------------------------------------------------ deadlines

    def due_date(self, received: date, working_days: int) -> date:
        """The last day of a limit of `working_days` working days for an item received on
        `received`: the N-th working day after the day of receipt.

        Received on a working day D: the N-th working day after D. Received on a non-working
        day: the next working day is day 1. (Both are "the N-th working day strictly after
        the day of receipt".)
        """
        if working_days < 1:
            raise ValueError(f"a limit must be at least 1 working day, got {working_days}")
        received = _as_date(received)
        key = (received, working_days)
        due = self._due.get(key)
        if due is None:
            due = self.add_working_days(received, working_days)
            self._due[key] = due
        return due

    def due_at(self, received: datetime, working_days: int) -> datetime:
        """The due time: 23:59:59 (naive, local time) of due_date(received.date(), N)."""
        return datetime.combine(self.due_date(received.date(), working_days), DUE_TIME)

    # ------------------------------------------------------------------ spans

    def working_days_between(self, start: date, end: date) -> int:
        """The number of working days d with start < d <= end (0 if end <= start).

        E.g. the number of working days an item due on `start` is late on `end`.
        """
        start, end = _as_date(start), _as_date(end)
        if end <= start:
            return 0
        first = self.working_days_of_year(start.year)
        if start.year == end.year:
            return bisect_right(first, end) - bisect_right(first, start)
        count = len(first) - bisect_right(first, start)
        for year in range(start.year + 1, end.year):
            count += len(self.working_days_of_year(year))
        return count + bisect_right(self.working_days_of_year(end.year), end)

    def working_days_in_month(self, year: int, month: int) -> tuple[date, ...]:
        """The working days of one month, sorted."""
        first = date(year, month, 1)
        after = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        days = self.working_days_of_year(year)
        return days[bisect_left(days, first) : bisect_left(days, after)]
