"""Fast insert and upsert of many rows, below SQLAlchemy's per-value processing.

PostgreSQL: `insert_new` COPYs straight into the table inside a SAVEPOINT; if that meets a
unique violation (a parallel import inserted one of the keys meanwhile, or the frame was not
all new) it rolls back to the savepoint and takes the staged path. Staged (and `upsert`):
COPY (text format) into a temporary staging table, then one INSERT … SELECT … ON CONFLICT:
rows a parallel import inserted meanwhile are skipped (`insert_new`) or updated where they
differ (`upsert`), never duplicated. Either way the same rows are stored. The COPY text is
built column by column: each column becomes a list of strings (escaped only when the column
holds a character that needs it), and only the final join runs per row.
SQLite: the driver's executemany with INSERT … ON CONFLICT, timestamps written in
SQLAlchemy's own storage format ("YYYY-MM-DD HH:MM:SS.ffffff") so that they compare
correctly with the values SQLAlchemy binds in queries.

The frame must hold exactly the table's columns to fill, with None/NaT/NA for NULL.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Boolean, Connection, Table

SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"
_COPY_NULL = "\\N"
_COPY_SPECIAL = ("\\", "\t", "\n", "\r")


def insert_new(
    conn: Connection,
    table: Table,
    frame: pd.DataFrame,
    keys: list[str],
    arrow: bool = False,
    direct: bool = True,
) -> bool:
    """INSERT the rows; a row whose key exists already is left alone (DO NOTHING).

    `arrow`: PostgreSQL's COPY input written as CSV by pyarrow (`copy_csv`), SQLite's
    times formatted by numpy; else built in Python (`copy_text`). The same rows either way.
    `direct` (PostgreSQL): first try a COPY straight into the table (meant for rows that
    are new as far as the caller knows). Returns whether that direct COPY stored them
    (False: the staged path did, or SQLite's INSERT)."""
    if frame.empty:
        return False
    if conn.dialect.name == "postgresql":
        body, options = _copy_body(frame, table, arrow)
        if direct and _copy_direct(conn, table, frame, body, options):
            return True
        _copy_postgres(conn, table, frame, keys, None, arrow, body)
        return False
    _executemany_sqlite(conn, table, frame, keys, None, arrow)
    return False


def upsert(
    conn: Connection,
    table: Table,
    frame: pd.DataFrame,
    keys: list[str],
    changed_when: str,
    arrow: bool = False,
) -> None:
    """INSERT the rows; a row whose key exists gets the frame's other columns, but only if
    its column `changed_when` (a hash of the rest) differs: unchanged rows are not written."""
    if frame.empty:
        return
    if conn.dialect.name == "postgresql":
        _copy_postgres(conn, table, frame, keys, changed_when, arrow)
    else:
        _executemany_sqlite(conn, table, frame, keys, changed_when, arrow)


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _conflict_clause(
    table: str, columns: list[str], keys: list[str], changed_when: str | None
) -> str:
    if changed_when is None:
        return f"ON CONFLICT ({_quoted(keys)}) DO NOTHING"
    assignments = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in keys)
    return (
        f"ON CONFLICT ({_quoted(keys)}) DO UPDATE SET {assignments} "
        f'WHERE "{table}"."{changed_when}" IS DISTINCT FROM excluded."{changed_when}"'
    )


def copy_text_column(series: pd.Series, boolean: bool = False) -> list[str]:
    """One column in COPY's text format: a string per row, `\\N` for NULL."""
    if pd.api.types.is_datetime64_any_dtype(series):
        values = series.to_numpy(dtype="datetime64[us]")
        missing = np.isnat(values)
        whole = (values[~missing].astype(np.int64) % 1_000_000 == 0).all()
        text = np.datetime_as_string(values, unit="s" if whole else "us").astype(object)
        text[missing] = _COPY_NULL
        return list(text)
    if boolean:
        mapped = series.map({True: "t", False: "f"}).to_numpy(dtype=object, copy=True)
        mapped[pd.isna(mapped)] = _COPY_NULL
        return list(mapped)
    if pd.api.types.is_integer_dtype(series):  # int64, or nullable Int64
        numbers = series.to_numpy(dtype=object, na_value=None).tolist()
        return [_COPY_NULL if v is None else str(v) for v in numbers]
    objects = series.to_numpy(dtype=object, copy=True)
    missing = pd.isna(objects)
    objects[missing] = ""
    try:
        joined = "".join(objects.tolist())
    except TypeError:  # not all text
        objects = np.array([str(v) for v in objects.tolist()], dtype=object)
        joined = "".join(objects.tolist())
    if any(ch in joined for ch in _COPY_SPECIAL):
        objects = np.array([_escaped(v) for v in objects.tolist()], dtype=object)
    objects[missing] = _COPY_NULL
    return list(objects)


