"""The weekly charts: PNG, deterministic bytes, no software or time stamp in the metadata."""

from __future__ import annotations

import warnings
from datetime import date, timedelta
from pathlib import Path

from duban.loops.weekly.charts import daily_line, week_bars

DAYS = [date(2025, 12, 29) + timedelta(days=i) for i in range(7)]


def _draw(folder: Path) -> list[bytes]:
    bars = week_bars(["P01", "P02", "P03"], [4, 3, 0], [1, 4, 2], folder / "b.png", "Problems")
    line = daily_line(DAYS, [3, 3, 3, 1, 2, 0, 0], folder / "d.png", "Per day")
    empty = week_bars([], [], [], folder / "e.png", "No tickets")
    return [p.read_bytes() for p in (bars, line, empty)]


def test_charts_are_png_and_the_same_bytes_every_time(tmp_path: Path) -> None:
    first = _draw(tmp_path / "one")
    second = _draw(tmp_path / "two")
    assert first == second
    for png in first:
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000
        assert b"matplotlib" not in png and b"Software" not in png
        assert b"tIME" not in png  # no modification time chunk
    assert not list(tmp_path.rglob("*.tmp"))


def test_different_figures_give_different_charts(tmp_path: Path) -> None:
    a = week_bars(["P01"], [4], [1], tmp_path / "a.png", "Problems").read_bytes()
    b = week_bars(["P01"], [5], [1], tmp_path / "b.png", "Problems").read_bytes()
    assert a != b


def test_chinese_text_is_drawn_with_the_cjk_font(tmp_path: Path) -> None:
    """Every glyph of a Chinese chart exists in the font: matplotlib warns ("Glyph ...
    missing from font(s)") and draws an empty box otherwise — an error here."""
    from matplotlib import font_manager
    from matplotlib.font_manager import FontProperties

    from duban.loops.monthly.charts import score_bars
    from duban.notices.charts import FONT_FILE

    used = font_manager.findfont(FontProperties(family=["sans-serif"]), fallback_to_default=False)
    assert Path(used).resolve() == Path(str(FONT_FILE)).resolve()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        week_bars(["房产证办证难", "拖欠工资"], [4, 3], [1, 4], tmp_path / "b.png", "各问题诉求量")
        daily_line(DAYS, [3, 3, 3, 1, 2, 0, 0], tmp_path / "d.png", "每日受理量：2026-W01")
        groups = [("街道（乡镇）", [("建国门街道", 91.5, False), ("三里屯街道", 60.0, True)])]
        score_bars(groups, tmp_path / "s.png", "2026-10 综合得分")
