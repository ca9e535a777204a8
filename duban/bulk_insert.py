"""Fast insert of many new rows, below SQLAlchemy's per-value processing.

PostgreSQL: COPY (CSV) into a temporary table, then INSERT … SELECT … ON CONFLICT DO
NOTHING — rows a parallel import inserted meanwhile are skipped, not duplicated.
SQLite: the driver's executemany with INSERT … ON CONFLICT DO NOTHING, timestamps written
in SQLAlchemy's own storage format ("YYYY-MM-DD HH:MM:SS.ffffff") so that they compare
correctly with the values SQLAlchemy binds in queries.

The frame must hold exactly the table's columns to fill, with None/NaT for NULL.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
from sqlalchemy import Boolean, Connection, Table

SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def insert_new(conn: Connection, table: Table, frame: pd.DataFrame, keys: list[str]) -> None:
    if frame.empty:
        return
    if conn.dialect.name == "postgresql":
        _copy_postgres(conn, table, frame, keys)
    else:
        _executemany_sqlite(conn, table, frame, keys)


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _copy_postgres(conn: Connection, table: Table, frame: pd.DataFrame, keys: list[str]) -> None:
    columns = [str(c) for c in frame.columns]
    text = frame.copy()
    for name in columns:
        series = text[name]
        if pd.api.types.is_datetime64_any_dtype(series):
            text[name] = series.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
        elif isinstance(table.c[name].type, Boolean):
            # t/f; None stays empty, which is NULL in COPY's CSV format.
            text[name] = series.map({True: "t", False: "f"})
    buffer = io.StringIO()
    text.to_csv(buffer, index=False, header=False, na_rep="")
    raw: Any = conn.connection.dbapi_connection
    temp = f"tmp_{table.name}_load"
    with raw.cursor() as cur:
        cur.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS "{temp}" '
            f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS'
        )
        with cur.copy(f'COPY "{temp}" ({_quoted(columns)}) FROM STDIN WITH (FORMAT csv)') as copy:
            copy.write(buffer.getvalue())
        cur.execute(
            f'INSERT INTO "{table.name}" ({_quoted(columns)}) SELECT {_quoted(columns)} '
            f'FROM "{temp}" ON CONFLICT ({_quoted(keys)}) DO NOTHING'
        )


def _executemany_sqlite(
    conn: Connection, table: Table, frame: pd.DataFrame, keys: list[str]
) -> None:
    columns = [str(c) for c in frame.columns]
    values: list[list[Any]] = []
    for name in columns:
        series = frame[name]
        if pd.api.types.is_datetime64_any_dtype(series):
            text = series.dt.strftime(SQLITE_DATETIME)
            values.append(text.astype(object).where(series.notna(), None).tolist())
        else:
            values.append(series.astype(object).where(series.notna(), None).tolist())
    placeholders = ", ".join("?" for _ in columns)
    sql = (
        f'INSERT INTO "{table.name}" ({_quoted(columns)}) VALUES ({placeholders}) '
        f"ON CONFLICT ({_quoted(keys)}) DO NOTHING"
    )
    raw: Any = conn.connection.dbapi_connection
    cur = raw.cursor()
    try:
        cur.executemany(sql, list(zip(*values, strict=True)))
    finally:
        cur.close()
