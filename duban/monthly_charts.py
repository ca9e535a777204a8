"""The charts of the monthly bulletin (月通报): PNG files in the month's archive folder, shown
by the notices as <img src="NAME.png"> and sent inline.

ASCII labels only (problem and unit codes, English titles): the default fonts have no CJK
glyphs. Deterministic: fixed size and dpi, no software stamp, the same bytes on a re-run.
Colours and sizes follow duban/charts.py (the weekly charts).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

from duban.charts import LAST_COLOUR, THIS_COLOUR, new_figure
from duban.charts import save_png as _save

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
    """Tickets per problem: this month against last month, grouped bars by problem code."""
    figure = _figure(max(8.0, 0.42 * len(codes) + 2), 3.8)
    ax = figure.add_subplot(1, 1, 1)
    positions = list(range(len(codes)))
    width = 0.38
    ax.bar([p - width / 2 for p in positions], list(last_month), width, label="last month",
           color=LAST_COLOUR)  # fmt: skip
    ax.bar([p + width / 2 for p in positions], list(this_month), width, label="this month",
           color=THIS_COLOUR)  # fmt: skip
    ax.set_xticks(positions, [str(c) for c in codes], rotation=90 if len(codes) > 12 else 0)
    ax.set_ylabel("tickets")
    ax.set_title(title)
    if not codes:
        ax.text(0.5, 0.5, "no problems", ha="center", va="center", transform=ax.transAxes)
    ax.legend(loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


def score_bars(
    groups: Sequence[tuple[str, Sequence[tuple[str, float, bool]]]], path: Path, title: str
) -> Path:
    """One panel per peer group: each ranked unit's score (0..100) by rank, the named lowest
    in another colour. `groups`: (group name, [(unit code, score, named), ...])."""
    rows = max(1, len(groups))
    widest = max([len(units) for _, units in groups] or [1])
    figure = _figure(max(8.0, 0.32 * widest + 2), 2.6 * rows)
    for index, (name, units) in enumerate(groups or [("none", [])], start=1):
        ax = figure.add_subplot(rows, 1, index)
        positions = list(range(len(units)))
        colours = [NAMED_COLOUR if named else THIS_COLOUR for _, _, named in units]
        ax.bar(positions, [s for _, s, _ in units], 0.6, color=colours)
        ax.set_xticks(positions, [c for c, _, _ in units], rotation=90 if len(units) > 10 else 0)
        ax.set_ylim(0, 100)
        ax.set_ylabel("score")
        ax.set_title(f"{title}: {name}")
        if not units:
            ax.text(0.5, 0.5, "no ranked units", ha="center", va="center", transform=ax.transAxes)
        ax.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)
