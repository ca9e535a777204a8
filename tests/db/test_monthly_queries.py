"""The ledger of the monthly bulletin (duban/queries/monthly.py) on SQLite and PostgreSQL,
checked against an independent pandas computation over the raw rows, from the definition in
the module's docstring (never by calling the code under test)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, insert, select

from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import Escalation, PlanTask, Policy, Problem, Ticket, Unit
from duban.ingest.city import sync_city
from duban.queries.monthly import LEDGER_COLUMNS, open_ledger, open_ledger_by_unit

STEPS = ["ledger", "bulletin"]
LEVELS = {"reminder": 1, "supervision": 2, "ledger": 3, "bulletin": 4}
UNITS = ["dc-jianguomen", "dc-donghuamen", "cy-jianwai", "cy-sanlitun", "housing", "water"]
AS_OF = date(2026, 10, 31)


def seed(engine: Engine, config: CityConfig, rng_seed: int = 31) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(rng_seed)
    with session_scope(engine) as session:
        sync_city(session, config)
        units = {code: uid for code, uid in session.execute(select(Unit.code, Unit.id))}
        problems = {code: pid for code, pid in session.execute(select(Problem.code, Problem.id))}
    tickets, tasks, policies, steps = [], [], [], []
    end = datetime(2026, 11, 1)
    for i in range(120):
        c = rng.random()
        closed = (
            None if c < 0.4
            else end - timedelta(seconds=1) if c < 0.5  # the last second of October: closed
            else end if c < 0.6  # the first second of November: still open at month end
            else end - timedelta(days=int(rng.integers(1, 40)))
        )  # fmt: skip
        tickets.append({
            "id": i + 1, "source": "t", "external_id": f"T{i:03d}",
            "received_at": datetime(2026, 9, 1) + timedelta(hours=int(rng.integers(0, 1200))),
            "due_at": datetime(2026, 9, 20), "closed_at": closed,
            "category": ["噪声扰民", "垃圾清运", "拖欠工资"][i % 3],
            "unit_id": units[UNITS[int(rng.integers(len(UNITS)))]], "urgency": 3,
            "status": "closed" if closed else "in_progress", "row_hash": 0,
            "content": "citizen text never shown",
            # every fourth ticket was redone: its ladder is in round 2
            "ladder_round": 2 if i % 4 == 0 else 1,
        })  # fmt: skip
    for kind, out in (("T", tasks), ("Z", policies)):
        for i in range(40):
            status = ["planned", "in_progress", "done", "done"][int(rng.integers(4))]
            r = rng.random()
            on = (
                None if status != "done" or r < 0.2
                else AS_OF if r < 0.4  # done on the last day: done
                else AS_OF + timedelta(days=1) if r < 0.6  # the day after: still open
                else AS_OF - timedelta(days=int(rng.integers(1, 60)))
            )  # fmt: skip
            row = {
                "id": i + 1, "problem_id": problems[["P01", "P02"][i % 2]],
                "code": f"{kind}{i:03d}", "title": f"{kind}-title-{i}",
                "owner_unit_id": units[UNITS[i % len(UNITS)]], "due_month": date(2026, 8, 1),
                "status": status,
            }  # fmt: skip
            row.update({"progress": 0.5, "completed_on": on} if kind == "T" else {"issued_on": on})
            out.append(row)
    kinds = {"ticket": tickets, "plan_task": tasks, "policy": policies}
    for kind, items in kinds.items():
        for item in items:
            # climb a random number of steps in each round (a redone ticket's round 1 was
            # climbed before its round 2); the step's unit is the item's (sometimes another)
            rounds = item.get("ladder_round", 1)
            for round_ in range(1, rounds + 1):
                climbed = int(rng.integers(0, 5))
                first = AS_OF - timedelta(days=int(rng.integers(-8, 30)) + 30 * (rounds - round_))
                for n, name in enumerate(list(LEVELS)[:climbed]):
                    unit_id = item.get("unit_id", item.get("owner_unit_id"))
                    if rng.random() < 0.1:
                        unit_id = units[UNITS[int(rng.integers(len(UNITS)))]]
                    steps.append({
                        "item_kind": kind, "item_id": item["id"], "step": name,
                        "level": LEVELS[name], "unit_id": unit_id,
                        "due_on": first + timedelta(days=3 * n), "round": round_,
                        "applied_at": datetime.combine(first, datetime.min.time()),
                        "reason": f"{kind}-{item['id']}-{name}-{round_}",
                    })  # fmt: skip
    with engine.begin() as conn:
        for table, rows in ((Ticket, tickets), (PlanTask, tasks), (Policy, policies),
                            (Escalation, steps)):  # fmt: skip
            conn.execute(insert(table.__table__), rows)
    unit_rows = pd.DataFrame([{"unit_id": uid, "unit": code} for code, uid in units.items()])
    return {
        "tickets": pd.DataFrame(tickets),
        "plan_task": pd.DataFrame(tasks),
        "policy": pd.DataFrame(policies),
        "steps": pd.DataFrame(steps),
        "units": unit_rows,
    }


def expected_ledger(raw: dict[str, pd.DataFrame], as_of: date) -> pd.DataFrame:
    steps = raw["steps"]
    steps = steps[steps["step"].isin(STEPS) & (steps["due_on"] <= as_of)]
    # a ticket's steps of its current ladder round only (a redo restarted the ladder)
    rounds = raw["tickets"].set_index("id")["ladder_round"]
    is_ticket = steps["item_kind"] == "ticket"
    current = steps["item_id"].map(rounds).where(is_ticket, 1)
    steps = steps[steps["round"] == current]
    end = datetime.combine(as_of + timedelta(days=1), datetime.min.time())
    rows: list[dict[str, Any]] = []
    for (kind, item_id), group in steps.groupby(["item_kind", "item_id"]):
        top = group.loc[group["level"].idxmax()]
        if kind == "ticket":
            item = raw["tickets"].set_index("id").loc[item_id]
            closed = item["closed_at"]
            still_open = closed is None or pd.isna(closed) or closed >= end
            ref, title, problem = item["external_id"], item["category"], None
        else:
            item = raw[kind].set_index("id").loc[item_id]
            on = item["completed_on" if kind == "plan_task" else "issued_on"]
            done = item["status"] == "done" and (on is None or pd.isna(on) or on <= as_of)
            still_open = not done
            ref, title = item["code"], item["title"]
            problem = "P01" if item_id % 2 == 1 else "P02"  # id i+1, problem by i % 2
        if still_open:
            unit = raw["units"].set_index("unit_id").loc[top["unit_id"], "unit"]
            rows.append({
                "unit": unit, "item_kind": kind, "item_id": int(item_id), "item_ref": ref,
                "problem": problem, "title": title, "step": top["step"],
                "level": int(top["level"]), "since": group["due_on"].min(),
                "reason": top["reason"], "round": int(top["round"]),
            })  # fmt: skip
    frame = pd.DataFrame(rows)
    return frame.sort_values(["unit", "since", "item_kind", "item_ref", "item_id"]).reset_index(
        drop=True
    )


@pytest.mark.parametrize("as_of", [AS_OF, date(2026, 10, 15)])
def test_open_ledger_matches_pandas(engine: Engine, city_config: CityConfig, as_of: date) -> None:
    raw = seed(engine, city_config)
    with engine.connect() as conn:
        got = open_ledger(conn, as_of, STEPS)
    assert list(got.columns) == list(LEDGER_COLUMNS)
    want = expected_ledger(raw, as_of)
    assert len(want) > 15  # the seed must exercise the query
    assert set(want["item_kind"]) == {"ticket", "plan_task", "policy"}
    assert set(want["step"]) == {"ledger", "bulletin"}
    assert set(want["round"]) == {1, 2}  # redone tickets on the ledger in their round 2
    cols = ["unit", "item_kind", "item_id", "item_ref", "problem", "title", "step", "level",
            "since", "reason", "round"]  # fmt: skip
    got_rows = [
        tuple(None if pd.isna(v) else v for v in r) for r in got[cols].itertuples(index=False)
    ]
    want_rows = [
        tuple(None if v is None or (isinstance(v, float) and pd.isna(v)) else v for v in r)
        for r in want[cols].itertuples(index=False)
    ]
    assert got_rows == want_rows
    assert "citizen text never shown" not in got.to_string()
    assert set(got["unit_kind"]) <= {"street", "department", "company"}


def test_open_ledger_by_unit_counts_the_same_items(engine: Engine, city_config: CityConfig) -> None:
    raw = seed(engine, city_config, rng_seed=5)
    with engine.connect() as conn:
        got = open_ledger_by_unit(conn, AS_OF, STEPS)
        from_rows = open_ledger_by_unit(conn, AS_OF, STEPS, open_ledger(conn, AS_OF, STEPS))
    pd.testing.assert_frame_equal(from_rows, got)
    want = expected_ledger(raw, AS_OF)
    counts = (
        want.assign(n=1)
        .pivot_table(index="unit", columns="step", values="n", aggfunc="sum", fill_value=0)
        .reindex(columns=STEPS, fill_value=0)
    )
    assert list(got.columns) == ["unit", "unit_name", "unit_kind", "items", *STEPS]
    assert list(got["unit"]) == sorted(counts.index)
    for row in got.itertuples(index=False):
        assert row.ledger == counts.at[row.unit, "ledger"]
        assert row.bulletin == counts.at[row.unit, "bulletin"]
        assert row.items == row.ledger + row.bulletin


def test_no_steps_or_no_escalations_give_empty_frames(
    engine: Engine, city_config: CityConfig
) -> None:
    with session_scope(engine) as session:
        sync_city(session, city_config)
    with engine.connect() as conn:
        assert open_ledger(conn, AS_OF, STEPS).empty
        assert list(open_ledger(conn, AS_OF, []).columns) == list(LEDGER_COLUMNS)
        assert open_ledger_by_unit(conn, AS_OF, STEPS).empty
