"""The figures of the monthly bulletin on SQLite and PostgreSQL, each checked against an
independent computation in plain pandas over the raw rows, from the definitions in
docs/metrics.md (never by calling the code under test)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, insert, select, update

from duban.cli.metrics import write_metrics
from duban.config import RATE_FIELDS, CityConfig, ConfigError, MetricsConfig, load_config
from duban.db import session_scope
from duban.db.models import PlanTask, Policy, Problem, Ticket, Unit
from duban.ingest.city import sync_city
from duban.periods import period
from duban.queries.metrics import (
    CLOCK_COLUMNS,
    headline_en,
    hot_spots,
    metrics_frame,
    overdue_plan_tasks,
    plan_progress,
    problem_volumes,
    repeat_complaints,
    rising_streets,
    unit_rates,
)
from duban.queries.metrics import headline as headline_zh
from duban.queries.weekly import city_rates
from duban.rules.places import place_key

HOURS = {1: 2.0, 2: 12.0, 3: 24.0, 4: 24.0}  # config/urgency.yaml
WEIGHT = 0.8
UNITS = ["dc-jianguomen", "dc-donghuamen", "cy-jianwai", "cy-sanlitun", "housing", "hrss", "water"]
PLACES = [  # (district, street) as the tickets spell them; None where the export had none
    ("东城区", "建国门街道"), ("东城区", "东华门街道"), ("朝阳区", "建外街道"),
    ("朝阳区", "三里屯街道"), ("朝阳区", "望京街道"), (None, "望京街道"), ("东城区", None),
    (None, None),
]  # fmt: skip
CATEGORIES = ["房产证办理", "拖欠工资", "农民工工资", "噪声扰民", "垃圾清运", "占道经营"]
ADDRESSES = [
    "建国门内大街1号",
    "三里屯路19号",
    "望京西园3区",
    "东华门大街5号",
    "",
    "建国门内大街１号院",
    "朝阳区三里屯路 19号",
]  # the same places spelled apart
PHONES = ["13800000001", "13800000002", "13800000003", "01065000000"]
SATISFACTION = ["satisfied", "basically_satisfied", "dissatisfied", None]
EXTRA_PROBLEMS = ["P03", "P04", "P05", "P06", "P07", "P08"]
ONLY_THIS_MONTH = "P08"  # tickets only in March 2026: month on month is NaN
OLD_PROBLEM = "P09"  # of 2025, no plan items: not in plan_progress(2026)

MARCH = (datetime(2026, 3, 1), datetime(2026, 4, 1))
RATE_HEADER = {
    "unit": ["unit", "unit_name", "kind"],
    "district": ["district"],
    "street": ["street"],
    "category": ["category"],
    "problem": ["problem", "problem_name"],
}
FIGURES = [
    "tickets", "responded_in_time", "response_rate", "due", "closed_on_time", "on_time_rate",
    "resolved", "resolution_rate", "rated", "satisfied", "satisfaction_rate", "returned",
    "excluded", "no_deadline",
]  # fmt: skip


@dataclass
class City:
    engine: Engine
    config: CityConfig
    units: dict[str, int]
    problems: dict[str, int]


@pytest.fixture
def city(engine: Engine, city_config: CityConfig) -> City:
    with session_scope(engine) as session:
        sync_city(session, city_config)
        units = {code: uid for code, uid in session.execute(select(Unit.code, Unit.id))}
        for i, code in enumerate([*EXTRA_PROBLEMS, OLD_PROBLEM]):
            session.add(
                Problem(
                    code=code, name=f"问题{code}", category="其他", approach="governance",
                    year=2025 if code == OLD_PROBLEM else 2026,
                    lead_unit_id=units[UNITS[i % len(UNITS)]], ticket_categories=[],
                )
            )  # fmt: skip
        session.flush()
        problems = {code: pid for code, pid in session.execute(select(Problem.code, Problem.id))}
    return City(engine, city_config, units, problems)


def _at(day: datetime, seconds: float) -> datetime:
    return day + timedelta(seconds=int(seconds))


def ticket_rows(city: City, n: int = 420, seed: int = 20260301) -> list[dict[str, Any]]:
    """Random tickets of the example city, whole seconds; Feb 2025 deliberately empty."""
    rng = np.random.default_rng(seed)
    span_2026 = (datetime(2026, 4, 30) - datetime(2026, 1, 1)).total_seconds()
    problems = [None, None, None, "P01", "P02", *EXTRA_PROBLEMS, OLD_PROBLEM]
    rows: list[dict[str, Any]] = []
    for i in range(n):
        if rng.random() < 0.15:  # March 2025: the same month last year
            received = _at(datetime(2025, 3, 1), rng.uniform(0, 31 * 86400))
        else:
            received = _at(datetime(2026, 1, 1), rng.uniform(0, span_2026))
        urgency = int(rng.integers(1, 5))
        limit = HOURS[urgency] * 3600
        kind = rng.random()
        if kind < 0.15:
            first_response = None
        elif kind < 0.25:
            first_response = _at(received, limit)  # exactly at the limit: in time
        elif kind < 0.45:
            first_response = _at(received, rng.uniform(limit + 1, 4 * limit))  # late
        else:
            first_response = _at(received, rng.uniform(60, limit))
        # Due at 23:59:59 a few days on: often in the next month.
        due = datetime.combine(
            (received + timedelta(days=int(rng.integers(1, 16)))).date(), datetime.max.time()
        ).replace(microsecond=0)
        c = rng.random()
        if c < 0.2:
            closed = None
        elif c < 0.3:
            closed = due  # closed exactly at the deadline: on time
        elif c < 0.5:
            closed = _at(due, rng.uniform(1, 6 * 86400))  # late, maybe next month
        else:
            closed = _at(received, rng.uniform(3600, max((due - received).total_seconds(), 7200)))
        r = rng.random()
        resolved = (r < 0.7) if closed is not None else (True if r < 0.1 else None)
        district, street = PLACES[int(rng.integers(len(PLACES)))]
        problem = problems[int(rng.integers(len(problems)))]
        rows.append({
            "source": "test", "external_id": f"T{i:04d}", "received_at": received,
            "first_response_at": first_response, "closed_at": closed, "due_at": due,
            "category": CATEGORIES[int(rng.integers(len(CATEGORIES)))],
            "district": district, "street": street,
            "address": ADDRESSES[int(rng.integers(len(ADDRESSES)))] if rng.random() < 0.9 else None,
            "caller_phone": PHONES[int(rng.integers(len(PHONES)))] if rng.random() < 0.8 else None,
            "unit_id": city.units[UNITS[int(rng.integers(len(UNITS)))]],
            "problem_id": city.problems[problem] if problem else None,
            "urgency": urgency if rng.random() > 0.01 else 9,  # 9: no configured limit
            "status": "closed" if closed is not None else "in_progress",
            "resolved": resolved,
            "satisfaction": SATISFACTION[int(rng.integers(len(SATISFACTION)))],
            "returned_count": int(rng.choice([0, 0, 0, 1, 2])),
            "reassigned_count": int(rng.choice([0, 0, 0, 0, 1])),
            "row_hash": 0,
        })  # fmt: skip
        if problem == ONLY_THIS_MONTH and not MARCH[0] <= received < MARCH[1]:
            rows[-1]["problem_id"] = None
    # The boundaries of March: the first second is in, April's first second is out.
    base = dict(rows[0], first_response_at=None, closed_at=None, resolved=None, satisfaction=None)
    for ext, when in (("EDGE-IN", MARCH[0]), ("EDGE-OUT", MARCH[1])):
        rows.append(dict(base, external_id=ext, received_at=when, due_at=when + timedelta(3)))
    # Copies of March tickets that count in no rate (cancelled, invalid, closed on time or not)
    # and copies without a deadline (无办理时限: never due, in every other rate).
    march = [r for r in rows if MARCH[0] <= r["received_at"] < MARCH[1]]
    for j, r in enumerate(march[:24]):
        status = ("cancelled", "invalid")[j % 2]
        rows.append(dict(r, external_id=f"X{j:04d}", status=status))
    for j, r in enumerate(march[24:44]):
        rows.append(dict(r, external_id=f"N{j:04d}", due_at=None))
    return rows


def plan_rows(city: City, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    months = pd.date_range("2025-11-01", "2027-01-01", freq="MS").date
    statuses = ["planned", "in_progress", "done", "done"]
    tasks, policies = [], []
    codes = ["P01", "P02", *EXTRA_PROBLEMS]
    for kind, n, out in (("T", 90, tasks), ("Z", 30, policies)):
        for i in range(n):
            problem = codes[int(rng.integers(len(codes)))]
            due = months[int(rng.integers(len(months)))]
            status = statuses[int(rng.integers(len(statuses)))]
            done_on: date | None = None
            if status == "done":
                r = rng.random()
                done_on = None if r < 0.15 else due + timedelta(days=int(rng.integers(-40, 60)))
            row = {
                "problem_id": city.problems[problem], "code": f"{problem}-{kind}{i:03d}",
                "title": f"任务{i}", "owner_unit_id": city.units[UNITS[i % len(UNITS)]],
                "due_month": due, "status": status,
            }  # fmt: skip
            if kind == "T":
                row.update(progress=float(rng.random()), completed_on=done_on)
            else:
                row.update(issued_on=done_on)
            out.append(row)
    # Done, but only after the reporting days: still overdue as of 31 May and 1 June.
    tasks.append(
        dict(
            tasks[0],
            code="P01-LATE",
            problem_id=city.problems["P01"],
            due_month=date(2026, 3, 1),
            status="done",
            completed_on=date(2026, 6, 10),
        )
    )
    return tasks, policies


@pytest.fixture
def data(city: City) -> City:
    tasks, policies = plan_rows(city)
    with city.engine.begin() as conn:
        conn.execute(insert(Ticket.__table__), ticket_rows(city))
        conn.execute(insert(PlanTask.__table__), tasks)
        conn.execute(insert(Policy.__table__), policies)
    return city


def raw(engine: Engine, table: Any) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(select(table), conn)


def raw_tickets(engine: Engine) -> pd.DataFrame:
    t = raw(engine, Ticket.__table__)
    units = raw(engine, Unit.__table__)[["id", "code", "name", "kind"]]
    units.columns = ["unit_id", "unit", "unit_name", "kind"]
    problems = raw(engine, Problem.__table__)[["id", "code", "name"]]
    problems.columns = ["problem_id", "problem", "problem_name"]
    t = t.merge(units, on="unit_id", how="left").merge(problems, on="problem_id", how="left")
    t["kind"] = t["kind"].map(str)
    t["satisfaction"] = t["satisfaction"].map(lambda s: None if pd.isna(s) else str(s))
    for column in ("received_at", "first_response_at", "closed_at", "due_at"):
        t[column] = pd.to_datetime(t[column])
    return t


def _div(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den != 0)).astype("float64")


def expected_rates(t: pd.DataFrame, start: datetime, end: datetime, by: str) -> pd.DataFrame:
    """The definitions of docs/metrics.md, row by row, in plain pandas."""
    t = t.copy()
    rec_any = (t["received_at"] >= start) & (t["received_at"] < end)
    counts = ~t["status"].map(str).isin(["cancelled", "invalid"])
    rec = rec_any & counts
    due = (t["due_at"] >= start) & (t["due_at"] < end) & counts  # NaT: never due
    limit = t["urgency"].map(HOURS) * 3600  # NaN for a level without a limit
    waited = (t["first_response_at"] - t["received_at"]).dt.total_seconds()
    in_time = t["first_response_at"].notna() & (waited <= limit)
    closed = t["closed_at"].notna()
    is_resolved = t["resolved"].map(lambda v: v is True or v == 1)
    t["tickets"] = rec.astype(int)
    t["responded_in_time"] = (rec & in_time).astype(int)
    t["due"] = due.astype(int)
    t["closed_on_time"] = (due & closed & (t["closed_at"] <= t["due_at"])).astype(int)
    t["resolved"] = (rec & is_resolved).astype(int)
    t["closed_resolved"] = (rec & closed & is_resolved).astype(int)
    t["closed"] = (rec & closed).astype(int)
    t["rated"] = (rec & t["satisfaction"].notna()).astype(int)
    t["satisfied"] = np.where(
        rec,
        (t["satisfaction"] == "satisfied") * 1.0
        + (t["satisfaction"] == "basically_satisfied") * WEIGHT,
        0.0,
    )
    t["returned"] = np.where(rec, t["returned_count"] + t["reassigned_count"], 0)
    t["excluded"] = (rec_any & ~counts).astype(int)
    t["no_deadline"] = (rec & t["due_at"].isna()).astype(int)
    keys = RATE_HEADER[by]
    t = t[rec_any | due]
    if by == "problem":
        t = t[t["problem_id"].notna()]
    sums = ["tickets", "responded_in_time", "due", "closed_on_time", "resolved"]
    sums += ["closed_resolved", "closed", "rated", "satisfied", "returned", "excluded"]
    sums += ["no_deadline"]
    g = t.groupby(keys, dropna=False, sort=False)[sums].sum().reset_index()
    g["response_rate"] = _div(g["responded_in_time"], g["tickets"])
    g["on_time_rate"] = _div(g["closed_on_time"], g["due"])
    g["resolution_rate"] = _div(g["closed_resolved"], g["closed"])
    g["satisfaction_rate"] = _div(g["satisfied"], g["rated"])
    g = g.sort_values(keys[0], na_position="last", kind="stable").reset_index(drop=True)
    return g[keys + FIGURES]


def same(actual: pd.DataFrame, expected: pd.DataFrame, what: str) -> None:
    assert list(actual.columns) == list(expected.columns), what
    assert len(actual) == len(expected), what
    a, e = actual.reset_index(drop=True), expected.reset_index(drop=True)
    for column in expected.columns:
        x, y = a[column], e[column]
        if pd.api.types.is_float_dtype(y) or pd.api.types.is_float_dtype(x):
            np.testing.assert_allclose(
                x.astype(float), y.astype(float), rtol=1e-12, err_msg=f"{what}: {column}"
            )
        else:
            xs = [None if pd.isna(v) else v for v in x]
            ys = [None if pd.isna(v) else v for v in y]
            assert xs == ys, f"{what}: {column}"


# ---------------------------------------------------------------- the three rates


@pytest.mark.parametrize(
    "start, end",
    [
        MARCH,
        (datetime(2026, 2, 10, 12, 30), datetime(2026, 3, 5)),
        (datetime(2025, 1, 1), MARCH[1]),
    ],
)
def test_unit_rates_match_the_definitions(data: City, start: datetime, end: datetime) -> None:
    t = raw_tickets(data.engine)
    with data.engine.connect() as conn:
        for by in RATE_HEADER:
            actual = unit_rates(conn, start, end, HOURS, WEIGHT, by=by)
            expected = expected_rates(t, start, end, by)
            same(actual, expected, f"by={by}")
            assert actual["tickets"].sum() > 0
            for rate in ("response_rate", "on_time_rate", "resolution_rate", "satisfaction_rate"):
                values = actual[rate].dropna()
                assert ((values >= 0) & (values <= 1)).all(), (by, rate)
    # The sample covers what it claims to: every kind of ticket occurs in the period.
    rec = t[(t["received_at"] >= start) & (t["received_at"] < end)]
    assert rec["first_response_at"].isna().any() and rec["closed_at"].isna().any()
    assert rec["satisfaction"].isna().any()
    assert set(rec["satisfaction"].dropna()) == {"satisfied", "basically_satisfied", "dissatisfied"}
    assert set(rec["urgency"]) >= {1, 2, 3, 4}
    assert (rec["returned_count"] + rec["reassigned_count"]).gt(0).any()
    crossing = rec[rec["due_at"] >= end]
    assert len(crossing) > 0  # received in the period, due in the next


def test_unit_rates_by_unit_names_the_unit_and_its_kind(data: City) -> None:
    with data.engine.connect() as conn:
        frame = unit_rates(conn, *MARCH, HOURS, WEIGHT, by="unit")
    row = frame.set_index("unit").loc["dc-jianguomen"]
    assert row["unit_name"] == "建国门街道" and row["kind"] == "street"
    assert frame["kind"].map(type).eq(str).all()
    assert frame.dtypes["tickets"] == "int64" and frame.dtypes["response_rate"] == "float64"


def test_empty_period_gives_no_rows_with_the_exact_columns(data: City) -> None:
    with data.engine.connect() as conn:
        for by, keys in RATE_HEADER.items():
            frame = unit_rates(conn, datetime(2030, 1, 1), datetime(2030, 2, 1), HOURS, 0.8, by=by)
            assert frame.empty and list(frame.columns) == keys + FIGURES


def test_edges_response_at_the_limit_month_boundaries_zero_denominators(city: City) -> None:
    """Hand-made tickets: a response exactly at the limit (also with milliseconds), one a
    second late, a ticket received on 31 Jan and due and closed in February."""
    u = city.units["cy-sanlitun"]
    base = {"source": "edge", "category": "噪声扰民", "unit_id": u, "status": "open",
            "row_hash": 0, "street": "三里屯街道", "district": "朝阳区"}  # fmt: skip
    jan31 = datetime(2026, 1, 31, 9, 0, 0, 250_000)
    rows = [
        # level 1: 2 hours; responded at exactly 2:00:00.000 later -> in time
        dict(base, external_id="E1", urgency=1, received_at=jan31,
             first_response_at=jan31 + timedelta(hours=2), due_at=datetime(2026, 2, 2, 23, 59, 59),
             closed_at=datetime(2026, 2, 2, 10), resolved=True, status="closed"),
        # one second late -> not in time; closed one second after the deadline -> late
        dict(base, external_id="E2", urgency=1, received_at=jan31,
             first_response_at=jan31 + timedelta(hours=2, seconds=1),
             due_at=datetime(2026, 2, 3, 23, 59, 59), closed_at=datetime(2026, 2, 4),
             resolved=False, status="closed"),
        # level 3 (24 h), responded exactly at the limit, never closed, not rated
        dict(base, external_id="E3", urgency=3, received_at=datetime(2026, 1, 30, 23, 0),
             first_response_at=datetime(2026, 1, 31, 23, 0), due_at=datetime(2026, 2, 10),
             closed_at=None, resolved=None),
    ]  # fmt: skip
    with city.engine.begin() as conn:
        conn.execute(insert(Ticket.__table__), rows)
    with city.engine.connect() as conn:
        jan = unit_rates(conn, date(2026, 1, 1), date(2026, 2, 1), HOURS, WEIGHT, by="street")
        feb = unit_rates(conn, date(2026, 2, 1), date(2026, 3, 1), HOURS, WEIGHT, by="street")
    j = jan.iloc[0]
    assert len(jan) == 1 and j["street"] == "三里屯街道"
    assert (j["tickets"], j["responded_in_time"], j["response_rate"]) == (3, 2, 2 / 3)
    assert j["due"] == 0 and j["closed_on_time"] == 0 and np.isnan(j["on_time_rate"])
    assert j["resolved"] == 1 and j["resolution_rate"] == 0.5  # 1 resolved of 2 closed
    assert j["rated"] == 0 and j["satisfied"] == 0 and np.isnan(j["satisfaction_rate"])
    f = feb.iloc[0]
    assert (f["tickets"], f["due"], f["closed_on_time"], f["on_time_rate"]) == (0, 3, 1, 1 / 3)
    assert np.isnan(f["response_rate"]) and np.isnan(f["resolution_rate"])


def test_unknown_urgency_level_is_never_in_time(city: City) -> None:
    t0 = datetime(2026, 5, 6, 8)
    with city.engine.begin() as conn:
        conn.execute(
            insert(Ticket.__table__),
            [{"source": "x", "external_id": "U9", "category": "c", "status": "open",
              "unit_id": city.units["water"], "urgency": 9, "row_hash": 0, "received_at": t0,
              "first_response_at": t0, "due_at": t0 + timedelta(1)}],
        )  # fmt: skip
    with city.engine.connect() as conn:
        frame = unit_rates(conn, date(2026, 5, 1), date(2026, 6, 1), HOURS, WEIGHT, by="unit")
    assert frame[["tickets", "responded_in_time"]].iloc[0].tolist() == [1, 0]


# ---------------------------------------------------------------- problem volumes


def expected_volumes(engine: Engine, month: date) -> pd.DataFrame:
    t = raw_tickets(engine)
    problems = raw(engine, Problem.__table__).sort_values("code")

    def count(pid: int, first: date) -> int:
        start = datetime(first.year, first.month, 1)
        end = datetime(first.year + first.month // 12, first.month % 12 + 1, 1)
        sel = (t["problem_id"] == pid) & (t["received_at"] >= start) & (t["received_at"] < end)
        return int(sel.sum())

    last = date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)
    last_year = date(month.year - 1, month.month, 1)
    rows = []
    for p in problems.itertuples():
        this, prev, ly = count(p.id, month), count(p.id, last), count(p.id, last_year)
        rows.append({
            "problem": p.code, "problem_name": p.name, "this_month": this, "last_month": prev,
            "same_month_last_year": ly,
            "mom_change": (this - prev) / prev if prev else np.nan,
            "yoy_change": (this - ly) / ly if ly else np.nan,
        })  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize("month", [date(2026, 3, 1), date(2026, 2, 1), date(2026, 1, 1)])
def test_problem_volumes_match(data: City, month: date) -> None:
    with data.engine.connect() as conn:
        actual = problem_volumes(conn, month)
    expected = expected_volumes(data.engine, month)
    same(actual, expected, f"volumes {month}")
    if month == date(2026, 2, 1):  # February 2025 has no tickets at all: no year on year
        assert actual["yoy_change"].isna().all() and (actual["same_month_last_year"] == 0).all()
    if month == date(2026, 3, 1):
        assert actual["yoy_change"].notna().any()
        row = actual.set_index("problem").loc[ONLY_THIS_MONTH]
        assert row["last_month"] == 0 and row["this_month"] > 0 and np.isnan(row["mom_change"])


def test_problem_volumes_of_one_year(data: City) -> None:
    with data.engine.connect() as conn:
        frame = problem_volumes(conn, date(2026, 3, 15), year=2026)
    assert OLD_PROBLEM not in set(frame["problem"]) and "P01" in set(frame["problem"])


def test_headline_counts_falls_and_steep_falls() -> None:
    changes = [-0.5] * 7 + [-0.05] * 7 + [-0.10] + [0.2] * 10 + [np.nan, 0.0]
    frame = pd.DataFrame({"problem": [f"P{i:02d}" for i in range(27)], "mom_change": changes})
    assert headline_zh(frame, 0.10) == "27个问题中15个环比下降，其中7个降幅超过10%"
    assert headline_en(frame, 0.10) == (
        "15 of 27 problems fell month on month, 7 of them by more than 10 %"
    )
    assert headline_zh(frame, 0.125).endswith("降幅超过12.5%")


# ---------------------------------------------------------------- streets


def street_counts(t: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    sel = t[(t["received_at"] >= start) & (t["received_at"] < end) & t["street"].notna()]
    return sel.groupby(["street", "district"], dropna=False).size().rename("n").reset_index()


@pytest.mark.parametrize("top_n", [3, 5, 50])
def test_hot_spots_match(data: City, top_n: int) -> None:
    t = raw_tickets(data.engine)
    counts = street_counts(t, *MARCH).rename(columns={"n": "tickets"})
    expected = counts.sort_values(
        ["tickets", "street", "district"], ascending=[False, True, True], na_position="last"
    ).head(top_n)
    expected["rank"] = range(1, len(expected) + 1)
    with data.engine.connect() as conn:
        actual = hot_spots(conn, *MARCH, top_n)
    same(actual, expected[["street", "district", "tickets", "rank"]], f"hot spots {top_n}")


def test_hot_spots_ties_go_to_the_street_name(city: City) -> None:
    t0 = datetime(2026, 6, 1, 9)
    rows = [
        {"source": "x", "external_id": f"H{i}", "category": "c", "status": "open",
         "unit_id": city.units["water"], "urgency": 3, "row_hash": 0, "received_at": t0,
         "due_at": t0 + timedelta(3), "district": "朝阳区", "street": street}
        for i, street in enumerate(["b街道", "a街道", "c街道", "c街道"])
    ]  # fmt: skip
    with city.engine.begin() as conn:
        conn.execute(insert(Ticket.__table__), rows)
    with city.engine.connect() as conn:
        frame = hot_spots(conn, date(2026, 6, 1), date(2026, 7, 1), 2)
        assert hot_spots(conn, date(2026, 7, 1), date(2026, 8, 1), 5).empty
    assert frame[["street", "tickets", "rank"]].values.tolist() == [
        ["c街道", 2, 1],
        ["a街道", 1, 2],
    ]


def test_rising_streets_match(data: City) -> None:
    t = raw_tickets(data.engine)
    prev = (datetime(2026, 2, 1), datetime(2026, 3, 1))
    now = street_counts(t, *MARCH).rename(columns={"n": "this"})
    before = street_counts(t, *prev).rename(columns={"n": "previous"})
    m = now.merge(before, on=["street", "district"], how="left").fillna({"previous": 0})
    m["previous"] = m["previous"].astype("int64")
    m["change"] = m["this"] - m["previous"]
    m = m[m["change"] > 0].sort_values(
        ["change", "street", "district"], ascending=[False, True, True], na_position="last"
    )
    with data.engine.connect() as conn:
        actual = rising_streets(conn, *MARCH, *prev, 4)
    same(actual, m.head(4)[["street", "district", "this", "previous", "change"]], "rising")
    assert len(actual) > 0


# ---------------------------------------------------------------- repeat complaints


@pytest.mark.parametrize("by, column", [("address", "address"), ("caller", "caller_phone")])
@pytest.mark.parametrize("min_count", [2, 3])
def test_repeat_complaints_match(data: City, by: str, column: str, min_count: int) -> None:
    t = raw_tickets(data.engine)
    start, end = datetime(2026, 3, 1), datetime(2026, 3, 31)
    sel = t[(t["received_at"] >= start) & (t["received_at"] < end)].copy()
    if by == "address":
        # The same place: district, street and normalised address (docs/metrics.md).
        def key_of(r: Any) -> str | None:
            text = lambda v: None if pd.isna(v) else v  # noqa: E731
            return place_key(text(r.district), text(r.street), text(r.address))

        sel["key"] = [key_of(r) for r in sel.itertuples(index=False)]
    else:
        sel["key"] = sel[column]
    sel = sel[sel["key"].notna() & (sel["key"] != "")]
    shown = {"address": ("address", "min"), "district": ("district", "min"),
             "street": ("street", "min")} if by == "address" else {}  # fmt: skip
    g = (
        sel.groupby(["key", "category"])
        .agg(
            **shown,
            tickets=("id", "size"),
            first_received=("received_at", "min"),
            last_received=("received_at", "max"),
            units=("unit", lambda s: ",".join(sorted(set(s)))),
        )
        .reset_index()
    )
    g = g[g["tickets"] >= min_count].sort_values(
        ["tickets", "key", "category"], ascending=[False, True, True]
    )
    if by == "caller":
        g = g.rename(columns={"key": "caller"})
    columns = [*shown, by] if by == "address" else [by]
    columns = list(dict.fromkeys(columns))
    g = g[[*columns, "category", "tickets", "first_received", "last_received", "units"]]
    with data.engine.connect() as conn:
        actual = repeat_complaints(conn, start, end, min_count, by=by)
    same(actual, g, f"repeat by {by}")
    assert len(actual) > 0 or (by, min_count) == ("address", 3)  # few places repeat 3 times
    assert "" not in set(actual[by])


# ---------------------------------------------------------------- plan progress


def _done_by(frame: pd.DataFrame, on: str, as_of: date) -> pd.Series:
    when = pd.to_datetime(frame[on])
    return (frame["status"].map(str) == "done") & (when.isna() | (when <= pd.Timestamp(as_of)))


@pytest.mark.parametrize("as_of", [date(2026, 5, 31), date(2026, 6, 15), date(2026, 1, 1)])
def test_plan_progress_match(data: City, as_of: date) -> None:
    tasks = raw(data.engine, PlanTask.__table__)
    policies = raw(data.engine, Policy.__table__)
    problems = raw(data.engine, Problem.__table__)
    units = raw(data.engine, Unit.__table__).set_index("id")
    year = 2026
    month = pd.Timestamp(as_of.year, as_of.month, 1)
    tasks["due_month"] = pd.to_datetime(tasks["due_month"])
    policies["due_month"] = pd.to_datetime(policies["due_month"])
    tasks = tasks[tasks["due_month"].dt.year == year].copy()
    policies = policies[policies["due_month"].dt.year == year].copy()
    tasks["is_due"] = tasks["due_month"] <= month
    tasks["done"] = _done_by(tasks, "completed_on", as_of)
    policies["issued"] = _done_by(policies, "issued_on", as_of)
    rows = []
    for p in problems.sort_values("code").itertuples():
        pt, po = tasks[tasks["problem_id"] == p.id], policies[policies["problem_id"] == p.id]
        if p.year != year and pt.empty and po.empty:
            continue
        n, n_due, n_done = len(pt), int(pt["is_due"].sum()), int(pt["done"].sum())
        done_due = int((pt["is_due"] & pt["done"]).sum())
        issued = int(po["issued"].sum())
        rows.append({
            "problem": p.code, "problem_name": p.name,
            "lead_unit": units.loc[p.lead_unit_id, "code"],
            "lead_unit_name": units.loc[p.lead_unit_id, "name"],
            "tasks": n, "tasks_due": n_due, "tasks_done": n_done, "tasks_done_due": done_due,
            "completion_to_date": done_due / n_due if n_due else np.nan,
            "completion_year": n_done / n if n else np.nan,
            "policies": len(po), "policies_issued": issued,
            "issuance_rate": issued / len(po) if len(po) else np.nan,
        })  # fmt: skip
    expected = pd.DataFrame(rows)
    with data.engine.connect() as conn:
        actual = plan_progress(conn, as_of, year)
    same(actual, expected, f"plan progress {as_of}")
    assert OLD_PROBLEM not in set(actual["problem"])
    if as_of == date(2026, 1, 1):
        assert actual["tasks_due"].sum() > 0


@pytest.mark.parametrize("as_of", [date(2026, 5, 31), date(2026, 6, 1)])
def test_overdue_plan_tasks_match(data: City, as_of: date) -> None:
    tasks = raw(data.engine, PlanTask.__table__)
    problems = raw(data.engine, Problem.__table__).set_index("id")
    units = raw(data.engine, Unit.__table__).set_index("id")
    late = tasks[
        (pd.to_datetime(tasks["due_month"]) < pd.Timestamp(as_of.year, as_of.month, 1))
        & ~_done_by(tasks, "completed_on", as_of)
    ].copy()
    late["problem"] = late["problem_id"].map(problems["code"])
    late["owner_unit"] = late["owner_unit_id"].map(units["code"])
    late["owner_unit_name"] = late["owner_unit_id"].map(units["name"])
    late["status"] = late["status"].map(str)
    late = late.sort_values(["due_month", "problem", "code"])
    columns = ["problem", "code", "title", "owner_unit", "owner_unit_name", "due_month"]
    with data.engine.connect() as conn:
        actual = overdue_plan_tasks(conn, as_of)
    same(actual[[*columns, "status"]], late[[*columns, "status"]], f"overdue {as_of}")
    assert len(actual) > 0 and "done" in set(late["status"])  # done after as_of is still late


# ---------------------------------------------------------------- config and output


def test_metrics_config_defaults_file_and_errors(config_dir: Path) -> None:
    assert load_config(config_dir).metrics == MetricsConfig()
    (config_dir / "metrics.yaml").unlink()
    cfg = load_config(config_dir).metrics
    assert (cfg.basically_satisfied_weight, cfg.hot_spots_top_n, cfg.repeat_min_count) == (
        0.8,
        5,
        3,
    )
    assert (cfg.repeat_window_days, cfg.fall_threshold) == (30, 0.10)
    (config_dir / "metrics.yaml").write_text("basically_satisfied_weight: 1.5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        _ = load_config(config_dir).metrics
    assert "metrics.yaml: basically_satisfied_weight:" in str(err.value)
    assert "1.5" in str(err.value)


def test_metrics_frame_and_outputs(city: City) -> None:
    """Two units in March: one with tickets, one with only a ticket due (tickets = 0)."""
    (city.config.root / "metrics.yaml").write_text(
        "basically_satisfied_weight: 0.5\n", encoding="utf-8"
    )
    t0 = datetime(2026, 3, 31, 22)
    base = {"source": "x", "category": "c", "status": "open", "urgency": 3, "row_hash": 0,
            "first_response_at": None, "satisfaction": None}  # fmt: skip
    rows = [
        dict(base, external_id="A", unit_id=city.units["hrss"], received_at=t0,
             due_at=datetime(2026, 4, 3), satisfaction="basically_satisfied",
             first_response_at=t0 + timedelta(hours=1)),
        dict(base, external_id="B", unit_id=city.units["housing"],
             received_at=datetime(2026, 2, 20), due_at=datetime(2026, 3, 2)),
    ]  # fmt: skip
    with city.engine.begin() as conn:
        conn.execute(insert(Ticket.__table__), rows)
    frame = metrics_frame(city.engine, city.config, "unit", date(2026, 3, 1), date(2026, 3, 31))
    assert frame["unit"].tolist() == ["housing", "hrss"]
    assert frame.set_index("unit").loc["hrss", "satisfaction_rate"] == 0.5  # weight from file
    assert period(date(2026, 3, 1), date(2026, 3, 31)) == MARCH

    out = io.StringIO()
    write_metrics(frame, "csv", out)
    text = out.getvalue()
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text[1:])))
    # by unit, the clock's figures follow the rates (docs/clock.md)
    assert table[0] == ["unit", "unit_name", "kind", *FIGURES, *CLOCK_COLUMNS]
    housing = dict(zip(table[0], table[1], strict=True))
    assert housing["tickets"] == "0" and housing["response_rate"] == ""  # 0 / 0: empty cell
    assert housing["due"] == "1" and housing["on_time_rate"] == "0.0"
    hrss = dict(zip(table[0], table[2], strict=True))
    assert hrss["response_rate"] == "1.0" and hrss["on_time_rate"] == ""

    out = io.StringIO()
    write_metrics(frame, "json", out)
    records = json.loads(out.getvalue())
    assert [list(r) for r in records] == [table[0], table[0]]
    assert records[0]["response_rate"] is None and records[0]["tickets"] == 0
    assert records[1]["unit_name"] == "市人力资源社会保障局" and records[1]["kind"] == "department"
    assert "市人力资源社会保障局" in out.getvalue()  # readable, not \\u escapes

    with pytest.raises(ValueError, match="--by"):
        metrics_frame(city.engine, city.config, "caller", date(2026, 3, 1), date(2026, 3, 31))
    with pytest.raises(ValueError, match="before"):
        metrics_frame(city.engine, city.config, "unit", date(2026, 3, 2), date(2026, 3, 1))
    with pytest.raises(ValueError, match="--format"):
        write_metrics(frame, "xlsx", io.StringIO())


def test_empty_frame_writes_the_header(city: City) -> None:
    frame = metrics_frame(city.engine, city.config, "problem", date(2030, 1, 1), date(2030, 1, 31))
    out = io.StringIO()
    write_metrics(frame, "csv", out)
    assert out.getvalue() == "\ufeff" + ",".join(["problem", "problem_name", *FIGURES]) + "\n"
    out = io.StringIO()
    write_metrics(frame, "json", out)
    assert json.loads(out.getvalue()) == []


# ---------------------------------------------------------------- sources lacking a field


# The figures of `unit_rates` that each rate's source coverage decides.
COVERED = {
    "response_rate": ["responded_in_time", "response_rate"],
    "on_time_rate": ["closed_on_time", "on_time_rate"],
    "resolution_rate": ["resolved", "resolution_rate"],
    "satisfaction_rate": ["rated", "satisfied", "satisfaction_rate"],
}


@pytest.mark.parametrize("emptied", [True, False], ids=["emptied", "stale values"])
@pytest.mark.parametrize("rate, field", list(RATE_FIELDS.items()))
def test_a_source_without_a_field_is_not_in_that_rates_denominator(
    data: City, rate: str, field: str, emptied: bool
) -> None:
    """Half the tickets come from a source whose mapping lacks `field` (empty, as the import
    leaves it — or still holding values imported before the mapping dropped the column):
    `rate` and its counts are computed on the other half only, per group and for the city,
    and the rate is missing (NaN / None) when every ticket of a group lacks it; the other
    figures are as before (docs/metrics.md)."""
    T = Ticket.__table__.c
    with data.engine.begin() as conn:
        conn.execute(update(Ticket.__table__).where(T.id % 2 == 1).values(source="bare"))
        if emptied:
            conn.execute(update(Ticket.__table__).where(T.source == "bare").values({field: None}))
    t = raw_tickets(data.engine)
    lacking = {rate: {"bare"}}
    covered = COVERED[rate]
    with data.engine.connect() as conn:
        for by in ("unit", "category", "problem"):
            actual = unit_rates(conn, *MARCH, HOURS, WEIGHT, by=by, lacking=lacking)
            whole = expected_rates(t, *MARCH, by)
            part = expected_rates(t[t["source"] != "bare"], *MARCH, by)
            keys = RATE_HEADER[by]
            want = whole.drop(columns=covered).merge(part[[*keys, *covered]], on=keys, how="left")
            counts = [c for c in covered if not c.endswith("_rate")]
            want[counts] = want[counts].fillna(0).astype(whole[counts].dtypes.to_dict())
            same(actual, want[whole.columns], f"{rate}, by={by}")
            assert actual[rate].notna().any() and actual["tickets"].sum() > 0
            assert (actual[rate].dropna() <= 1).all()
        city = city_rates(conn, *MARCH, HOURS, WEIGHT, lacking)
        only_bare = city_rates(conn, *MARCH, HOURS, WEIGHT, {rate: {"bare", "test"}})
    alone = t[t["source"] != "bare"].assign(unit="all", unit_name="all", kind="all")
    part = expected_rates(alone, *MARCH, "unit")
    assert city[rate] == pytest.approx(float(part[rate].iloc[0]))
    assert only_bare[rate] is None  # no ticket can support it: missing, not 0
    assert all(only_bare[r] is not None for r in RATE_FIELDS if r != rate)


def test_sources_lacking_reads_the_mappings(city_config: CityConfig) -> None:
    lacking = city_config.sources_lacking
    assert set(lacking) == set(RATE_FIELDS)
    # The shipped NYC 311 mapping has no first response, resolution or call-back column.
    for rate in ("response_rate", "resolution_rate", "satisfaction_rate"):
        assert lacking[rate] == {"nyc311"}
    assert lacking["on_time_rate"] == set()  # both shipped mappings map closed_at
