"""PNG charts for the notices (matplotlib, Agg backend, no display).

Charts carry ASCII labels only (problem codes, dates, English axis titles): the default
fonts have no CJK glyphs. They are deterministic — fixed size and dpi, no software or time
stamp in the PNG metadata — so a re-run writes the same bytes. Each chart is written
atomically beside the notice that shows it as <img src="NAME.png">.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

SIZE = (8.0, 3.6)  # inches
DPI = 100
THIS_COLOUR = "#b3261e"
LAST_COLOUR = "#9aa0a6"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # not the locale's names


def new_figure(size: tuple[float, float] = SIZE) -> Figure:
    """A figure on the Agg canvas (no display), at the charts' fixed DPI."""
    figure = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _figure() -> Figure:
    return new_figure()


def save_png(figure: Figure, path: Path) -> Path:
    """Write `figure` atomically as a deterministic PNG (no software/time metadata)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    tmp.replace(path)
    return path


def week_bars(
    labels: Sequence[str],
    this_week: Sequence[int],
    last_week: Sequence[int],
    path: Path,
    title: str,
) -> Path:
    """Grouped bars per label: this week against last week."""
    figure = _figure()
    ax = figure.add_subplot(1, 1, 1)
    positions = list(range(len(labels)))
    width = 0.38
    ax.bar([p - width / 2 for p in positions], list(last_week), width, label="last week",
           color=LAST_COLOUR)  # fmt: skip
    ax.bar([p + width / 2 for p in positions], list(this_week), width, label="this week",
           color=THIS_COLOUR)  # fmt: skip
    ax.set_xticks(positions, [str(label) for label in labels])
    ax.set_ylabel("tickets")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    if not labels:
        ax.text(0.5, 0.5, "no tickets", ha="center", va="center", transform=ax.transAxes)
    ax.legend(loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return save_png(figure, path)


def daily_line(days: Sequence[date], tickets: Sequence[int], path: Path, title: str) -> Path:
    """Tickets received per day, one point a day."""
    figure = _figure()
    ax = figure.add_subplot(1, 1, 1)
    positions = list(range(len(days)))
    ax.plot(positions, list(tickets), marker="o", color=THIS_COLOUR)
    ax.set_xticks(positions, [f"{d:%m-%d} {WEEKDAYS[d.weekday()]}" for d in days])
    ax.set_ylim(bottom=0, top=max([*tickets, 1]) * 1.15)
    ax.set_ylabel("tickets")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("day received")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return save_png(figure, path)
