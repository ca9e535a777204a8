"""The calendar correction (docs/clock.md, "calendar_correction"): when the working-day
calendar changes, an open item's deadline is recomputed wherever the calendar produced it.

What the calendar produces: a base deadline computed from the item's urgency level (the
deadline rule's time of day, 23:59:59; the level may come from the dispatch catalogue), a
fresh deadline after a redo or a re-dispatch, an extension given in working days, a
suspension counted in working days. What it does not: a deadline an export gave at its own
time of day, and an extension given as a new deadline (`new_due`) — those keep theirs.

`corrected_due` replays the item from its recomputed start, without the corrections of
earlier calendars (this one recomputes everything they did), and compares the result with
the deadline the old calendar gave (`previous_due`, as the store materialised it). Pure code:
the caller passes both calendars' results and decides which items are open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, time
from typing import TYPE_CHECKING

from duban.rules.clock.log import ClockEvent, ClockStart
from duban.rules.clock.replay import replay

if TYPE_CHECKING:
    from duban.calendar import WorkCalendar
    from duban.config import ClockRules

LEVEL_TIME = time(23, 59, 59)  # the deadline rule's time of day (docs/calendar.md)


def level_derived(base_due: datetime | None) -> bool:
    """A base deadline the import computed from the urgency level: at 23:59:59. One an export
    gave at another time of day is the export's own, and kept."""
    return base_due is not None and base_due.time() == LEVEL_TIME


def recomputed_start(start: ClockStart, calendar: WorkCalendar) -> ClockStart:
    """The item's start under `calendar`: a level-derived base deadline computed again from
    the receipt (the deadline rule), any other kept."""
    if not level_derived(start.base_due):
        return start
    return replace(start, base_due=calendar.due_at(start.received_at, start.level_days))


def corrected_due(
    start: ClockStart,
    events: Iterable[ClockEvent],
    calendar: WorkCalendar,
    rules: ClockRules,
    as_of: datetime,
    *,
    previous_due: datetime | None,
) -> datetime | None:
    """The effective deadline `calendar` gives the item just before `as_of` (the correction's
    own time: events at that time or later apply after it), when it is not `previous_due`
    (the deadline in force, which another calendar produced); None when the calendar does
    not move it, or the item has no deadline."""
    if start.base_due is None:
        return None
    without = [e for e in events if e.kind != "calendar_correction" and e.at < as_of]
    fresh = replay(recomputed_start(start, calendar), without, calendar, rules, as_of).due
    if fresh is None or fresh == previous_due:
        return None
    return fresh
