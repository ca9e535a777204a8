"""`duban demo`: the demo city end to end, through the same entry points a real city uses.

It generates the city's config, plan workbook and ticket export (duban.demo.city), then
syncs the units and problems, imports the plan and the tickets, runs every supervision
loop that exists over the period, and says where the reports and e-mails went.
Everything lives under one folder (default var/demo), rebuilt on each run.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

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
    daily_runs: int | None = 10,
    ui: bool = False,
) -> int:
    from duban.config import load_config
    from duban.db import drop_schema, has_table, make_engine, session_scope, upgrade
    from duban.demo.city import DemoSpec, generate_city
    from duban.ingest.city import sync_city
    from duban.ingest.plan import import_plan
    from duban.ingest.tickets import import_tickets

    if days < 1 or daily_volume < 1:
        raise ValueError("--days and --daily-volume must be at least 1")
    started = time.monotonic()

    def step(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True)

    base_config = get_settings().config_dir
    _prepare(out_dir)
    home = _own_prefect_home(out_dir)
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
    step("recorded the supervision clock's events: " + record_demo_events(engine, config, spec))
    engine.dispose()

    _use_settings(settings)
    server = None
    if ui:
        from duban.demo.ui import start_server

        server = start_server(home)
        os.environ["PREFECT_API_URL"] = server.api_url
        step(f"Prefect server started (its database in {home}): the UI at {server.url}")
    try:
        _run_loops(out_dir, spec, config, settings, files, daily_runs, step)
        if server is not None:
            _serve(settings, server.url, step)
    finally:
        if server is not None:
            server.stop()
    return 0


def _run_loops(
    out_dir: Path,
    spec: Any,
    config: Any,
    settings: Settings,
    files: Any,
    daily_runs: int | None,
    step: Any,
) -> None:
    """Every supervision loop over the demo city, then where everything went."""
    run_days = _daily_run_days(config, spec.start, spec.days, daily_runs)
    if run_days:
        from flows.daily import daily_report

        step(
            f"running the daily loop for {len(run_days)} working days "
            f"({run_days[0]:%Y-%m-%d} … {run_days[-1]:%Y-%m-%d}) in Prefect"
        )
        for day in run_days:
            result = daily_report(day=day)
            step(
                f"daily {day:%Y-%m-%d}: {result['units_reported']} units reported, "
                f"{result['red']} red, new ladder steps {result['escalations'] or 'none'}, "
                f"{result['mail_sent']} e-mails"
            )

    end = spec.start + timedelta(days=spec.days - 1)  # the last day of tickets
    weekly = _run_weekly(end, step)
    monthly = _run_monthly(end, step)
    looked_back = _run_lookback(spec.start, end, step)
    checked = _run_spot_check(end, settings, step)
    evaluated = _run_annual(end, step)

    print()
    print(f"Demo city in {out_dir}/")
    print(f"  config:   {settings.config_dir}/ (units.yaml, problems.yaml, sources/ …)")
    print(f"  exports:  {files.tickets_csv}, {files.plan_workbook}")
    print(f"  database: {settings.safe_database_url}")
    print(f"  reports:  {settings.reports_dir}/")
    print(f"  e-mails:  {settings.outbox_dir}/ (.eml files; no SMTP server is configured)")
    if run_days:
        last = run_days[-1]
        print(
            f"  daily:    {settings.reports_dir}/daily/{last:%Y-%m-%d}/office-digest.html "
            "(the city digest; one <unit>-unit.html per unit)"
        )
    if weekly:
        print(
            f"  weekly:   {weekly['archive']}/office-analysis.html (with its charts; "
            "one <unit>-analysis.html per lead unit)"
        )
    if monthly:
        print(
            f"  monthly:  {monthly['archive']}/office-bulletin.html (the bulletin; lead units "
            "also got their ledger workbook 台账-<unit>-<date>.xlsx)"
        )
    if checked:
        print(
            f"  spot check: {checked['archive']}/office-report.html and the checklist "
            f"{checked['checklist']} (filled in by the demo's inspectors: {checked['returned']})"
        )
    if looked_back.get("archive"):
        print(f"  look-back: {looked_back['archive']}/office-findings.html")
    if evaluated:
        print(f"  annual:   {evaluated['archive']}/ (the annual summary and 评分.csv)")
    home = os.environ.get("PREFECT_HOME", "~/.prefect")
    print(f"  Prefect:  {home} (PREFECT_HOME: the runs and artifacts)")


def _own_prefect_home(out_dir: Path) -> Path:
    """The demo's Prefect home, inside its folder (never ~/.prefect); set before Prefect is
    first imported (the command line), which reads it once."""
    from duban.demo.ui import prefect_home

    home = prefect_home(out_dir.resolve())
    home.mkdir(parents=True, exist_ok=True)
    if "prefect" not in sys.modules:  # else too late (a test, a script): Prefect's own stays
        os.environ["PREFECT_HOME"] = str(home)
    return home


def _serve(settings: Settings, url: str, step: Any) -> None:
    """Register the demo city's loops with the server and serve them until Ctrl-C."""
    from deployments.serve import serve_loops

    print()
    print(f"The Prefect UI: {url}  (the demo's runs are there; Ctrl-C stops serving and it)")
    print(f"  deployments serve the demo city: database {settings.safe_database_url},")
    print(f"  config {settings.config_dir}/")
    step("serving the demo city's deployments")
    try:
        serve_loops(settings)
    except KeyboardInterrupt:
        step("stopped")


