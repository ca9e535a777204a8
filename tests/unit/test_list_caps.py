"""A capped list says how many of how many are shown and where the rest is; a unit whose rows
fall beyond the office report's cap gets no empty table and no "仅列前 0 项" (issue 16)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from duban.notices.render import make_environment, render_notice

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
COUNTS = {"drawn": 3, "passed": 0, "failed": 0, "pending": 3}
ROW = {"sample_id": 1, "kind": "工单", "ref": "T1", "done_on": date(2026, 9, 1),
       "category": "噪声扰民", "text": "内容", "result": "待核验", "note": None}  # fmt: skip


def office(rows_second: list[dict[str, object]]) -> dict[str, object]:
    return {
        "subject_prefix": "【督办】", "generated_for": "季度抽查 2026-Q3", "quarter": "2026-Q3",
        "quarter_title": "2026年第三季度", "start": date(2026, 7, 1),
        "last_day": date(2026, 9, 30), "fingerprint": "abc", "rule": "每层抽取",
        "totals": {"population": 9, **COUNTS, "checked": 0}, "strata": [],
        "units": [
            {"code": "a", "name": "甲街道", "counts": COUNTS, "rows": [ROW] * 3, "rows_total": 3},
            {"code": "b", "name": "乙街道", "counts": COUNTS, "rows": rows_second,
             "rows_total": 3},
        ],
        "workbook": "spot-check-2026-Q3.xlsx", "units_notified": 2,
    }  # fmt: skip


def test_a_unit_beyond_the_cap_points_to_the_workbook() -> None:
    env = make_environment(TEMPLATES)
    notice = render_notice(env, "quarterly_office", office([]))
    for text in (notice.html, notice.text):
        assert "仅列前 0 项" not in text
        assert "共 3 项，完整清单见附件《spot-check-2026-Q3.xlsx》" in text
    # Two tables of items would be one too many: only 甲街道's (and the totals') are drawn.
    assert notice.html.count("抽查编号") == 1


def test_a_partly_shown_unit_says_how_many_of_how_many() -> None:
    env = make_environment(TEMPLATES)
    notice = render_notice(env, "quarterly_office", office([ROW]))
    for text in (notice.html, notice.text):
        assert "仅列前 1 项，共 3 项，完整清单见附件《spot-check-2026-Q3.xlsx》" in text
