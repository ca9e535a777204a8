"""Three-colour warnings (三色督办) for tickets and plan tasks. See docs/daily-loop.md.

An open item has the most severe colour that applies (red > yellow > blue > green):

- red (超期): past its deadline;
- yellow (预警): a ticket not responded to within its level's response hours; a plan task
  whose reported progress lags the elapsed share of its time by more than the allowed lag;
- blue (临期): the deadline is near — today is within the last N working days up to the
  due date (N per urgency level);
- green: none of these; closed or done items are always green.

Pure functions: the caller passes `now`/`today` and the working-day calendar.
"""

from __future__ import annotations

import calendar as _gregorian
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from duban.calendar import WorkCalendar

ONE_DAY = timedelta(days=1)
# No real calendar has this many non-working days in a row; more means a broken config.
_MAX_NON_WORKING_RUN = 60


class Colour(StrEnum):
    green = "green"
    blue = "blue"
    yellow = "yellow"
    red = "red"

    @property
    def severity(self) -> int:
        """0 for green … 3 for red."""
        return _SEVERITY[self]


_SEVERITY = {Colour.green: 0, Colour.blue: 1, Colour.yellow: 2, Colour.red: 3}


def most_severe(*colours: Colour) -> Colour:
    """The most severe of `colours` (green when none)."""
    return max(colours, key=_SEVERITY.__getitem__, default=Colour.green)


def working_day_on_or_before(day: date, calendar: WorkCalendar) -> date:
    """`day` if it is a working day, else the last working day before it."""
    probe = day
    for _ in range(_MAX_NON_WORKING_RUN):
        if calendar.is_working_day(probe):
            return probe
        probe -= ONE_DAY
    raise ValueError(f"no working day in the {_MAX_NON_WORKING_RUN} days up to {day}")


def blue_window_start(due: date, blue_working_days: int, calendar: WorkCalendar) -> date:
    """The first day of the blue window of an item due on `due` (always a working day).

    The window is the due date's last `blue_working_days` working days up to the due
    date: for 1, the last working day on or before the due date; for 2, that day and the
    working day before it. A due date on a non-working day (possible for explicit due
    dates from exports) ends its window at the last working day before it.
    """
    if blue_working_days < 1:
        raise ValueError(f"blue_working_days must be at least 1, got {blue_working_days}")
    start = working_day_on_or_before(due, calendar)
    for _ in range(blue_working_days - 1):
        start = working_day_on_or_before(start - ONE_DAY, calendar)
    return start


def blue_cutoff(today: date, blue_working_days: int, calendar: WorkCalendar) -> date:
    """The latest due date that is blue on `today`.

    Items due on or before the cutoff are blue today unless they are yellow or red, i.e.
    ``due <= blue_cutoff(today, n)`` exactly when ``blue_window_start(due, n) <= today``.
    For SQL: ``due_at < cutoff + 1 day``.

    Derivation: the window start is a working day, so it is on or before `today` exactly
    when it is on or before P, the last working day on or before `today`; walking the
    window forward, that holds exactly when the due date comes before the n-th working day
    after P.
    """
    if blue_working_days < 1:
        raise ValueError(f"blue_working_days must be at least 1, got {blue_working_days}")
    last_working = working_day_on_or_before(today, calendar)
    return calendar.add_working_days(last_working, blue_working_days) - ONE_DAY


def ticket_colour(
    *,
    now: datetime,
    received_at: datetime,
    due_at: datetime,
    first_response_at: datetime | None,
    closed: bool,
    response_hours: float,
    blue_working_days: int,
    calendar: WorkCalendar,
) -> Colour:
    """The colour of a ticket at `now` (all times naive, in the city's time zone).

    - closed: green;
    - red: `now` is after `due_at`;
    - yellow: no first response by `now` (a response time after `now` has not happened
      yet) and `now` is after `received_at` + `response_hours`; once responded, a ticket is
      not yellow, even when the response came late;
    - blue: `now.date()` is on or after blue_window_start(due date);
    - else green.
    """
    if closed:
        return Colour.green
    if now > due_at:
        return Colour.red
    responded = first_response_at is not None and first_response_at < now
    if not responded and now > received_at + timedelta(hours=response_hours):
        return Colour.yellow
    if now.date() >= blue_window_start(due_at.date(), blue_working_days, calendar):
        return Colour.blue
    return Colour.green


def plan_task_deadline(due_month: date) -> date:
    """A plan task is due at the end of its due month: the month's last calendar day."""
    last = _gregorian.monthrange(due_month.year, due_month.month)[1]
    return date(due_month.year, due_month.month, last)


def plan_task_expected_progress(today: date, start_month: date | None, due_month: date) -> float:
    """The share of a plan task's time elapsed before `today`, 0..1.

    Its time runs from the first day of `start_month` (or 1 January of the due year when
    there is none) to the end of the due month, counted in calendar days; `today` counts
    as not yet elapsed (the report describes the start of the day). A start after the due
    month is read as starting in the due month.
    """
    deadline = plan_task_deadline(due_month)
    start = start_month.replace(day=1) if start_month else date(due_month.year, 1, 1)
    if start > deadline:
        start = due_month.replace(day=1)
    total = (deadline - start).days + 1
    elapsed = (today - start).days
    return min(1.0, max(0.0, elapsed / total))


def plan_task_colour(
    *,
    today: date,
    start_month: date | None,
    due_month: date,
    progress: float,
    done: bool,
    lag: float,
    blue_working_days: int,
    calendar: WorkCalendar,
) -> Colour:
    """The colour of a plan task on `today`; the most severe that applies.

    - done: green;
    - red: `today` is after the last day of the due month;
    - yellow: `progress` < expected − `lag` (plan_task_expected_progress);
    - blue: `today` is in the blue window of the month's last day (its last
      `blue_working_days` working days up to the last working day of the month);
    - else green.
    """
    if done:
        return Colour.green
    deadline = plan_task_deadline(due_month)
    if today > deadline:
        return Colour.red
    if progress < plan_task_expected_progress(today, start_month, due_month) - lag:
        return Colour.yellow
    if today >= blue_window_start(deadline, blue_working_days, calendar):
        return Colour.blue
    return Colour.green
