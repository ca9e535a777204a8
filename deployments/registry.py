"""config/schedules.yaml → Prefect deployments, for `duban serve` and `duban deploy`.

Flows are imported lazily, by the import path the config names: a loop whose flow module
does not exist yet is skipped with a warning, and picked up once the module lands.

Who owns a schedule: the administrators, once the deployment exists on the server. A
deployment that is new gets the cron of config/schedules.yaml; one that exists is
registered *without* a `schedules` field, so Prefect leaves its schedules (edited, added or
paused in the UI) and its paused flag as they are. Background: re-registering a
deployment that carries schedules replaces the server's (PrefectHQ/prefect#14973, #18822),
and `RunnerDeployment` sends `schedules: []` — which deletes them — unless the field is
left unset; see `keep_server_schedules`.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.client.schemas.responses import DeploymentResponse
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.runner.storage import LocalStorage
from prefect.schedules import Cron
from prefect.utilities.callables import parameter_schema

from duban.config import ConfigError
from duban.config.schedules import FILE_NAME, LoopSchedule, SchedulesFile

log = logging.getLogger("duban.deployments")

REPO = Path(__file__).resolve().parents[1]

# One run of a loop at a time: a scheduled run that would overlap the previous one is
# cancelled rather than queued (a slow daily report is never doubled by the next).
ONE_AT_A_TIME = ConcurrencyLimitConfig(
    limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
)


@dataclass(frozen=True)
class Loop:
    """An enabled loop of config/schedules.yaml whose flow could be imported."""

    config: LoopSchedule
    flow: Flow[..., Any]
    timezone: str

    @property
    def full_name(self) -> str:
        """'flow-name/deployment-name', as Prefect names a deployment."""
        return f"{self.flow.name}/{self.config.name}"

    @property
    def entrypoint(self) -> str:
        """The flow's file relative to the repository, as prefect.yaml and workers name it."""
        return f"{self.config.module.replace('.', '/')}.py:{self.config.attribute}"


