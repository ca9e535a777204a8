"""What every chart of the notices shares (matplotlib, Agg backend, no display): the figure,
the colours, the deterministic PNG, and the this-period-against-the-last bars.

Charts are in Chinese, with names rather than codes: their text is set in Noto Sans CJK SC
(OFL), the one font loaded from the `mplfonts` package (matplotlib's own fonts have no CJK
glyphs). They are deterministic — one font file, fixed size and dpi, no software or time
stamp in the PNG metadata — so a re-run writes the same bytes. Each chart is written
atomically beside the notice that shows it as <img src="NAME.png">.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from importlib.resources import files
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib import font_manager, ft2font
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# The CJK font: only this file of mplfonts' is loaded, under a family name of its own, so
# that no system font can change a chart (a machine with Debian's fonts-noto-cjk has a
# "Noto Sans CJK SC" too, which matplotlib preferred to this file).
FONT_FILE = files("mplfonts") / "fonts" / "NotoSansCJKsc-Regular.otf"
FONT_NAME = "Duban Noto Sans CJK SC"
font_manager.fontManager.ttflist.append(
    replace(font_manager.ttfFontProperty(ft2font.FT2Font(str(FONT_FILE))), name=FONT_NAME)
)
matplotlib.rcParams["font.family"] = "sans-serif"
matplotlib.rcParams["font.sans-serif"] = [FONT_NAME, "DejaVu Sans"]
matplotlib.rcParams["axes.unicode_minus"] = False  # the CJK font has no U+2212 minus

SIZE = (8.0, 3.6)  # inches
DPI = 100
THIS_COLOUR = "#b3261e"
LAST_COLOUR = "#9aa0a6"


def new_figure(size: tuple[float, float] = SIZE) -> Figure:
    """A figure on the Agg canvas (no display), at the charts' fixed DPI."""
    figure = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Figure, path: Path) -> Path:
    """Write `figure` atomically as a deterministic PNG (no software/time metadata)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    tmp.replace(path)
    return path


def paired_bars(
    figure: Figure,
    labels: Sequence[str],
    this: Sequence[int],
    last: Sequence[int],
    path: Path,
    title: str,
    *,
    names: tuple[str, str],
    empty: str,
    rotation: int = 0,
    integer_axis: bool = False,
) -> Path:
    """Grouped bars per label: this period (`names[1]`) against the last (`names[0]`);
    `empty` is written across a chart without labels."""
    ax = figure.add_subplot(1, 1, 1)
    positions = list(range(len(labels)))
    width = 0.38
    ax.bar([p - width / 2 for p in positions], list(last), width, label=names[0],
           color=LAST_COLOUR)  # fmt: skip
    ax.bar([p + width / 2 for p in positions], list(this), width, label=names[1],
           color=THIS_COLOUR)  # fmt: skip
    ax.set_xticks(positions, [str(label) for label in labels], rotation=rotation)
    ax.set_ylabel("工单（件）")
    if integer_axis:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    if not labels:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
    ax.legend(loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return save_png(figure, path)
