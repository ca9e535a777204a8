"""`duban deploy --work-pool NAME`: register every enabled loop with a work pool.

Production: a Prefect server on PostgreSQL, a `process` work pool and one or more
`prefect worker start --pool NAME` processes, each on a machine with a checkout of this
repository at `source`. Like `duban serve`, a deployment that exists keeps the schedules
the administrators gave it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from uuid import UUID

from deployments.registry import REPO
from deployments.serve import prefect_api_url
from duban.config.schedules import load_schedules
from duban.settings import Settings

log = logging.getLogger("duban.deployments")


class NoWorkPool(RuntimeError):
    """The work pool does not exist on the server."""


def check_work_pool(name: str) -> str:
    """The pool's type; NoWorkPool (saying how to create it) when the server has none."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            raise NoWorkPool(
                f"work pool {name!r} not found on {prefect_api_url()}: create it with "
                f"`prefect work-pool create {name} --type process`"
            ) from None
    return pool.type


def deploy_loops(
    settings: Settings,
    work_pool: str,
    *,
    work_queue: str | None = None,
    source: Path | None = None,
    only: list[str] | None = None,
) -> dict[str, UUID]:
    """Register the enabled loops with `work_pool`; returns the deployment ids by full name."""
    from deployments.registry import build_deployments, load_loops

    prefect_api_url()
    kind = check_work_pool(work_pool)
    if kind != "process":
        log.warning("work pool %s is of type %s: Duban is tested with 'process'", work_pool, kind)
    schedules = load_schedules(Path(settings.config_dir))
    loops = load_loops(schedules, settings.timezone, Path(settings.config_dir), only)
    deployments = build_deployments(
        loops, work_pool=work_pool, work_queue=work_queue, source=source or REPO
    )
    ids: dict[str, UUID] = {}
    for loop, deployment in zip(loops, deployments, strict=True):
        deployment_id = deployment.apply(work_pool_name=work_pool)
        assert isinstance(deployment_id, UUID)  # sync context: not a coroutine
        ids[loop.full_name] = deployment_id
    return ids
