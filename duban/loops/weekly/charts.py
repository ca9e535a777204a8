"""The charts of the weekly analysis (周分析): PNG files beside the week's notices, shown as
<img src="NAME.png"> and sent inline.

In Chinese, problems by name (the font of duban/notices/charts.py). Deterministic: a re-run
writes the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

from matplotlib.ticker import MaxNLocator

from duban.loops.weekly.report import CHART_FILES, WeeklyAnalysis, chart_problems
from duban.notices.charts import THIS_COLOUR, new_figure, paired_bars, save_png

WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")  # not the locale's names

__all__ = ["WEEKDAYS", "daily_line", "draw_weekly_charts", "week_bars"]


def week_bars(
    labels: Sequence[str],
    this_week: Sequence[int],
    last_week: Sequence[int],
    path: Path,
    title: str,
) -> Path:
    """Grouped bars per label: this week against last week."""
    return paired_bars(
        new_figure(), labels, this_week, last_week, path, title,
        names=("上周", "本周"), empty="无工单", integer_axis=True,
    )  # fmt: skip


def daily_line(days: Sequence[date], tickets: Sequence[int], path: Path, title: str) -> Path:
    """Tickets received per day, one point a day."""
    figure = new_figure()
    ax = figure.add_subplot(1, 1, 1)
    positions = list(range(len(days)))
    ax.plot(positions, list(tickets), marker="o", color=THIS_COLOUR)
    ax.set_xticks(positions, [f"{d:%m-%d} {WEEKDAYS[d.weekday()]}" for d in days])
    ax.set_ylim(bottom=0, top=max([*tickets, 1]) * 1.15)
    ax.set_ylabel("工单（件）")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("受理日期")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return save_png(figure, path)


def draw_weekly_charts(analysis: WeeklyAnalysis, folder: Path) -> list[Path]:
    """weekly-problems.png (top problems, this week against last) and weekly-daily.png
    (tickets per day of the week)."""
    week = analysis.week
    top = chart_problems(analysis)
    problems_png, daily_png = (folder / name for name in CHART_FILES)
    week_bars(
        [str(n) for n in top["problem_name"]],
        [int(n) for n in top["this_week"]],
        [int(n) for n in top["last_week"]],
        problems_png,
        f"各问题诉求量：{week.key} 与 {week.previous().key}",
    )
    daily_line(
        list(analysis.daily["day"]),
        [int(n) for n in analysis.daily["tickets"]],
        daily_png,
        f"每日受理量：{week.key}",
    )
    return [problems_png, daily_png]
