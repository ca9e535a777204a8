"""The figures of the weekly analysis on SQLite and PostgreSQL, each checked against an
independent computation in plain pandas over the raw ticket table, from the definitions in
docs/weekly-analysis.md (never by calling the code under test)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, insert, select

from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import Problem, Ticket, Unit
from duban.ingest.city import sync_city
from duban.loops.weekly.report import measure_weekly
from duban.periods import IsoWeek, WeekError, parse_week
from duban.queries.weekly import city_rates, daily_volume, week_on_week

HOURS = {1: 2.0, 2: 12.0, 3: 24.0, 4: 24.0}  # config/urgency.yaml
WEIGHT = 0.8
UNITS = ["dc-jianguomen", "dc-donghuamen", "cy-jianwai", "cy-sanlitun", "housing", "hrss", "water"]
DISTRICTS = ["东城区", "朝阳区", "海淀区", None]
STREETS = ["建国门街道", "东华门街道", "建外街道", "三里屯街道", None]
CATEGORIES = ["房产证办理", "拖欠工资", "农民工工资", "噪声扰民", "垃圾清运", "占道经营"]
SATISFACTION = ["satisfied", "basically_satisfied", "dissatisfied", None]
PROBLEMS = [None, None, "P01", "P02", "P03", "P04"]

# Weeks under test. 2026-W01 runs Mon 2025-12-29 .. Sun 2026-01-04 (its previous week is
# 2025-W52); 2026-W44 runs Mon 2026-10-26 .. Sun 2026-11-01; 2026-W30 has no tickets at all.
YEAR_BOUNDARY = IsoWeek(2026, 1)
MONTH_BOUNDARY = IsoWeek(2026, 44)
EMPTY = IsoWeek(2026, 30)
SPANS = [
    (datetime(2025, 12, 15), datetime(2026, 1, 12)),
    (datetime(2026, 10, 12), datetime(2026, 11, 9)),
]


@pytest.fixture
def tickets(engine: Engine, city_config: CityConfig) -> Engine:
    with session_scope(engine) as session:
        sync_city(session, city_config)
        units = {code: uid for code, uid in session.execute(select(Unit.code, Unit.id))}
        # P03 belongs to 2025 (not listed in a week of ISO year 2026); P04 to 2026.
        for code, year, lead in (("P03", 2025, "water"), ("P04", 2026, "cy")):
            session.add(
                Problem(
                    code=code, name=f"问题{code}", category="其他", approach="governance",
                    year=year, lead_unit_id=units[lead], ticket_categories=[],
                )
            )  # fmt: skip
        session.flush()
        problems = {code: pid for code, pid in session.execute(select(Problem.code, Problem.id))}
    rows = ticket_rows(units, problems)
    with engine.begin() as conn:
        conn.execute(insert(Ticket.__table__), rows)
    return engine


def ticket_rows(units: dict[str, int], problems: dict[str, int]) -> list[dict[str, Any]]:
    rng = np.random.default_rng(20261109)
    received: list[datetime] = []
    for start, end in SPANS:
        span = (end - start).total_seconds()
        received += [start + timedelta(seconds=int(rng.uniform(0, span))) for _ in range(260)]
    # The edges of the weeks: Monday 00:00:00 is in, the next Monday 00:00:00 is out.
    for week in (YEAR_BOUNDARY, MONTH_BOUNDARY):
        monday = datetime.combine(week.monday, datetime.min.time())
        received += [monday, monday - timedelta(seconds=1), monday + timedelta(days=7)]
        received += [monday + timedelta(days=7, seconds=-1)]
    rows = []
    for i, when in enumerate(received):
        urgency = int(rng.integers(1, 5))
        limit = HOURS[urgency] * 3600
        k = rng.random()
        response = (
            None if k < 0.2
            else when + timedelta(seconds=limit) if k < 0.3  # exactly at the limit: in time
            else when + timedelta(seconds=int(rng.uniform(0, 3 * limit)))
        )  # fmt: skip
        due = datetime.combine((when + timedelta(days=int(rng.integers(1, 12)))).date(),
                               datetime.max.time()).replace(microsecond=0)  # fmt: skip
        c = rng.random()
        closed = (
            None if c < 0.25
            else due if c < 0.35
            else when + timedelta(seconds=int(rng.uniform(600, 12 * 86400)))
        )  # fmt: skip
        problem = PROBLEMS[int(rng.integers(len(PROBLEMS)))]
        rows.append({
            "source": "test", "external_id": f"W{i:04d}", "received_at": when,
            "first_response_at": response, "closed_at": closed, "due_at": due,
            "category": CATEGORIES[int(rng.integers(len(CATEGORIES)))],
            "district": DISTRICTS[int(rng.integers(len(DISTRICTS)))],
            "street": STREETS[int(rng.integers(len(STREETS)))],
            "address": f"幸福路{int(rng.integers(1, 4))}号",
            "caller_phone": f"1380000000{int(rng.integers(1, 4))}",
            "unit_id": units[UNITS[int(rng.integers(len(UNITS)))]],
            "problem_id": problems[problem] if problem else None,
            "urgency": urgency,
            "status": "closed" if closed is not None else "in_progress",
            "resolved": bool(rng.random() < 0.7) if closed is not None else None,
            "satisfaction": SATISFACTION[int(rng.integers(len(SATISFACTION)))],
            "row_hash": 0,
        })  # fmt: skip
    return rows


def raw_tickets(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        t = pd.read_sql(select(Ticket.__table__), conn)
    t["satisfaction"] = t["satisfaction"].map(lambda s: None if pd.isna(s) else str(s))
    for column in ("received_at", "first_response_at", "closed_at", "due_at"):
        t[column] = pd.to_datetime(t[column])
    return t


def raw_problems(engine: Engine) -> pd.DataFrame:
    """Problems with their lead unit's code and name."""
    with engine.connect() as conn:
        p = pd.read_sql(select(Problem.__table__), conn)
        u = pd.read_sql(select(Unit.__table__), conn)
    lead = u[["id", "code", "name"]].rename(
        columns={"id": "lead_unit_id", "code": "lead_unit", "name": "lead_unit_name"}
    )
    return p.merge(lead, on="lead_unit_id")


