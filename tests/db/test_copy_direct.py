"""PostgreSQL: new tickets are COPYed straight into `tickets` inside a SAVEPOINT; a key
stored already (by another transaction meanwhile) sends the chunk down the staged ON
CONFLICT DO NOTHING path instead, in the same transaction, with the same stored rows."""

from __future__ import annotations

from typing import Any, cast

import pandas as pd
import pytest
from sqlalchemy import Engine, Table, func, insert, select

from duban.config import CityConfig
from duban.db.bulk_insert import insert_new
from duban.db.models import Ticket, Unit
from duban.ingest.tickets import _one_of
from tests.db.test_ticket_import import city as city  # the fixture
from tests.db.test_ticket_import import tickets

TICKETS = cast(Table, Ticket.__table__)


def _ticket(engine: Engine, external_id: str, content: str) -> dict[str, Any]:
    with engine.connect() as conn:
        unit_id = conn.scalar(select(func.min(Unit.id)))
    return {
        "source": "duban",
        "external_id": external_id,
        "received_at": pd.Timestamp("2026-09-29 08:00:00").to_pydatetime(),
        "category": "噪声扰民",
        "unit_id": unit_id,
        "urgency": 2,
        "status": "open",
        "content": content,
        "row_hash": 7,
        "returned_count": 0,
        "reassigned_count": 0,
    }


def _frame(engine: Engine, ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame([_ticket(engine, i, f"new {i}") for i in ids])


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
@pytest.mark.parametrize("arrow", [False, True])
def test_new_rows_are_copied_straight_into_the_table(
    engine: Engine, city: CityConfig, arrow: bool
) -> None:
    with engine.begin() as conn:
        direct = insert_new(
            conn, TICKETS, _frame(engine, ["A1", "A2"]), ["source", "external_id"], arrow
        )
    assert direct is True
    assert {t.content for t in tickets(engine).values()} == {"new A1", "new A2"}


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
@pytest.mark.parametrize("arrow", [False, True])
def test_a_stored_key_falls_back_to_do_nothing_in_the_same_transaction(
    engine: Engine, city: CityConfig, arrow: bool
) -> None:
    with engine.begin() as conn:
        conn.execute(insert(TICKETS).values(_ticket(engine, "B2", "stored first")))
    with engine.begin() as conn:
        direct = insert_new(
            conn, TICKETS, _frame(engine, ["B1", "B2", "B3"]), ["source", "external_id"], arrow
        )
        # The transaction goes on after the savepoint's rollback.
        assert conn.scalar(select(func.count()).select_from(TICKETS)) == 3
    assert direct is False
    stored = tickets(engine)
    assert {k: t.content for k, t in stored.items()} == {
        "B1": "new B1", "B2": "stored first", "B3": "new B3",
    }  # fmt: skip


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["sqlite", "postgres"], indirect=True)
def test_the_stored_id_lookup_finds_exactly_the_ids_asked_for(
    engine: Engine, city: CityConfig
) -> None:
    """The chunk's stored ids, looked up as one joined parameter on PostgreSQL; an id that
    holds the separator itself (U+001F) takes the array parameter, and finds itself only."""
    stored = ["A1", "B\x1fC", "B", "C", "", "D 1"]
    with engine.begin() as conn:
        conn.execute(insert(TICKETS), [_ticket(engine, i, i) for i in stored])

    def found(ids: list[str]) -> set[str]:
        with engine.connect() as conn:
            where = _one_of(conn, TICKETS.c.external_id, ids)
            return set(conn.scalars(select(TICKETS.c.external_id).where(where)))

    assert found(["A1", "D 1", "X"]) == {"A1", "D 1"}
    assert found(["B", "C"]) == {"B", "C"}  # not "B\x1fC"
    assert found(["B\x1fC"]) == {"B\x1fC"}  # not "B" nor "C"
    assert found(["A1", "B\x1fC", "Y"]) == {"A1", "B\x1fC"}
    assert found([""]) == {""}
    assert found(["A1", ""]) == {"A1", ""}
