"""The charts of the monthly bulletin (月通报): PNG files in the month's archive folder, shown
by the notices as <img src="NAME.png"> and sent inline.

In Chinese, problems and units by name (the font of duban/notices/charts.py). Deterministic:
fixed size and dpi, no software stamp, the same bytes on a re-run.
Colours, sizes and the paired bars are those of duban/notices/charts.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from duban.notices.charts import THIS_COLOUR, new_figure, paired_bars
from duban.notices.charts import save_png as _save

PROBLEMS_CHART = "monthly-problems.png"
SCORES_CHART = "monthly-scores.png"
NAMED_COLOUR = "#f9ab00"


def _figure(width: float, height: float) -> Figure:
    return new_figure((width, height))


def problem_bars(
    codes: Sequence[str],
    this_month: Sequence[int],
    last_month: Sequence[int],
    path: Path,
    title: str,
) -> Path:
    """Tickets per problem: this month against last month, grouped bars by problem name."""
    return paired_bars(
        _figure(max(8.0, 0.42 * len(codes) + 2), 3.8), codes, this_month, last_month, path,
        title, names=("上月", "本月"), empty="无问题",
        rotation=90 if len(codes) > 12 else 0,
    )  # fmt: skip


LOWEST_SHOWN = 12
LEGEND = [
    Patch(color=THIS_COLOUR, label="综合得分"),
    Patch(color=NAMED_COLOUR, label="综合得分（通报点名）"),
]


def score_bars(
    groups: Sequence[tuple[str, Sequence[tuple[str, float, bool]]]],
    path: Path,
    title: str,
    lowest: int = LOWEST_SHOWN,
) -> Path:
    """One panel per peer group: the `lowest` units of the group by score (0..100), lowest
    at the top, the named ones in another colour; the panel's title gives the group's size
    and median, so the chart stays readable whether a group has 5 or 340 units.
    `groups`: (group name, [(unit name, score, named), ...]) in rank order, best first.
    The legend tells the named units' colour from the others'."""
    panels = list(groups) or [("none", [])]
    heights = [0.9 + 0.24 * min(lowest, max(1, len(units))) for _, units in panels]
    figure = _figure(8.0, sum(heights) + 0.6)  # and the legend
    grid = figure.add_gridspec(len(panels), 1, height_ratios=heights)
    for index, (name, units) in enumerate(panels):
        ax = figure.add_subplot(grid[index, 0])
        shown = list(units)[-lowest:]  # the lowest, best of them first
        positions = list(range(len(shown)))
        colours = [NAMED_COLOUR if named else THIS_COLOUR for _, _, named in shown]
        ax.barh(positions, [s for _, s, _ in shown], 0.6, color=colours)
        ax.set_yticks(positions, [c for c, _, _ in shown], fontsize=8)
        ax.set_xlim(0, 100)
        scores = sorted(s for _, s, _ in units)
        median = scores[len(scores) // 2] if scores else None
        summary = f"共 {len(units)} 个单位" + (
            f"，中位数 {median:.1f}" if median is not None else ""
        )
        ax.set_title(f"{title}：{name}，得分最低 {len(shown)} 个（{summary}）", fontsize=9)
        if not units:
            ax.text(0.5, 0.5, "无参与排名的单位", ha="center", va="center", transform=ax.transAxes)
        if index == len(panels) - 1:  # below the last panel, clear of every bar
            ax.legend(handles=LEGEND, loc="upper center", bbox_to_anchor=(0.5, -0.22),
                      ncols=2, fontsize=8, frameon=False)  # fmt: skip
        ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)
