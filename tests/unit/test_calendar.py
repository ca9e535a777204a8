"""The working-day calendar and the deadline rule, against chinese-calendar's 2025/2026 data.

2026 holidays used below (chinese-calendar 1.11):
- New Year: Thu 2026-01-01 to Sat 01-03 off; Sun 01-04 is a make-up working day.
- Spring Festival: Sun 2026-02-15 to Mon 02-23 off; Sat 02-14 and Sat 02-28 are make-up days.
- Mid-autumn: Fri 2026-09-25 to Sun 09-27 off.
- National Day: Thu 2026-10-01 to Wed 10-07 off; Sun 09-20 and Sat 10-10 are make-up days.
"""

from __future__ import annotations

import pickle
from datetime import date, datetime, timedelta

import chinese_calendar
import pytest

from duban.calendar import CalendarError, UnknownYearError, WorkCalendar

D = date
ONE = timedelta(days=1)
XINING_LEVELS = (1, 3, 7, 11)


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar()


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def reference_due(received: date, n: int) -> date:
    """The rule walked day by day on chinese_calendar alone (no overrides)."""
    probe, counted = received, 0
    while counted < n:
        probe += ONE
        counted += chinese_calendar.is_workday(probe)
    return probe


# ---------------------------------------------------------------- the package data we rely on


def test_2026_spring_festival_and_national_day_as_the_package_has_them(cal: WorkCalendar) -> None:
    spring = days(D(2026, 2, 15), D(2026, 2, 23))
    national = days(D(2026, 10, 1), D(2026, 10, 7))
    for day in spring + national:
        assert not cal.is_working_day(day), day
        assert chinese_calendar.get_holiday_detail(day)[1] in {"Spring Festival", "National Day"}
    assert chinese_calendar.is_in_lieu(D(2026, 2, 23)) and chinese_calendar.is_in_lieu(
        D(2026, 10, 7)
    )
    for makeup in (D(2026, 2, 14), D(2026, 2, 28), D(2026, 9, 20), D(2026, 10, 10)):
        assert makeup.weekday() >= 5  # a Saturday or Sunday ...
        assert cal.is_working_day(makeup), makeup  # ... that is a working day (调休)
    assert cal.is_working_day(D(2026, 2, 13)) and cal.is_working_day(D(2026, 2, 24))
    assert cal.is_working_day(D(2026, 9, 30)) and cal.is_working_day(D(2026, 10, 8))
    assert not cal.is_working_day(D(2026, 3, 7))  # an ordinary Saturday


# ---------------------------------------------------------------- the deadline rule


@pytest.mark.parametrize(
    ("received", "n", "due"),
    [
        # an ordinary week in March 2026
        (D(2026, 3, 6), 1, D(2026, 3, 9)),  # Fri -> Mon
        (D(2026, 3, 7), 1, D(2026, 3, 9)),  # Sat: Monday is day 1
        (D(2026, 3, 8), 1, D(2026, 3, 9)),  # Sun: Monday is day 1
        (D(2026, 3, 4), 1, D(2026, 3, 5)),  # Wed -> Thu
        (D(2026, 3, 4), 3, D(2026, 3, 9)),  # Wed -> Mon
        (D(2026, 3, 4), 7, D(2026, 3, 13)),  # Wed -> Fri of the next week
        (D(2026, 3, 4), 11, D(2026, 3, 19)),  # Wed -> Thu two weeks on
        (D(2026, 3, 6), 3, D(2026, 3, 11)),
        (D(2026, 3, 6), 7, D(2026, 3, 17)),
        (D(2026, 3, 6), 11, D(2026, 3, 23)),
        (D(2026, 3, 7), 11, D(2026, 3, 23)),  # Sat counts like the Friday before it
        # Spring Festival 2026
        (D(2026, 2, 12), 1, D(2026, 2, 13)),  # Thu -> Fri
        (D(2026, 2, 13), 1, D(2026, 2, 14)),  # Fri -> the make-up Saturday
        (D(2026, 2, 12), 3, D(2026, 2, 24)),  # Fri, Sat 14, then Tue 24 after the break
        (D(2026, 2, 12), 7, D(2026, 2, 28)),  # ends on the second make-up Saturday
        (D(2026, 2, 12), 11, D(2026, 3, 5)),
        (D(2026, 2, 9), 7, D(2026, 2, 25)),
        (D(2026, 2, 14), 1, D(2026, 2, 24)),  # received on the make-up Saturday (working)
        (D(2026, 2, 18), 1, D(2026, 2, 24)),  # received on a holiday: Tue 24 is day 1
        (D(2026, 2, 18), 3, D(2026, 2, 26)),
        (D(2026, 2, 18), 11, D(2026, 3, 9)),
        # Mid-autumn and National Day 2026
        (D(2026, 9, 18), 1, D(2026, 9, 20)),  # Fri -> the make-up Sunday
        (D(2026, 9, 18), 11, D(2026, 10, 10)),  # ... and the make-up Saturday after the break
        (D(2026, 9, 24), 3, D(2026, 9, 30)),  # Thu -> Mon 28, Tue 29, Wed 30
        (D(2026, 9, 24), 7, D(2026, 10, 12)),
        (D(2026, 9, 30), 1, D(2026, 10, 8)),  # the eve of the holiday -> Thu after it
        (D(2026, 9, 30), 3, D(2026, 10, 10)),  # Thu 8, Fri 9, Sat 10 (make-up)
        (D(2026, 9, 30), 7, D(2026, 10, 15)),
        (D(2026, 9, 30), 11, D(2026, 10, 21)),
        (D(2026, 10, 3), 1, D(2026, 10, 8)),  # received on a holiday
        # across the year boundary 2025 -> 2026
        (D(2025, 12, 26), 3, D(2025, 12, 31)),
        (D(2025, 12, 26), 7, D(2026, 1, 7)),
        (D(2025, 12, 30), 3, D(2026, 1, 5)),
        (D(2025, 12, 31), 1, D(2026, 1, 4)),  # New Year off Thu-Sat; Sun 01-04 is make-up
        (D(2025, 12, 31), 11, D(2026, 1, 16)),
    ],
)
def test_due_date_examples(cal: WorkCalendar, received: date, n: int, due: date) -> None:
    assert cal.due_date(received, n) == due
    assert reference_due(received, n) == due


