"""The SQL kernel's dialect functions compile to the same SQL on every supported dialect."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.dialects import mysql, postgresql, sqlite

from duban.queries.kernel import T, day_of, none_for_missing, seconds_between


def _sql(stmt: object, dialect: object) -> str:
    return str(stmt.compile(dialect=dialect))  # type: ignore[attr-defined]


def test_seconds_between_on_sqlite_and_postgresql() -> None:
    stmt = select(seconds_between(T.received_at, T.first_response_at))
    assert (
        "(ROUND((julianday(tickets.first_response_at) - julianday(tickets.received_at))"
        " * 86400000.0) / 1000.0)" in _sql(stmt, sqlite.dialect())
    )
    assert (
        "CAST(EXTRACT(EPOCH FROM (tickets.first_response_at - tickets.received_at))"
        " AS DOUBLE PRECISION)" in _sql(stmt, postgresql.dialect())
    )


def test_day_of_on_sqlite_and_postgresql() -> None:
    stmt = select(day_of(T.received_at))
    assert "date(tickets.received_at)" in _sql(stmt, sqlite.dialect())
    assert "to_char(tickets.received_at, 'YYYY-MM-DD')" in _sql(stmt, postgresql.dialect())


@pytest.mark.parametrize("function", [day_of, seconds_between])
def test_another_dialect_is_refused(function: type) -> None:
    args = (T.received_at,) if function is day_of else (T.received_at, T.closed_at)
    with pytest.raises(NotImplementedError, match=f"{function.name}: dialect mysql not supported"):
        _sql(select(function(*args)), mysql.dialect())


def test_missing_text_is_none_and_numbers_keep_their_dtype() -> None:
    frame = pd.DataFrame([("a", 1, 0.5, None), (None, 2, None, None)], columns=list("wxyz"))
    out = none_for_missing(frame)
    assert out["w"].dtype == object and out["w"].tolist() == ["a", None]
    assert out["z"].tolist() == [None, None]
    assert out["x"].dtype == "int64" and out["y"].dtype == "float64"
    assert pd.isna(out["y"].iloc[1])
