"""Three-colour warnings (三色督办) on real 2026 dates.

The facts of the 2026 calendar used here (chinese-calendar 1.11, checked by
test_the_2026_dates_used_here): Mid-Autumn Sep 25-27 off; National Day Oct 1-7 off with
make-up working days Sun Sep 20 and Sat Oct 10; Spring Festival Feb 15-23 off with make-up
Saturdays Feb 14 and Feb 28; Oct 31 is a Saturday.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from duban.calendar import UnknownYearError, WorkCalendar
from duban.config import EscalationFile, UrgencyFile, parse_file
from duban.rules.warnings import (
    Colour,
    blue_cutoff,
    blue_window_start,
    most_severe,
    plan_task_colour,
    plan_task_deadline,
    plan_task_expected_progress,
    ticket_colour,
)

CAL = WorkCalendar()
CONFIG = Path(__file__).resolve().parents[2] / "config"
DUE_TIME = time(23, 59, 59)


def at(day: date, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second))


def ticket(
    now: datetime,
    *,
    due: date,
    received_at: datetime | None = None,
    first_response_at: datetime | None = None,
    closed: bool = False,
    response_hours: float = 24,
    blue_working_days: int = 1,
) -> Colour:
    received = received_at or at(due - timedelta(days=20), 9)
    return ticket_colour(
        now=now,
        received_at=received,
        due_at=datetime.combine(due, DUE_TIME),
        first_response_at=first_response_at if first_response_at else received,
        closed=closed,
        response_hours=response_hours,
        blue_working_days=blue_working_days,
        calendar=CAL,
    )


def test_the_2026_dates_used_here() -> None:
    off = [date(2026, 10, d) for d in range(1, 8)] + [date(2026, 2, d) for d in range(15, 24)]
    off += [date(2026, 9, 25), date(2026, 9, 27), date(2026, 10, 11), date(2026, 10, 31)]
    on = [date(2026, 9, 20), date(2026, 10, 10), date(2026, 2, 14), date(2026, 2, 28)]
    on += [date(2026, 9, 30), date(2026, 10, 8), date(2026, 10, 9), date(2026, 6, 10)]
    assert not any(chinese_calendar.is_workday(d) for d in off)
    assert all(chinese_calendar.is_workday(d) for d in on)
    assert [d.weekday() for d in (date(2026, 10, 10), date(2026, 9, 20))] == [5, 6]
    assert all(CAL.is_working_day(d) for d in on) and not any(CAL.is_working_day(d) for d in off)


# ---------------------------------------------------------------- tickets

# Received Mon 2026-06-01 09:00 at level 3 (7 working days): due Wed 2026-06-10 23:59:59.
RECEIVED = at(date(2026, 6, 1), 9)
DUE = date(2026, 6, 10)


def test_the_example_ticket_is_due_on_wednesday_the_tenth() -> None:
    assert CAL.due_at(RECEIVED, 7) == datetime(2026, 6, 10, 23, 59, 59)


def test_red_just_after_the_due_time_not_just_before() -> None:
    assert ticket(at(DUE, 23, 59, 58), due=DUE) is Colour.blue
    assert ticket(at(DUE, 23, 59, 59), due=DUE) is Colour.blue  # "after", not "at"
    assert ticket(at(DUE + timedelta(days=1)), due=DUE) is Colour.red
    assert ticket(at(date(2026, 7, 1), 12), due=DUE) is Colour.red


def test_green_well_before_the_deadline() -> None:
    assert ticket(at(date(2026, 6, 5), 10), due=DUE) is Colour.green
    assert ticket(at(date(2026, 6, 9), 23, 59), due=DUE) is Colour.green


def test_blue_on_the_last_working_day_only_with_a_window_of_one() -> None:
    assert ticket(at(date(2026, 6, 9), 12), due=DUE) is Colour.green
    assert ticket(at(DUE), due=DUE) is Colour.blue
    assert ticket(at(DUE, 18), due=DUE) is Colour.blue


def test_blue_window_of_two_working_days() -> None:
    assert ticket(at(date(2026, 6, 8), 12), due=DUE, blue_working_days=2) is Colour.green
    assert ticket(at(date(2026, 6, 9)), due=DUE, blue_working_days=2) is Colour.blue
    assert ticket(at(DUE), due=DUE, blue_working_days=2) is Colour.blue
    # Due on a Monday, a window of 2 opens the Friday before and stays blue over the weekend.
    monday = date(2026, 6, 15)
    assert blue_window_start(monday, 2, CAL) == date(2026, 6, 12)
    assert ticket(at(date(2026, 6, 13), 10), due=monday, blue_working_days=2) is Colour.blue
    assert ticket(at(date(2026, 6, 11), 10), due=monday, blue_working_days=2) is Colour.green


def test_yellow_when_the_response_limit_passed_without_a_response() -> None:
    def colour(now: datetime, response: datetime | None = None) -> Colour:
        return ticket_colour(
            now=now,
            received_at=RECEIVED,
            due_at=datetime.combine(DUE, DUE_TIME),
            first_response_at=response,
            closed=False,
            response_hours=24,
            blue_working_days=1,
            calendar=CAL,
        )

    assert colour(at(date(2026, 6, 2), 9)) is Colour.green  # exactly 24 h: not yet
    assert colour(at(date(2026, 6, 2), 9, 0, 1)) is Colour.yellow
    # Responded (late, on the 3rd): no longer yellow afterwards.
    late = at(date(2026, 6, 3), 15)
    assert colour(at(date(2026, 6, 3), 12), late) is Colour.yellow  # not responded yet at noon
    assert colour(at(date(2026, 6, 4), 9), late) is Colour.green
    # Yellow beats blue on the last working day; red beats yellow.
    assert colour(at(DUE, 9)) is Colour.yellow
    assert colour(at(DUE, 9), late) is Colour.blue
    assert colour(at(DUE + timedelta(days=1))) is Colour.red


def test_fractional_response_hours() -> None:
    def colour(now: datetime) -> Colour:
        return ticket_colour(
            now=now,
            received_at=RECEIVED,
            due_at=datetime.combine(DUE, DUE_TIME),
            first_response_at=None,
            closed=False,
            response_hours=1.5,
            blue_working_days=1,
            calendar=CAL,
        )

    assert colour(at(date(2026, 6, 1), 10, 30)) is Colour.green
    assert colour(at(date(2026, 6, 1), 10, 31)) is Colour.yellow


def test_closed_tickets_are_green_even_when_late() -> None:
    assert ticket(at(date(2026, 7, 1)), due=DUE, closed=True) is Colour.green
    assert ticket(at(DUE, 9), due=DUE, closed=True, first_response_at=None) is Colour.green


def test_due_the_first_working_day_after_national_day_is_blue_that_day_not_in_the_holiday() -> None:
    due = date(2026, 10, 8)  # Thu: the first working day after Oct 1-7
    assert CAL.due_date(date(2026, 9, 28), 3) == due  # Mon Sep 28 + 3 working days
    assert blue_window_start(due, 1, CAL) == due
    assert ticket(at(date(2026, 9, 30), 12), due=due) is Colour.green
    for holiday in range(1, 8):
        assert ticket(at(date(2026, 10, holiday), 12), due=due) is Colour.green
    assert ticket(at(due, 8), due=due) is Colour.blue
    assert ticket(at(date(2026, 10, 9)), due=due) is Colour.red
    # With a window of 2 the working day before is Sep 30: blue through the whole holiday.
    assert blue_window_start(due, 2, CAL) == date(2026, 9, 30)
    assert ticket(at(date(2026, 9, 29), 12), due=due, blue_working_days=2) is Colour.green
    for day in [date(2026, 9, 30)] + [date(2026, 10, d) for d in range(1, 9)]:
        assert ticket(at(day, 12), due=due, blue_working_days=2) is Colour.blue


def test_an_explicit_due_date_on_a_non_working_day() -> None:
    # Sun Oct 11: the last working day before it is the make-up Saturday Oct 10.
    assert blue_window_start(date(2026, 10, 11), 1, CAL) == date(2026, 10, 10)
    assert blue_window_start(date(2026, 10, 11), 2, CAL) == date(2026, 10, 9)
    # A due date inside National Day: the window ends at Wed Sep 30.
    assert blue_window_start(date(2026, 10, 4), 1, CAL) == date(2026, 9, 30)
    assert blue_window_start(date(2026, 10, 4), 3, CAL) == date(2026, 9, 28)
    # Sun Oct 18: the Friday before.
    sunday = date(2026, 10, 18)
    assert blue_window_start(sunday, 1, CAL) == date(2026, 10, 16)
    assert ticket(at(date(2026, 10, 15), 12), due=sunday) is Colour.green
    assert ticket(at(date(2026, 10, 16)), due=sunday) is Colour.blue
    assert ticket(at(date(2026, 10, 17), 12), due=sunday) is Colour.blue
    assert ticket(at(date(2026, 10, 19)), due=sunday) is Colour.red


def test_blue_window_across_spring_festival() -> None:
    # Due Tue Feb 24, the first working day after the festival; the working day before is
    # the make-up Saturday Feb 14.
    due = date(2026, 2, 24)
    assert blue_window_start(due, 1, CAL) == due
    assert blue_window_start(due, 2, CAL) == date(2026, 2, 14)
    assert blue_window_start(due, 3, CAL) == date(2026, 2, 13)
    assert ticket(at(date(2026, 2, 20), 10), due=due, blue_working_days=2) is Colour.blue


def test_blue_window_needs_at_least_one_day() -> None:
    with pytest.raises(ValueError):
        blue_window_start(DUE, 0, CAL)
    with pytest.raises(ValueError):
        blue_cutoff(DUE, 0, CAL)


def test_severity_order() -> None:
    assert most_severe(Colour.blue, Colour.red, Colour.yellow) is Colour.red
    assert most_severe(Colour.blue, Colour.green) is Colour.blue
    assert most_severe() is Colour.green
    assert sorted(Colour, key=lambda c: c.severity) == [
        Colour.green,
        Colour.blue,
        Colour.yellow,
        Colour.red,
    ]
    assert Colour.red == "red"


# ---------------------------------------------------------------- blue_cutoff


def test_blue_cutoff_examples() -> None:
    # Wed Sep 30, before National Day: with 1 day, everything due up to Oct 7 (the holiday's
    # last day) is blue; with 2, Oct 8 too.
    assert blue_cutoff(date(2026, 9, 30), 1, CAL) == date(2026, 10, 7)
    assert blue_cutoff(date(2026, 9, 30), 2, CAL) == date(2026, 10, 8)
    # In the holiday, the same as on its last working day before.
    assert blue_cutoff(date(2026, 10, 3), 1, CAL) == date(2026, 10, 7)
    # An ordinary Monday and Friday.
    assert blue_cutoff(date(2026, 6, 8), 1, CAL) == date(2026, 6, 8)
    assert blue_cutoff(date(2026, 6, 12), 1, CAL) == date(2026, 6, 14)
    # Fri Oct 9: the next working day is the make-up Saturday, so the cutoff is Oct 9 itself.
    assert blue_cutoff(date(2026, 10, 9), 1, CAL) == date(2026, 10, 9)
    assert blue_cutoff(date(2026, 10, 10), 1, CAL) == date(2026, 10, 11)


def test_blue_cutoff_needs_the_next_year_at_year_end() -> None:
    # On Dec 31 the answer depends on whether Jan 1 2027 is a working day.
    with pytest.raises(UnknownYearError):
        blue_cutoff(date(2026, 12, 31), 1, CAL)
    with_2027 = WorkCalendar(holidays=[date(2027, 1, 1)], supplied_years=[2027])
    assert blue_cutoff(date(2026, 12, 31), 1, with_2027) == date(2027, 1, 3)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (date(2026, 1, 20), date(2026, 3, 15)),  # Spring Festival
        (date(2026, 4, 25), date(2026, 5, 15)),  # Labour Day
        (date(2026, 9, 10), date(2026, 11, 10)),  # Mid-Autumn and National Day
    ],
)
@pytest.mark.parametrize("blue_days", [1, 2, 3])
def test_blue_cutoff_agrees_with_ticket_colour(first: date, last: date, blue_days: int) -> None:
    """On every (today, due date) pair: blue by ticket_colour ⇔ due <= blue_cutoff(today),
    evaluated as the SQL does (due_at < cutoff + 1 day, red when due_at < now)."""
    checked = 0
    for today in _days(first, last):
        cutoff = blue_cutoff(today, blue_days, CAL)
        blue_before = datetime.combine(cutoff + timedelta(days=1), time())
        for due in _days(today - timedelta(days=3), today + timedelta(days=20)):
            due_at = datetime.combine(due, DUE_TIME)
            for now in (at(today), at(today, 13, 30)):
                if due_at < now:
                    sql = Colour.red
                elif due_at < blue_before:
                    sql = Colour.blue
                else:
                    sql = Colour.green
                assert ticket(now, due=due, blue_working_days=blue_days) is sql, (today, due)
                checked += 1
        # the cutoff is the latest blue due date: it is blue, the day after is not
        assert blue_window_start(cutoff, blue_days, CAL) <= today
        assert blue_window_start(cutoff + timedelta(days=1), blue_days, CAL) > today
    assert checked > 1000


def test_the_whole_sql_rule_agrees_with_ticket_colour_on_random_tickets() -> None:
    """The daily report's SQL colour (duban.queries.daily.colour), restated on plain values
    with the shipped config's levels, against ticket_colour on seeded random tickets."""
    urgency = parse_file(CONFIG / "urgency.yaml", UrgencyFile)
    warnings = parse_file(CONFIG / "escalation.yaml", EscalationFile).warnings
    rng = random.Random(20261008)
    days = _days(date(2026, 1, 10), date(2026, 12, 15))
    seen: set[Colour] = set()
    for _ in range(5000):
        today = rng.choice(days)
        now = at(today)  # the report describes the start of its day
        level = rng.choice(urgency.levels)
        blue_days = warnings.blue_days(level.level)
        received = now - timedelta(minutes=rng.randint(1, 60 * 24 * 12))
        due = today + timedelta(days=rng.randint(-4, 14))
        due_at = datetime.combine(due, DUE_TIME)
        response = rng.choice([None, received + timedelta(minutes=rng.randint(0, 60 * 24 * 14))])
        blue_before = datetime.combine(
            blue_cutoff(today, blue_days, CAL) + timedelta(days=1), time()
        )
        yellow_before = now - timedelta(hours=level.response_hours)
        no_response = response is None or response >= now
        if due_at < now:
            sql = Colour.red
        elif no_response and received < yellow_before:
            sql = Colour.yellow
        elif due_at < blue_before:
            sql = Colour.blue
        else:
            sql = Colour.green
        got = ticket_colour(
            now=now,
            received_at=received,
            due_at=due_at,
            first_response_at=response,
            closed=False,
            response_hours=level.response_hours,
            blue_working_days=blue_days,
            calendar=CAL,
        )
        assert got is sql, (today, level.level, received, due, response)
        seen.add(got)
    assert seen == set(Colour)


