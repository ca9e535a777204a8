"""The clock's vocabulary: an item's events (`ClockEvent`), what its import fixed
(`ClockStart`), its state (`ClockState`, with `DeadlineMove` and `Refusal`), and the order
the events are replayed in (`effective_events`). See docs/clock.md."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

EventKind = Literal[
    "calendar_correction",
    "extension_requested",
    "extension_approved",
    "extension_refused",
    "suspended",
    "resumed",
    "returned",
    "redispatched",
    "redo",
    "appeal_filed",
    "appeal_upheld",
    "appeal_rejected",
    "cancelled",
    "invalidated",
]
# The order of events that share a time: a request before its decision, a suspension
# before its resumption, a return before the re-dispatch, an appeal before its decision.
KINDS: tuple[EventKind, ...] = get_args(EventKind)
_RANK = {kind: i for i, kind in enumerate(KINDS)}


@dataclass(frozen=True)
class ClockEvent:
    """One entry of an item's append-only event log.

    payload by kind: extension_approved `working_days` (int) or `new_due` (datetime), and
    optionally `request` (the key of its extension_requested event); redispatched `unit`;
    calendar_correction `new_due` (datetime, recomputed by the caller). supersedes: keys of
    earlier events this one corrects (they are dropped).
    """

    key: str
    kind: EventKind
    at: datetime
    actor: str = ""
    reason: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict, hash=False)
    supersedes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClockStart:
    """What the item's import fixed: base_due None means no deadline (无办理时限)."""

    received_at: datetime
    dispatched_at: datetime | None
    base_due: datetime | None
    level_days: int  # the working days of the item's urgency level (a fresh clock uses them)
    unit: str
    category: str | None = None


@dataclass(frozen=True)
class DeadlineMove:
    """Why the deadline moved, for notices: from old_due to new_due by an event of `kind`."""

    at: datetime
    old_due: datetime | None
    new_due: datetime | None
    kind: EventKind
    reason: str


# Why an event was refused, as a code (docs/clock.md, "Refusals"): the rules' own, then
# the store's (duban/clock/store.py: before the rules are asked).
RefusalCode = Literal[
    "late_deadline",  # an extension requested after the deadline
    "late_cutoff",  # … after the daily cut-off, so counting as filed after the deadline
    "late_return",  # a return after the return window (首办负责)
    "cap_extensions",  # the number of extensions is at its cap
    "cap_working_days",  # one extension adds more working days than allowed
    "cap_long_cycle",  # a long-cycle item's deadline beyond its cap
    "no_deadline",
    "bad_days",
    "no_extension",
    "not_later",
    "already_suspended",
    "not_suspended",
    "already_returned",
    "no_unit",
    "appeal_decided",
    "no_new_due",
    # the store's
    "unknown_ticket",
    "closed_ticket",
    "malformed",
    "duplicate_key",
    "request_not_named",
    "request_not_pending",
    "breaks_recorded",
    "no_calendar",  # the working-day calendar does not cover the deadline's year
]
REFUSAL_CODES: tuple[RefusalCode, ...] = get_args(RefusalCode)
# The refusals the office digest lists: a request too late, or over a cap.
LATE: frozenset[RefusalCode] = frozenset({"late_deadline", "late_cutoff", "late_return"})
OVER_CAP: frozenset[RefusalCode] = frozenset(
    {"cap_extensions", "cap_working_days", "cap_long_cycle"}
)


def refusal_class(code: str) -> Literal["late", "over_cap", "other"]:
    """Which of the digest's groups a refusal code belongs to."""
    if code in LATE:
        return "late"
    if code in OVER_CAP:
        return "over_cap"
    return "other"


@dataclass(frozen=True)
class Refusal:
    """An event the rules did not allow: it changed nothing."""

    event_key: str
    reason: str
    kind: EventKind | None = None
    code: RefusalCode = "malformed"


@dataclass(frozen=True)
class ClockState:
    """The clock of one item as of a time."""

    base_due: datetime | None  # the deadline the import fixed
    due: datetime | None  # the effective deadline (None: no deadline, never late)
    moves: tuple[DeadlineMove, ...] = ()
    suspended_working_days: int = 0  # working days within closed suspensions
    suspended_days_added: int = 0  # days the suspensions added (as config counts, capped)
    suspended_since: datetime | None = None  # an open suspension
    extensions: int = 0  # approved in the current dispatch
    returns: int = 0
    redo_count: int = 0
    ladder_round: int = 1  # a redo starts a fresh ladder
    owner: str = ""
    awaiting_redispatch: bool = False  # returned, not yet dispatched again
    counts_for_evaluation: bool = True
    excluded_reason: str | None = None
    pending_requests: tuple[str, ...] = ()  # extension requests not decided yet
    refusals: tuple[Refusal, ...] = ()


def is_late(state: ClockState, now: datetime) -> bool:
    """Past its effective deadline at `now`; never while suspended, returned and awaiting
    re-dispatch, or without a deadline."""
    if state.due is None or state.suspended_since is not None or state.awaiting_redispatch:
        return False
    return now > state.due


# ---------------------------------------------------------------------------- ordering


def _sort_key(event: ClockEvent) -> tuple[datetime, int, str]:
    return (event.at, _RANK[event.kind], event.key)


def _canonical(event: ClockEvent) -> tuple[Any, ...]:
    """A total order over events, to pick one of several that share a key."""
    payload = sorted((k, repr(v)) for k, v in event.payload.items())
    return (*_sort_key(event), event.actor, event.reason, payload, sorted(event.supersedes))


def effective_events(events: Iterable[ClockEvent], as_of: datetime) -> list[ClockEvent]:
    """The events in force at `as_of`, in replay order: one per key, none superseded."""
    by_key: dict[str, ClockEvent] = {}
    for event in events:
        if event.at > as_of:
            continue
        kept = by_key.get(event.key)
        if kept is None or _canonical(event) < _canonical(kept):
            by_key[event.key] = event
    superseded = {
        key for e in by_key.values() for key in e.supersedes if key != e.key and key in by_key
    }
    return sorted((e for k, e in by_key.items() if k not in superseded), key=_sort_key)
