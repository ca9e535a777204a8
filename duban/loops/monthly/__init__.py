"""月通报 — the monthly bulletin.

Rankings on the three rates in peer groups, the lowest units named with the rate that drags
them down, problem volumes, plan progress, the city ledger; held as drafts until approved;
each lead unit gets its ledger workbook (台账), which comes back with `duban import ledger`.

- flow: flows/monthly.py `monthly_bulletin` ("monthly-bulletin"), `approve_monthly`;
  tasks: tasks/monthly.py
- use cases: report.py `measure_monthly`, `office_context`, `unit_context`; charts.py;
  ledger.py `write_ledger_workbook`, `import_ledger`; approve.py (approve or reject the
  month's drafts and send them); record.py (the bulletin as a record: its figures, a re-run
  that reproduces it, the office told of a change, the correction 更正)
- rules: duban/rules/ranking.py (`rank_units`), duban/rules/exit_rule.py
- queries: duban/queries/metrics.py, duban/queries/monthly.py
- templates: templates/mail/monthly_bulletin.*.j2, monthly_correction.*.j2, monthly_changed.*.j2
- config: config/metrics.yaml (`config.metrics`)
- docs: docs/monthly-bulletin.md, docs/ledger-workbook.md, docs/metrics.md
"""

from duban.loops.monthly.ledger import (
    LedgerError,
    import_ledger,
    ledger_file_name,
    write_ledger_workbook,
)
from duban.loops.monthly.report import (
    MonthlySnapshot,
    measure_monthly,
    office_context,
    unit_context,
)

__all__ = [
    "LedgerError",
    "MonthlySnapshot",
    "import_ledger",
    "ledger_file_name",
    "measure_monthly",
    "office_context",
    "unit_context",
    "write_ledger_workbook",
]
