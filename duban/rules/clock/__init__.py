"""The supervision clock (督办时钟): an item's effective deadline from its base deadline, its
events and the working-day calendar. See docs/clock.md, which defines every rule.

`replay(start, events, calendar, rules, as_of)` (replay.py) sorts the events
deterministically (time, then the fixed order of `KINDS`, then key: log.py), so the order
they arrived in never matters; drops duplicate keys and every event another one
supersedes; and applies them one by one. An event the rules do not allow changes nothing
and is listed in `ClockState.refusals` with the reason, in Chinese and English.

Pure code: the caller passes the calendar, the rules (config/clock.yaml) and `as_of`. All
times are naive local times, as everywhere in Duban.
"""

from duban.rules.clock.log import (
    KINDS,
    LATE,
    OVER_CAP,
    REFUSAL_CODES,
    ClockEvent,
    ClockStart,
    ClockState,
    DeadlineMove,
    EventKind,
    Refusal,
    RefusalCode,
    effective_events,
    is_late,
    refusal_class,
)
from duban.rules.clock.replay import replay

__all__ = [
    "KINDS",
    "LATE",
    "OVER_CAP",
    "REFUSAL_CODES",
    "ClockEvent",
    "ClockStart",
    "ClockState",
    "DeadlineMove",
    "EventKind",
    "Refusal",
    "RefusalCode",
    "effective_events",
    "is_late",
    "refusal_class",
    "replay",
]
