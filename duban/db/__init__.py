"""The write side's plumbing: engine and sessions, the ORM models, schema migrations (Alembic),
bulk insert, and the run records of the loops.

`duban.db` itself is the engine API (dialect differences live only in `engine.py`); the models
are `duban.db.models`, bulk loading `duban.db.bulk_insert`, run records `duban.db.runs`.
"""

from duban.db.engine import (
    alembic_config,
    drop_schema,
    has_table,
    insert_ignore,
    insert_returning,
    is_postgres,
    make_engine,
    schema_is_current,
    session_factory,
    session_scope,
    upgrade,
)

__all__ = [
    "alembic_config",
    "drop_schema",
    "has_table",
    "insert_ignore",
    "insert_returning",
    "is_postgres",
    "make_engine",
    "schema_is_current",
    "session_factory",
    "session_scope",
    "upgrade",
]