def _run_annual(end: date, step: Any) -> dict[str, Any]:
    """年终考评 of the demo's year (the year of its last day): scores, ranking, summary."""
    from flows.annual import annual_evaluation

    year = end.year
    result = annual_evaluation(year=year)
    step(
        f"annual evaluation {year}: {result.get('units_scored')} units scored, "
        f"{result.get('units_ranked')} ranked, {result.get('mail_sent')} e-mails"
    )
    return result


def record_demo_events(engine: Any, config: Any, spec: Any) -> str:
    """Every kind of clock event on the demo's last days (duban/demo/events.py), through
    `record_events` as any source; the summary line."""
    from duban.clock import record_events
    from duban.demo.events import demo_events

    as_of = datetime.combine(spec.start + timedelta(days=spec.days), datetime.min.time())
    events = demo_events(engine, as_of, spec.seed)
    result = record_events(engine, events, as_of=as_of, all_or_nothing=False, config=config)
    return result.line()


def _last_full_week(end: date) -> str:
    """The last ISO week (Monday to Sunday) that ends on or before `end`."""
    sunday = end - timedelta(days=(end.weekday() + 1) % 7)
    year, week, _ = sunday.isocalendar()
    return f"{year}-W{week:02d}"


def _run_weekly(end: date, step: Any) -> dict[str, Any]:
    from flows.weekly import weekly_analysis

    week = _last_full_week(end)
    result = weekly_analysis(week=week)
    step(
        f"weekly {week}: {result['tickets']} tickets (week before {result['tickets_last_week']}), "
        f"{result['charts']} charts, {result['mail_sent']} e-mails"
    )
    return result


def _last_full_month(end: date) -> str:
    """The last calendar month that ends on or before `end`."""
    last = end if (end + timedelta(days=1)).day == 1 else end.replace(day=1) - timedelta(days=1)
    return f"{last:%Y-%m}"


def _run_monthly(end: date, step: Any) -> dict[str, Any]:
    """月通报: rendered as drafts, then approved (as an administrator would, in the Prefect
    UI or with `duban approve monthly`) and sent."""
    from flows.monthly import approve_monthly, monthly_bulletin

    month = _last_full_month(end)
    drafted = monthly_bulletin(month=month, wait_for_approval=False)
    step(
        f"monthly {month}: {drafted.get('headline', '')}; {drafted.get('units_ranked')} units "
        f"ranked, {drafted.get('drafts', 0)} notices held as drafts"
    )
    approved = approve_monthly(month, "duban demo", comment="approved by the demo")
    step(f"monthly {month} approved: " + ", ".join(f"{k} {v}" for k, v in approved.items()))
    return drafted


