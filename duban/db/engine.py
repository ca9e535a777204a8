"""Engine, sessions and schema upgrades; the one place that knows about dialect differences."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; a SQLite file gets its folder, WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA cache_size=-65536")  # 64 MiB: index upkeep on big imports
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    with session_factory(engine)() as session, session.begin():
        yield session


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(files("duban.db") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` with the Alembic migrations (never `create_all`)."""
    command.upgrade(alembic_config(engine), revision)


def schema_is_current(engine: Engine) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(engine))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    return set(current) == set(script.get_heads())


def has_table(engine: Engine, name: str) -> bool:
    return inspect(engine).has_table(name)


def drop_schema(engine: Engine) -> None:
    """Drop every Duban table and the migration record (used by the demo on request only)."""
    from sqlalchemy import text

    from duban.db.models import Base

    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


def _insert_skipping(conn: Any, table: Any, keys: list[str]) -> Any:
    """INSERT … ON CONFLICT (`keys`) DO NOTHING, in the connection's dialect."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect_insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=keys)


def insert_ignore(
    conn: Any, table: Any, rows: list[dict[str, Any]], keys: list[str], batch: int = 5000
) -> int:
    """INSERT rows, skipping those whose unique `keys` exist already, `batch` rows per
    statement (bounded memory and parameter counts); returns rows inserted, as far as the
    driver reports it (executemany does not on every driver: count when it matters)."""
    if not rows:
        return 0
    stmt = _insert_skipping(conn, table, keys)
    inserted = 0
    for start in range(0, len(rows), batch):
        result = conn.execute(stmt, rows[start : start + batch])
        inserted += max(int(result.rowcount or 0), 0)
    return inserted


def insert_returning(
    conn: Any, table: Any, rows: list[dict[str, Any]], keys: list[str], batch: int = 5000
) -> list[tuple[Any, ...]]:
    """As `insert_ignore`, but returns the `keys` of the rows this statement itself inserted
    (INSERT … ON CONFLICT DO NOTHING RETURNING, on SQLite and PostgreSQL): a row that
    existed, or that a concurrent transaction inserted first, is not among them."""
    if not rows:
        return []
    stmt = _insert_skipping(conn, table, keys).returning(*(table.c[k] for k in keys))
    inserted: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), batch):
        inserted += [tuple(r) for r in conn.execute(stmt, rows[start : start + batch])]
    return inserted
