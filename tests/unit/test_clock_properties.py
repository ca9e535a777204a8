"""Properties of the supervision clock (duban/rules/clock/), with hypothesis, on the real
working-day calendar of 2025-2026 (weekends, holidays and make-up working days, 调休).

(a) suspending for k working days moves the deadline by exactly k working days, k counted
    independently from chinese_calendar day by day; (b) an extension never shortens a
    deadline, accepted or refused; (c) any arrival order of the events gives the same clock.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import chinese_calendar
from hypothesis import given, settings
from hypothesis import strategies as st

from duban.config import ClockRules, load_config
from duban.rules.clock import KINDS, ClockEvent, ClockStart, replay

CAL = load_config(Path(__file__).resolve().parents[2] / "config").calendar
RULES = ClockRules()
FAST = settings(max_examples=200, deadline=None)
FAR = datetime(2026, 12, 31)

times = st.times(min_value=time(7), max_value=time(22)).map(lambda t: t.replace(microsecond=0))


def at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment)


def start_on(received: datetime, level_days: int, category: str | None = None) -> ClockStart:
    return ClockStart(
        received, received, CAL.due_at(received, level_days), level_days, "dc", category
    )


# ---------------------------------------------------------------- (a) suspension


@FAST
@given(
    received=st.dates(date(2025, 1, 1), date(2026, 8, 31)),
    level_days=st.integers(1, 20),
    offset=st.integers(0, 40),
    length=st.integers(0, 60),
    suspend_time=times,
    resume_time=times,
)
def test_suspending_k_working_days_moves_the_deadline_by_k_working_days(
    received: date, level_days: int, offset: int, length: int, suspend_time: time, resume_time: time
) -> None:
    start = start_on(at(received, time(9)), level_days)
    suspended = received + timedelta(days=offset)
    resumed = suspended + timedelta(days=length)
    if suspended == resumed and resume_time < suspend_time:
        resume_time = suspend_time
    events = [
        ClockEvent("s", "suspended", at(suspended, suspend_time)),
        ClockEvent("r", "resumed", at(resumed, resume_time)),
    ]
    state = replay(start, events, CAL, RULES, FAR)
    k = sum(
        chinese_calendar.is_workday(suspended + timedelta(days=i)) for i in range(length)
    )  # the days d with suspended <= d < resumed, from the package itself
    assert start.base_due is not None and state.due is not None
    assert state.suspended_working_days == k
    assert CAL.working_days_between(start.base_due.date(), state.due.date()) == k
    assert state.due.time() == start.base_due.time()
    assert CAL.is_working_day(state.due)


# ---------------------------------------------------------------- (b) extensions


def approvals(due: datetime) -> st.SearchStrategy[dict[str, object]]:
    return st.one_of(
        st.builds(lambda k: {"working_days": k}, st.integers(-1, 8)),
        st.builds(lambda h: {"new_due": due + timedelta(hours=h)}, st.integers(-24 * 20, 24 * 200)),
    )


@FAST
@given(
    received=st.dates(date(2025, 1, 1), date(2026, 5, 31)),
    level_days=st.integers(1, 15),
    category=st.sampled_from([None, "噪音", "征地"]),
    data=st.data(),
)
def test_an_extension_never_shortens_a_deadline(
    received: date, level_days: int, category: str | None, data: st.DataObject
) -> None:
    start = start_on(at(received, time(9)), level_days, category)
    assert start.base_due is not None
    events: list[ClockEvent] = []
    state = replay(start, events, CAL, RULES, FAR)
    moment = at(received, time(9))
    for i in range(data.draw(st.integers(1, 6))):
        before = state.due
        assert before is not None
        # Each approval comes after the previous ones (the same instant included), some
        # answering a request of their own (before or after the daily cut-off).
        step = timedelta(minutes=data.draw(st.integers(0, 60 * 24 * 10)))
        payload = data.draw(approvals(before))
        if data.draw(st.booleans()):
            asked = moment + step * data.draw(st.floats(0, 1))
            events.append(ClockEvent(f"r{i}", "extension_requested", asked))
            payload["request"] = f"r{i}"
        moment += step
        events.append(ClockEvent(f"a{i}", "extension_approved", moment, payload=payload))
        state = replay(start, events, CAL, RULES, FAR)
        assert state.due is not None and state.due >= before
    for move in state.moves:
        assert move.old_due is not None and move.new_due is not None
        assert move.new_due > move.old_due


# ---------------------------------------------------------------- (c) arrival order

KEYS = [f"e{i}" for i in range(8)]
MOMENTS = [datetime(2026, 3, 2, 9) + timedelta(hours=h) for h in (0, 5, 30, 30, 80, 150, 300)]


@st.composite
def events(draw: st.DrawFn) -> ClockEvent:
    kind = draw(st.sampled_from(KINDS))
    moment = draw(st.sampled_from(MOMENTS))
    payload: dict[str, object] = {}
    if kind == "extension_approved":
        payload = draw(approvals(datetime(2026, 3, 9, 23, 59, 59)))
    elif kind == "redispatched":
        payload = draw(st.sampled_from([{"unit": "xc"}, {"unit": "hd"}, {}]))
    elif kind == "calendar_correction":
        payload = {"new_due": moment + timedelta(days=draw(st.integers(0, 9)))}
    if kind in ("extension_approved", "extension_refused") and draw(st.booleans()):
        payload["request"] = draw(st.sampled_from(KEYS))
    supersedes = tuple(draw(st.lists(st.sampled_from(KEYS), max_size=2)))
    reason = draw(st.sampled_from(["", "理由"]))
    return ClockEvent(
        draw(st.sampled_from(KEYS)), kind, moment, "office", reason, payload, supersedes
    )


@FAST
@given(
    log=st.lists(events(), max_size=12),
    category=st.sampled_from([None, "征地"]),
    data=st.data(),
)
def test_any_arrival_order_gives_the_same_clock(
    log: list[ClockEvent], category: str | None, data: st.DataObject
) -> None:
    start = start_on(datetime(2026, 3, 2, 9), 5, category)
    shuffled = data.draw(st.permutations(log))
    as_of = data.draw(st.sampled_from([*MOMENTS, FAR]))
    assert replay(start, shuffled, CAL, RULES, as_of) == replay(start, log, CAL, RULES, as_of)
