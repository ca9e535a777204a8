"""The annual summary is a record: the run that renders the year records the figures it shows
(the city's figures, each unit's total, rank and place) and freezes every notice's files (the
summary, 评分.csv, each unit's breakdown); a re-run writes them back before delivering and
counts the figures changed since (duban/notices/records.py `keep`; docs/evaluation.md). A
correction of the annual summary is not built yet."""

from __future__ import annotations

from typing import Any

from duban.context import LoopContext
from duban.loops.annual.evaluation import LOOP, AnnualSnapshot, city_figures, measure_annual
from duban.notices import records
from duban.notices.records import ALL_KINDS, Figure

__all__ = ["annual_figures", "keep_year"]

CITY = "*"


def _shown(key: str, value: Any) -> str | None:
    if value is None:
        return None
    return f"{100 * value:.1f}%" if key.endswith("_rate") else str(value)


def annual_figures(snap: AnnualSnapshot) -> list[Figure]:
    """The city's figures of the year and, per unit scored, its total (to the cent, as the
    summary prints it), rank and whether it is among the top or the bottom of its group."""
    out = [Figure(CITY, k, f"全市 {k}", _shown(k, v)) for k, v in city_figures(snap).items()]
    for s in snap.scores:
        out += [
            Figure(s.code, "total", f"{s.name} 总分", f"{s.total:.2f}"),
            Figure(s.code, "rank", f"{s.name} 排名", None if s.rank is None else str(s.rank)),
            Figure(s.code, "place", f"{s.name} 位次",
                   "前列" if s.top else "靠后" if s.bottom else "—"),
        ]  # fmt: skip
    return out


def keep_year(ctx: LoopContext, year: int, snap: AnnualSnapshot | None) -> dict[str, Any]:
    """Record the year (`snap`: the run that rendered it) or reproduce it and count what
    changed (measured again for that)."""
    rendered_now = snap is not None
    measured = snap if snap is not None else measure_annual(ctx.engine, ctx.config, year)
    return records.keep(
        ctx.engine, LOOP, str(year), ALL_KINDS, annual_figures(measured),
        rendered_now=rendered_now,
    )  # fmt: skip