def _weeks(week: IsoWeek) -> tuple[datetime, datetime, datetime]:
    monday = datetime.combine(week.monday, datetime.min.time())
    return monday - timedelta(days=7), monday, monday + timedelta(days=7)


def _change(frame: pd.DataFrame) -> pd.DataFrame:
    frame["change"] = frame["this_week"] - frame["last_week"]
    frame["change_rate"] = frame["change"] / frame["last_week"].where(frame["last_week"] != 0)
    return frame


def expected_by(t: pd.DataFrame, p: pd.DataFrame, week: IsoWeek, by: str) -> pd.DataFrame:
    last_start, this_start, this_end = _weeks(week)
    r = t["received_at"]
    t = t.assign(
        this_week=((r >= this_start) & (r < this_end)).astype(int),
        last_week=((r >= last_start) & (r < this_start)).astype(int),
    )
    if by == "problem":
        p = p[p["year"] == week.year]
        counts = t.groupby("problem_id")[["this_week", "last_week"]].sum()
        out = pd.DataFrame({
            "problem": p["code"], "problem_name": p["name"], "lead_unit": p["lead_unit"],
            "lead_unit_name": p["lead_unit_name"],
            "this_week": [int(counts["this_week"].get(i, 0)) for i in p["id"]],
            "last_week": [int(counts["last_week"].get(i, 0)) for i in p["id"]],
        }).sort_values("problem")  # fmt: skip
        return _change(out).reset_index(drop=True)
    t = t[(t["this_week"] == 1) | (t["last_week"] == 1)]
    t[by] = t[by].fillna("")
    g = t.groupby(by)[["this_week", "last_week"]].sum().reset_index()
    g["empty"] = g[by] == ""
    g = g.sort_values(["this_week", "empty", by], ascending=[False, True, True], kind="stable")
    return _change(g.drop(columns="empty")).reset_index(drop=True)


