"""Run records of the supervision loops: what ran for which period, and how it ended.

Each run records its worker (host:pid). A run still `running` whose worker is gone (this
host, no such process) or that started more than `STALE_AFTER` ago was killed mid-way (a run
recorded without a worker, by an older version, is left alone):
`stale_runs` finds it and `abandon_runs` marks it `abandoned` (see duban/notices/recovery.py).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from duban.db import session_scope
from duban.db.models import Run

# A run still "running" after this long is taken for dead whatever its worker.
STALE_AFTER = timedelta(hours=24)
ABANDONED = "abandoned"


def worker_name() -> str:
    """Who is running: host and process ("host:pid", at most 48 characters)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


def process_of(worker: str) -> str:
    """ "host:pid" of a worker name, without a "/suffix" (one delivery pass of the process)."""
    return worker.partition("/")[0]


def worker_alive(worker: str | None) -> bool | None:
    """True/False for a worker on this host (its process exists or not); None when it runs
    elsewhere or the name is not host:pid[/suffix] (it cannot be told from here)."""
    host, sep, pid = process_of(worker or "").rpartition(":")
    if not sep or host != socket.gethostname()[:40] or not pid.isdigit():
        return None
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, someone else's
        return True
    return True


def start_run(
    engine: Engine,
    loop: str,
    period: str,
    parameters: dict[str, Any],
    dry_run: bool,
    worker: str | None = None,
) -> int:
    with session_scope(engine) as session:
        run = Run(
            loop=loop, period=period, started_at=datetime.now(), status="running",
            dry_run=dry_run, parameters=parameters, summary={},
            worker=worker or worker_name(),
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


@dataclass(frozen=True)
class StaleRun:
    id: int
    loop: str
    period: str
    started_at: datetime
    worker: str | None
    parameters: dict[str, Any]


def stale_runs(engine: Engine, now: datetime | None = None) -> list[StaleRun]:
    """Runs recorded `running`, with a worker, whose worker is gone or that started more
    than STALE_AFTER ago, by id."""
    now = now or datetime.now()
    with session_scope(engine) as session:
        rows = session.scalars(select(Run).where(Run.status == "running").order_by(Run.id)).all()
        found = [
            StaleRun(r.id, r.loop, r.period, r.started_at, r.worker, dict(r.parameters or {}))
            for r in rows
            # Without a worker (recorded before runs had one): never guessed at.
            if r.worker and (worker_alive(r.worker) is False or r.started_at < now - STALE_AFTER)
        ]
    return found


def abandon_runs(engine: Engine, ids: Collection[int], reason: str) -> list[int]:
    """Mark these runs `abandoned` (only while still `running`); the ids this call marked."""
    marked: list[int] = []
    for run_id in ids:
        with engine.begin() as conn:
            result = conn.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == "running")
                .values(status=ABANDONED, finished_at=datetime.now(), summary={"error": reason})
            )
        if result.rowcount == 1:
            marked.append(run_id)
    return marked