# ---------------------------------------------------------------- plan tasks


def plan(
    today: date,
    due_month: date,
    *,
    progress: float = 0.0,
    done: bool = False,
    start_month: date | None = None,
    lag: float = 0.2,
    blue_working_days: int = 1,
) -> Colour:
    return plan_task_colour(
        today=today,
        start_month=start_month,
        due_month=due_month,
        progress=progress,
        done=done,
        lag=lag,
        blue_working_days=blue_working_days,
        calendar=CAL,
    )


def test_plan_task_deadline_is_the_last_day_of_the_month() -> None:
    assert plan_task_deadline(date(2026, 2, 1)) == date(2026, 2, 28)
    assert plan_task_deadline(date(2028, 2, 1)) == date(2028, 2, 29)
    assert plan_task_deadline(date(2026, 9, 1)) == date(2026, 9, 30)
    assert plan_task_deadline(date(2026, 12, 1)) == date(2026, 12, 31)
    assert plan_task_deadline(date(2026, 12, 15)) == date(2026, 12, 31)


def test_done_plan_task_is_green_even_after_its_month() -> None:
    assert plan(date(2026, 11, 5), date(2026, 9, 1), done=True) is Colour.green


def test_plan_task_red_once_its_month_is_over() -> None:
    sep = date(2026, 9, 1)
    assert plan(date(2026, 9, 30), sep, progress=1.0) is Colour.blue
    assert plan(date(2026, 10, 1), sep, progress=0.95) is Colour.red


