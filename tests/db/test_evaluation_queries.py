"""The SQL of the year-end evaluation (duban/queries/annual.py) on SQLite and PostgreSQL,
checked against an independent plain-pandas computation over the raw generated rows, from
the definitions in the module's docstring (never by calling the code under test), plus
hand-made cases with known answers: a unit with no tickets, a ledger ticket closed in the
year (credit) against one still open, a reopened one, the year's boundaries."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, insert, select

from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import (
    Escalation,
    LookbackFinding,
    PlanTask,
    Policy,
    Problem,
    Run,
    SpotCheckSample,
    Ticket,
    Unit,
)
from duban.ingest.city import sync_city
from duban.queries import annual as qe

YEAR = 2026
STEPS = ["ledger", "bulletin"]
LEVELS = {"reminder": 1, "supervision": 2, "ledger": 3, "bulletin": 4}
# "commerce" gets nothing at all: the unit with no tickets.
UNITS = ["dc-jianguomen", "dc-donghuamen", "cy-jianwai", "cy-sanlitun", "housing", "water"]
DAYS = 30
START, END = datetime(YEAR, 1, 1), datetime(YEAR + 1, 1, 1)


def _when(rng: np.random.Generator) -> datetime:
    """Around the year, with its boundaries hit on purpose."""
    c = rng.random()
    if c < 0.05:
        return START
    if c < 0.10:
        return END - timedelta(seconds=1)
    if c < 0.15:
        return END
    return datetime(YEAR - 1, 11, 1) + timedelta(hours=int(rng.integers(0, 24 * 450)))


def seed(engine: Engine, config: CityConfig, rng_seed: int = 12) -> dict[str, Any]:
    rng = np.random.default_rng(rng_seed)
    with session_scope(engine) as session:
        sync_city(session, config)
        units = {code: uid for code, uid in session.execute(select(Unit.code, Unit.id))}
        problems = {
            code: (pid, lead)
            for code, pid, lead in session.execute(
                select(Problem.code, Problem.id, Problem.lead_unit_id)
            )
        }
        run = Run(loop="lookback", period="x", started_at=datetime(YEAR, 6, 1), summary={},
                  parameters={})  # fmt: skip
        run2 = Run(loop="lookback", period="y", started_at=datetime(YEAR, 9, 1), summary={},
                   parameters={})  # fmt: skip
        session.add_all([run, run2])
        session.flush()
        run_ids = [run.id, run2.id]
    tickets: list[dict[str, Any]] = []
    for i in range(240):
        closed = None if rng.random() < 0.25 else _when(rng)
        due = (closed or _when(rng)) - timedelta(days=float(rng.choice([-3, 0.5, 29.9, 31, 90])))
        status = ("in_progress" if closed is None
                  else "reopened" if rng.random() < 0.15 else "closed")  # fmt: skip
        tickets.append({
            "id": i + 1, "source": "t", "external_id": f"T{i:03d}",
            "received_at": due - timedelta(days=7), "due_at": due, "closed_at": closed,
            "category": "噪声扰民", "unit_id": units[UNITS[int(rng.integers(len(UNITS)))]],
            "urgency": 3, "status": status, "row_hash": 0, "content": f"诉求{i} 13812345678",
        })  # fmt: skip
    # Known answers: a ledger ticket closed in the year (credit), one on the ledger still
    # open, one closed in the year but reopened since, one 30 days late exactly (not "more
    # than 30"), one closed on the ledger the year before.
    base = {"source": "t", "category": "拖欠工资", "urgency": 3, "row_hash": 0, "content": "x"}
    jw = units["cy-jianwai"]
    known = [
        ("K-CREDIT", datetime(YEAR, 3, 1), datetime(YEAR, 3, 10), "closed"),
        ("K-OPEN", datetime(YEAR, 3, 1), None, "in_progress"),
        ("K-REOPENED", datetime(YEAR, 3, 1), datetime(YEAR, 5, 10), "reopened"),
        ("K-30DAYS", datetime(YEAR, 3, 1), datetime(YEAR, 3, 31), "closed"),
        ("K-LASTYEAR", datetime(YEAR - 1, 3, 1), datetime(YEAR - 1, 12, 31, 23), "closed"),
    ]
    for n, (ext, due, closed, status) in enumerate(known):
        tickets.append(base | {
            "id": 1000 + n, "external_id": ext, "received_at": due - timedelta(days=3),
            "due_at": due, "closed_at": closed, "status": status, "unit_id": jw,
        })  # fmt: skip
    steps: list[dict[str, Any]] = []
    for t in tickets:
        climbed = int(rng.integers(0, 5)) if t["id"] < 1000 else 0
        first = t["due_at"].date() + timedelta(days=1)
        for n, name in enumerate(list(LEVELS)[:climbed]):
            unit_id = t["unit_id"] if rng.random() > 0.1 else units[UNITS[0]]
            steps.append({
                "item_kind": "ticket", "item_id": t["id"], "step": name, "level": LEVELS[name],
                "unit_id": unit_id, "due_on": first + timedelta(days=5 * n),
                "applied_at": datetime.combine(first, datetime.min.time()), "reason": name,
            })  # fmt: skip
    for item_id in (1000, 1001, 1002, 1004):  # the known ledger tickets
        steps.append({
            "item_kind": "ticket", "item_id": item_id, "step": "ledger", "level": 3,
            "unit_id": jw, "due_on": date(YEAR, 3, 5) if item_id != 1004 else date(YEAR - 1, 3, 5),
            "applied_at": datetime(YEAR, 3, 5), "reason": "挂账",
        })  # fmt: skip
    tasks, policies = [], []
    codes = sorted(problems)
    for kind, out in (("T", tasks), ("Z", policies)):
        for i in range(60):
            status = ["planned", "in_progress", "done", "done"][int(rng.integers(4))]
            r = rng.random()
            on = (None if status != "done" or r < 0.2
                  else date(YEAR, 12, 31) if r < 0.35
                  else date(YEAR + 1, 1, 1) if r < 0.5  # done after the year's end
                  else date(YEAR, 1, 1) + timedelta(days=int(rng.integers(0, 360))))  # fmt: skip
            owner = UNITS[int(rng.integers(len(UNITS)))] if i % 5 else "housing"
            month = [date(YEAR - 1, 12, 1), date(YEAR, 1, 1), date(YEAR, 7, 1),
                     date(YEAR, 12, 1), date(YEAR + 1, 1, 1)][i % 5 if i % 7 else 2]  # fmt: skip
            row = {
                "id": i + 1, "problem_id": problems[codes[i % len(codes)]][0],
                "code": f"{kind}{i:03d}", "title": f"{kind}-{i}", "owner_unit_id": units[owner],
                "due_month": month, "status": status,
            }  # fmt: skip
            row.update({"progress": 0.5, "completed_on": on} if kind == "T" else {"issued_on": on})
            out.append(row)
    samples = []
    quarters = [f"{YEAR - 1}-Q4", *(f"{YEAR}-Q{q}" for q in range(1, 5)), f"{YEAR + 1}-Q1"]
    for i in range(80):
        t = tickets[int(rng.integers(240))]
        samples.append({
            "quarter": quarters[i % len(quarters)], "item_kind": "ticket", "item_id": t["id"],
            "unit_id": t["unit_id"], "seed": "s", "drawn_at": datetime(YEAR, 1, 1),
            "passed": [True, False, None][int(rng.integers(3))],
            "note": f"核验 {i} 13900001111", "checked_at": datetime(YEAR, 4, 1),
        })  # fmt: skip
    samples = list({(s["quarter"], s["item_id"]): s for s in samples}.values())
    findings = []
    for run_id in run_ids:
        for t in tickets[:240]:
            if t["closed_at"] is not None and rng.random() < 0.2:
                findings.append({
                    "run_id": run_id, "item_kind": "ticket", "item_id": t["id"],
                    "unit_id": t["unit_id"], "recurrences": int(rng.integers(1, 4)),
                    "first_recurrence_id": None, "reopened": False,
                })  # fmt: skip
    with engine.begin() as conn:
        for table, rows in ((Ticket, tickets), (PlanTask, tasks), (Policy, policies),
                            (Escalation, steps), (SpotCheckSample, samples),
                            (LookbackFinding, findings)):  # fmt: skip
            conn.execute(insert(table.__table__), rows)
    code_of = {uid: code for code, uid in units.items()}
    return {
        "tickets": pd.DataFrame(tickets),
        "tasks": pd.DataFrame(tasks),
        "policies": pd.DataFrame(policies),
        "steps": pd.DataFrame(steps),
        "samples": pd.DataFrame(samples),
        "findings": pd.DataFrame(findings),
        "lead": {pid: code_of[lead] for pid, lead in problems.values()},
        "code_of": code_of,
    }


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("unit").reset_index(drop=True) if len(frame) else frame


def _check(got: pd.DataFrame, want: pd.DataFrame, columns: list[str]) -> None:
    got = got[columns].reset_index(drop=True)
    assert list(got["unit"]) == list(want["unit"])
    for column in columns[1:]:
        assert [float(v) for v in got[column]] == pytest.approx(
            [float(v) for v in want[column]], nan_ok=True
        ), column


def _in_year(values: pd.Series) -> pd.Series:
    return values.notna() & (values >= START) & (values < END)


def expected_plan(raw: dict[str, Any]) -> pd.DataFrame:
    as_of = date(YEAR, 12, 31)
    pairs = []
    for kind, frame, on in (("task", raw["tasks"], "completed_on"),
                            ("policy", raw["policies"], "issued_on")):  # fmt: skip
        for row in frame.to_dict(orient="records"):
            if not date(YEAR, 1, 1) <= row["due_month"] < date(YEAR + 1, 1, 1):
                continue
            d = row[on]
            done = row["status"] == "done" and (d is None or pd.isna(d) or d <= as_of)
            for unit in {raw["code_of"][row["owner_unit_id"]], raw["lead"][row["problem_id"]]}:
                pairs.append({"unit": unit, "kind": kind, "done": done})
    p = pd.DataFrame(pairs)
    rows = []
    for unit, g in p.groupby("unit"):
        t, z = g[g["kind"] == "task"], g[g["kind"] == "policy"]
        rows.append({
            "unit": unit, "tasks": len(t), "tasks_done": int(t["done"].sum()),
            "policies": len(z), "policies_issued": int(z["done"].sum()),
            "task_completion": t["done"].mean() if len(t) else np.nan,
            "policy_issuance": z["done"].mean() if len(z) else np.nan,
        })  # fmt: skip
    return _frame(rows, list(rows[0]))


def expected_spot_checks(raw: dict[str, Any]) -> pd.DataFrame:
    s = raw["samples"]
    s = s[s["quarter"].str.startswith(f"{YEAR}-Q")]
    rows = [
        {"unit": raw["code_of"][uid], "checked": int(g["passed"].notna().sum()),
         "failed": int((g["passed"] == False).sum())}  # noqa: E712
        for uid, g in s.groupby("unit_id")
    ]  # fmt: skip
    return _frame(rows, ["unit", "checked", "failed"])


def expected_escalations(raw: dict[str, Any]) -> pd.DataFrame:
    e = raw["steps"]
    e = e[e["step"].isin(STEPS) & (e["due_on"] >= date(YEAR, 1, 1))
          & (e["due_on"] < date(YEAR + 1, 1, 1))]  # fmt: skip
    rows = [
        {"unit": raw["code_of"][uid], "steps": len(g),
         "items": len(g[["item_kind", "item_id"]].drop_duplicates())}
        for uid, g in e.groupby("unit_id")
    ]  # fmt: skip
    return _frame(rows, ["unit", "steps", "items"])


def expected_recurrences(raw: dict[str, Any]) -> pd.DataFrame:
    f = raw["findings"].merge(raw["tickets"][["id", "closed_at"]], left_on="item_id", right_on="id")
    f = f[_in_year(f["closed_at"])]
    rows = [{"unit": raw["code_of"][uid], "items": g["item_id"].nunique()}
            for uid, g in f.groupby("unit_id")]  # fmt: skip
    return _frame(rows, ["unit", "items"])


def expected_old(raw: dict[str, Any]) -> pd.DataFrame:
    t = raw["tickets"].copy()
    e = raw["steps"]
    ledger_ids = set(e[e["step"].isin(STEPS)]["item_id"])
    t["on_ledger"] = t["id"].isin(ledger_ids)
    late = (t["closed_at"] - t["due_at"]).dt.total_seconds()
    t["long_overdue"] = late.notna() & (late > DAYS * 86400)
    t = t[
        (t["status"] == "closed") & _in_year(t["closed_at"]) & (t["on_ledger"] | t["long_overdue"])
    ]
    rows = [
        {"unit": raw["code_of"][uid], "items": len(g), "on_ledger": int(g["on_ledger"].sum()),
         "long_overdue": int(g["long_overdue"].sum()), "ids": set(g["external_id"])}
        for uid, g in t.groupby("unit_id")
    ]  # fmt: skip
    return _frame(rows, ["unit", "items", "on_ledger", "long_overdue", "ids"])


def test_components_match_pandas(engine: Engine, city_config: CityConfig) -> None:
    raw = seed(engine, city_config)
    with engine.connect() as conn:
        plan = qe.plan_by_unit(conn, YEAR)
        spot = qe.spot_checks_by_unit(conn, YEAR)
        esc = qe.escalations_by_unit(conn, YEAR, STEPS)
        rec = qe.recurrences_by_unit(conn, YEAR)
        old = qe.old_items_by_unit(conn, YEAR, STEPS, DAYS)
    cols = ["unit", "tasks", "tasks_done", "policies", "policies_issued", "task_completion",
            "policy_issuance"]  # fmt: skip
    _check(plan, expected_plan(raw), cols)
    _check(spot, expected_spot_checks(raw), ["unit", "checked", "failed"])
    _check(esc, expected_escalations(raw), ["unit", "steps", "items"])
    _check(rec, expected_recurrences(raw), ["unit", "items"])
    want_old = expected_old(raw)
    _check(old, want_old, ["unit", "items", "on_ledger", "long_overdue"])
    for frame in (plan, spot, esc, rec, old):
        assert "commerce" not in set(frame["unit"])  # the unit with no record at all
        assert {"unit", "unit_name", "kind"} <= set(frame.columns)


def test_credit_for_ledger_items_closed_in_the_year(
    engine: Engine, city_config: CityConfig
) -> None:
    raw = seed(engine, city_config)
    with engine.connect() as conn:
        items = qe.old_items(conn, YEAR, STEPS, DAYS, limit=1000)
        few = qe.old_items(conn, YEAR, STEPS, DAYS, limit=2)
        counts = qe.old_items_by_unit(conn, YEAR, STEPS, DAYS)
    jianwai = set(items[items["unit"] == "cy-jianwai"]["external_id"])
    assert "K-CREDIT" in jianwai  # on the ledger, closed in the year: credited
    for not_credited in ("K-OPEN", "K-REOPENED", "K-30DAYS", "K-LASTYEAR"):
        assert not_credited not in jianwai, not_credited
    credit = items[items["external_id"] == "K-CREDIT"].iloc[0]
    assert bool(credit["on_ledger"]) and not bool(credit["long_overdue"])
    assert credit["days_late"] == pytest.approx(9.0)
    want = expected_old(raw).set_index("unit")
    for unit, group in items.groupby("unit"):
        assert set(group["external_id"]) == want.at[unit, "ids"]
    # at most `limit` per unit, the most late first; the aggregate keeps the full count
    per_unit = few.groupby("unit").size()
    full = counts.set_index("unit")["items"]
    for unit, shown in per_unit.items():
        assert shown == min(2, full[unit])
        assert (
            list(few[few["unit"] == unit]["days_late"])
            == sorted(items[items["unit"] == unit]["days_late"], reverse=True)[:shown]
        )


def test_item_lists_match_the_counts(engine: Engine, city_config: CityConfig) -> None:
    raw = seed(engine, city_config)
    with engine.connect() as conn:
        spot = qe.spot_check_failure_items(conn, YEAR, 1000)
        esc = qe.escalation_items(conn, YEAR, STEPS, 1000)
        rec = qe.recurrence_items(conn, YEAR, 1000)
        esc3 = qe.escalation_items(conn, YEAR, STEPS, 3)
    want_spot = expected_spot_checks(raw).set_index("unit")["failed"]
    assert spot.groupby("unit").size().to_dict() == {u: n for u, n in want_spot.items() if n}
    assert set(spot["item_ref"]) <= set(raw["tickets"]["external_id"])
    want_esc = expected_escalations(raw).set_index("unit")["steps"]
    assert esc.groupby("unit").size().to_dict() == want_esc.to_dict()
    assert set(esc["step"]) <= set(STEPS)
    assert esc3.groupby("unit").size().to_dict() == {u: min(3, n) for u, n in want_esc.items()}
    want_rec = expected_recurrences(raw).set_index("unit")["items"]
    assert rec.groupby("unit").size().to_dict() == want_rec.to_dict()
    f = raw["findings"].groupby("item_id")["recurrences"].max()
    ids = raw["tickets"].set_index("external_id")["id"]
    for row in rec.itertuples(index=False):
        assert row.recurrences == f[ids[row.external_id]]


def test_an_empty_year_gives_empty_frames(engine: Engine, city_config: CityConfig) -> None:
    seed(engine, city_config)
    with engine.connect() as conn:
        for frame in (
            qe.plan_by_unit(conn, 2030),
            qe.spot_checks_by_unit(conn, 2030),
            qe.escalations_by_unit(conn, 2030, STEPS),
            qe.recurrences_by_unit(conn, 2030),
            qe.old_items_by_unit(conn, 2030, STEPS, DAYS),
            qe.old_items(conn, 2030, STEPS, DAYS, 5),
        ):
            assert len(frame) == 0 and "unit" in frame.columns
        assert len(qe.escalations_by_unit(conn, YEAR, [])) == 0
