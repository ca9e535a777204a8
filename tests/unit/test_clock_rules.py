"""The supervision clock (duban/rules/clock/) on real dates, one test per rule and per
refusal reason; the rules are defined in docs/clock.md.

Calendar facts used (chinese-calendar 1.11): 2025 National Day Oct 1-8 off, make-up working
days Sun Sep 28 and Sat Oct 11; March 2026 has no holiday.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from duban.config import ClockRules, load_config
from duban.rules.clock import (
    LATE,
    OVER_CAP,
    REFUSAL_CODES,
    ClockEvent,
    ClockStart,
    ClockState,
    EventKind,
    is_late,
    refusal_class,
    replay,
)

CAL = load_config(Path(__file__).resolve().parents[2] / "config").calendar
RULES = ClockRules()
# Received Mon 2026-03-02, a 5-working-day limit: due Mon 2026-03-09 23:59:59.
RECEIVED = datetime(2026, 3, 2, 9, 0)
DUE = datetime(2026, 3, 9, 23, 59, 59)
START = ClockStart(RECEIVED, datetime(2026, 3, 2, 10, 0), DUE, 5, "dc", "噪音")
FAR = datetime(2027, 1, 1)


def ev(key: str, kind: EventKind, at: datetime, reason: str = "", **payload: Any) -> ClockEvent:
    supersedes = tuple(payload.pop("supersedes", ()))
    return ClockEvent(key, kind, at, "office", reason, payload, supersedes)


def run(
    *events: ClockEvent, start: ClockStart = START, rules: ClockRules = RULES, as_of=FAR
) -> ClockState:
    return replay(start, events, CAL, rules, as_of)


def refused(state: ClockState) -> dict[str, str]:
    return {r.event_key: r.reason for r in state.refusals}


def test_no_events_keeps_the_base_deadline() -> None:
    state = run()
    assert (state.base_due, state.due, state.moves, state.refusals) == (DUE, DUE, (), ())
    assert state.owner == "dc" and state.counts_for_evaluation and state.ladder_round == 1
    assert not is_late(state, DUE) and is_late(state, DUE + timedelta(seconds=1))


# ---------------------------------------------------------------- extensions (延期)


def test_extension_by_working_days_keeps_the_time_of_day() -> None:
    state = run(
        ev("r1", "extension_requested", datetime(2026, 3, 6, 10)),
        ev("a1", "extension_approved", datetime(2026, 3, 6, 15), "等待检测", working_days=3),
    )
    assert state.due == datetime(2026, 3, 12, 23, 59, 59)
    assert state.extensions == 1 and state.pending_requests == ()
    [move] = state.moves
    assert (move.old_due, move.new_due, move.kind) == (DUE, state.due, "extension_approved")
    assert "等待检测" in move.reason
    assert not is_late(state, datetime(2026, 3, 10, 12))


def test_extension_to_an_absolute_deadline() -> None:
    new_due = datetime(2026, 3, 11, 18, 0)
    state = run(ev("a1", "extension_approved", datetime(2026, 3, 6, 15), new_due=new_due))
    assert state.due == new_due


def test_a_request_after_the_deadline_is_refused() -> None:
    state = run(
        ev("r1", "extension_requested", datetime(2026, 3, 10, 9)),
        ev("a1", "extension_approved", datetime(2026, 3, 10, 10), working_days=2),
    )
    assert state.due == DUE and state.extensions == 0
    assert "晚于办理时限" in refused(state)["a1"]
    assert "requested after the deadline" in refused(state)["a1"]


def test_the_request_time_decides_not_the_approval_time() -> None:
    state = run(
        ev("r1", "extension_requested", datetime(2026, 3, 9, 16, 59)),
        ev("a1", "extension_approved", datetime(2026, 3, 10, 10), working_days=2, request="r1"),
    )
    assert state.due == datetime(2026, 3, 11, 23, 59, 59) and state.refusals == ()


def test_a_request_after_the_cutoff_counts_as_filed_the_next_working_day() -> None:
    state = run(
        ev("r1", "extension_requested", datetime(2026, 3, 9, 17, 30)),
        ev("a1", "extension_approved", datetime(2026, 3, 9, 18), working_days=2),
    )
    assert state.due == DUE
    assert "17:00" in refused(state)["a1"] and "2026-03-10" in refused(state)["a1"]
    # Before the deadline day the cut-off only moves the filing to the next morning.
    early = run(
        ev("r1", "extension_requested", datetime(2026, 3, 5, 17, 30)),
        ev("a1", "extension_approved", datetime(2026, 3, 6, 9), working_days=2),
    )
    assert early.due == datetime(2026, 3, 11, 23, 59, 59)


def test_at_most_max_extensions() -> None:
    approvals = [
        ev(f"a{i}", "extension_approved", datetime(2026, 3, 3 + i, 9), working_days=1)
        for i in range(4)
    ]
    state = run(*approvals)
    assert state.extensions == 3
    assert state.due == datetime(2026, 3, 12, 23, 59, 59)
    assert "上限 3 次" in refused(state)["a3"] and "at most 3 extensions" in refused(state)["a3"]


@pytest.mark.parametrize(
    "payload", [{"working_days": 4}, {"new_due": datetime(2026, 3, 13, 23, 59, 59)}]
)
def test_one_extension_adds_at_most_max_extension_working_days(payload: dict[str, Any]) -> None:
    state = run(ev("a1", "extension_approved", datetime(2026, 3, 5, 9), **payload))
    assert state.due == DUE
    assert "超过上限 3 个工作日" in refused(state)["a1"]


def test_a_long_cycle_item_may_reach_long_cycle_max_days() -> None:
    start = ClockStart(RECEIVED, None, DUE, 5, "dc", "征地")
    ok = run(ev("a1", "extension_approved", datetime(2026, 3, 5), working_days=60), start=start)
    assert ok.refusals == () and ok.due is not None and ok.due > DUE + timedelta(days=60)
    too_far = DUE + timedelta(days=181)
    state = run(ev("a1", "extension_approved", datetime(2026, 3, 5), new_due=too_far), start=start)
    assert state.due == DUE and "180 天" in refused(state)["a1"]


def test_an_extension_never_shortens() -> None:
    state = run(
        ev("a1", "extension_approved", datetime(2026, 3, 5), new_due=datetime(2026, 3, 8, 12))
    )
    assert state.due == DUE and "never earlier" in refused(state)["a1"]


@pytest.mark.parametrize(
    ("payload", "words"),
    [({"working_days": 0}, "working_days must be 1 or more"), ({}, "neither working_days")],
)
def test_a_malformed_approval_is_refused(payload: dict[str, Any], words: str) -> None:
    state = run(ev("a1", "extension_approved", datetime(2026, 3, 5), **payload))
    assert state.due == DUE and words in refused(state)["a1"]


def test_an_item_without_deadline_is_never_late_nor_extended() -> None:
    start = ClockStart(RECEIVED, None, None, 5, "dc")
    state = run(ev("a1", "extension_approved", datetime(2026, 3, 5), working_days=1), start=start)
    assert state.due is None and "no deadline" in refused(state)["a1"]
    assert not is_late(state, FAR)


def test_a_refused_request_is_no_longer_pending() -> None:
    state = run(
        ev("r1", "extension_requested", datetime(2026, 3, 5)),
        ev("r2", "extension_requested", datetime(2026, 3, 6)),
        ev("x1", "extension_refused", datetime(2026, 3, 6, 12), request="r1"),
    )
    assert state.pending_requests == ("r2",) and state.due == DUE


# ---------------------------------------------------------------- suspension (挂起)


def _national_day_item() -> ClockStart:
    received = datetime(2025, 9, 22, 9)
    return ClockStart(received, received, CAL.due_at(received, 5), 5, "dc")


def test_suspension_across_national_day_moves_by_its_working_days() -> None:
    start = _national_day_item()
    assert start.base_due == datetime(2025, 9, 28, 23, 59, 59)  # a make-up Sunday
    suspended = ev("s1", "suspended", datetime(2025, 9, 26, 10))
    resumed = ev("s2", "resumed", datetime(2025, 10, 13, 9))
    during = run(suspended, start=start, as_of=datetime(2025, 10, 12))
    assert during.suspended_since == suspended.at and not is_late(during, FAR)
    state = run(suspended, resumed, start=start)
    # Sep 26, Sun Sep 28, Sep 29, Sep 30, Oct 9, Oct 10, Sat Oct 11: 7 working days.
    assert state.suspended_working_days == state.suspended_days_added == 7
    assert state.due == datetime(2025, 10, 14, 23, 59, 59)
    assert CAL.working_days_between(start.base_due.date(), state.due.date()) == 7
    assert state.moves[0].kind == "resumed" and "挂起7个工作日" in state.moves[0].reason


def test_suspension_in_calendar_days_and_its_cap() -> None:
    start = _national_day_item()
    events = (
        ev("s1", "suspended", datetime(2025, 9, 26, 10)),
        ev("s2", "resumed", datetime(2025, 10, 13, 9)),
    )
    calendar_days = ClockRules(suspension_counts="calendar_days")
    state = run(*events, start=start, rules=calendar_days)
    assert state.suspended_days_added == 17 and state.suspended_working_days == 7
    assert state.due == datetime(2025, 10, 15, 23, 59, 59)
    capped = run(*events, start=start, rules=ClockRules(max_suspension_days=3))
    assert capped.suspended_days_added == 3
    assert capped.due == datetime(2025, 10, 9, 23, 59, 59)  # Sep 29, Sep 30, Oct 9


def test_resume_without_suspension_and_a_second_suspension_are_refused() -> None:
    state = run(
        ev("z", "resumed", datetime(2026, 3, 3)),
        ev("s1", "suspended", datetime(2026, 3, 4)),
        ev("s2", "suspended", datetime(2026, 3, 5)),
    )
    assert "resume without a suspension" in refused(state)["z"]
    assert "already suspended" in refused(state)["s2"]
    assert state.suspended_since == datetime(2026, 3, 4)


# ---------------------------------------------------------------- return (退单), redispatch


def test_a_return_in_the_window_then_a_redispatch_restarts_the_clock() -> None:
    state = run(
        ev("a1", "extension_approved", datetime(2026, 3, 2, 12), working_days=1),
        ev("t1", "returned", datetime(2026, 3, 3, 15), "非本单位职责"),
        ev("d1", "redispatched", datetime(2026, 3, 4, 9), unit="xc"),
    )
    assert state.returns == 1 and state.owner == "xc" and state.extensions == 0
    assert state.due == datetime(2026, 3, 11, 23, 59, 59) and not state.awaiting_redispatch
    awaiting = run(ev("t1", "returned", datetime(2026, 3, 3, 15)), as_of=datetime(2026, 3, 20))
    assert awaiting.awaiting_redispatch and not is_late(awaiting, datetime(2026, 3, 20))


def test_a_late_return_is_refused_and_the_unit_stays_owner() -> None:
    state = run(ev("t1", "returned", datetime(2026, 3, 4, 0, 0, 1)))
    assert state.owner == "dc" and state.returns == 0
    assert "首办负责" in refused(state)["t1"] and "stays the owner" in refused(state)["t1"]


def test_a_second_return_and_a_redispatch_without_unit_are_refused() -> None:
    state = run(
        ev("t1", "returned", datetime(2026, 3, 2, 11)),
        ev("t2", "returned", datetime(2026, 3, 2, 12)),
        ev("d1", "redispatched", datetime(2026, 3, 2, 13)),
    )
    assert "already returned" in refused(state)["t2"]
    assert "names no unit" in refused(state)["d1"]
    assert state.awaiting_redispatch and state.owner == "dc"


# ---------------------------------------------------------------- redo (重办)


def test_a_redo_gives_a_fresh_deadline_and_ladder() -> None:
    state = run(ev("o1", "redo", datetime(2026, 3, 20, 10), "回访不满意"))
    assert state.due == datetime(2026, 3, 27, 23, 59, 59)
    assert (state.redo_count, state.ladder_round) == (1, 2)
    assert state.moves[0].old_due == DUE and "回访不满意" in state.moves[0].reason


# ---------------------------------------------------------------- appeal, cancelled, invalid


def test_an_upheld_appeal_takes_the_item_out_and_a_second_decision_is_refused() -> None:
    state = run(
        ev("p1", "appeal_filed", datetime(2026, 3, 3)),
        ev("p2", "appeal_upheld", datetime(2026, 3, 4), "重复工单"),
        ev("p3", "appeal_rejected", datetime(2026, 3, 5)),
    )
    assert not state.counts_for_evaluation
    assert state.excluded_reason is not None and "申诉成立" in state.excluded_reason
    assert "重复工单" in state.excluded_reason
    assert "already decided" in refused(state)["p3"] and state.due == DUE


def test_a_rejected_appeal_filed_again_may_be_upheld() -> None:
    state = run(
        ev("p1", "appeal_filed", datetime(2026, 3, 3)),
        ev("p2", "appeal_rejected", datetime(2026, 3, 4)),
        ev("p3", "appeal_filed", datetime(2026, 3, 5)),
        ev("p4", "appeal_upheld", datetime(2026, 3, 6)),
    )
    assert state.refusals == () and not state.counts_for_evaluation


@pytest.mark.parametrize(("kind", "words"), [("cancelled", "作废"), ("invalidated", "无效")])
def test_cancelled_and_invalid_items_count_nowhere(kind: EventKind, words: str) -> None:
    state = run(ev("c1", kind, datetime(2026, 3, 3)))
    assert not state.counts_for_evaluation
    assert state.excluded_reason is not None and words in state.excluded_reason


# ---------------------------------------------------------------- calendar correction


def test_a_calendar_correction_is_a_move_of_its_own() -> None:
    corrected = datetime(2026, 3, 10, 23, 59, 59)
    state = run(ev("k1", "calendar_correction", datetime(2026, 3, 3), new_due=corrected))
    assert state.due == corrected and state.moves[0].kind == "calendar_correction"
    bad = run(ev("k1", "calendar_correction", datetime(2026, 3, 3)))
    assert bad.due == DUE and "names no new_due" in refused(bad)["k1"]
    none = run(
        ev("k1", "calendar_correction", datetime(2026, 3, 3), new_due=corrected),
        start=ClockStart(RECEIVED, None, None, 5, "dc"),
    )
    assert none.due is None and "no deadline to correct" in refused(none)["k1"]


# ---------------------------------------------------------------- the log itself


def test_a_superseded_event_is_dropped_also_along_a_chain() -> None:
    state = run(
        ev("a1", "extension_approved", datetime(2026, 3, 5), working_days=3),
        ev("a2", "extension_approved", datetime(2026, 3, 6), working_days=2, supersedes=["a1"]),
        ev("a3", "extension_approved", datetime(2026, 3, 7), working_days=1, supersedes=["a2"]),
    )
    assert state.due == datetime(2026, 3, 10, 23, 59, 59) and state.extensions == 1


def test_duplicate_keys_count_once_and_later_events_wait() -> None:
    approval = ev("a1", "extension_approved", datetime(2026, 3, 5), working_days=1)
    state = run(approval, approval, approval)
    assert len({approval, approval}) == 1  # events are hashable values
    assert state.extensions == 1 and len(state.moves) == 1
    before = run(approval, as_of=datetime(2026, 3, 4, 23))
    assert before.due == DUE and before.moves == ()


def test_arrival_order_does_not_matter() -> None:
    events = [
        ev("s1", "suspended", datetime(2026, 3, 3)),
        ev("s2", "resumed", datetime(2026, 3, 5)),
        ev("r1", "extension_requested", datetime(2026, 3, 5)),
        ev("a1", "extension_approved", datetime(2026, 3, 5), working_days=2),
    ]
    assert run(*events) == run(*reversed(events))
    assert run(*events).due == datetime(2026, 3, 13, 23, 59, 59)


# ---------------------------------------------------------------- refusal codes


def test_each_refusal_has_its_code_and_the_digest_groups_late_and_over_a_cap() -> None:
    """The code of each refusal (docs/clock.md "Refusals"); the digest lists the late and
    over-a-cap ones."""
    cap_rules = ClockRules(max_extensions=1)
    cases: list[tuple[ClockState, str, str]] = [
        (run(ev("r", "extension_requested", DUE + timedelta(hours=1)),
             ev("a", "extension_approved", DUE + timedelta(hours=2), working_days=1)),
         "a", "late_deadline"),
        (run(ev("r", "extension_requested", datetime(2026, 3, 9, 17, 30)),
             ev("a", "extension_approved", datetime(2026, 3, 9, 18), working_days=1)),
         "a", "late_cutoff"),
        (run(ev("x", "returned", datetime(2026, 3, 5, 9))), "x", "late_return"),
        (run(ev("a1", "extension_approved", datetime(2026, 3, 3), working_days=1),
             ev("a2", "extension_approved", datetime(2026, 3, 4), working_days=1),
             rules=cap_rules), "a2", "cap_extensions"),
        (run(ev("a", "extension_approved", datetime(2026, 3, 3), working_days=4)),
         "a", "cap_working_days"),
        (run(ev("a", "extension_approved", datetime(2026, 3, 3), new_due=DUE + timedelta(days=200)),
             start=ClockStart(RECEIVED, RECEIVED, DUE, 5, "dc", "征地")), "a", "cap_long_cycle"),
        (run(ev("x", "resumed", datetime(2026, 3, 3))), "x", "not_suspended"),
        (run(ev("f", "appeal_filed", datetime(2026, 3, 3)),
             ev("u", "appeal_upheld", datetime(2026, 3, 4)),
             ev("u2", "appeal_rejected", datetime(2026, 3, 5))), "u2", "appeal_decided"),
    ]  # fmt: skip
    for state, key, code in cases:
        assert [(r.event_key, r.code) for r in state.refusals] == [(key, code)]
        group = refusal_class(code)
        assert group == ("late" if code.startswith("late") else
                         "over_cap" if code.startswith("cap") else "other")  # fmt: skip
    assert set(LATE) | set(OVER_CAP) <= set(REFUSAL_CODES)
