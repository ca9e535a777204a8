"""The look-back's SQL (duban/queries/lookback.py) on SQLite and PostgreSQL: planted
recurrences are found, and nothing else, for each notion of the same place, with and
without the same category; checked by hand on a small city and against a brute-force
computation from the definition in docs/lookback.md on a random one."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, insert, select

from duban.config import CityConfig
from duban.db import session_scope
from duban.db.models import Problem, Ticket, Unit
from duban.ingest.city import sync_city
from duban.queries.lookback import LookbackCriteria, findings, recurrence_rates
from duban.rules.places import place_key

FROM, UNTIL = datetime(2026, 9, 1), datetime(2026, 10, 1)  # closed in September
ADDR1, ADDR2, ADDR3 = "建国门内大街1号", "建国门内大街9号", "西总布胡同3号"
C1, C2 = "建国门社区", "西总布社区"
S1, S2 = "建国门街道", "东华门街道"
NOISE, RUBBISH = "噪声扰民", "垃圾清运"


def setup_city(engine: Engine, config: CityConfig) -> dict[str, int]:
    with session_scope(engine) as session:
        sync_city(session, config)
        return {code: uid for code, uid in session.execute(select(Unit.code, Unit.id))}


def add(engine: Engine, rows: list[dict[str, Any]]) -> dict[str, int]:
    with engine.begin() as conn:
        conn.execute(insert(Ticket), rows)
        return dict(conn.execute(select(Ticket.external_id, Ticket.id)).tuples().all())


def row(units: dict[str, int], ext: str, received: datetime, **kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "source": "test", "external_id": ext, "received_at": received,
        "due_at": received + timedelta(days=7), "category": NOISE, "district": "东城区",
        "street": S1, "community": C1, "address": ADDR1, "content": f"诉求{ext}",
        "unit_id": units["dc-jianguomen"], "problem_id": None, "urgency": 3, "status": "open",
        "closed_at": None, "row_hash": 0,
    }  # fmt: skip
    unit = kw.pop("unit", None)
    if unit:
        values["unit_id"] = units[unit]
    values.update(kw)
    if values["closed_at"] is not None:
        values["status"] = kw.get("status", "closed")
    return values


A_CLOSED = datetime(2026, 9, 10, 10, 0)


def planted(units: dict[str, int]) -> list[dict[str, Any]]:
    """A, B, C, D closed in September (D of Donghuamen, with no address or community);
    E closed the second before September, F the first second after it."""
    d = datetime
    return [
        row(units, "A", d(2026, 9, 8, 9), closed_at=A_CLOSED),
        row(units, "A-PRE", d(2026, 9, 9, 9)),  # before A's closure: not a recurrence of A
        row(units, "A-R1", d(2026, 9, 20, 9)),
        row(units, "A-R-END", A_CLOSED + timedelta(days=30)),  # exactly at the window's end
        row(units, "A-R-LATE", A_CLOSED + timedelta(days=30, seconds=1)),  # one second late
        row(units, "B", d(2026, 9, 11, 9), closed_at=d(2026, 9, 12, 9), category=RUBBISH,
            address=ADDR2),
        row(units, "B-R", d(2026, 9, 15, 9), address=ADDR2),  # same address, other category
        row(units, "C", d(2026, 9, 4, 9), closed_at=d(2026, 9, 5, 9), community=C2,
            address=ADDR3),
        row(units, "C-R", d(2026, 9, 6, 9), community=C2, address="西总布胡同8号"),
        row(units, "D", d(2026, 9, 7, 9), closed_at=d(2026, 9, 8, 9), unit="dc-donghuamen",
            street=S2, community=None, address=""),
        row(units, "D-R", d(2026, 9, 9, 9), unit="dc-donghuamen", street=S2, community=None,
            address=""),  # empty address and NULL community: never the same place
        row(units, "E", d(2026, 8, 30, 9), closed_at=d(2026, 8, 31, 23, 59, 59)),
        row(units, "F", d(2026, 9, 25, 9), closed_at=UNTIL, address="东单北大街2号"),
        row(units, "F-R", d(2026, 10, 2, 9), address="东单北大街2号"),
    ]  # fmt: skip


EXPECTED = {  # (same_place, same_category) -> the recurred tickets
    ("address", True): {"A"},
    ("address", False): {"A", "B"},
    ("community", True): {"A", "C"},
    ("community", False): {"A", "B", "C"},
    ("street", True): {"A", "C", "D"},
    ("street", False): {"A", "B", "C", "D"},
}


def criteria(place: str, category: bool, **kw: Any) -> LookbackCriteria:
    return LookbackCriteria(FROM, UNTIL, 30, same_place=place, same_category=category, **kw)


def found(engine: Engine, c: LookbackCriteria) -> Any:
    with engine.connect() as conn:
        return findings(conn, c)


@pytest.mark.parametrize(("place", "category"), list(EXPECTED))
def test_planted_recurrences_are_found_and_nothing_else(
    engine: Engine, city_config: CityConfig, place: str, category: bool
) -> None:
    units = setup_city(engine, city_config)
    ids = add(engine, planted(units))
    frame = found(engine, criteria(place, category))
    assert set(frame["external_id"]) == EXPECTED[(place, category)]
    assert frame["item_id"].is_unique
    names = {v: k for k, v in ids.items()}
    assert all(names[i] == e for i, e in zip(frame["item_id"], frame["external_id"], strict=True))
    # Each first recurrence is a ticket received after the closure.
    assert (frame["first_recurrence_received_at"] > frame["closed_at"]).all()


def test_window_end_counts_a_second_later_does_not_nor_before_the_closure(
    engine: Engine, city_config: CityConfig
) -> None:
    units = setup_city(engine, city_config)
    ids = add(engine, planted(units))
    frame = found(engine, criteria("address", True))
    [a] = frame.itertuples(index=False)
    assert a.external_id == "A" and a.recurrences == 2  # A-R1 and A-R-END, not A-PRE/A-R-LATE
    assert a.first_recurrence_id == ids["A-R1"] and a.first_recurrence_external_id == "A-R1"
    assert a.unit_code == "dc-jianguomen" and a.status == "closed"
    # A window one day shorter loses A-R-END; 20 days still has A-R1 only.
    shorter = found(engine, LookbackCriteria(FROM, UNTIL, 20, "address", True))
    assert list(shorter["recurrences"]) == [1]


def test_filters_by_unit_and_problem(engine: Engine, city_config: CityConfig) -> None:
    units = setup_city(engine, city_config)
    add(engine, planted(units))
    donghuamen = found(engine, criteria("street", True, unit_ids=(units["dc-donghuamen"],)))
    assert set(donghuamen["external_id"]) == {"D"}
    with session_scope(engine) as session:
        p02 = session.scalars(select(Problem.id).where(Problem.code == "P02")).one()
        session.query(Ticket).filter(Ticket.external_id == "C").update({"problem_id": p02})
    only_p02 = found(engine, criteria("street", True, problem_ids=(p02,)))
    assert set(only_p02["external_id"]) == {"C"} and list(only_p02["problem_code"]) == ["P02"]


def test_rates_per_unit_and_problem(engine: Engine, city_config: CityConfig) -> None:
    units = setup_city(engine, city_config)
    add(engine, planted(units))
    with session_scope(engine) as session:
        p02 = session.scalars(select(Problem.id).where(Problem.code == "P02")).one()
        session.query(Ticket).filter(Ticket.external_id.in_(["A", "B"])).update({"problem_id": p02})
    with engine.connect() as conn:
        by_unit = recurrence_rates(conn, criteria("address", True), "unit").set_index("unit_code")
        by_problem = recurrence_rates(conn, criteria("address", True), "problem")
    # Jianguomen closed A, B, C (all with an address), A recurred; Donghuamen closed D, which
    # has no address: closed 1, examined 0, rate undefined.
    assert by_unit.loc["dc-jianguomen", ["closed", "examined", "recurred"]].tolist() == [3, 3, 1]
    assert by_unit.loc["dc-jianguomen", "recurrence_rate"] == pytest.approx(1 / 3)
    assert by_unit.loc["dc-donghuamen", ["closed", "examined", "recurred"]].tolist() == [1, 0, 0]
    assert by_unit["recurrence_rate"].isna()["dc-donghuamen"]
    assert set(by_unit.index) == {"dc-jianguomen", "dc-donghuamen"}
    assert by_problem[["problem_code", "closed", "examined", "recurred"]].values.tolist() == [
        ["P02", 2, 2, 1]
    ]


# ---------------------------------------------------------------- against a brute force


def place_of(t: dict[str, Any], same_place: str) -> tuple[Any, ...] | None:
    """The place of a ticket as docs/lookback.md defines it; None: at no place."""
    if same_place == "address":
        key = place_key(t["district"], t["street"], t["address"])
        return None if key is None else (key,)
    value = t[same_place]
    if not (value or "").strip():
        return None
    if same_place == "community":
        return (t["district"], t["street"], value)
    return (t["district"], value)


def brute_force(rows: list[dict[str, Any]], c: LookbackCriteria) -> dict[str, tuple[int, str]]:
    """{external_id: (recurrences, first recurrence's external_id)} from the definition."""
    out: dict[str, tuple[int, str]] = {}
    for t in rows:
        place = place_of(t, c.same_place)
        if t["status"] not in ("closed", "reopened") or t["closed_at"] is None:
            continue
        if not c.closed_from <= t["closed_at"] < c.closed_until or place is None:
            continue
        end = t["closed_at"] + timedelta(days=c.window_days)
        recurring = sorted(
            (r["received_at"], r["id"], r["external_id"])
            for r in rows
            if r is not t
            and place_of(r, c.same_place) == place
            and t["closed_at"] < r["received_at"] <= end
            and (not c.same_category or r["category"] == t["category"])
        )
        if recurring:
            out[t["external_id"]] = (len(recurring), recurring[0][2])
    return out


def random_rows(units: dict[str, int], n: int = 240, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        received = datetime(2026, 8, 10) + timedelta(minutes=rng.randrange(0, 80 * 24 * 60))
        closed = None
        if rng.random() < 0.6:
            # Some closures exactly a window (10 days) before another ticket's arrival.
            closed = received + timedelta(hours=rng.randrange(1, 240))
        rows.append(
            row(
                units, f"R{i:03d}", received, closed_at=closed,
                status=rng.choice(["closed", "closed", "reopened"]) if closed else "open",
                category=rng.choice([NOISE, RUBBISH]),
                district=rng.choice(["东城区"] * 6 + ["朝阳区", None]),
                street=rng.choice([S1, S2, None, ""]),
                community=rng.choice([C1, C2, None, ""]),
                # the same places spelled apart: full-width digits, spaces, 号院, a prefix
                address=rng.choice([ADDR1, ADDR2, ADDR3, "", None, "建国门内大街１号",
                                    " 建国门内大街 1号院", "东城区建国门内大街9号",
                                    "建国门街道西总布胡同3号。"]),
                unit=rng.choice(["dc-jianguomen", "dc-donghuamen", "cy-sanlitun"]),
            )
        )  # fmt: skip
    # Exact window ends: a ticket received exactly 10 days after some closures.
    for t in [r for r in rows if r["closed_at"]][:8]:
        end = t["closed_at"] + timedelta(days=10)
        rows.append(
            dict(t, external_id=f"{t['external_id']}-END", status="open", closed_at=None,
                 received_at=end)
        )  # fmt: skip
    return rows


@pytest.mark.parametrize("category", [True, False])
def test_agrees_with_a_brute_force_on_a_random_city(
    engine: Engine, city_config: CityConfig, category: bool
) -> None:
    units = setup_city(engine, city_config)
    rows = random_rows(units)
    ids = add(engine, rows)
    for r in rows:
        r["id"] = ids[r["external_id"]]
    for place in ("address", "community", "street"):
        c = LookbackCriteria(FROM, UNTIL, 10, same_place=place, same_category=category)
        frame = found(engine, c)
        got = {
            r.external_id: (int(r.recurrences), r.first_recurrence_external_id)
            for r in frame.itertuples(index=False)
        }
        expected = brute_force(rows, c)
        assert got == expected, place
        assert len(expected) >= 5, place  # the random city does have recurrences


def test_the_first_own_recurrence_is_the_units_own_ticket(
    engine: Engine, city_config: CityConfig
) -> None:
    """Issue 15, item 13: a recurrence received by another unit (another district) comes
    first; the first own recurrence and the count of own ones are the unit's only."""
    units = setup_city(engine, city_config)
    d = datetime
    add(engine, [
        row(units, "G", d(2026, 9, 1, 9), closed_at=d(2026, 9, 2, 9)),
        row(units, "G-OTHER", d(2026, 9, 3, 9), unit="cy-sanlitun"),  # first, not G's unit
        row(units, "G-OWN", d(2026, 9, 4, 9)),
        row(units, "G-OTHER-2", d(2026, 9, 5, 9), unit="housing"),
        row(units, "H", d(2026, 9, 1, 9), closed_at=d(2026, 9, 2, 9), address=ADDR2),
        row(units, "H-OTHER", d(2026, 9, 3, 9), unit="cy-sanlitun", address=ADDR2),
    ])  # fmt: skip
    frame = found(engine, criteria("address", True)).set_index("external_id")
    g, h = frame.loc["G"], frame.loc["H"]
    assert (g.recurrences, g.own_recurrences) == (3, 1)
    assert g.first_recurrence_external_id == "G-OTHER"  # for the office
    assert g.first_own_recurrence_external_id == "G-OWN"
    assert g.first_own_recurrence_content == "诉求G-OWN"
    assert (h.recurrences, h.own_recurrences) == (1, 0)
    assert h.first_own_recurrence_external_id is None and h.first_own_recurrence_content is None
    assert pd.isna(h.first_own_recurrence_received_at)
