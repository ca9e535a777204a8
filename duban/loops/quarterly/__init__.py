"""季度抽查核验 — the quarterly spot check.

A reproducible, secret-keyed sample of what was reported done, per unit and item kind,
recorded once; the inspectors' checklist to the office; a failed check reopens its item and
escalates its unit once.

- flow: flows/quarterly.py `quarterly_spot_check` ("quarterly-spot-check");
  tasks: tasks/quarterly.py
- use cases: sample.py `draw_sample`, `load_sample`, `fail_item`, `results`, the contexts;
  checklist.py `render_checklist_workbook`, `import_checks`
- rules: duban/rules/sampling.py (`draw`, `sample_size`, the seeds)
- queries: duban/queries/quarterly.py
- templates: templates/mail/quarterly_office.*.j2, quarterly_unit.*.j2
- config: config/spot_check.yaml (`config.spot_check`, duban/config/quarterly.py)
- docs: docs/spot-check.md
"""

from duban.loops.quarterly.checklist import (
    ChecklistError,
    checklist_file_name,
    import_checks,
    render_checklist_workbook,
)
from duban.loops.quarterly.sample import (
    SampleDraw,
    draw_sample,
    fail_item,
    load_sample,
    office_context,
    results,
    unit_context,
)

__all__ = [
    "ChecklistError",
    "SampleDraw",
    "checklist_file_name",
    "draw_sample",
    "fail_item",
    "import_checks",
    "load_sample",
    "office_context",
    "render_checklist_workbook",
    "results",
    "unit_context",
]
