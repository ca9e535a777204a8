"""The escalation ladder (督办阶梯): which step is due on which working day, with catch-up.

The ladder (config/escalation.yaml `steps`) climbs in order; with the default config:

- reminder (催办) when the item turns blue: the first day of its blue window;
- supervision (督办) when it turns red: the first working day after the deadline;
- ledger (挂账) when it is still open 3 working days after the deadline;
- bulletin (通报) when it is still open 10 working days after the deadline.

A step is applied to an item once, on or after the working day it became due, provided
the item was still open that day (not closed on or before it). A run after missed days
applies everything that became due meanwhile, in ladder order, each with its own `due_on`.
See docs/daily-loop.md. Pure functions: the caller passes `today` and the calendar.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from duban.rules.warnings import blue_window_start

if TYPE_CHECKING:
    from duban.calendar import WorkCalendar
    from duban.config import LadderStep

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class StepDue:
    """A ladder step that is (or will be) due for one item."""

    step: str  # LadderStep.step, e.g. "ledger"
    level: int  # 1-based position on the ladder
    due_on: date  # the working day the step becomes due
    reason: str  # for people, e.g. "超期3个工作日未办结，列入挂账"


# How a reason names the action of a step (by its Chinese name); other names are used as is.
_ACTIONS = {"挂账": "列入挂账", "通报": "予以通报", "约谈": "约谈单位负责人"}


def _action(step: LadderStep) -> str:
    return _ACTIONS.get(step.name, step.name)


def step_dates(
    deadline: date,
    steps: Sequence[LadderStep],
    blue_working_days: int,
    calendar: WorkCalendar,
) -> list[StepDue]:
    """The working day each step of the ladder becomes due for an item due on `deadline`.

    - blue: blue_window_start(deadline) — the item turns blue;
    - red: the first working day after the deadline — the item is red from the day after
      its due date, and the ladder acts on working days;
    - overdue N: the N-th working day after the deadline (still open N working days
      late); N = 0 is read as 1, the first working day it is late.
    """
    return [
        _step_due(level, step, deadline, blue_working_days, calendar)
        for level, step in enumerate(steps, start=1)
    ]


def _step_due(
    level: int, step: LadderStep, deadline: date, blue_working_days: int, calendar: WorkCalendar
) -> StepDue:
    if step.trigger == "blue":
        due_on = blue_window_start(deadline, blue_working_days, calendar)
        reason = f"临近办理时限（{deadline:%Y-%m-%d}），{_action(step)}"
    elif step.trigger == "red":
        due_on = calendar.add_working_days(deadline, _days_late(step))
        reason = f"已超过办理时限（{deadline:%Y-%m-%d}）未办结，{_action(step)}"
    else:
        late = _days_late(step)
        due_on = calendar.add_working_days(deadline, late)
        reason = f"超期{late}个工作日未办结，{_action(step)}"
    return StepDue(step=step.step, level=level, due_on=due_on, reason=reason)


def _days_late(step: LadderStep) -> int:
    """Working days after the deadline at which a red/overdue step falls due (at least 1)."""
    return 1 if step.trigger == "red" else max(step.working_days, 1)


def steps_to_apply(
    *,
    deadline: date,
    closed_on: date | None,
    today: date,
    applied: Collection[str],
    steps: Sequence[LadderStep],
    blue_working_days: int,
    calendar: WorkCalendar,
) -> list[StepDue]:
    """The steps to record today for one item, in ladder order (the catch-up).

    Every step that became due on or before `today` while the item was still open, and is
    not in `applied` (the steps already recorded). "Still open" means not closed on or
    before the step's day: an item closed on the very day a step falls due does not get it
    (a run that day already knows it is closed), and an item closed on its deadline never
    gets the red step, which falls due the working day after. A run that was missed for a
    few days therefore records what became due meanwhile — none skipped, none repeated.
    """
    out: list[StepDue] = []
    working_days_late: int | None = None
    for level, step in enumerate(steps, start=1):
        # Decide "due by today" before computing the date, so that only the years up to
        # `today` are needed: in December, a bulletin date in a year the calendar does not
        # know yet is not asked for until it can be due.
        if step.trigger != "blue":
            if working_days_late is None:
                working_days_late = calendar.working_days_between(deadline, today)
            if working_days_late < _days_late(step):
                continue
        due = _step_due(level, step, deadline, blue_working_days, calendar)
        if (
            due.due_on > today
            or due.step in applied
            or (closed_on is not None and closed_on <= due.due_on)
        ):
            continue
        out.append(due)
    return out


def is_send_day(day: date, send_on_non_working_days: bool, calendar: WorkCalendar) -> bool:
    """Whether notices go out on `day`: every working day; other days only when configured."""
    return send_on_non_working_days or calendar.is_working_day(day)


def catch_up_days(last_run: date | None, today: date, calendar: WorkCalendar) -> list[date]:
    """The working days after `last_run` up to and including `today`: what a run covers.

    More than one day means runs were missed and this one catches up. With no previous
    run, the run covers `today` alone (when it is a working day).
    """
    start = today if last_run is None else last_run + ONE_DAY
    days: list[date] = []
    probe = start
    while probe <= today:
        if calendar.is_working_day(probe):
            days.append(probe)
        probe += ONE_DAY
    return days
