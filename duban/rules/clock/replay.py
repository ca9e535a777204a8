"""`replay`: an item's events applied in order to its clock, each allowed or refused by the
rules of docs/clock.md."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from duban.rules.clock.log import (
    ClockEvent,
    ClockStart,
    ClockState,
    DeadlineMove,
    Refusal,
    RefusalCode,
    effective_events,
)

if TYPE_CHECKING:
    from duban.calendar import WorkCalendar
    from duban.config import ClockRules

_DAY_END = time(23, 59, 59)


class No(NamedTuple):
    """A handler's refusal: its code (log.REFUSAL_CODES) and reason (Chinese, English)."""

    code: RefusalCode
    reason: str


# ---------------------------------------------------------------------------- replay


def replay(
    start: ClockStart,
    events: Iterable[ClockEvent],
    calendar: WorkCalendar,
    rules: ClockRules,
    as_of: datetime,
) -> ClockState:
    """The item's clock at `as_of` (events after it are not counted yet)."""
    clock = _Clock(start, calendar, rules)
    for event in effective_events(events, as_of):
        refused = clock.apply(event)
        if refused is not None:
            clock.refusals.append(Refusal(event.key, refused.reason, event.kind, refused.code))
    return clock.state()


class _Clock:
    """The replay's running state; each handler returns a refusal (`No`) or None."""

    def __init__(self, start: ClockStart, calendar: WorkCalendar, rules: ClockRules) -> None:
        self.start, self.calendar, self.rules = start, calendar, rules
        self.due = start.base_due
        self.round_base = start.base_due  # the deadline the current dispatch started with
        self.dispatched_at = start.dispatched_at or start.received_at
        self.moves: list[DeadlineMove] = []
        self.refusals: list[Refusal] = []
        self.requests: dict[str, datetime] = {}  # pending extension requests: key -> time
        self.state_ = ClockState(base_due=start.base_due, due=start.base_due, owner=start.unit)
        self.appeal_pending = False
        self.appeal_decided = False

    def state(self) -> ClockState:
        return replace(
            self.state_,
            due=self.due,
            moves=tuple(self.moves),
            refusals=tuple(self.refusals),
            pending_requests=tuple(self.requests),
        )

    def update(self, **changes: Any) -> None:
        self.state_ = replace(self.state_, **changes)

    def move(self, event: ClockEvent, new_due: datetime | None, why: str) -> None:
        reason = f"{why}: {event.reason}" if event.reason else why
        self.moves.append(DeadlineMove(event.at, self.due, new_due, event.kind, reason))
        self.due = new_due

    def apply(self, event: ClockEvent) -> No | None:
        handler = getattr(self, f"on_{event.kind}")
        result: No | None = handler(event)
        return result

    # ------------------------------------------------------------ extensions (延期)

    def on_extension_requested(self, event: ClockEvent) -> None:
        self.requests[event.key] = event.at

    def on_extension_refused(self, event: ClockEvent) -> None:
        self._take_request(event)

    def _take_request(self, event: ClockEvent) -> datetime:
        """The time of the request a decision answers (its `request` payload, else the
        latest pending one), removed from the pending ones; the decision's own time when
        there is none."""
        key = event.payload.get("request")
        if not isinstance(key, str):
            key = None
        if key is None and self.requests:
            key = max(self.requests, key=lambda k: (self.requests[k], k))
        found = self.requests.pop(key, None) if key is not None else None
        return found if found is not None else event.at

    def filed_at(self, requested: datetime) -> datetime:
        """When a request counts as filed: after the daily cut-off, the start of the next
        working day."""
        if requested.time() <= self.rules.request_cutoff:
            return requested
        return datetime.combine(self.calendar.next_working_day(requested.date()), time.min)

    def on_extension_approved(self, event: ClockEvent) -> No | None:
        requested = self._take_request(event)
        filed = self.filed_at(requested)
        due, rules = self.due, self.rules
        if due is None:
            return No("no_deadline", "无办理时限，无需延期 (the item has no deadline to extend)")
        if filed > due:
            if filed == requested:
                return No(
                    "late_deadline",
                    f"延期申请晚于办理时限 {due:%Y-%m-%d %H:%M} (requested after the deadline)",
                )
            return No(
                "late_cutoff",
                f"延期申请晚于当日 {rules.request_cutoff:%H:%M} 截止时间，视为 "
                f"{filed:%Y-%m-%d} 申请，已过办理时限 {due:%Y-%m-%d %H:%M} (requested after "
                f"the {rules.request_cutoff:%H:%M} cut-off: counts as filed on {filed:%Y-%m-%d}, "
                "after the deadline)",
            )
        if self.state_.extensions >= rules.max_extensions:
            return No(
                "cap_extensions",
                f"延期次数已达上限 {rules.max_extensions} 次 "
                f"(at most {rules.max_extensions} extensions)",
            )
        new_due, refused = self._extended(event, due)
        if refused is not None or new_due is None:
            return refused
        if new_due <= due:
            return No(
                "not_later",
                f"延期后的时限 {new_due:%Y-%m-%d %H:%M} 不晚于现时限 {due:%Y-%m-%d %H:%M} "
                "(an extension must move the deadline later, never earlier)",
            )
        long_cycle = self.start.category in rules.long_cycle_categories
        if long_cycle:
            limit = (self.round_base or due) + timedelta(days=rules.long_cycle_max_days)
            if new_due > limit:
                return No(
                    "cap_long_cycle",
                    f"长周期事项延期不得超过原时限后 {rules.long_cycle_max_days} 天"
                    f"（{limit:%Y-%m-%d}）(a long-cycle item may be extended up to "
                    f"{rules.long_cycle_max_days} days after its base deadline)",
                )
        else:
            days = self.calendar.working_days_between(due.date(), new_due.date())
            if days > rules.max_extension_working_days:
                return No(
                    "cap_working_days",
                    f"单次延期 {days} 个工作日，超过上限 {rules.max_extension_working_days} 个"
                    f"工作日 (one extension adds at most {rules.max_extension_working_days} "
                    "working days)",
                )
        self.update(extensions=self.state_.extensions + 1)
        self.move(event, new_due, "延期 (extension approved)")
        return None

    def _extended(self, event: ClockEvent, due: datetime) -> tuple[datetime | None, No | None]:
        days = event.payload.get("working_days")
        new_due = event.payload.get("new_due")
        if days is not None:
            if not isinstance(days, int) or isinstance(days, bool) or days < 1:
                return None, No(
                    "bad_days", f"延期天数须为正整数 (working_days must be 1 or more, got {days!r})"
                )
            moved = self.calendar.add_working_days(due.date(), days)
            return datetime.combine(moved, due.time()), None
        if isinstance(new_due, datetime):
            return new_due, None
        return None, No(
            "no_extension",
            "延期未给出天数或新时限 (the approval names neither working_days nor new_due)",
        )

    # ------------------------------------------------------------ suspension (挂起/恢复)

    def on_suspended(self, event: ClockEvent) -> No | None:
        if self.state_.suspended_since is not None:
            return No(
                "already_suspended",
                f"已于 {self.state_.suspended_since:%Y-%m-%d %H:%M} 挂起 "
                "(already suspended: resume it first)",
            )
        self.update(suspended_since=event.at)
        return None

    def on_resumed(self, event: ClockEvent) -> No | None:
        since = self.state_.suspended_since
        if since is None:
            return No("not_suspended", "未挂起，无法恢复 (resume without a suspension)")
        # The days d with since.date() <= d < resumed.date() (the day of resumption counts
        # for the unit again).
        working = self.calendar.working_days_between(
            since.date() - timedelta(days=1), event.at.date() - timedelta(days=1)
        )
        counted = working
        if self.rules.suspension_counts == "calendar_days":
            counted = (event.at.date() - since.date()).days
        if self.rules.max_suspension_days is not None:
            counted = min(counted, self.rules.max_suspension_days)
        self.update(
            suspended_since=None,
            suspended_working_days=self.state_.suspended_working_days + working,
            suspended_days_added=self.state_.suspended_days_added + counted,
        )
        if self.due is not None and counted > 0:
            unit = "个工作日" if self.rules.suspension_counts == "working_days" else "天"
            self.move(event, self._later_by(self.due, counted), f"挂起{counted}{unit} (suspended)")
        return None

    def _later_by(self, due: datetime, days: int) -> datetime:
        if self.rules.suspension_counts == "calendar_days":
            return due + timedelta(days=days)
        return datetime.combine(self.calendar.add_working_days(due.date(), days), due.time())

    # ------------------------------------------------------------ return (退单), redispatch

    def on_returned(self, event: ClockEvent) -> No | None:
        if self.state_.awaiting_redispatch:
            return No(
                "already_returned", "已退单，待重新派发 (already returned, awaiting re-dispatch)"
            )
        window = self.rules.return_window_working_days
        last_day = self.calendar.add_working_days(self.dispatched_at.date(), window)
        if event.at > datetime.combine(last_day, _DAY_END):
            return No(
                "late_return",
                f"超过退单时限（派发后 {window} 个工作日，至 {last_day:%Y-%m-%d}），首办负责 "
                f"(returned after the {window}-working-day window: the unit stays the owner)",
            )
        self.update(returns=self.state_.returns + 1, awaiting_redispatch=True)
        return None

    def on_redispatched(self, event: ClockEvent) -> No | None:
        unit = event.payload.get("unit")
        if not isinstance(unit, str) or not unit:
            return No("no_unit", "重新派发未指明承办单位 (the re-dispatch names no unit)")
        self._fresh_clock(event, f"重新派发至 {unit} (re-dispatched)")
        self.dispatched_at = event.at
        self.update(owner=unit, extensions=0, awaiting_redispatch=False)
        return None

    def _fresh_clock(self, event: ClockEvent, why: str) -> None:
        """A new deadline from `event.at` with the item's level (none if it had none)."""
        fresh = None
        if self.start.base_due is not None:
            fresh = self.calendar.due_at(event.at, self.start.level_days)
        self.round_base = fresh
        self.requests.clear()
        self.update(suspended_since=None)
        self.move(event, fresh, why)

    # ------------------------------------------------------------ redo (重办)

    def on_redo(self, event: ClockEvent) -> None:
        self._fresh_clock(event, "重办，重新计时 (redo: a fresh deadline)")
        self.update(
            redo_count=self.state_.redo_count + 1, ladder_round=self.state_.ladder_round + 1
        )

    # ------------------------------------------------------------ appeal (申诉)

    def on_appeal_filed(self, event: ClockEvent) -> None:
        self.appeal_pending = True

    def _decide_appeal(self) -> No | None:
        if not self.appeal_pending and self.appeal_decided:
            return No("appeal_decided", "申诉已有决定 (the appeal was already decided)")
        self.appeal_pending, self.appeal_decided = False, True
        return None

    def on_appeal_upheld(self, event: ClockEvent) -> No | None:
        refused = self._decide_appeal()
        if refused is None:
            self._exclude("申诉成立，不纳入考核 (appeal upheld: not counted)", event)
        return refused

    def on_appeal_rejected(self, event: ClockEvent) -> No | None:
        return self._decide_appeal()

    # ------------------------------------------------------------ out of every rate

    def _exclude(self, why: str, event: ClockEvent) -> None:
        if not self.state_.counts_for_evaluation:
            return  # the first reason stands
        reason = f"{why}: {event.reason}" if event.reason else why
        self.update(counts_for_evaluation=False, excluded_reason=reason)

    def on_cancelled(self, event: ClockEvent) -> None:
        self._exclude("作废，不纳入考核 (cancelled: not counted)", event)

    def on_invalidated(self, event: ClockEvent) -> None:
        self._exclude("无效工单，不纳入考核 (invalid: not counted)", event)

    # ------------------------------------------------------------ calendar correction

    def on_calendar_correction(self, event: ClockEvent) -> No | None:
        new_due = event.payload.get("new_due")
        if not isinstance(new_due, datetime):
            return No(
                "no_new_due", "日历更正未给出新时限 (the calendar correction names no new_due)"
            )
        if self.due is None:
            return No("no_deadline", "无办理时限，无需更正 (the item has no deadline to correct)")
        self.move(event, new_due, "工作日历更正 (calendar corrected)")
        return None