def _escaped(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def copy_text(frame: pd.DataFrame, table: Table) -> str:
    """The frame as the body of `COPY … FROM STDIN` (text format)."""
    columns = [
        copy_text_column(frame[name], isinstance(table.c[str(name)].type, Boolean))
        for name in frame.columns
    ]
    return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"


def copy_csv(frame: pd.DataFrame) -> bytes:
    """The frame as the body of `COPY … FROM STDIN (FORMAT csv)`, written by pyarrow
    (without holding the GIL): text quoted, NULL as an unquoted empty field, times as
    `YYYY-MM-DD HH:MM:SS.ffffff`, booleans as true/false."""
    out = pa.BufferOutputStream()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pacsv.write_csv(table, out, write_options=pacsv.WriteOptions(include_header=False))
    return bytes(out.getvalue())


_UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE
_SAVEPOINT = "duban_copy_direct"


def _copy_body(frame: pd.DataFrame, table: Table, arrow: bool) -> tuple[str | bytes, str]:
    """The COPY input of the frame and the COPY options it needs."""
    if arrow:
        return copy_csv(frame), " (FORMAT csv)"
    return copy_text(frame, table), ""


def _copy_direct(
    conn: Connection, table: Table, frame: pd.DataFrame, body: str | bytes, options: str
) -> bool:
    """COPY the rows straight into the table inside a SAVEPOINT; True if stored. A unique
    violation (a key stored meanwhile by another transaction, or already there) rolls back
    to the savepoint and returns False, with nothing of the frame stored; any other error
    raises as it is."""
    raw: Any = conn.connection.dbapi_connection
    columns = [str(c) for c in frame.columns]
    with raw.cursor() as cur:
        cur.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            with cur.copy(f'COPY "{table.name}" ({_quoted(columns)}) FROM STDIN{options}') as copy:
                copy.write(body)
        except Exception as exc:
            if getattr(exc, "sqlstate", None) != _UNIQUE_VIOLATION:
                raise
            cur.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            return False
        cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    return True


def _copy_postgres(
    conn: Connection,
    table: Table,
    frame: pd.DataFrame,
    keys: list[str],
    changed_when: str | None,
    arrow: bool = False,
    body: str | bytes | None = None,
) -> None:
    """The staged path: COPY into a temporary table, then INSERT … SELECT … ON CONFLICT.
    `body`: the frame's COPY input when built already (in the form `arrow` says)."""
    columns = [str(c) for c in frame.columns]
    options = " (FORMAT csv)" if arrow else ""
    if body is None:
        body = _copy_body(frame, table, arrow)[0]
    raw: Any = conn.connection.dbapi_connection
    temp = f"tmp_{table.name}_load"
    with raw.cursor() as cur:
        cur.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS "{temp}" '
            f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS'
        )
        with cur.copy(f'COPY "{temp}" ({_quoted(columns)}) FROM STDIN{options}') as copy:
            copy.write(body)
        cur.execute(
            f'INSERT INTO "{table.name}" ({_quoted(columns)}) SELECT {_quoted(columns)} '
            f'FROM "{temp}" {_conflict_clause(table.name, columns, keys, changed_when)}'
        )


def _sqlite_times(series: pd.Series) -> list[Any]:
    """Times as SQLITE_DATETIME text (None for NaT), formatted by numpy: the same text as
    strftime's for the years 1000-9999 (others: strftime)."""
    values = series.to_numpy(dtype="datetime64[us]")
    missing = np.isnat(values)
    years = values[~missing].astype("datetime64[Y]").astype(np.int64) + 1970
    if len(years) and (years.min() < 1000 or years.max() > 9999):
        text = series.dt.strftime(SQLITE_DATETIME)
        return list(text.astype(object).where(series.notna(), None).tolist())
    iso = np.strings.replace(np.datetime_as_string(values, unit="us"), "T", " ")
    out = iso.astype(object)
    out[missing] = None
    return list(out.tolist())


def _executemany_sqlite(
    conn: Connection,
    table: Table,
    frame: pd.DataFrame,
    keys: list[str],
    changed_when: str | None,
    arrow: bool = False,
) -> None:
    columns = [str(c) for c in frame.columns]
    values: list[list[Any]] = []
    for name in columns:
        series = frame[name]
        if arrow and pd.api.types.is_datetime64_any_dtype(series):
            values.append(_sqlite_times(series))
        elif pd.api.types.is_datetime64_any_dtype(series):
            text = series.dt.strftime(SQLITE_DATETIME)
            values.append(text.astype(object).where(series.notna(), None).tolist())
        else:
            values.append(series.astype(object).where(series.notna(), None).tolist())
    placeholders = ", ".join("?" for _ in columns)
    sql = (
        f'INSERT INTO "{table.name}" ({_quoted(columns)}) VALUES ({placeholders}) '
        f"{_conflict_clause(table.name, columns, keys, changed_when)}"
    )
    raw: Any = conn.connection.dbapi_connection
    cur = raw.cursor()
    try:
        cur.executemany(sql, list(zip(*values, strict=True)))
    finally:
        cur.close()
