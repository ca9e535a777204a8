"""The weekly analysis (周分析): week-on-week trends, hot spots, repeat complaints and the
three rates of an ISO week, for the supervision office and the lead units of the problems.

parse_week() validates "YYYY-Www"; measure_weekly() runs the SQL (duban.queries.weekly and
duban.queries.metrics) into a WeeklyAnalysis of small frames; office_context() and
lead_contexts() turn it into template contexts. A lead unit's context holds aggregate
figures and only its own citizen text (addresses of repeat complaints among its own
tickets), masked. Definitions: docs/weekly-analysis.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from duban.config import CityConfig, MetricsConfig
from duban.notices.todo import todo
from duban.periods import IsoWeek, repeat_window
from duban.queries import metrics as qm
from duban.queries import weekly as qw
from duban.rules.coverage import RateNote, rate_notes
from duban.rules.masking import citizen_text

LIST_LIMIT = 20  # rows of a table in the mail
CHART_PROBLEMS = 10  # problems in the bar chart
CHART_FILES = ("weekly-problems.png", "weekly-daily.png")
RATE_KEYS = ("response_rate", "resolution_rate", "satisfaction_rate")


@dataclass
class WeeklyAnalysis:
    week: IsoWeek
    problems: pd.DataFrame  # week_on_week by problem (problems of the week's ISO year)
    categories: pd.DataFrame
    districts: pd.DataFrame
    hot_spots: pd.DataFrame
    rising: pd.DataFrame
    repeat_address: pd.DataFrame
    repeat_caller: pd.DataFrame
    repeat_window: tuple[datetime, datetime]
    daily: pd.DataFrame
    rates: dict[str, Any]
    rates_last_week: dict[str, Any]
    problem_rates: pd.DataFrame  # unit_rates by problem for the week
    units: pd.DataFrame  # the lead units to notify: code, name, emails
    settings: MetricsConfig
    rate_notes: list[RateNote] = field(default_factory=list)  # rates the data cannot support


def measure_weekly(engine: Engine, config: CityConfig, week: IsoWeek) -> WeeklyAnalysis:
    settings = config.metrics
    response_hours = {lv.level: lv.response_hours for lv in config.urgency.levels}
    weight = settings.basically_satisfied_weight
    prev = week.previous()
    window = repeat_window(week.sunday, settings.repeat_window_days)
    lacking = config.sources_lacking
    with engine.connect() as conn:
        problems = qw.week_on_week(conn, week.monday, "problem", year=week.year)
        return WeeklyAnalysis(
            week=week,
            problems=problems,
            categories=qw.week_on_week(conn, week.monday, "category"),
            districts=qw.week_on_week(conn, week.monday, "district"),
            hot_spots=qm.hot_spots(conn, week.start, week.end, settings.hot_spots_top_n),
            rising=qm.rising_streets(
                conn, week.start, week.end, prev.start, prev.end, settings.hot_spots_top_n
            ),
            repeat_address=qm.repeat_complaints(
                conn, *window, settings.repeat_min_count, by="address"
            ),
            repeat_caller=qm.repeat_complaints(
                conn, *window, settings.repeat_min_count, by="caller"
            ),
            repeat_window=window,
            daily=qw.daily_volume(conn, week.monday, 7),
            rates=qw.city_rates(conn, week.start, week.end, response_hours, weight, lacking),
            rates_last_week=qw.city_rates(
                conn, prev.start, prev.end, response_hours, weight, lacking
            ),
            problem_rates=qm.unit_rates(
                conn, week.start, week.end, response_hours, weight, by="problem", lacking=lacking
            ),
            units=qw.lead_units(conn, [str(c) for c in problems["lead_unit"]]),
            settings=settings,
            rate_notes=rate_notes(lacking, qm.ticket_sources(conn, week.start, week.end)),
        )


# ---------------------------------------------------------------- template contexts


def _num(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _text(value: Any) -> str:
    """A text cell: "" for None/NaN (a street without a district)."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _change_rows(frame: pd.DataFrame, key: str, limit: int | None = None) -> list[dict[str, Any]]:
    rows = frame if limit is None else frame.head(limit)
    return [
        {
            "key": str(getattr(row, key)) or "（未填写）",
            "this_week": int(row.this_week),
            "last_week": int(row.last_week),
            "change": int(row.change),
            "change_rate": _num(row.change_rate),
        }
        for row in rows.itertuples(index=False)
    ]


def _problem_rows(a: WeeklyAnalysis) -> list[dict[str, Any]]:
    rates = {str(r["problem"]): r for r in a.problem_rates.to_dict(orient="records")}
    out = []
    for row in a.problems.itertuples(index=False):
        own = rates.get(str(row.problem), {})
        out.append(
            {
                "code": row.problem,
                "name": row.problem_name,
                "lead_unit": row.lead_unit,
                "lead_unit_name": row.lead_unit_name,
                "this_week": int(row.this_week),
                "last_week": int(row.last_week),
                "change": int(row.change),
                "change_rate": _num(row.change_rate),
                **{k: _num(own.get(k)) for k in RATE_KEYS},
            }
        )
    return out


def _headline(problems: list[dict[str, Any]]) -> str:
    rose = sum(1 for p in problems if p["change"] > 0)
    fell = sum(1 for p in problems if p["change"] < 0)
    return f"{len(problems)}个问题中{rose}个环比上升，{fell}个环比下降"


def _place_text(row: Any) -> str:
    """District, street and address as one place (a prefix the address has already is not
    repeated): two groups with the same address text in two districts read apart."""
    address = str(row.address)
    prefix = "".join(
        str(p) for p in (row.district, row.street) if isinstance(p, str) and p not in address
    )
    return prefix + address


