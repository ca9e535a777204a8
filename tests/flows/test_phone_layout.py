"""Notices read on a phone (issue 16): every kind of notice the loops write, opened in headless
Chromium at 360 px (a small phone) and 1200 px (a desktop), lays out no wider than the
window — a wide table scrolls within itself, nothing pushes the page sideways."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from duban.config import load_config
from duban.ingest.tickets import import_tickets
from duban.loops.lookback.findings import build_request
from duban.notices.alert import failure_notice
from flows.annual import annual_evaluation
from flows.daily import daily_report
from flows.lookback import lookback
from flows.monthly import monthly_bulletin
from flows.quarterly import quarterly_spot_check
from flows.weekly import weekly_analysis
from tests.browser import scroll_width
from tests.flows.test_export_shapes import SHAPES, mapping, shape_rows
from tests.flows.test_missing_columns import write_csv

WIDTHS = (360, 1200)
# Every notice kind the loops archive: (loop, office or unit, what), e.g. daily/unit/unit.
KINDS = {
    ("daily", "office", "digest"), ("daily", "unit", "unit"),
    ("weekly", "office", "analysis"), ("weekly", "unit", "analysis"),
    ("monthly", "office", "bulletin"), ("monthly", "unit", "bulletin"),
    ("quarterly", "office", "report"), ("quarterly", "unit", "sample"),
    ("lookback", "office", "findings"), ("lookback", "unit", "unit"),
    ("annual", "office", "summary"), ("annual", "unit", "breakdown"),
}  # fmt: skip


def kind_of(reports: Path, path: Path) -> tuple[str, str, str]:
    loop = path.relative_to(reports).parts[0]
    who, what = re.fullmatch(r"(.+)-([a-z]+)\.html", path.name).groups()  # type: ignore[union-attr]
    return loop, "office" if who == "office" else "unit", what


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # layout is not the database's
def test_every_notice_kind_fits_a_phone_and_a_desktop(city: dict[str, Any], tmp_path: Path) -> None:
    engine, reports = city["engine"], city["reports"]
    root = Path(city["config"].root)
    columns = {shape: mapping(root, shape) for shape in SHAPES}  # every export shape
    config = load_config(root)
    for s, shape in enumerate(SHAPES):
        path = write_csv(tmp_path / f"{shape}.csv", columns[shape], shape_rows(shape, s))
        import_tickets(engine, config, path, shape, tmp_path / "import-reports")
    daily_report(day=date(2026, 10, 20))
    weekly_analysis(week="2026-W42")
    monthly_bulletin(month="2026-10")
    quarterly_spot_check(quarter="2026-Q3")
    lookback(build_request(closed_from=date(2026, 9, 1), closed_to=date(2026, 10, 31)))
    annual_evaluation(year=2026)

    largest: dict[tuple[str, str, str], Path] = {}
    for path in reports.rglob("*.html"):
        kind = kind_of(reports, path)
        if kind not in largest or path.stat().st_size > largest[kind].stat().st_size:
            largest[kind] = path
    assert set(largest) == KINDS
    too_wide = {}
    for kind, path in sorted(largest.items()):
        html = path.read_text(encoding="utf-8")
        assert '<meta name="viewport" content="width=device-width' in html, path
        assert "<b>需要您做：</b>" in html, path  # the summary at the top (duban/notices/todo.py)
        for width in WIDTHS:
            laid_out = scroll_width(html, width)
            if laid_out > width:
                too_wide[f"{'/'.join(kind)} at {width}px"] = laid_out
    assert too_wide == {}


def test_the_failure_alert_fits_a_phone() -> None:
    """The admins' failure alert (no layout of its own: one line of HTML) with a long error."""
    rendered = failure_notice(
        "daily-report", "brave-fox", "0b7c1e4e-0000-4000-8000-000000000000",
        datetime(2026, 11, 2, 8, 30), "ValueError: " + "x" * 300, {"day": "2026-11-02"},
        "http://127.0.0.1:4200/runs/flow-run/0b7c1e4e-0000-4000-8000-000000000000",
    )  # fmt: skip
    assert "需要您做" in rendered.html and rendered.html.index("流程") < rendered.html.index(
        "The flow run"
    )  # Chinese first
    assert scroll_width(rendered.html, 360) <= 360