def import_flow(loop: LoopSchedule, where: str) -> Flow[..., Any] | None:
    """The loop's flow, or None (with a warning) when its module does not exist yet."""
    try:
        module = importlib.import_module(loop.module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (loop.module == missing or loop.module.startswith(missing + ".")):
            log.warning(
                "loop %s: skipped: its flow module %s does not exist yet (%s)",
                loop.name,
                loop.module,
                where,
            )
            return None
        raise
    flow = getattr(module, loop.attribute, None)
    if not isinstance(flow, Flow):
        raise ConfigError([f"{where}.flow: {loop.flow} is not a Prefect flow (got {loop.flow!r})"])
    return flow


def missing_parameters(flow: Flow[..., Any], given: dict[str, Any]) -> list[str]:
    """Parameters the flow requires that neither the config nor a default supplies."""
    schema = parameter_schema(flow)
    return sorted(set(schema.required or []) - set(given))


def load_loops(
    schedules: SchedulesFile, city_timezone: str, config_dir: Path, only: list[str] | None = None
) -> list[Loop]:
    """The enabled loops whose flows exist, each with its time zone.

    A scheduled loop whose flow requires a parameter the config does not give is skipped
    with a warning: its scheduled runs could not start.
    """
    known = {loop.name for loop in schedules.loops}
    unknown = sorted(set(only or []) - known)
    if unknown:
        raise ConfigError(
            [f"{config_dir / FILE_NAME}: no loop named {', '.join(map(repr, unknown))}"]
        )
    loops: list[Loop] = []
    for index, config in enumerate(schedules.loops):
        if only and config.name not in only:
            continue
        if not config.enabled:
            log.info("loop %s: disabled in %s", config.name, FILE_NAME)
            continue
        flow = import_flow(config, f"{config_dir / FILE_NAME}: loops[{index}]")
        if flow is None:
            continue
        missing = missing_parameters(flow, config.parameters)
        if config.cron and missing:
            log.warning(
                "loop %s: skipped: %s requires %s, which a scheduled run cannot supply; "
                "give the flow a default (the period before today) or set parameters in %s",
                config.name,
                config.flow,
                ", ".join(missing),
                FILE_NAME,
            )
            continue
        loops.append(Loop(config, flow, schedules.zone_of(config, city_timezone)))
    return loops


# ---------------------------------------------------------------- reading the server


def existing_deployments(loops: list[Loop]) -> dict[str, DeploymentResponse]:
    """The deployments of `loops` the Prefect server already has, by full name."""
    found: dict[str, DeploymentResponse] = {}
    with get_client(sync_client=True) as client:
        for loop in loops:
            try:
                found[loop.full_name] = client.read_deployment_by_name(loop.full_name)
            except ObjectNotFound:
                continue
    return found


# ---------------------------------------------------------------- building deployments


def first_schedules(loop: Loop) -> list[Any]:
    """The schedule a new deployment starts with (none for a loop started by hand)."""
    if not loop.config.cron:
        return []
    return [Cron(loop.config.cron, timezone=loop.timezone, slug=loop.config.name)]


def keep_server_schedules(deployment: RunnerDeployment) -> RunnerDeployment:
    """Register `deployment` without touching the schedules the server has.

    `RunnerDeployment.apply()` PATCHes an existing deployment with the fields that were
    *set* on the model (`model_dump(exclude_unset=True)`); `to_deployment()` always sets
    `schedules` (to [] when given none), and the server replaces the schedules with any
    list it receives — [] deletes them. With the field unset, the PATCH carries no
    `schedules` and the server keeps the deployment's schedules as they are.
    """
    deployment.schedules = None
    deployment.model_fields_set.discard("schedules")
    return deployment


def build_deployment(
    loop: Loop,
    existing: DeploymentResponse | None,
    *,
    work_pool: str | None = None,
    work_queue: str | None = None,
    source: Path | None = None,
) -> RunnerDeployment:
    """The deployment of one loop; `existing`: the server's deployment of that name.

    With `work_pool`: for workers, which change into `source` (the checkout of this
    repository on the worker's machine) before they load the flow.
    """
    config = loop.config
    kwargs: dict[str, Any] = dict(
        name=config.name,
        description=config.description or None,
        parameters=config.parameters,
        tags=["duban", *config.tags],
        concurrency_limit=ONE_AT_A_TIME,
    )
    if existing is None:
        kwargs["schedules"] = first_schedules(loop)
    else:
        kwargs["paused"] = existing.paused  # paused in the UI stays paused
    if work_pool:
        kwargs["work_pool_name"] = work_pool
        if work_queue:
            kwargs["work_queue_name"] = work_queue
    deployment = loop.flow.to_deployment(**kwargs)
    assert isinstance(deployment, RunnerDeployment)  # sync context: not a coroutine
    if work_pool:
        # A process worker runs `set_working_directory` (the pull step of LocalStorage), then
        # loads the entrypoint relative to it: the repository checkout on its machine.
        deployment.storage = LocalStorage(path=str(source or REPO))
        deployment.entrypoint = loop.entrypoint
    if existing is not None:
        keep_server_schedules(deployment)
    return deployment


def build_deployments(
    loops: list[Loop],
    *,
    work_pool: str | None = None,
    work_queue: str | None = None,
    source: Path | None = None,
) -> list[RunnerDeployment]:
    existing = existing_deployments(loops)
    deployments = []
    for loop in loops:
        current = existing.get(loop.full_name)
        if current is None:
            log.info("loop %s: new deployment %s, schedule %s", loop.config.name,
                     loop.full_name, _describe(loop))  # fmt: skip
        else:
            log.info(
                "loop %s: deployment %s exists: its schedules on the server are kept",
                loop.config.name,
                loop.full_name,
            )
        deployments.append(
            build_deployment(
                loop, current, work_pool=work_pool, work_queue=work_queue, source=source
            )
        )
    return deployments


def _describe(loop: Loop) -> str:
    if not loop.config.cron:
        return "none (started by hand)"
    return f"{loop.config.cron} ({loop.timezone})"
