"""Run records of the supervision loops: what ran for which period, and how it ended."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, select

from duban.db import session_scope
from duban.db.models import Run


def start_run(
    engine: Engine, loop: str, period: str, parameters: dict[str, Any], dry_run: bool
) -> int:
    with session_scope(engine) as session:
        run = Run(
            loop=loop, period=period, started_at=datetime.now(), status="running",
            dry_run=dry_run, parameters=parameters, summary={},
        )  # fmt: skip
        session.add(run)
        session.flush()
        return run.id


def finish_run(engine: Engine, run_id: int, status: str, summary: dict[str, Any]) -> None:
    with session_scope(engine) as session:
        run = session.get_one(Run, run_id)
        run.status = status
        run.summary = summary
        run.finished_at = datetime.now()


def first_started(engine: Engine, loop: str, period: str) -> datetime | None:
    """When the first real (not dry) run for this period started: a re-run reports what the
    first one recorded, so that it shows the same view."""
    from sqlalchemy import func

    with session_scope(engine) as session:
        return session.scalar(
            select(func.min(Run.started_at)).where(
                Run.loop == loop, Run.period == period, Run.dry_run.is_(False)
            )
        )


def last_completed_day(engine: Engine, loop: str, before: date) -> date | None:
    """The latest period (a YYYY-MM-DD day) before `before` with a completed, real run."""
    with session_scope(engine) as session:
        periods = session.scalars(
            select(Run.period)
            .where(
                Run.loop == loop,
                Run.status == "ok",
                Run.dry_run.is_(False),
                Run.period < before.isoformat(),
            )
            .order_by(Run.period.desc())
            .limit(1)
        ).all()
    return date.fromisoformat(periods[0]) if periods else None
