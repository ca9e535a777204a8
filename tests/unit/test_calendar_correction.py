"""The calendar correction as a rule (duban/rules/clock/correction.py, docs/clock.md): when a
working day becomes a holiday, every deadline the calendar produced is recomputed — the
level's, an extension in working days, a suspension counted in working days, a redo's fresh
deadline — and a deadline an export gave at its own time, or an extension given as a new
deadline, is kept. On the real 2026 calendar, with hypothesis."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from duban.calendar import WorkCalendar
from duban.config import ClockRules, load_config
from duban.rules.clock import ClockEvent, ClockStart, replay
from duban.rules.clock.correction import corrected_due, level_derived, recomputed_start

CAL = load_config(Path(__file__).resolve().parents[2] / "config").calendar
RULES = ClockRules()
FAST = settings(max_examples=150, deadline=None)
RECEIVED = datetime(2026, 10, 12, 9)  # Mon; level 2 (3 working days): due Thu 10-15 23:59:59
WED = date(2026, 10, 14)


def with_holiday(day: date) -> WorkCalendar:
    return WorkCalendar(CAL.holidays | {day}, CAL.workdays, CAL.supplied_years)


def start(base: datetime | None, received: datetime = RECEIVED, level: int = 3) -> ClockStart:
    return ClockStart(received, received, base, level, "dc")


def correction(s: ClockStart, events: list[ClockEvent], new: WorkCalendar) -> datetime | None:
    as_of = datetime(2026, 12, 1)
    previous = replay(s, events, CAL, RULES, as_of).due
    return corrected_due(s, events, new, RULES, as_of, previous_due=previous)


def extension(days: int | None = None, new_due: datetime | None = None) -> list[ClockEvent]:
    payload: dict[str, object] = {"request": "req"}
    if days is not None:
        payload["working_days"] = days
    if new_due is not None:
        payload["new_due"] = new_due
    return [
        ClockEvent("req", "extension_requested", datetime(2026, 10, 12, 10)),
        ClockEvent("ok", "extension_approved", datetime(2026, 10, 12, 11), payload=payload),
    ]


def test_a_level_deadline_moves_past_the_new_holiday() -> None:
    s = start(CAL.due_at(RECEIVED, 3))
    assert s.base_due == datetime(2026, 10, 15, 23, 59, 59) and level_derived(s.base_due)
    assert correction(s, [], with_holiday(WED)) == datetime(2026, 10, 16, 23, 59, 59)
    assert correction(s, [], with_holiday(date(2026, 10, 20))) is None  # after the deadline


def test_an_export_deadline_is_kept_but_its_working_day_events_are_recomputed() -> None:
    fixed = start(datetime(2026, 10, 13, 18))  # the export's own time: not the level's
    assert not level_derived(fixed.base_due)
    assert recomputed_start(fixed, with_holiday(WED)) == fixed
    assert correction(fixed, [], with_holiday(WED)) is None
    # 2 working days from Tue 10-13: Thu 10-15; with Wed a holiday, Fri 10-16
    assert correction(fixed, extension(days=2), with_holiday(WED)) == datetime(2026, 10, 16, 18)
    # an extension given as a new deadline keeps it
    assert (
        correction(fixed, extension(new_due=datetime(2026, 10, 15, 18)), with_holiday(WED)) is None
    )
    # a suspension counted in working days: Tue and Wed, now Tue only
    later = start(datetime(2026, 10, 16, 18))
    suspension = [
        ClockEvent("s", "suspended", datetime(2026, 10, 13, 9)),
        ClockEvent("r", "resumed", datetime(2026, 10, 15, 9)),
    ]
    old = replay(later, suspension, CAL, RULES, datetime(2026, 12, 1)).due
    assert old == datetime(2026, 10, 20, 18)  # Fri + 2 working days: Mon, Tue
    assert correction(later, suspension, with_holiday(WED)) == datetime(2026, 10, 19, 18)


def test_a_redo_deadline_is_recomputed() -> None:
    fixed = start(datetime(2026, 10, 9, 18))
    redo = [ClockEvent("r", "redo", datetime(2026, 10, 12, 15))]  # fresh: 3 days from Mon
    assert replay(fixed, redo, CAL, RULES, datetime(2026, 12, 1)).due == datetime(
        2026, 10, 15, 23, 59, 59
    )
    assert correction(fixed, redo, with_holiday(WED)) == datetime(2026, 10, 16, 23, 59, 59)


def test_earlier_corrections_are_recomputed_not_kept() -> None:
    s = start(CAL.due_at(RECEIVED, 3))
    earlier = ClockEvent(
        "calendar:v1", "calendar_correction", datetime(2026, 10, 12, 12),
        payload={"new_due": datetime(2026, 10, 20, 23, 59, 59)},
    )  # fmt: skip
    as_of = datetime(2026, 12, 1)
    previous = replay(s, [earlier], CAL, RULES, as_of).due
    assert previous == datetime(2026, 10, 20, 23, 59, 59)
    # back on the package's calendar: the level's own deadline again
    assert corrected_due(s, [earlier], CAL, RULES, as_of, previous_due=previous) == s.base_due


days = st.dates(date(2026, 1, 5), date(2026, 10, 30))


@FAST
@given(
    received=days,
    level=st.integers(1, 11),
    holiday_in=st.integers(0, 25),
    extend=st.one_of(st.none(), st.integers(1, 3)),
    suspend=st.one_of(st.none(), st.tuples(st.integers(0, 10), st.integers(0, 10))),
    fixed_time=st.booleans(),
)
def test_the_corrected_deadline_is_what_the_new_calendar_gives(
    received: date,
    level: int,
    holiday_in: int,
    extend: int | None,
    suspend: tuple[int, int] | None,
    fixed_time: bool,
) -> None:
    """Corrected or not, the item ends with the deadline an item imported under the new
    calendar with the same events has (a fixed-time base is the export's under both); the
    correction is None exactly when that is the deadline it had."""
    holiday = received + timedelta(days=holiday_in)
    assume(CAL.is_working_day(holiday))
    new = with_holiday(holiday)
    got = datetime.combine(received, time(9))
    base = CAL.due_at(got, level)
    if fixed_time:
        base = base.replace(hour=18, minute=0, second=0)
    events: list[ClockEvent] = []
    if extend is not None:
        ask = datetime.combine(received, time(10))
        events += [
            ClockEvent("req", "extension_requested", ask),
            ClockEvent("ok", "extension_approved", ask, payload={"working_days": extend}),
        ]
    if suspend is not None:
        on = got + timedelta(days=suspend[0], hours=1)
        events += [
            ClockEvent("s", "suspended", on),
            ClockEvent("r", "resumed", on + timedelta(days=suspend[1])),
        ]
    s = ClockStart(got, got, base, level, "dc")
    as_of = datetime(2026, 12, 1)
    previous = replay(s, events, CAL, RULES, as_of).due
    fixed = corrected_due(s, events, new, RULES, as_of, previous_due=previous)
    imported = s if fixed_time else ClockStart(got, got, new.due_at(got, level), level, "dc")
    expected = replay(imported, events, new, RULES, as_of).due
    assert (fixed is None) == (expected == previous)
    assert (fixed or previous) == expected
