"""月通报 — the monthly bulletin.

Rankings on the three rates in peer groups, the lowest units named with the rate that drags
them down, problem volumes, plan progress, the city ledger; held as drafts until approved;
each lead unit gets its ledger workbook (台账), which comes back with `duban import ledger`.

- flow: flows/monthly.py `monthly_bulletin` ("monthly-bulletin"), `approve_monthly`;
  tasks: tasks/monthly.py
- use cases: report.py `measure_monthly`, `office_context`; sections.py `split`,
  `unit_context` (each unit: its own section, its peer group, the city's part); charts.py;
  ledger.py `write_ledger_workbook`, `import_ledger`; approve.py (approve or reject the
  month's drafts and send them); record.py (the bulletin as a record: its figures, a re-run
  that reproduces it, the office told of a change, the correction 更正)
- rules: duban/rules/ranking.py (`rank_units`), duban/rules/exit_rule.py
- queries: duban/queries/metrics.py, duban/queries/monthly.py
- templates: templates/mail/monthly_bulletin.*.j2 (with _monthly_shared, _monthly_peers,
  _monthly_city, _monthly_macros), monthly_correction.*.j2, monthly_changed.*.j2
- config: config/metrics.yaml (`config.metrics`)
- docs: docs/monthly-bulletin.md, docs/ledger-workbook.md, docs/metrics.md
"""

from duban.loops.monthly.ledger import (
    LedgerError,
    import_ledger,
    ledger_file_name,
    write_ledger_workbook,
)
from duban.loops.monthly.report import MonthlySnapshot, measure_monthly, office_context
from duban.loops.monthly.sections import Sections, split, unit_context

__all__ = [
    "LedgerError",
    "MonthlySnapshot",
    "Sections",
    "import_ledger",
    "ledger_file_name",
    "measure_monthly",
    "office_context",
    "split",
    "unit_context",
    "write_ledger_workbook",
]
