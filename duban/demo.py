"""`duban demo`: the demo city end to end, through the same entry points a real city uses.

It generates the city's config, plan workbook and ticket export (duban.demo_city), then
syncs the units and problems, imports the plan and the tickets, runs every supervision
loop that exists over the period, and says where the reports and e-mails went.
Everything lives under one folder (default var/demo), rebuilt on each run.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from duban.settings import Settings, get_settings

MARKER = ".duban-demo"


def _prepare(out_dir: Path) -> None:
    """Empty `out_dir` for a new demo; refuse to wipe a folder the demo did not make."""
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / MARKER).exists():
            raise ValueError(
                f"{out_dir} exists and was not made by `duban demo`; choose another --dir"
            )
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("made by `duban demo`; rebuilt on each run\n", encoding="utf-8")


def demo_settings(out_dir: Path, database_url: str | None) -> Settings:
    base = get_settings()
    return base.model_copy(
        update={
            "database_url": database_url or f"sqlite:///{out_dir / 'duban.db'}",
            "config_dir": out_dir / "config",
            "outbox_dir": out_dir / "outbox",
            "reports_dir": out_dir / "reports",
            "smtp_host": None,
        }
    )


def run_demo(
    out_dir: Path,
    *,
    days: int,
    daily_volume: int,
    seed: int,
    database_url: str | None,
    reset_database: bool = False,
) -> int:
    from duban.city import sync_city
    from duban.config import load_config
    from duban.db import drop_schema, has_table, make_engine, session_scope, upgrade
    from duban.demo_city import DemoSpec, generate_city
    from duban.plan_import import import_plan
    from duban.ticket_import import import_tickets

    if days < 1 or daily_volume < 1:
        raise ValueError("--days and --daily-volume must be at least 1")
    started = time.monotonic()

    def step(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True)

    base_config = get_settings().config_dir
    _prepare(out_dir)
    spec = DemoSpec(seed=seed, days=days, daily_volume=daily_volume)
    files = generate_city(spec, out_dir, base_config)
    step(
        f"generated the demo city: {files.units} units, {files.problems} problems, "
        f"{files.plan_tasks} plan tasks, {files.policies} policies, {files.tickets} tickets "
        f"({spec.start:%Y-%m-%d} + {spec.days} days)"
    )

    settings = demo_settings(out_dir, database_url)
    config = load_config(settings.config_dir)
    engine = make_engine(settings.database_url)
    if database_url is not None and has_table(engine, "tickets"):
        if not reset_database:
            raise ValueError(
                f"{settings.safe_database_url} already holds Duban tables; the demo needs an "
                "empty database: pass --reset-database to drop Duban's tables first"
            )
        drop_schema(engine)
    upgrade(engine)
    step(f"database ready: {settings.safe_database_url}")
    with session_scope(engine) as session:
        step("synced config: " + sync_city(session, config).line())
    step(
        "imported the plan: "
        + import_plan(engine, config, files.plan_workbook, settings.reports_dir).line()
    )
    summary = import_tickets(
        engine, config, files.tickets_csv, "duban", settings.reports_dir, timezone=settings.timezone
    )
    step("imported the tickets: " + summary.line())

    print()
    print(f"Demo city in {out_dir}/")
    print(f"  config:   {settings.config_dir}/ (units.yaml, problems.yaml, sources/ …)")
    print(f"  exports:  {files.tickets_csv}, {files.plan_workbook}")
    print(f"  database: {settings.safe_database_url}")
    print(f"  reports:  {settings.reports_dir}/")
    print(f"  e-mails:  {settings.outbox_dir}/ (.eml files; no SMTP server is configured)")
    engine.dispose()
    return 0
