"""A capped list says how many of how many are shown and where the rest is (issue 16): the
office's quarterly report lists counts by unit and the first items only, the whole sample in
the attached checklist; every notice starts with what the reader must do."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from duban.notices.render import make_environment, render_notice
from duban.notices.todo import todo

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
COUNTS = {"drawn": 3, "passed": 0, "failed": 0, "pending": 3}
ROW = {"sample_id": 1, "kind": "工单", "ref": "T1", "unit_name": "甲街道",
       "done_on": date(2026, 9, 1), "category": "噪声扰民", "text": "内容", "result": "待核验",
       "note": None}  # fmt: skip


def office(items: list[dict[str, object]], total: int) -> dict[str, object]:
    return {
        "subject_prefix": "【督办】", "generated_for": "季度抽查 2026-Q3", "quarter": "2026-Q3",
        "quarter_title": "2026年第三季度", "start": date(2026, 7, 1),
        "last_day": date(2026, 9, 30), "fingerprint": "abc", "rule": "每层抽取",
        "totals": {"population": 9, **COUNTS, "checked": 0},
        "strata_total": 2, "strata_workbook": "抽样分层-2026-Q3.xlsx",
        "units": [
            {"code": "a", "name": "甲街道", "population": 5, "counts": COUNTS},
            {"code": "b", "name": "乙街道", "population": 4, "counts": COUNTS},
        ],
        "items": items, "items_total": total,
        "workbook": "抽查核验清单-2026-Q3.xlsx", "units_notified": 2,
        "todo": todo("组织现场核验", "2026-10-31"),
    }  # fmt: skip


def test_the_first_items_and_where_the_rest_is() -> None:
    env = make_environment(TEMPLATES)
    notice = render_notice(env, "quarterly_office", office([ROW], 6))
    for text in (notice.html, notice.text):
        assert "仅列前 1 项，共 6 项，完整清单见附件《抽查核验清单-2026-Q3.xlsx》" in text
        assert "甲街道" in text and "乙街道" in text  # counts by unit, every unit
        assert "抽样分层-2026-Q3.xlsx" in text
    assert notice.html.count("抽查编号") == 1  # one table of items, not one per unit


def test_every_item_shown_says_nothing_of_a_rest() -> None:
    env = make_environment(TEMPLATES)
    notice = render_notice(env, "quarterly_office", office([ROW] * 3, 3))
    for text in (notice.html, notice.text):
        assert "仅列前" not in text and "共 3 项" not in text


def test_the_summary_comes_first() -> None:
    env = make_environment(TEMPLATES)
    notice = render_notice(env, "quarterly_office", office([ROW], 6))
    assert notice.text.startswith("【需要您做】组织现场核验\n【时限】2026-10-31\n\n督办室：")
    body = notice.html.split('<td class="m"', 1)[1]
    assert body.index("需要您做") < body.index("督办室：")
    assert "<b>时限：</b>2026-10-31" in notice.html