def expected_city_rates(t: pd.DataFrame, start: datetime, end: datetime) -> dict[str, Any]:
    rec = (t["received_at"] >= start) & (t["received_at"] < end)
    due = (t["due_at"] >= start) & (t["due_at"] < end)
    waited = (t["first_response_at"] - t["received_at"]).dt.total_seconds()
    in_time = t["first_response_at"].notna() & (waited <= t["urgency"].map(HOURS) * 3600)
    closed = t["closed_at"].notna()
    resolved = t["resolved"].map(lambda v: v is True or v == 1)
    n = {
        "tickets": int(rec.sum()),
        "responded_in_time": int((rec & in_time).sum()),
        "due": int(due.sum()),
        "closed_on_time": int((due & closed & (t["closed_at"] <= t["due_at"])).sum()),
        "closed": int((rec & closed).sum()),
        "closed_resolved": int((rec & closed & resolved).sum()),
        "rated": int((rec & t["satisfaction"].notna()).sum()),
    }
    satisfied = float(
        (rec & (t["satisfaction"] == "satisfied")).sum()
        + WEIGHT * (rec & (t["satisfaction"] == "basically_satisfied")).sum()
    )

    def rate(a: float, b: int) -> float | None:
        return a / b if b else None

    return {
        **n,
        "response_rate": rate(n["responded_in_time"], n["tickets"]),
        "on_time_rate": rate(n["closed_on_time"], n["due"]),
        "resolution_rate": rate(n["closed_resolved"], n["closed"]),
        "satisfied": satisfied,
        "satisfaction_rate": rate(satisfied, n["rated"]),
        # Every ticket comes from a source that carries every field: the denominators.
        "response_base": n["tickets"],
        "on_time_base": n["due"],
        "resolution_base": n["closed"],
    }


def same(actual: pd.DataFrame, expected: pd.DataFrame, what: str) -> None:
    assert list(actual.columns) == list(expected.columns), what
    assert len(actual) == len(expected), what
    a, e = actual.reset_index(drop=True), expected.reset_index(drop=True)
    for column in expected.columns:
        if column == "change_rate":
            np.testing.assert_allclose(a[column].astype(float), e[column].astype(float),
                                       rtol=1e-12, err_msg=f"{what}: {column}")  # fmt: skip
        else:
            assert [*a[column]] == [*e[column]], f"{what}: {column}"


WEEKS = [YEAR_BOUNDARY, MONTH_BOUNDARY, EMPTY]


@pytest.mark.parametrize("week", WEEKS, ids=lambda w: w.key)
@pytest.mark.parametrize("by", ["problem", "category", "district"])
def test_week_on_week_matches_pandas(tickets: Engine, week: IsoWeek, by: str) -> None:
    t = raw_tickets(tickets)
    with tickets.connect() as conn:
        actual = week_on_week(conn, week.monday, by, year=week.year if by == "problem" else None)
    expected = expected_by(t, raw_problems(tickets), week, by)
    same(actual, expected, f"{week.key} by {by}")
    if week == EMPTY:
        if by == "problem":
            assert (actual["this_week"] == 0).all() and actual["change_rate"].isna().all()
        else:
            assert actual.empty
    else:
        assert actual["this_week"].sum() > 10 and actual["last_week"].sum() > 10


def test_the_week_is_monday_0000_to_next_monday_0000(tickets: Engine) -> None:
    with tickets.connect() as conn:
        frame = week_on_week(conn, YEAR_BOUNDARY.monday, "category")
    t = raw_tickets(tickets)
    _, this_start, this_end = _weeks(YEAR_BOUNDARY)
    # The edge tickets of the fixture: one at Monday 00:00 and one at Sunday 23:59:59 are in.
    assert {this_start, this_end - timedelta(seconds=1)} <= set(t["received_at"])
    assert int(frame["this_week"].sum()) == int(
        ((t["received_at"] >= this_start) & (t["received_at"] < this_end)).sum()
    )
    # Week 1 of 2026 starts in December 2025 and its previous week is 2025-W52.
    assert YEAR_BOUNDARY.monday == date(2025, 12, 29) and YEAR_BOUNDARY.previous().key == "2025-W52"


def test_problem_rows_are_the_problems_of_the_weeks_iso_year(tickets: Engine) -> None:
    with tickets.connect() as conn:
        of_2026 = week_on_week(conn, YEAR_BOUNDARY.monday, "problem", year=2026)
        of_2025 = week_on_week(conn, date(2025, 12, 22), "problem", year=2025)
    assert list(of_2026["problem"]) == ["P01", "P02", "P04"]
    assert list(of_2025["problem"]) == ["P03"]
    assert list(of_2026["lead_unit"]) == ["housing", "hrss", "cy"]