def test_plan_task_blue_near_the_end_of_the_month() -> None:
    sep = date(2026, 9, 1)  # Sep 30 is a Wednesday
    assert plan(date(2026, 9, 29), sep, progress=0.9) is Colour.green
    assert plan(date(2026, 9, 30), sep, progress=0.9) is Colour.blue
    assert plan(date(2026, 9, 29), sep, progress=0.9, blue_working_days=2) is Colour.blue
    # Oct 31 is a Saturday: blue from Friday Oct 30.
    oct_ = date(2026, 10, 1)
    assert plan(date(2026, 10, 29), oct_, progress=0.9) is Colour.green
    assert plan(date(2026, 10, 30), oct_, progress=0.9) is Colour.blue
    assert plan(date(2026, 10, 31), oct_, progress=0.9) is Colour.blue
    # Feb 28 is a make-up Saturday: the last working day of February 2026 is the 28th.
    feb = date(2026, 2, 1)
    assert plan(date(2026, 2, 27), feb, progress=0.9) is Colour.green
    assert plan(date(2026, 2, 28), feb, progress=0.9) is Colour.blue


def test_plan_task_yellow_when_progress_lags_the_elapsed_time() -> None:
    # A year-long task (no start month: from Jan 1), due December; on Jul 1 181 of 365
    # days have elapsed: expected 0.496, yellow below 0.296.
    dec = date(2026, 12, 1)
    assert plan_task_expected_progress(date(2026, 7, 1), None, dec) == pytest.approx(181 / 365)
    assert plan(date(2026, 7, 1), dec, progress=0.25) is Colour.yellow
    assert plan(date(2026, 7, 1), dec, progress=0.30) is Colour.green
    assert plan(date(2026, 7, 1), dec, progress=0.25, lag=0.3) is Colour.green
    # With a start month: Jun 1 to Sep 30 (122 days); on Aug 1, 61 days elapsed: 0.5.
    jun, sep = date(2026, 6, 1), date(2026, 9, 1)
    assert plan_task_expected_progress(date(2026, 8, 1), date(2026, 6, 1), date(2026, 9, 1)) == (
        pytest.approx(0.5)
    )
    assert plan(date(2026, 8, 1), sep, progress=0.29, start_month=jun) is Colour.yellow
    assert plan(date(2026, 8, 1), sep, progress=0.31, start_month=jun) is Colour.green
    # Before its start nothing is expected.
    assert plan(date(2026, 5, 20), sep, start_month=jun) is Colour.green
    # On the blue day a lagging task is yellow (more severe), a late one red.
    assert plan(date(2026, 9, 30), sep, progress=0.1, start_month=jun) is Colour.yellow
    assert plan(date(2026, 10, 1), sep, progress=0.1, start_month=jun) is Colour.red


def test_plan_task_expected_progress_is_clipped() -> None:
    sep = date(2026, 9, 1)
    assert plan_task_expected_progress(date(2025, 12, 1), None, sep) == 0.0
    assert plan_task_expected_progress(date(2026, 1, 1), None, sep) == 0.0
    assert plan_task_expected_progress(date(2026, 9, 30), None, sep) < 1.0
    assert plan_task_expected_progress(date(2026, 10, 1), None, sep) == 1.0
    assert plan_task_expected_progress(date(2027, 3, 1), None, sep) == 1.0
    # A start month after the due month is read as the due month alone.
    assert plan_task_expected_progress(date(2026, 9, 16), date(2026, 11, 1), sep) == 0.5