def test_friday_and_saturday_receipts_share_the_monday_deadline(cal: WorkCalendar) -> None:
    friday, saturday, monday = D(2026, 3, 6), D(2026, 3, 7), D(2026, 3, 9)
    assert cal.is_working_day(friday) and not cal.is_working_day(saturday)
    assert cal.due_date(friday, 1) == cal.due_date(saturday, 1) == monday


def test_a_deadline_before_the_spring_festival_ends_after_it(cal: WorkCalendar) -> None:
    due = cal.due_date(D(2026, 2, 12), 3)
    assert due == D(2026, 2, 24)
    # Fri 13, the make-up Sat 14, Tue 24: the nine days off in between do not count.
    assert cal.working_days_between(D(2026, 2, 12), due) == 3


def test_due_at_is_the_close_of_the_due_date(cal: WorkCalendar) -> None:
    due = cal.due_at(datetime(2026, 2, 13, 18, 30), 1)
    assert due == datetime(2026, 2, 14, 23, 59, 59)
    assert due.tzinfo is None
    assert cal.due_at(datetime(2026, 9, 30, 0, 0), 1) == datetime(2026, 10, 8, 23, 59, 59)


def test_due_date_needs_at_least_one_working_day(cal: WorkCalendar) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        cal.due_date(D(2026, 3, 6), 0)


def test_due_date_is_cached_and_consistent(cal: WorkCalendar) -> None:
    first = cal.due_date(D(2026, 9, 30), 7)
    assert cal.due_date(D(2026, 9, 30), 7) == first == D(2026, 10, 15)
    # datetimes (and pandas Timestamps) are dates too: they are read as their date
    assert cal.due_date(datetime(2026, 9, 30, 9, 0), 7) == first


# ---------------------------------------------------------------- day arithmetic


def test_add_working_days(cal: WorkCalendar) -> None:
    assert cal.add_working_days(D(2026, 3, 6), 0) == D(2026, 3, 6)  # a working day
    assert cal.add_working_days(D(2026, 3, 7), 0) == D(2026, 3, 9)  # Saturday -> Monday
    assert cal.add_working_days(D(2026, 2, 15), 0) == D(2026, 2, 24)
    assert cal.add_working_days(D(2026, 2, 13), 2) == D(2026, 2, 24)
    assert cal.add_working_days(D(2025, 12, 31), 0) == D(2025, 12, 31)
    assert cal.add_working_days(D(2026, 1, 1), 0) == D(2026, 1, 4)
    # a whole year on: 2026 has 248 working days
    assert cal.add_working_days(D(2025, 12, 31), 248) == D(2026, 12, 31)
    with pytest.raises(ValueError, match="-1"):
        cal.add_working_days(D(2026, 3, 6), -1)


