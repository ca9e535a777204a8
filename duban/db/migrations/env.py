"""Alembic environment: Duban passes its engine in `config.attributes["engine"]`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from duban.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from duban.settings import get_settings

        engine = create_engine(get_settings().database_url)
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run_migrations_online()
