"""The escalation ladder (督办阶梯) and its catch-up, on real 2026 dates.

2026 facts used (chinese-calendar 1.11, checked in test_warnings.py and below): National
Day Oct 1-7 off, make-up working days Sun Sep 20 and Sat Oct 10; Spring Festival Feb 15-23
off, make-up Saturdays Feb 14 and Feb 28.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from duban.calendar import UnknownYearError, WorkCalendar
from duban.config import EscalationFile, LadderStep, parse_file
from duban.rules.ladder import (
    StepDue,
    catch_up_days,
    is_send_day,
    step_dates,
    steps_to_apply,
)
from duban.rules.warnings import blue_window_start

CAL = WorkCalendar()
CONFIG = Path(__file__).resolve().parents[2] / "config"
LADDER = parse_file(CONFIG / "escalation.yaml", EscalationFile)
STEPS = LADDER.steps


def dates(deadline: date, blue_working_days: int = 1) -> dict[str, date]:
    return {s.step: s.due_on for s in step_dates(deadline, STEPS, blue_working_days, CAL)}


def apply(
    deadline: date,
    today: date,
    applied: set[str] | frozenset[str] = frozenset(),
    closed_on: date | None = None,
    blue_working_days: int = 1,
    steps: list[LadderStep] | None = None,
) -> list[StepDue]:
    return steps_to_apply(
        deadline=deadline,
        closed_on=closed_on,
        today=today,
        applied=applied,
        steps=steps or STEPS,
        blue_working_days=blue_working_days,
        calendar=CAL,
    )


def test_the_shipped_ladder() -> None:
    assert [(s.step, s.name, s.trigger, s.working_days) for s in STEPS] == [
        ("reminder", "催办", "blue", 0),
        ("supervision", "督办", "red", 0),
        ("ledger", "挂账", "overdue", 3),
        ("bulletin", "通报", "overdue", 10),
    ]
    assert not LADDER.send_on_non_working_days


def test_step_dates_of_an_ordinary_deadline() -> None:
    # Due Wed Sep 9 2026. 10 working days after it include the make-up Sunday Sep 20.
    assert chinese_calendar.is_workday(date(2026, 9, 20))
    steps = step_dates(date(2026, 9, 9), STEPS, 1, CAL)
    assert [(s.step, s.level, s.due_on) for s in steps] == [
        ("reminder", 1, date(2026, 9, 9)),
        ("supervision", 2, date(2026, 9, 10)),
        ("ledger", 3, date(2026, 9, 14)),  # Thu 10, Fri 11, Mon 14
        ("bulletin", 4, date(2026, 9, 22)),  # 10 11 14 15 16 17 18 20(Sun) 21 22
    ]
    assert steps[2].reason == "超期3个工作日未办结，列入挂账"
    assert steps[3].reason == "超期10个工作日未办结，予以通报"
    assert steps[0].reason == "临近办理时限（2026-09-09），催办"
    assert steps[1].reason == "已超过办理时限（2026-09-09）未办结，督办"


def test_national_day_delays_the_steps_and_the_make_up_saturday_counts() -> None:
    # Due Wed Sep 30, the last working day before Oct 1-7.
    assert dates(date(2026, 9, 30)) == {
        "reminder": date(2026, 9, 30),
        "supervision": date(2026, 10, 8),  # the first working day after the holiday
        "ledger": date(2026, 10, 10),  # Oct 8, 9 and the make-up Saturday Oct 10
        "bulletin": date(2026, 10, 20),  # 8 9 10 12 13 14 15 16 19 20
    }
    # Without a holiday, 3 working days after a Wednesday is the Monday (due Sep 2: Sep 7).
    assert dates(date(2026, 9, 2))["ledger"] == date(2026, 9, 7)
    # ... and the make-up Sunday Sep 20 counts: due Wed Sep 16, ledger on Sunday.
    assert dates(date(2026, 9, 16))["ledger"] == date(2026, 9, 20)
    # A window of 2 opens the reminder on Tue Sep 29.
    assert dates(date(2026, 9, 30), 2)["reminder"] == date(2026, 9, 29)


def test_spring_festival_and_its_make_up_saturdays() -> None:
    # Due Fri Feb 13: red on the make-up Saturday Feb 14, then the festival Feb 15-23.
    assert dates(date(2026, 2, 13)) == {
        "reminder": date(2026, 2, 13),
        "supervision": date(2026, 2, 14),
        "ledger": date(2026, 2, 25),  # 14, 24, 25
        "bulletin": date(2026, 3, 5),  # 14 24 25 26 27 28(Sat) Mar 2 3 4 5
    }


def test_a_deadline_on_a_sunday() -> None:
    # Sun Oct 18: reminder the Friday before, supervision on Monday.
    assert dates(date(2026, 10, 18)) == {
        "reminder": date(2026, 10, 16),
        "supervision": date(2026, 10, 19),
        "ledger": date(2026, 10, 21),
        "bulletin": date(2026, 10, 30),
    }
    # The same dates as a deadline on the Friday itself, except nothing is late on Saturday.
    assert dates(date(2026, 10, 16)) == dates(date(2026, 10, 18))


def test_a_deadline_inside_a_holiday() -> None:
    # Sat Oct 3 (National Day): reminder Sep 30, supervision Oct 8.
    got = dates(date(2026, 10, 3))
    assert got["reminder"] == date(2026, 9, 30)
    assert got["supervision"] == date(2026, 10, 8)


def test_every_step_falls_on_a_working_day_and_the_ladder_climbs() -> None:
    day = date(2026, 1, 1)
    while day < date(2026, 12, 1):
        for blue_days in (1, 2):
            steps = step_dates(day, STEPS, blue_days, CAL)
            assert [s.level for s in steps] == [1, 2, 3, 4]
            assert all(CAL.is_working_day(s.due_on) for s in steps)
            ons = [s.due_on for s in steps]
            assert ons == sorted(ons)
            assert ons[0] <= day < ons[1]
            assert ons[0] == blue_window_start(day, blue_days, CAL)
        day += timedelta(days=1)


def test_levels_follow_the_configured_ladder() -> None:
    custom = [
        LadderStep(step="supervision", name="督办", trigger="red"),
        LadderStep(step="ledger", name="挂账", trigger="overdue", working_days=5),
        LadderStep(step="interview", name="约谈", trigger="overdue", working_days=20),
    ]
    got = step_dates(date(2026, 9, 30), custom, 1, CAL)
    assert [(s.step, s.level) for s in got] == [("supervision", 1), ("ledger", 2), ("interview", 3)]
    assert got[1].due_on == date(2026, 10, 13)  # 8 9 10 12 13
    assert got[2].reason == "超期20个工作日未办结，约谈单位负责人"


def test_overdue_zero_is_the_first_working_day_late() -> None:
    zero = [LadderStep(step="ledger", name="挂账", trigger="overdue", working_days=0)]
    assert step_dates(date(2026, 9, 30), zero, 1, CAL)[0].due_on == date(2026, 10, 8)


# ---------------------------------------------------------------- catch-up


def test_catch_up_after_three_missed_days_applies_the_due_steps_in_order() -> None:
    # Due Fri Oct 16. The run of Thu Oct 15 recorded nothing (not yet blue); the runs of
    # Oct 16, 19 and 20 were missed; the run of Wed Oct 21 catches up.
    deadline = date(2026, 10, 16)
    assert apply(deadline, date(2026, 10, 15)) == []
    assert catch_up_days(date(2026, 10, 15), date(2026, 10, 21), CAL) == [
        date(2026, 10, 16),
        date(2026, 10, 19),
        date(2026, 10, 20),
        date(2026, 10, 21),
    ]
    got = apply(deadline, date(2026, 10, 21))
    assert [(s.step, s.level, s.due_on) for s in got] == [
        ("reminder", 1, date(2026, 10, 16)),
        ("supervision", 2, date(2026, 10, 19)),
        ("ledger", 3, date(2026, 10, 21)),
    ]
    # Applying again with those recorded yields nothing; the bulletin comes on its day.
    recorded = {s.step for s in got}
    assert apply(deadline, date(2026, 10, 21), recorded) == []
    assert apply(deadline, date(2026, 10, 29), recorded) == []
    assert [s.step for s in apply(deadline, date(2026, 10, 30), recorded)] == ["bulletin"]


def test_catch_up_keeps_what_was_already_recorded() -> None:
    # Reminder recorded on Sep 30; nothing ran over National Day; Oct 12 applies the rest.
    got = apply(date(2026, 9, 30), date(2026, 10, 12), {"reminder"})
    assert [(s.step, s.due_on) for s in got] == [
        ("supervision", date(2026, 10, 8)),
        ("ledger", date(2026, 10, 10)),
    ]


def test_an_item_closed_before_the_red_step_never_gets_supervision() -> None:
    deadline = date(2026, 9, 30)
    later = date(2026, 11, 30)
    # Closed in the holiday after its deadline: the reminder (due Sep 30) only.
    for closed in (date(2026, 10, 1), date(2026, 10, 3), date(2026, 10, 7)):
        assert [s.step for s in apply(deadline, later, closed_on=closed)] == ["reminder"]
    # Closed on its deadline, the day the reminder fell due: neither.
    assert apply(deadline, later, closed_on=deadline) == []
    # Closed the day the red step falls due: it did not need it.
    assert [s.step for s in apply(deadline, later, closed_on=date(2026, 10, 8))] == ["reminder"]
    # Closed the day after: it did.
    assert [s.step for s in apply(deadline, later, closed_on=date(2026, 10, 9))] == [
        "reminder",
        "supervision",
    ]
    # Closed before it turned blue: nothing at all.
    assert apply(deadline, later, closed_on=date(2026, 9, 29)) == []


def test_nothing_before_the_blue_window() -> None:
    assert apply(date(2026, 10, 8), date(2026, 10, 7)) == []
    assert [s.step for s in apply(date(2026, 10, 8), date(2026, 10, 7), blue_working_days=2)] == [
        "reminder"
    ]


def test_steps_to_apply_is_step_dates_filtered() -> None:
    """steps_to_apply decides without computing dates it does not need; the result is the
    same as filtering step_dates by the rule."""
    rng = random.Random(7)
    for _ in range(3000):
        deadline = date(2026, 1, 5) + timedelta(days=rng.randint(0, 300))
        today = deadline + timedelta(days=rng.randint(-5, 40))
        closed_on = rng.choice([None, deadline + timedelta(days=rng.randint(-5, 40))])
        applied = {s.step for s in STEPS if rng.random() < 0.25}
        blue_days = rng.choice([1, 2, 3])
        expected = [
            s
            for s in step_dates(deadline, STEPS, blue_days, CAL)
            if s.due_on <= today
            and s.step not in applied
            and (closed_on is None or closed_on > s.due_on)
        ]
        got = apply(deadline, today, applied, closed_on=closed_on, blue_working_days=blue_days)
        assert got == expected, (deadline, today, closed_on, applied, blue_days)


def test_december_needs_next_year_only_when_a_step_can_be_due() -> None:
    # Due Thu Dec 24 2026: the bulletin (10 working days later) falls in 2027, which
    # chinese-calendar 1.11 does not know; the steps due in 2026 are still applied.
    deadline = date(2026, 12, 24)
    with pytest.raises(UnknownYearError):
        step_dates(deadline, STEPS, 1, CAL)
    got = apply(deadline, date(2026, 12, 31))
    assert [(s.step, s.due_on) for s in got] == [
        ("reminder", date(2026, 12, 24)),
        ("supervision", date(2026, 12, 25)),
        ("ledger", date(2026, 12, 29)),  # 25, 28, 29
    ]


# ---------------------------------------------------------------- send days


def test_send_days() -> None:
    assert is_send_day(date(2026, 10, 9), False, CAL)
    assert is_send_day(date(2026, 10, 10), False, CAL)  # make-up Saturday
    assert not is_send_day(date(2026, 10, 11), False, CAL)  # Sunday
    assert not is_send_day(date(2026, 10, 5), False, CAL)  # National Day, a Monday
    assert is_send_day(date(2026, 10, 11), True, CAL)
    assert is_send_day(date(2026, 10, 5), True, CAL)


def test_catch_up_days() -> None:
    assert catch_up_days(date(2026, 9, 30), date(2026, 10, 12), CAL) == [
        date(2026, 10, 8),
        date(2026, 10, 9),
        date(2026, 10, 10),
        date(2026, 10, 12),
    ]
    assert catch_up_days(date(2026, 10, 9), date(2026, 10, 10), CAL) == [date(2026, 10, 10)]
    assert catch_up_days(date(2026, 10, 12), date(2026, 10, 12), CAL) == []
    assert catch_up_days(date(2026, 10, 13), date(2026, 10, 12), CAL) == []
    assert catch_up_days(None, date(2026, 10, 12), CAL) == [date(2026, 10, 12)]
    assert catch_up_days(None, date(2026, 10, 11), CAL) == []
    # A run on a non-working day (when configured) covers nothing new to report.
    assert catch_up_days(date(2026, 10, 10), date(2026, 10, 11), CAL) == []


# ---------------------------------------------------------------- property: daily = catch-up


@pytest.mark.parametrize("send_on_non_working_days", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_daily_runs_with_skipped_days_equal_one_catch_up(
    seed: int, send_on_non_working_days: bool
) -> None:
    """Over 60 days with runs randomly missed, the steps recorded run by run equal the
    steps of one catch-up run on the last day; none is recorded twice, each in order."""
    rng = random.Random(seed)
    first = date(2026, 8, 25)
    last = first + timedelta(days=59)  # Oct 23
    while not CAL.is_working_day(last):
        last -= timedelta(days=1)
    run_days = [
        first + timedelta(days=i)
        for i in range((last - first).days + 1)
        if is_send_day(first + timedelta(days=i), send_on_non_working_days, CAL)
    ]
    items = []
    for _ in range(150):
        deadline = first + timedelta(days=rng.randint(-20, 70))
        closed_on = rng.choice([None, deadline + timedelta(days=rng.randint(-10, 30))])
        items.append((deadline, closed_on, rng.choice([1, 2, 3])))

    total = caught_up = 0
    for skip_share in (0.0, 0.3, 0.7):
        runs = [d for d in run_days if d == last or rng.random() >= skip_share]
        for deadline, closed_on, blue_days in items:
            recorded: list[StepDue] = []
            for day in runs:
                # A run knows closures up to its own day.
                seen_closed = closed_on if closed_on is not None and closed_on <= day else None
                new = apply(
                    deadline,
                    day,
                    {s.step for s in recorded},
                    closed_on=seen_closed,
                    blue_working_days=blue_days,
                )
                assert [s.level for s in new] == sorted(s.level for s in new)
                assert all(s.due_on <= day for s in new)
                caught_up += len(new) > 1
                recorded += new
            once = apply(deadline, last, closed_on=closed_on, blue_working_days=blue_days)
            names = [s.step for s in recorded]
            assert len(names) == len(set(names)), (deadline, closed_on, names)
            assert recorded == once, (deadline, closed_on, blue_days, runs)
            # recorded over time, the ladder only climbs
            assert [s.level for s in recorded] == sorted(s.level for s in recorded)
            total += len(recorded)
    assert total > 200 and caught_up > 10