def test_next_working_day_and_on_or_after(cal: WorkCalendar) -> None:
    assert cal.next_working_day(D(2026, 3, 6)) == D(2026, 3, 9)
    assert cal.next_working_day(D(2026, 3, 9)) == D(2026, 3, 10)
    assert cal.next_working_day(D(2026, 9, 30)) == D(2026, 10, 8)
    assert cal.next_working_day(D(2025, 12, 31)) == D(2026, 1, 4)
    assert cal.working_day_on_or_after(D(2026, 3, 9)) == D(2026, 3, 9)
    assert cal.working_day_on_or_after(D(2026, 10, 1)) == D(2026, 10, 8)
    assert cal.working_day_on_or_after(D(2026, 9, 20)) == D(2026, 9, 20)  # make-up Sunday


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        (D(2026, 3, 6), D(2026, 3, 6), 0),
        (D(2026, 3, 9), D(2026, 3, 6), 0),  # end before start
        (D(2026, 3, 6), D(2026, 3, 8), 0),  # only the weekend
        (D(2026, 3, 6), D(2026, 3, 9), 1),
        (D(2026, 3, 6), D(2026, 3, 13), 5),
        (D(2026, 2, 13), D(2026, 2, 24), 2),  # Sat 14 (make-up) and Tue 24
        (D(2026, 2, 14), D(2026, 2, 23), 0),  # the holiday itself
        (D(2026, 9, 30), D(2026, 10, 10), 3),  # Thu 8, Fri 9, Sat 10
        (D(2025, 12, 26), D(2026, 1, 7), 7),  # across the year
        (D(2025, 12, 31), D(2026, 12, 31), 248),  # all of 2026
        (D(2024, 12, 31), D(2026, 12, 31), 248 + 248),  # all of 2025 and 2026
    ],
)
def test_working_days_between(cal: WorkCalendar, start: date, end: date, count: int) -> None:
    assert cal.working_days_between(start, end) == count


def test_working_days_of_year_and_month(cal: WorkCalendar) -> None:
    year = cal.working_days_of_year(2026)
    expected = tuple(
        d for d in days(D(2026, 1, 1), D(2026, 12, 31)) if chinese_calendar.is_workday(d)
    )
    assert year == expected and len(year) == 248
    assert list(year) == sorted(year)
    assert cal.working_days_of_year(2026) is year  # cached
    assert len(cal.working_days_of_year(2025)) == 248
    february = cal.working_days_in_month(2026, 2)
    assert len(february) == 16
    assert february[-6:] == (
        D(2026, 2, 14),
        D(2026, 2, 24),
        D(2026, 2, 25),
        D(2026, 2, 26),
        D(2026, 2, 27),
        D(2026, 2, 28),
    )
    october = cal.working_days_in_month(2026, 10)
    assert october[:3] == (D(2026, 10, 8), D(2026, 10, 9), D(2026, 10, 10))
    assert len(october) == 18
    assert cal.working_days_in_month(2026, 12)[-1] == D(2026, 12, 31)
    assert cal.working_days_in_month(2026, 1)[0] == D(2026, 1, 4)


# ---------------------------------------------------------------- config overrides


def test_an_extra_holiday_pushes_a_deadline() -> None:
    cal = WorkCalendar(holidays=[D(2026, 3, 9)])  # a local day off on a Monday
    assert not cal.is_working_day(D(2026, 3, 9))
    assert cal.due_date(D(2026, 3, 6), 1) == D(2026, 3, 10)
    assert cal.due_date(D(2026, 3, 4), 3) == D(2026, 3, 10)
    assert WorkCalendar().due_date(D(2026, 3, 6), 1) == D(2026, 3, 9)


def test_an_extra_workday_pulls_a_deadline() -> None:
    cal = WorkCalendar(workdays=[D(2026, 3, 7)])  # a local make-up Saturday
    assert cal.is_working_day(D(2026, 3, 7))
    assert cal.due_date(D(2026, 3, 6), 1) == D(2026, 3, 7)
    assert cal.due_date(D(2026, 3, 4), 3) == D(2026, 3, 7)
    # an override also wins over a package holiday
    cal = WorkCalendar(workdays=[D(2026, 10, 7)])
    assert cal.due_date(D(2026, 9, 30), 1) == D(2026, 10, 7)


def test_holiday_and_workday_on_the_same_date_is_an_error() -> None:
    with pytest.raises(CalendarError, match="2026-05-06") as info:
        WorkCalendar(holidays=[D(2026, 5, 6)], workdays=[D(2026, 5, 6), D(2026, 5, 9)])
    assert not isinstance(info.value, UnknownYearError)
    assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------- years the package does not know


def test_2027_is_unknown_with_a_plain_message(cal: WorkCalendar) -> None:
    with pytest.raises(UnknownYearError) as info:
        cal.is_working_day(D(2027, 2, 1))
    text = str(info.value)
    assert "2027" in text and "config/calendar.yaml" in text and "2004-2026" in text
    assert "years: [2027]" in text
    assert info.value.year == 2027
    assert isinstance(info.value, CalendarError) and isinstance(info.value, ValueError)


