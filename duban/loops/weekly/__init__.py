"""周分析 — the weekly analysis.

Week-on-week trends by problem, category and district, hot spots, rising streets, repeat
complaints and the week's rates, with two charts; to the office and each lead unit.

- flow: flows/weekly.py `weekly_analysis` ("weekly-analysis"); tasks: tasks/weekly.py
- use cases: report.py `measure_weekly`, `office_context`, `lead_contexts`;
  charts.py `draw_weekly_charts`
- queries: duban/queries/weekly.py, duban/queries/metrics.py (the rates)
- templates: templates/mail/weekly_office.*.j2, weekly_lead.*.j2
- config: config/metrics.yaml (`config.metrics`)
- docs: docs/weekly-analysis.md
"""

from duban.loops.weekly.charts import draw_weekly_charts
from duban.loops.weekly.report import WeeklyAnalysis, lead_contexts, measure_weekly, office_context

__all__ = [
    "WeeklyAnalysis",
    "draw_weekly_charts",
    "lead_contexts",
    "measure_weekly",
    "office_context",
]