def _unit_names(config: CityConfig, codes: Any) -> str:
    """The units of a repeat group ("d01,hrss", the query's codes) by name, 、-separated;
    a code the config no longer has stays as it is."""
    names = config.units.display_names()
    return "、".join(names.get(c, c) for c in str(codes).split(",") if c)


def _repeat_rows(config: CityConfig, frame: pd.DataFrame, key: str) -> list[dict[str, Any]]:
    return [
        {
            "key": citizen_text(
                _place_text(row) if key == "address" else str(row.caller),
                config.mail.max_citizen_text,
            ),
            "category": row.category,
            "tickets": int(row.tickets),
            "first_received": row.first_received,
            "last_received": row.last_received,
            "units": _unit_names(config, row.units),
        }
        for row in frame.itertuples(index=False)
    ]


def _rates(rates: dict[str, Any]) -> dict[str, Any]:
    return {k: _num(v) if k.endswith("_rate") else v for k, v in rates.items()}


def _common(config: CityConfig, a: WeeklyAnalysis) -> dict[str, Any]:
    prev = a.week.previous()
    problems = _problem_rows(a)
    return {
        "week": a.week.key,
        "monday": a.week.monday,
        "sunday": a.week.sunday,
        "last_week": prev.key,
        "last_monday": prev.monday,
        "last_sunday": prev.sunday,
        "subject_prefix": config.mail.subject_prefix,
        "generated_for": f"周分析 {a.week.key}",
        "problems": problems,
        "headline": _headline(problems),
        "categories": _change_rows(a.categories, "category", LIST_LIMIT),
        "categories_total": len(a.categories),
        "districts": _change_rows(a.districts, "district"),
        "hot_spots": [
            {
                "rank": int(r.rank),
                "street": r.street,
                "district": _text(r.district),
                "tickets": int(r.tickets),
            }
            for r in a.hot_spots.itertuples(index=False)
        ],
        "rising": [
            {
                "street": r.street,
                "district": _text(r.district),
                "this": int(r.this),
                "previous": int(r.previous),
                "change": int(r.change),
            }
            for r in a.rising.itertuples(index=False)
        ],
        "top_n": a.settings.hot_spots_top_n,
        "rates": _rates(a.rates),
        "rate_notes": [n.text for n in a.rate_notes],
        "rates_last": _rates(a.rates_last_week),
        "daily": [
            {"day": r.day, "tickets": int(r.tickets)} for r in a.daily.itertuples(index=False)
        ],
        "repeat_min_count": a.settings.repeat_min_count,
        "repeat_from": a.repeat_window[0].date(),
        "repeat_to": (a.repeat_window[1] - timedelta(days=1)).date(),
        "charts": list(CHART_FILES),
    }


def office_context(config: CityConfig, a: WeeklyAnalysis) -> dict[str, Any]:
    """The full analysis for the supervision office (督办室)."""
    return {
        **_common(config, a),
        "repeat_address": _repeat_rows(config, a.repeat_address.head(LIST_LIMIT), "address"),
        "repeat_address_total": len(a.repeat_address),
        "repeat_caller": _repeat_rows(config, a.repeat_caller.head(LIST_LIMIT), "caller"),
        "repeat_caller_total": len(a.repeat_caller),
        "lead_units_notified": len(a.units),
        "todo": todo(
            f"研判本周诉求变化和重复投诉（同一地址 {len(a.repeat_address)} 处、同一来电人 "
            f"{len(a.repeat_caller)} 人），对上升明显的街道和问题安排督办",
            f"下周周分析前（{a.week.sunday + timedelta(days=7):%Y-%m-%d}）",
        ),
    }


def lead_contexts(config: CityConfig, a: WeeklyAnalysis) -> dict[str, dict[str, Any]]:
    """One context per lead unit (主责单位) of a problem: the city's aggregate figures with
    its own problems first and marked, and the repeat complaints (by address) among its own
    tickets. No other unit's citizen text, no caller numbers."""
    common = _common(config, a)
    out: dict[str, dict[str, Any]] = {}
    for unit in a.units.itertuples(index=False):
        code = str(unit.code)
        own = [p for p in common["problems"] if p["lead_unit"] == code]
        others = [p for p in common["problems"] if p["lead_unit"] != code]
        repeats = a.repeat_address
        mine = (
            repeats[[code in str(u).split(",") for u in repeats["units"]]]
            if len(repeats)
            else repeats
        )
        out[code] = {
            **common,
            "unit": {"code": code, "name": unit.name},
            "emails": list(unit.emails or []),
            "own_problems": own,
            "other_problems": others,
            "repeat_address": [
                {k: v for k, v in r.items() if k != "units"}
                for r in _repeat_rows(config, mine.head(LIST_LIMIT), "address")
            ],
            "repeat_address_total": len(mine),
            "todo": todo(
                f"对照本单位牵头的 {len(own)} 个问题研判本周诉求变化，推动解决"
                + (f"；核查本单位工单中的重复投诉 {len(mine)} 处" if len(mine) else ""),
                f"下周周分析前（{a.week.sunday + timedelta(days=7):%Y-%m-%d}）",
            ),
        }
    return out


def chart_problems(a: WeeklyAnalysis, limit: int = CHART_PROBLEMS) -> pd.DataFrame:
    """The problems of the bar chart: most tickets this week (then last week), by code."""
    frame = a.problems[(a.problems["this_week"] > 0) | (a.problems["last_week"] > 0)]
    return frame.sort_values(
        ["this_week", "last_week", "problem"], ascending=[False, False, True], kind="stable"
    ).head(limit)
