"""年终绩效考评 — the year-end evaluation and the annual summary (年总结).

Explainable scores per unit (rates, plan and policy completion, penalties, credit for old,
hard items), ranked in peer groups; the summary and 评分.csv to leadership, each unit its
own breakdown.

- flow: flows/annual.py `annual_evaluation`; tasks: tasks/annual.py
- use cases: evaluation.py `measure_annual`, `scores_frame`, `summary_context`, `unit_context`
- rules: duban/rules/scoring.py (`score_unit`, `rank_scores`), duban/rules/ranking.py
- queries: duban/queries/annual.py
- templates: templates/mail/annual_summary.*.j2, annual_unit.*.j2
- config: config/evaluation.yaml (`config.evaluation`, duban/config/annual.py)
- docs: docs/evaluation.md
"""

from duban.loops.annual.evaluation import (
    AnnualSnapshot,
    measure_annual,
    summary_context,
    unit_context,
    write_scores_csv,
)

__all__ = [
    "AnnualSnapshot",
    "measure_annual",
    "summary_context",
    "unit_context",
    "write_scores_csv",
]
