"""The supervision clock's store (督办时钟, docs/clock.md): the append-only event log of
each item (`clock_events`) and the effective clock materialised on its ticket.

Every way an event arrives — the hotline export's clock columns, an event export, an office
decision (`duban decide`, the `decide` deployment), the decisions workbook, a calendar
change, a reopening by a failed spot check or a look-back (reopen.py) — goes through
`record_events`: it validates each event (the item exists, the
kind and payload are well-formed, a decision is not about a closed ticket, and the pure
rules of `duban.rules.clock.replay` allow it), inserts the accepted ones (the key is unique
per item: re-recording is a no-op) and replays the clock of every item it touched
(`apply_clock`). The rules live only in `duban.rules.clock`; this package calls `replay`.

Core code: no Prefect.
"""

from duban.clock.store import (
    ORIGINS,
    NewEvent,
    Pending,
    RecordResult,
    Refused,
    apply_clock,
    calendar_version,
    pending_requests,
    record_events,
)

__all__ = [
    "ORIGINS",
    "NewEvent",
    "Pending",
    "RecordResult",
    "Refused",
    "apply_clock",
    "calendar_version",
    "pending_requests",
    "record_events",
]
