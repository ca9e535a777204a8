"""日报告 — the daily loop.

Every working day: climb the escalation ladder for what is late, then tell each unit what it
owes and give the office the city digest.

- flow: flows/daily.py `daily_report` (Prefect flow "daily-report"); tasks: tasks/daily.py
  (`escalate`, `measure`, `render_daily`), then tasks/deliver.py
- use cases: escalation.py `apply_escalations` (each ladder step once per item, in order),
  report.py `measure_daily`, `unit_contexts`, `office_context`
- rules: duban/rules/ladder.py (`steps_to_apply`, `is_send_day`, `catch_up_days`),
  duban/rules/warnings.py (`ticket_colour`, `plan_task_colour`, `blue_cutoff`)
- queries: duban/queries/daily.py (the colours in SQL: `colour`, tested against the rule)
- templates: templates/mail/daily_unit.*.j2, daily_office.*.j2
- config: config/escalation.yaml (`config.escalation`), config/urgency.yaml
- docs: docs/daily-loop.md
"""

from duban.loops.daily.escalation import EscalationResult, apply_escalations
from duban.loops.daily.report import DailySnapshot, measure_daily, office_context, unit_contexts

__all__ = [
    "DailySnapshot",
    "EscalationResult",
    "apply_escalations",
    "measure_daily",
    "office_context",
    "unit_contexts",
]
