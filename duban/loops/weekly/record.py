"""The weekly analysis is a record: the run that renders a week records the figures it shows
and freezes its files; a re-run writes them back and says how many figures changed since
(duban/notices/records.py `keep`; docs/weekly-analysis.md). No correction is issued for a
week: the next week's analysis is the news."""

from __future__ import annotations

from typing import Any

from duban.context import LoopContext
from duban.loops.weekly.report import RATE_KEYS, WeeklyAnalysis, office_context
from duban.notices import records
from duban.notices.records import Figure

__all__ = ["NOTICE_KIND", "is_published", "keep_week", "weekly_figures"]

NOTICE_KIND = "analysis"
CITY = "*"
RATE_NAMES = {"response_rate": "响应率", "resolution_rate": "解决率", "satisfaction_rate": "满意率"}


def _pct(value: Any) -> str | None:
    return None if value is None else f"{100 * value:.1f}%"


def _shown(key: str, value: Any) -> str | None:
    if value is None:
        return None
    return _pct(value) if key.endswith("_rate") else str(value)


def weekly_figures(office: dict[str, Any]) -> list[Figure]:
    """The figures of the office's analysis (report.office_context), as printed: the
    headline, the week's rates and counts, and per problem its tickets this week and last
    and its rates."""
    out = [Figure(CITY, "headline", "周分析要点", office["headline"])]
    for key, value in office["rates"].items():
        out.append(
            Figure(CITY, f"week.{key}", f"本周 {RATE_NAMES.get(key, key)}", _shown(key, value))
        )
    for p in office["problems"]:
        name = f"{p['code']} {p['name']}"
        out += [
            Figure(CITY, f"{p['code']}.this_week", f"{name} 本周工单", str(p["this_week"])),
            Figure(CITY, f"{p['code']}.last_week", f"{name} 上周工单", str(p["last_week"])),
        ]
        out += [
            Figure(CITY, f"{p['code']}.{k}", f"{name} {RATE_NAMES[k]}", _pct(p[k]))
            for k in RATE_KEYS
        ]
    return out


def is_published(ctx: LoopContext, loop: str, week: str) -> bool:
    """The week was sent and recorded: a re-run draws no chart (the frozen ones come back)."""
    return records.latest_published(ctx.engine, loop, week) is not None


def keep_week(
    ctx: LoopContext, loop: str, analysis: WeeklyAnalysis, rendered_now: bool
) -> dict[str, Any]:
    """Record the week (the run that rendered it) or reproduce it and count what changed."""
    figures = weekly_figures(office_context(ctx.config, analysis))
    return records.keep(
        ctx.engine, loop, analysis.week.key, NOTICE_KIND, figures, rendered_now=rendered_now
    )