def test_a_deadline_running_into_an_unknown_year_raises(cal: WorkCalendar) -> None:
    assert cal.due_date(D(2026, 12, 30), 1) == D(2026, 12, 31)
    with pytest.raises(UnknownYearError, match="2027"):
        cal.due_date(D(2026, 12, 31), 1)
    with pytest.raises(UnknownYearError, match="2027"):
        cal.working_days_between(D(2026, 12, 1), D(2027, 1, 5))
    with pytest.raises(UnknownYearError, match="2003"):
        cal.is_working_day(D(2003, 6, 2))


def test_overrides_alone_do_not_make_a_year_known() -> None:
    cal = WorkCalendar(holidays=[D(2027, 1, 1)])
    with pytest.raises(UnknownYearError, match="2027 is not under years"):
        cal.is_working_day(D(2027, 1, 4))


def test_unknown_year_error_survives_pickling() -> None:
    error = UnknownYearError(2027)
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, UnknownYearError)
    assert copy.year == 2027 and str(copy) == str(error)


def test_a_supplied_year() -> None:
    cal = WorkCalendar(
        holidays=[D(2027, 1, 1), D(2027, 1, 5)],  # Fri, Tue
        workdays=[D(2027, 1, 9)],  # Sat
        supplied_years=[2027],
    )
    assert not cal.is_working_day(D(2027, 1, 1))  # listed holiday
    assert not cal.is_working_day(D(2027, 1, 2))  # weekend
    assert not cal.is_working_day(D(2027, 1, 3))
    assert cal.is_working_day(D(2027, 1, 4))  # Mon-Fri
    assert not cal.is_working_day(D(2027, 1, 5))
    assert cal.is_working_day(D(2027, 1, 9))  # listed workday
    assert not cal.is_working_day(D(2027, 1, 10))
    assert cal.working_days_in_month(2027, 1)[:6] == (
        D(2027, 1, 4),
        D(2027, 1, 6),
        D(2027, 1, 7),
        D(2027, 1, 8),
        D(2027, 1, 9),
        D(2027, 1, 11),
    )
    # a deadline that crosses from Dec 2026 (the package) into 2027 (config)
    assert cal.due_date(D(2026, 12, 31), 1) == D(2027, 1, 4)
    assert cal.due_date(D(2026, 12, 31), 3) == D(2027, 1, 7)
    assert cal.due_date(D(2026, 12, 30), 7) == D(2027, 1, 11)
    assert cal.due_at(datetime(2026, 12, 31, 10, 0), 5) == datetime(2027, 1, 9, 23, 59, 59)
    assert cal.working_days_between(D(2026, 12, 30), D(2027, 1, 9)) == 6
    # 2027 has 261 weekdays; one listed holiday falls on a weekday, one workday is added
    assert len(cal.working_days_of_year(2027)) == 261 - 2 + 1
    with pytest.raises(UnknownYearError, match="2028"):
        cal.is_working_day(D(2028, 1, 3))


def test_a_supplied_year_replaces_the_package() -> None:
    cal = WorkCalendar(supplied_years=[2026])
    assert cal.is_working_day(D(2026, 10, 1))  # a Thursday; National Day is not listed
    assert not cal.is_working_day(D(2026, 2, 14))  # the package's make-up Saturday is not
    assert cal.is_working_day(D(2025, 10, 1)) is False  # other years still use the package


# ---------------------------------------------------------------- property-style sweep


def test_due_dates_over_2025_and_2026(cal: WorkCalendar) -> None:
    checked = 0
    for received in days(D(2025, 1, 1), D(2026, 12, 1)):
        for n in XINING_LEVELS:
            due = cal.due_date(received, n)
            assert cal.is_working_day(due), (received, n)
            assert due > received, (received, n)
            assert cal.working_days_between(received, due) == n, (received, n)
            assert cal.working_days_between(received, due - ONE) == n - 1, (received, n)
            assert due == reference_due(received, n), (received, n)
            if cal.is_working_day(received):
                assert due == cal.add_working_days(received, n)
            else:
                assert due == cal.add_working_days(cal.next_working_day(received), n - 1)
            checked += 1
    assert checked == 700 * len(XINING_LEVELS)


def test_is_working_day_matches_the_package_over_2025_and_2026(cal: WorkCalendar) -> None:
    for day in days(D(2025, 1, 1), D(2026, 12, 31)):
        assert cal.is_working_day(day) == chinese_calendar.is_workday(day), day
