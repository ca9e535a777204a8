"""The clock in the figures (docs/clock.md "The figures"), on SQLite and PostgreSQL: 退单率,
重办率, 一次解决率 and extensions per unit recomputed in plain pandas from the stored
tickets and clock events; an upheld appeal (evaluated = false) out of the three rates and
the year-end components; each new figure missing, never 0 %, without events of its kind."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, insert, select

from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import ClockEvent, Escalation, ItemKind, Ticket, Unit
from duban.ingest.city import sync_city
from duban.loops.annual.evaluation import (
    SCORE_HEADERS,
    measure_annual,
    scores_frame,
    unit_context,
    write_scores_csv,
)
from duban.queries.annual import escalations_by_unit, old_items_by_unit
from duban.queries.metrics import CLOCK_COLUMNS, clock_figures, metrics_frame, unit_rates
from duban.rules.scoring import COMPONENT_NAMES

UNITS = ["dc-jianguomen", "dc-donghuamen", "cy-jianwai", "housing"]
MARCH = (datetime(2026, 3, 1), datetime(2026, 4, 1))
HOURS = {1: 2.0, 2: 12.0, 3: 24.0, 4: 24.0}


def seed(engine: Engine, config: CityConfig, events: bool = True) -> dict[str, int]:
    with session_scope(engine) as session:
        sync_city(session, config)
        units = {code: uid for code, uid in session.execute(select(Unit.code, Unit.id))}
    rng = random.Random(13)
    tickets, evs = [], []
    for i in range(120):
        received = datetime(2026, 2, 25) + timedelta(hours=rng.randrange(0, 40 * 24))
        closed = rng.random() < 0.6
        status = rng.choice(["closed"] * 8 + ["open", "cancelled", "invalid"]) if closed else "open"
        tickets.append({
            "source": "x", "external_id": f"T{i:03d}", "unit_id": units[rng.choice(UNITS)],
            "received_at": received, "due_at": received + timedelta(days=5),
            "base_due_at": received + timedelta(days=5), "category": "c", "urgency": 3,
            "status": status, "closed_at": received + timedelta(days=3) if closed else None,
            "resolved": closed, "row_hash": 0, "evaluated": rng.random() > 0.1,
            "redo_count": rng.choice([0, 0, 0, 1, 2]) if events else 0,
            "extension_count": rng.choice([0, 0, 1, 2]) if events else 0,
        })  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(Ticket.__table__), tickets)
        ids = dict(conn.execute(select(Ticket.external_id, Ticket.id)).tuples().all())
    if events:
        for t in tickets:
            at, item = t["received_at"] + timedelta(hours=2), ids[t["external_id"]]
            base = {"item_kind": ItemKind.ticket.value, "item_id": item, "reason": "",
                    "payload": {}, "supersedes": [], "origin": "test",
                    "recorded_at": at}  # fmt: skip
            for n in range(t["redo_count"]):
                evs.append({**base, "key": f"redo-{n}", "kind": "redo", "at": at, "actor": ""})
            for n in range(t["extension_count"]):
                evs.append({**base, "key": f"ext-{n}", "kind": "extension_approved", "at": at,
                            "actor": "office", "payload": {"working_days": 1}})  # fmt: skip
            if rng.random() < 0.2:  # returned by another unit (its code), or by an unknown one
                actor = rng.choice([*UNITS, "someone"])
                evs.append({**base, "key": "ret", "kind": "returned", "at": at, "actor": actor})
        with engine.begin() as conn:
            conn.execute(insert(ClockEvent.__table__), evs)
    return units


def expected(engine: Engine, window: tuple[datetime, datetime] = MARCH) -> pd.DataFrame:
    """docs/clock.md "The figures", in plain pandas over the stored rows."""
    with engine.connect() as conn:
        t = pd.read_sql(select(Ticket.__table__), conn)
        e = pd.read_sql(select(ClockEvent.__table__), conn)
        u = pd.read_sql(select(Unit.id, Unit.code), conn)
    code = dict(zip(u["id"], u["code"], strict=True))
    unit_of_code = {c: i for i, c in code.items()}
    t["received_at"] = pd.to_datetime(t["received_at"])
    received_any = t[(t["received_at"] >= window[0]) & (t["received_at"] < window[1])]
    counted = received_any[
        ~received_any["status"].astype(str).str.contains("cancelled|invalid")
        & received_any["evaluated"].astype(bool)
    ]
    kinds = set(e[e["item_id"].isin(counted["id"])]["kind"])
    rows = []
    for uid in sorted(set(received_any["unit_id"]) | set(unit_of_code.values())):
        own = counted[counted["unit_id"] == uid]
        returns = e[(e["kind"] == "returned") & e["item_id"].isin(counted["id"])]
        returner = [
            unit_of_code.get(a, counted.set_index("id").at[i, "unit_id"])
            for a, i in zip(returns["actor"], returns["item_id"], strict=True)
        ]
        returned = {i for i, r in zip(returns["item_id"], returner, strict=True) if r == uid}
        dispatched = set(own["id"]) | returned
        closed = own[own["closed_at"].notna()]
        redone = int((closed["redo_count"] > 0).sum())
        n_all = received_any[received_any["unit_id"] == uid]
        if not len(n_all) and not dispatched:
            continue
        rows.append({
            "unit": code[uid],
            "not_evaluated": int((~n_all["evaluated"].astype(bool)).sum()),
            "dispatched": len(dispatched), "returned_items": len(returned),
            "return_rate": len(returned) / len(dispatched) if dispatched else np.nan,
            "closed": len(closed), "redone": redone,
            "redo_rate": redone / len(closed) if len(closed) else np.nan,
            "first_time_rate": (len(closed) - redone) / len(closed) if len(closed) else np.nan,
            "extensions": int(own["extension_count"].sum()),
            "extended_items": int((own["extension_count"] > 0).sum()),
            "extensions_per_item": own["extension_count"].sum() / len(own) if len(own) else np.nan,
        })  # fmt: skip
    out = pd.DataFrame(rows).sort_values("unit").reset_index(drop=True)
    evidence = {"return_rate": "returned", "redo_rate": "redo", "first_time_rate": "redo",
                "extensions_per_item": "extension_approved"}  # fmt: skip
    for rate, kind in evidence.items():
        if kind not in kinds:
            out[rate] = np.nan
    return out[["unit", *CLOCK_COLUMNS]]


@pytest.mark.parametrize("events", [True, False], ids=["events", "no-events"])
def test_clock_figures_equal_a_pandas_computation(
    engine: Engine, city_config: CityConfig, events: bool
) -> None:
    seed(engine, city_config, events)
    with engine.connect() as conn:
        got = clock_figures(conn, *MARCH).reset_index(drop=True)
    want = expected(engine)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert got["returned_items"].sum() > 0 or not events
    if not events:  # the data does not tell: missing, never 0 %
        for rate in ("return_rate", "redo_rate", "first_time_rate", "extensions_per_item"):
            assert got[rate].isna().all()
    else:
        assert got["redo_rate"].notna().any() and (got["redo_rate"] > 0).any()
    # `duban metrics --by unit` carries them after the rates
    frame = metrics_frame(engine, city_config, "unit", date(2026, 3, 1), date(2026, 3, 31))
    assert list(frame.columns[-len(CLOCK_COLUMNS) :]) == list(CLOCK_COLUMNS)
    merged = frame.set_index("unit").loc[got["unit"], list(CLOCK_COLUMNS)].reset_index()
    pd.testing.assert_frame_equal(merged, got, check_dtype=False)


def test_an_upheld_appeal_is_out_of_the_rates_and_the_year_end(
    engine: Engine, city_config: CityConfig
) -> None:
    units = seed(engine, city_config, events=False)
    with engine.connect() as conn:
        before = unit_rates(conn, *MARCH, HOURS, 0.8).set_index("unit")
    unit = before["tickets"].idxmax()
    with engine.begin() as conn:
        tid, due = conn.execute(
            select(Ticket.id, Ticket.due_at).where(
                Ticket.unit_id == units[unit], Ticket.evaluated.is_(True),
                Ticket.status == "closed", Ticket.received_at >= MARCH[0],
                Ticket.received_at < MARCH[1],
            ).limit(1)
        ).one()  # fmt: skip
        # closed 40 days late and put on the ledger: both year-end components count it
        conn.execute(
            Ticket.__table__.update().where(Ticket.id == tid)
            .values(closed_at=due + timedelta(days=40))
        )  # fmt: skip
        conn.execute(insert(Escalation.__table__), [{
            "item_kind": "ticket", "item_id": tid, "step": "ledger", "level": 3,
            "unit_id": units[unit], "due_on": date(2026, 3, 20),
            "applied_at": datetime(2026, 3, 20), "reason": "挂账", "round": 1,
        }])  # fmt: skip
    with engine.connect() as conn:
        counted = unit_rates(conn, *MARCH, HOURS, 0.8).set_index("unit").loc[unit]
        old = old_items_by_unit(conn, 2026, ["ledger"], 30).set_index("unit").loc[unit, "items"]
        steps = escalations_by_unit(conn, 2026, ["ledger"]).set_index("unit").loc[unit, "steps"]
    with engine.begin() as conn:
        conn.execute(Ticket.__table__.update().where(Ticket.id == tid).values(evaluated=False))
    with engine.connect() as conn:
        after = unit_rates(conn, *MARCH, HOURS, 0.8).set_index("unit").loc[unit]
        olds = old_items_by_unit(conn, 2026, ["ledger"], 30).set_index("unit")
        stepped = escalations_by_unit(conn, 2026, ["ledger"]).set_index("unit")
        figures = clock_figures(conn, *MARCH).set_index("unit").loc[unit]
    assert after["tickets"] == counted["tickets"] - 1
    assert after["excluded"] == counted["excluded"] + 1  # still shown: counted as excluded
    assert figures["not_evaluated"] >= 1
    assert (olds["items"].get(unit, 0), stepped["steps"].get(unit, 0)) == (old - 1, steps - 1)


YEAR = (datetime(2026, 1, 1), datetime(2027, 1, 1))


@pytest.mark.parametrize("events", [True, False], ids=["events", "no-events"])
def test_the_year_end_evaluation_shows_the_clock_figures(
    engine: Engine, city_config: CityConfig, events: bool, tmp_path: Any
) -> None:
    """一次解决率, 退单率, 重办率 and the approved extensions of each unit in 评分.csv and the
    unit's notice, recomputed in pandas over the year; missing (never 0 %) with the reason
    where the data does not tell; weight 0 (config/evaluation.yaml): the totals are those
    of the other components."""
    seed(engine, city_config, events)
    want = expected(engine, YEAR).set_index("unit")
    snap = measure_annual(engine, city_config, 2026)
    frame = scores_frame(snap).set_index("unit")
    for unit, row in frame.iterrows():
        mine = want.loc[unit] if unit in want.index else None
        for key, column, scale in (("first_time_rate", "first_time_rate", 100.0),
                                   ("return_rate", "return_rate", 100.0),
                                   ("redo_rate", "redo_rate", 100.0),
                                   ("extensions", "extensions_per_item", None)):  # fmt: skip
            value = None if mine is None else mine[column]
            got = row[f"{key}_value"]
            if value is None or pd.isna(value):
                assert got is None or pd.isna(got), (unit, key, got)
                assert pd.isna(row[f"{key}_points"])  # no points, not 0
                assert f"{COMPONENT_NAMES[key]}：" in row["missing"], (unit, key)
            elif scale is None:
                assert got == mine["extensions"], (unit, key)
            else:
                assert got == pytest.approx(scale * value), (unit, key)
            assert row[f"{key}_weight"] in (0.0, -0.0)
        others = [c for c in frame.columns if c.endswith("_points")]
        assert row["total"] == pytest.approx(sum(v for v in row[others] if pd.notna(v)))
    measured = want.dropna(subset=["redo_rate"])
    if events:
        assert len(measured) and (measured["redo_rate"] > 0).any()
    else:  # no event of any kind in the year: every unit's figures missing, with the reason
        assert len(measured) == 0
        assert frame["missing"].str.contains("全年无重办记录").all()
        assert frame["missing"].str.contains("全年无退单记录").all()
    path = write_scores_csv(snap, tmp_path / "评分.csv")
    header = path.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    for name in (
        "一次解决率·数值",
        "退单率·数值",
        "重办率·数值",
        "延期·数值",
        SCORE_HEADERS["missing"],
    ):
        assert name in header
    unit = str(frame["tickets"].idxmax())
    notice = unit_context(city_config, snap, unit)
    rows = {c["key"]: c for c in notice["own"]["components"]}
    if events:
        assert rows["redo_rate"]["value"] == f"{frame.at[unit, 'redo_rate_value']:.1f}"
    else:
        assert rows["redo_rate"]["value"] == "—（无数据：全年无重办记录）"
        assert rows["extensions"]["value"] == "—（无数据：全年无批准延期记录）"
