"""At the start of a run: what a killed run left behind is recovered and the admins told.

A run killed mid-way (kill -9, a lost database, a machine restart) stays `running` in `runs`
and leaves the deliveries it had claimed `sending`. `recover`, called by every flow before
it records its own run (flows/bracket.py `loop_run`):

1. marks each stale run (duban/db/runs.py `stale_runs`: its worker is gone, or it started
   more than a day ago) `abandoned`;
2. hands back at once the `sending` deliveries of those workers, and of any process of this
   host that is gone — not after the 600 s lease;
3. tells the admins, once per abandoned run: a failure alert (duban/notices/alert.py) put in
   the outbox and delivered — itself a delivery, retried like any other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from duban.config import MailFile
from duban.db.runs import abandon_runs, stale_runs
from duban.notices.alert import failure_notice, record_alert
from duban.notices.deliver import deliver
from duban.notices.outbox import release_dead_claims
from duban.settings import Settings

__all__ = ["REASON", "Recovered", "recover"]

log = logging.getLogger("duban.recovery")

REASON = "the run stopped without finishing (its process is gone); marked abandoned"


@dataclass
class Recovered:
    runs: list[int] = field(default_factory=list)  # the runs marked abandoned
    released: int = 0  # deliveries handed back
    alerts_sent: int = 0  # alert e-mails sent now


def recover(engine: Engine, settings: Settings, mail: MailFile, logger: Any = log) -> Recovered:
    """Recover what killed runs left behind and tell the admins; see the module's doc."""
    stale = stale_runs(engine)
    marked = set(abandon_runs(engine, [r.id for r in stale], REASON))
    abandoned = [r for r in stale if r.id in marked]
    result = Recovered(runs=[r.id for r in abandoned])
    result.released = release_dead_claims(engine, {r.worker for r in abandoned if r.worker})
    for run in abandoned:
        logger.warning(
            "run %s (%s %s, started %s by %s) %s",
            run.id, run.loop, run.period, f"{run.started_at:%Y-%m-%d %H:%M}", run.worker, REASON,
        )  # fmt: skip
    if not abandoned or not mail.admins:
        return result
    notice_ids = []
    for run in abandoned:
        run_key = f"run{run.id}abandoned"
        rendered = failure_notice(
            run.loop, f"{run.loop} {run.period}", run_key, run.started_at,
            f"{REASON} (worker {run.worker}); its claimed deliveries were handed back",
            run.parameters, None, subject_prefix=mail.subject_prefix, settings=settings,
        )  # fmt: skip
        started = run.started_at.astimezone(settings.zone)
        notice_ids.append(record_alert(engine, settings, mail, run_key, started, rendered))
    sent = deliver(
        engine, settings, mail, notice_ids=notice_ids, label="abandoned runs", logger=logger
    )
    result.alerts_sent = sent["sent"]
    return result
