"""When a scheduled loop is due, and which period a scheduled run covers.

Cron cannot know the working-day calendar, so a loop's cron fires on every day that *may*
be its day and the flow asks these rules whether today *is*:

- the daily report runs on working days (调休 make-up days included, which fall on
  Saturdays and Sundays) — its cron fires every day at 08:30;
- the monthly notice runs on the first working day of the month, for the previous month —
  its cron fires on days 1–10 at 09:00 (after National Day the first working day of October
  is the 8th or the 9th, never later in 2004–2026);
- the quarterly spot check runs on the first working day of the quarter, for the previous
  quarter; the year-end evaluation on the first working day of January, for the last year.

Pure functions: the caller passes `today` (in the city's time zone) and the calendar.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from duban.calendar import WorkCalendar

RunOn = Literal[
    "any_day",
    "working_day",
    "first_working_day_of_month",
    "first_working_day_of_quarter",
    "first_working_day_of_year",
]

# The latest day of a month its first working day fell on in 2004–2026 (October 9th, after
# National Day): a cron guarded by a first-working-day rule must fire on days 1 to this.
LATEST_FIRST_WORKING_DAY = 10


def first_working_day_of_month(year: int, month: int, calendar: WorkCalendar) -> date:
    return calendar.working_day_on_or_after(date(year, month, 1))


def quarter_of(day: date) -> int:
    return (day.month - 1) // 3 + 1


def first_working_day_of_quarter(year: int, quarter: int, calendar: WorkCalendar) -> date:
    if not 1 <= quarter <= 4:
        raise ValueError(f"quarter must be 1 to 4, not {quarter}")
    return first_working_day_of_month(year, 3 * quarter - 2, calendar)


def is_first_working_day_of_month(day: date, calendar: WorkCalendar) -> bool:
    return day == first_working_day_of_month(day.year, day.month, calendar)


def is_first_working_day_of_quarter(day: date, calendar: WorkCalendar) -> bool:
    return day.month % 3 == 1 and is_first_working_day_of_month(day, calendar)


def is_first_working_day_of_year(day: date, calendar: WorkCalendar) -> bool:
    return day.month == 1 and is_first_working_day_of_month(day, calendar)


def is_due(day: date, run_on: RunOn, calendar: WorkCalendar) -> bool:
    """Whether a loop scheduled with `run_on` should do its work on `day`.

    A scheduled run on a day that is not due records a skipped run and exits cleanly.
    """
    if run_on == "any_day":
        return True
    if run_on == "working_day":
        return calendar.is_working_day(day)
    if run_on == "first_working_day_of_month":
        return is_first_working_day_of_month(day, calendar)
    if run_on == "first_working_day_of_quarter":
        return is_first_working_day_of_quarter(day, calendar)
    if run_on == "first_working_day_of_year":
        return is_first_working_day_of_year(day, calendar)
    raise ValueError(f"unknown run_on {run_on!r}")


# ---------------------------------------------------------------- the period a run covers


def previous_month(day: date) -> str:
    """'YYYY-MM' of the month before `day`'s: the monthly notice run on 2026-11-02 covers
    2026-10."""
    last = day.replace(day=1) - timedelta(days=1)
    return f"{last:%Y-%m}"


def previous_week(day: date) -> str:
    """ISO week before `day`'s, as 'YYYY-Www': the weekly analysis run on Monday 2026-11-09
    covers 2026-W45 (2026-11-02 to 2026-11-08)."""
    year, week, _ = (day - timedelta(days=7)).isocalendar()
    return f"{year}-W{week:02d}"


def previous_quarter(day: date) -> str:
    """'YYYY-Qn' of the quarter before `day`'s: a run on 2027-01-04 covers 2026-Q4."""
    quarter = quarter_of(day)
    if quarter == 1:
        return f"{day.year - 1}-Q4"
    return f"{day.year}-Q{quarter - 1}"


def previous_year(day: date) -> str:
    return str(day.year - 1)


# ---------------------------------------------------------------- cron fields


def cron_days(field: str, low: int, high: int) -> set[int]:
    """The values a cron field ('*', '1-10', '1,15', '*/2', '1-10/3') selects in [low, high].

    Names (MON, JAN) and other extensions are not expanded: they raise ValueError.
    """
    selected: set[int] = set()
    for part in field.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in {field!r}")
        if spec == "*":
            start, end = low, high
        elif "-" in spec:
            first, _, last = spec.partition("-")
            start, end = int(first), int(last)
        else:
            start = int(spec)
            end = high if step_text else start
        if start < low or end > high or start > end:
            raise ValueError(f"{field!r} is outside {low}-{high}")
        selected.update(range(start, end + 1, step))
    return selected


def cron_problem(cron: str, run_on: RunOn) -> str | None:
    """Why `cron` cannot serve a loop that runs on `run_on` days, or None when it can.

    A loop that runs on working days must fire every day of the week (make-up working days
    fall on weekends); a first-working-day loop must also fire on days 1 to 10 of its months.
    """
    fields = cron.split()
    if len(fields) != 5:
        return f"cron {cron!r}: five fields expected (minute hour day month weekday)"
    minute, hour, dom, month, dow = fields
    try:
        cron_days(minute, 0, 59)
        cron_days(hour, 0, 23)
        days = cron_days(dom, 1, 31)
        months = cron_days(month, 1, 12)
        weekdays = cron_days(dow, 0, 7)
    except ValueError as exc:
        return f"cron {cron!r}: {exc}"
    if run_on == "any_day":
        return None
    if {d % 7 for d in weekdays} != set(range(7)) or (dom != "*" and dow != "*"):
        return (
            f"cron {cron!r}: a loop that runs on working days must fire on every day of the "
            "week (weekday field '*'): make-up working days (调休) fall on Saturdays and Sundays"
        )
    if run_on == "working_day":
        return None
    wanted = set(range(1, LATEST_FIRST_WORKING_DAY + 1))
    if not wanted <= days:
        return (
            f"cron {cron!r}: a first-working-day loop must fire on days 1-"
            f"{LATEST_FIRST_WORKING_DAY} of the month: after National Day the first working "
            "day of October is the 8th or the 9th"
        )
    needed = {
        "first_working_day_of_month": set(range(1, 13)),
        "first_working_day_of_quarter": {1, 4, 7, 10},
        "first_working_day_of_year": {1},
    }[run_on]
    if not needed <= months:
        return f"cron {cron!r}: must fire in months {sorted(needed)} for {run_on}"
    return None
