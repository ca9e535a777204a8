"""The units directory (单位名录): who each unit is and how to reach it — one query for every
loop that addresses units (code → id, name, kind, e-mail addresses, supervisor, active).

The rows come in the database's own order (no ORDER BY, as every reader had it): readers
index them by id or code.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Row, Select, select

from duban.queries import kernel as k
from duban.queries.kernel import U

__all__ = ["DIRECTORY_COLUMNS", "contact", "directory", "directory_frame", "unit_ids"]

DIRECTORY_COLUMNS: tuple[str, ...] = (
    "id", "code", "name", "kind", "emails", "supervisor_id", "active",
)  # fmt: skip


def _directory() -> Select[Any]:
    return select(*(U[name] for name in DIRECTORY_COLUMNS))


def directory(conn: Connection) -> list[Row[Any]]:
    """Every unit (DIRECTORY_COLUMNS, read by name: ``row.code``, ``row.emails``)."""
    return list(conn.execute(_directory()).all())


def directory_frame(conn: Connection) -> pd.DataFrame:
    """Every unit as a frame indexed by id (the other DIRECTORY_COLUMNS)."""
    return k.frame(conn, _directory()).set_index("id")


def contact(conn: Connection, code: str) -> Row[Any] | None:
    """The e-mail addresses (`emails`) and `active` of the unit `code`; None if unknown."""
    return conn.execute(select(U.emails, U.active).where(U.code == code)).one_or_none()


def unit_ids(conn: Connection, codes: Collection[str] | None = None) -> dict[str, int]:
    """code -> id of the units of `codes` (of every unit when None)."""
    return k.ids_by_code(conn, U, codes)
