"""回头看 — the look-back.

Closed tickets whose problem came back at the same place within a window; a report, and a
reopening with audit only when asked; started by staff from a form, or on a schedule.

- flows: flows/lookback.py `lookback` ("lookback"), flows/scheduled_lookback.py
  ("scheduled-lookback"); tasks: tasks/lookback.py
- use cases: findings.py `LookbackRequest`, `build_request`, `measure_lookback`,
  `record_findings`, `reopen_recurred`, the contexts, `scheduled_request`
- rules: duban/rules/places.py `place_key` (the same place), stored as tickets.place_key
- queries: duban/queries/lookback.py
- templates: templates/mail/lookback_office.*.j2, lookback_unit.*.j2
- config: config/lookback.yaml (`config.lookback`)
- docs: docs/lookback.md
"""

from duban.loops.lookback.findings import (
    LookbackRequest,
    LookbackSnapshot,
    build_request,
    measure_lookback,
    record_findings,
    reopen_recurred,
    scheduled_request,
)

__all__ = [
    "LookbackRequest",
    "LookbackSnapshot",
    "build_request",
    "measure_lookback",
    "record_findings",
    "reopen_recurred",
    "scheduled_request",
]