@pytest.mark.parametrize("week", WEEKS, ids=lambda w: w.key)
def test_daily_volume_matches_pandas(tickets: Engine, week: IsoWeek) -> None:
    t = raw_tickets(tickets)
    with tickets.connect() as conn:
        actual = daily_volume(conn, week.monday)
    days = [week.monday + timedelta(days=i) for i in range(7)]
    expected = [int((t["received_at"].dt.date == d).sum()) for d in days]
    assert list(actual["day"]) == days
    assert list(actual["tickets"]) == expected
    assert (sum(expected) == 0) == (week == EMPTY)


@pytest.mark.parametrize("week", WEEKS, ids=lambda w: w.key)
def test_city_rates_match_pandas(tickets: Engine, week: IsoWeek) -> None:
    t = raw_tickets(tickets)
    _, start, end = _weeks(week)
    with tickets.connect() as conn:
        actual = city_rates(conn, start, end, HOURS, WEIGHT)
    expected = expected_city_rates(t, start, end)
    assert set(actual) == set(expected)
    for key, value in expected.items():
        if value is None:
            assert actual[key] is None, key
        else:
            assert actual[key] == pytest.approx(value, rel=1e-12), key
    if week == EMPTY:
        assert actual["tickets"] == 0 and actual["response_rate"] is None
    else:
        assert 0 < actual["response_rate"] < 1 and actual["tickets"] > 50


def test_measure_weekly_puts_the_figures_together(tickets: Engine, city_config: CityConfig) -> None:
    analysis = measure_weekly(tickets, city_config, MONTH_BOUNDARY)
    t = raw_tickets(tickets)
    last_start, start, end = _weeks(MONTH_BOUNDARY)
    in_week = t[(t["received_at"] >= start) & (t["received_at"] < end)]
    assert analysis.rates["tickets"] == len(in_week)
    assert analysis.rates_last_week["tickets"] == int(
        ((t["received_at"] >= last_start) & (t["received_at"] < start)).sum()
    )
    # Hot spots: top 5 streets of the week by tickets (ties by street name, then district).
    streets = in_week[in_week["street"].notna()].copy()
    streets["district"] = streets["district"].fillna("\uffff")
    top = (
        streets.groupby(["street", "district"]).size().rename("n").reset_index()
        .sort_values(["n", "street", "district"], ascending=[False, True, True]).head(5)
    )  # fmt: skip
    assert list(analysis.hot_spots["tickets"]) == list(top["n"])
    assert list(analysis.hot_spots["street"]) == list(top["street"])
    # Repeat complaints: the 30 days up to the week's Sunday.
    assert analysis.repeat_window == (datetime(2026, 10, 3), datetime(2026, 11, 2))
    window = t[
        (t["received_at"] >= datetime(2026, 10, 3)) & (t["received_at"] < datetime(2026, 11, 2))
    ]
    # The same place is the same district, street and address (幸福路1号 is in every district).
    groups = window.groupby(["district", "street", "address", "category"], dropna=False).size()
    assert sorted(analysis.repeat_address["tickets"], reverse=True) == sorted(
        (int(n) for n in groups if n >= 3), reverse=True
    )
    assert set(analysis.units["code"]) == {"housing", "hrss", "cy"}


@pytest.mark.parametrize(
    "value, message",
    [
        ("2026-45", "expected an ISO week written YYYY-Www"),
        ("2026-W5", "expected an ISO week written YYYY-Www"),
        ("next week", "'next week'"),
        ("2026-W53", "2026 has weeks 01 to 53"),
        ("2025-W53", "'2025-W53' does not exist: 2025 has weeks 01 to 52"),
        ("2026-W00", "does not exist"),
    ],
)
def test_parse_week_names_the_bad_value(value: str, message: str) -> None:
    if value == "2026-W53":
        assert parse_week(value).monday == date(2026, 12, 28)  # 2026 has 53 ISO weeks
        return
    with pytest.raises(WeekError, match=message.replace("(", r"\(")) as info:
        parse_week(value)
    assert repr(value) in str(info.value)


def test_parse_week() -> None:
    week = parse_week(" 2026-W45 ")
    assert (week.key, week.monday, week.sunday) == (
        "2026-W45",
        date(2026, 11, 2),
        date(2026, 11, 8),
    )
    assert parse_week("2026-W01").previous() == IsoWeek(2025, 52)