def _last_full_quarter(end: date) -> str:
    """The last quarter that ends on or before `end`."""
    after = end + timedelta(days=1)
    if after.day == 1 and after.month in (1, 4, 7, 10):
        last_day = end
    else:
        last_day = date(end.year, 3 * ((end.month - 1) // 3) + 1, 1) - timedelta(days=1)
    return f"{last_day.year}-Q{(last_day.month - 1) // 3 + 1}"


def _run_spot_check(end: date, settings: Settings, step: Any) -> dict[str, Any]:
    """季度抽查核验: draw the sample, send the checklist; then play the inspectors: fill the
    checklist (every tenth item fails) and import it, as `duban import checks` does."""
    from flows.quarterly import quarterly_spot_check

    quarter = _last_full_quarter(end)
    result = quarterly_spot_check(quarter=quarter)
    step(
        f"spot check {quarter}: {result['drawn']} of {result['population']} items drawn in "
        f"{result['strata']} strata (draw {result['fingerprint']}), {result['mail_sent']} e-mails"
    )
    if not result.get("checklist"):
        return {}
    path = Path(result["archive"]) / result["checklist"]
    returned = _inspect(path, path.with_name(f"returned-{path.name}"), settings, step)
    return {**result, "returned": returned}


def _inspect(path: Path, target: Path, settings: Settings, step: Any) -> str:
    from openpyxl import load_workbook

    from duban.config import load_config
    from duban.db import make_engine
    from duban.loops.quarterly.checklist import CHECKLIST, import_checks

    checked_on = date.today()  # the inspectors check after the draw, which is made today
    book = load_workbook(path)
    ws = book[CHECKLIST.zh]
    header = {c.value: c.column for c in ws[1]}
    for i, row in enumerate(range(2, ws.max_row + 1)):
        failed = i % 10 == 9
        ws.cell(row, header["核验结果"]).value = "不通过" if failed else "通过"
        ws.cell(row, header["核验说明"]).value = "现场核实：问题仍未解决" if failed else None
        ws.cell(row, header["核验日期"]).value = checked_on
    book.save(target)
    engine = make_engine(settings.database_url)
    try:
        summary = import_checks(
            engine, load_config(settings.config_dir), target, settings.reports_dir
        )
    finally:
        engine.dispose()
    step("inspectors' checklist imported: " + summary.line())
    return str(target)


def _run_lookback(start: date, end: date, step: Any) -> dict[str, Any]:
    """回头看 of the tickets closed in the month before the last 30 days: did they come back
    within 30 days? Report only (nothing is reopened), to the office and the units."""
    from duban.loops.lookback.findings import LookbackRequest
    from flows.lookback import lookback

    closed_to = end - timedelta(days=30)
    closed_from = max(start, closed_to - timedelta(days=29))
    request = LookbackRequest(
        closed_from=closed_from, closed_to=closed_to, window_days=30, same_place="address"
    )
    result = lookback(request)
    step(
        f"look-back of tickets closed {closed_from:%Y-%m-%d} … {closed_to:%Y-%m-%d}: "
        + ", ".join(f"{k} {v}" for k, v in result.items() if k not in ("request", "archive"))
    )
    return result


def _use_settings(settings: Settings) -> None:
    """Point the flows (which read DUBAN_* settings) at the demo city."""
    import os

    values = {
        "DUBAN_DATABASE_URL": settings.database_url,
        "DUBAN_CONFIG_DIR": str(settings.config_dir),
        "DUBAN_OUTBOX_DIR": str(settings.outbox_dir),
        "DUBAN_REPORTS_DIR": str(settings.reports_dir),
        "DUBAN_SMTP_HOST": "",
    }
    os.environ.update(values)
    get_settings.cache_clear()


def _daily_run_days(config: Any, start: date, days: int, runs: int | None) -> list[date]:
    """The working days to run the daily report for: the last `runs` of the period (all if
    None), ending with the first working day after the last day of tickets."""
    calendar = config.calendar
    end = calendar.add_working_days(start + timedelta(days=days - 1), 1)
    all_days = [
        start + timedelta(days=i)
        for i in range(1, (end - start).days + 1)
        if calendar.is_working_day(start + timedelta(days=i))
    ]
    return all_days if runs is None else all_days[-runs:] if runs > 0 else []
