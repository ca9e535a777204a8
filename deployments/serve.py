"""`duban serve`: one process that registers every enabled loop and runs its flow runs.

The embedded setup: a Prefect server (`prefect server start`, SQLite) and this process on
the same machine. Stopping it leaves the schedules as they are (`pause_on_shutdown=False`):
runs scheduled meanwhile wait, late, until it is started again.
"""

from __future__ import annotations

import logging
from pathlib import Path

from duban.config.schedules import load_schedules
from duban.settings import Settings

log = logging.getLogger("duban.deployments")


class NoPrefectServer(RuntimeError):
    """PREFECT_API_URL is not set: there is no server to register with."""


def prefect_api_url() -> str:
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise NoPrefectServer(
            "PREFECT_API_URL is not set: start a Prefect server (`prefect server start`) and "
            "point Duban at it, e.g. PREFECT_API_URL=http://127.0.0.1:4200/api "
            "(see docs/operations.md)"
        )
    return url


def serve_loops(settings: Settings, only: list[str] | None = None, limit: int | None = None) -> int:
    """Register the enabled loops and serve them until interrupted; returns how many."""
    from prefect import serve

    from deployments.registry import build_deployments, load_loops

    url = prefect_api_url()
    schedules = load_schedules(Path(settings.config_dir))
    loops = load_loops(schedules, settings.timezone, Path(settings.config_dir), only)
    if not loops:
        log.warning("no loop to serve: every loop is disabled or its flow does not exist yet")
        return 0
    deployments = build_deployments(loops)
    log.info("serving %d loops against %s", len(deployments), url)
    serve(*deployments, pause_on_shutdown=False, limit=limit)
    return len(deployments)
