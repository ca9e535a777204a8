"""The `duban` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from duban.cli import options
from duban.settings import Settings, get_settings, uses_example_config

# The temporary Prefect server a flow starts when no PREFECT_API_URL is set must come up
# within this many seconds; Prefect's own default is too short on a busy 2-core machine.
EPHEMERAL_STARTUP_TIMEOUT = "300"
EPHEMERAL_TIMEOUT_VARIABLE = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


class UserError(Exception):
    """An error the user can fix; printed without a traceback."""


def _engine(settings: Settings) -> Any:
    from duban.db import make_engine, upgrade

    engine = make_engine(settings.database_url)
    upgrade(engine)  # idempotent: brings an empty or older database to the current schema
    return engine


def _config(settings: Settings) -> Any:
    from duban.config import load_config

    return load_config(settings.config_dir)


def _checked_config(settings: Settings) -> Any:
    """The config, every section loaded and checked (ConfigError otherwise): a loop's
    command checks it before Prefect starts."""
    from duban.config import ConfigError

    config = _config(settings)
    problems = config.validate_all()
    if problems:
        raise ConfigError(problems)
    return config


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    _engine(settings)
    print(f"schema is current: {settings.safe_database_url}")
    return 0


def cmd_config_check(args: argparse.Namespace, settings: Settings) -> int:
    config = _config(settings)
    problems = config.validate_all()
    for line in problems:
        print(line, file=sys.stderr)
    # Warnings are part of the check's report (stdout); errors go to stderr.
    for line in config.zone_warnings(settings.timezone, settings.timezone_origin):
        print(f"warning: {line}")
    if problems:
        return 2
    print(f"{settings.config_dir}: configuration is valid (the city's time zone: "
          f"{settings.timezone}, from {settings.timezone_origin})")  # fmt: skip
    if uses_example_config(settings):
        print("note: this is the example city shipped with Duban; "
              "`duban init DIR` writes a city's own to edit")  # fmt: skip
    return 0


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    import shutil

    from duban.resources import example_config

    target = Path(args.dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target} exists and is not empty: choose a new folder")
    shutil.copytree(example_config(), target, dirs_exist_ok=True)
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*.yaml"))
    print(f"{target}: the example city's configuration ({len(files)} files: "
          f"{', '.join(files)})")  # fmt: skip
    print(f"next: edit units.yaml, problems.yaml and mail.yaml, then "
          f"`DUBAN_CONFIG_DIR={target} duban config check`")  # fmt: skip
    return 0


def cmd_outbox_retry(args: argparse.Namespace, settings: Settings) -> int:
    from duban.notices.retry import retry_and_deliver

    config = _config(settings)
    engine = _engine(settings)
    try:
        result = retry_and_deliver(
            engine, settings, config.mail, ids=args.ids or (), status=args.status, every=args.all
        )
    finally:
        engine.dispose()
    print(
        f"{result['requeued']} deliveries re-queued; {result['sent']} sent, "
        f"{result['pending']} still pending, {result['failed']} failed, "
        f"{result['refused']} refused, {result['parked']} parked"
    )
    return 0 if result["sent"] >= result["requeued"] else 1


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    from duban.db import session_scope
    from duban.ingest.city import sync_city

    config = _config(settings)
    engine = _engine(settings)
    with session_scope(engine) as session:
        summary = sync_city(session, config)
    print(summary.line())
    return 0


def cmd_import_tickets(args: argparse.Namespace, settings: Settings) -> int:
    from duban.ingest.tickets import import_tickets

    config = _config(settings)
    engine = _engine(settings)
    progress, on_chunk = _progress(Path(args.path))
    with progress:
        summary = import_tickets(
            engine,
            config,
            Path(args.path),
            args.source,
            settings.reports_dir,
            timezone=settings.timezone,
            chunk_rows=args.chunk_rows,
            on_chunk=on_chunk,
            engine_name=settings.import_engine,
            bulk=args.bulk,
            xlsx_reader=settings.xlsx_reader,
        )
    print(summary.line())
    return 0


def cmd_import_events(args: argparse.Namespace, settings: Settings) -> int:
    from duban.clock.exports import import_events

    result = import_events(_engine(settings), _config(settings), Path(args.path), args.source)
    for refused in result.refused:
        print(f"duban: refused: {refused.line()}", file=sys.stderr)
    print(f"{args.path}: {result.line()}")
    return 0


def cmd_import_plan(args: argparse.Namespace, settings: Settings) -> int:
    from duban.ingest.plan import import_plan

    config = _config(settings)
    engine = _engine(settings)
    summary = import_plan(engine, config, Path(args.path), settings.reports_dir)
    print(summary.line())
    return 0


def _import_returned(args: argparse.Namespace, settings: Settings, importer: Any) -> int:
    """A returned workbook (ledger or checklist), checked against today in the city."""
    from duban.context import today_in_city

    config = _config(settings)
    engine = _engine(settings)
    today = today_in_city(settings)
    summary = importer(engine, config, Path(args.path), settings.reports_dir, today=today)
    print(summary.line())
    return 0


def cmd_import_ledger(args: argparse.Namespace, settings: Settings) -> int:
    from duban.loops.monthly.ledger import import_ledger

    return _import_returned(args, settings, import_ledger)


def cmd_import_checks(args: argparse.Namespace, settings: Settings) -> int:
    from duban.loops.quarterly.checklist import import_checks

    return _import_returned(args, settings, import_checks)


def cmd_ledger_export(args: argparse.Namespace, settings: Settings) -> int:
    from duban.context import today_in_city
    from duban.loops.monthly.ledger import ledger_file_name, write_ledger_workbook

    as_of = date.fromisoformat(args.as_of) if args.as_of else today_in_city(settings)
    out = Path(args.out) if args.out else settings.reports_dir / "ledger"
    config = _config(settings)
    if not args.out or out.is_dir() or args.out.endswith("/"):
        unit = next((u for u in config.units.units if u.code == args.unit), None)
        out = out / ledger_file_name(unit.name if unit else args.unit, as_of)
    path = write_ledger_workbook(_engine(settings), config, args.unit, as_of, out)
    print(f"{args.unit}: ledger as of {as_of} written to {path}")
    return 0


def cmd_decide(args: argparse.Namespace, settings: Settings) -> int:
    """One office decision on a ticket's clock (docs/clock.md)."""
    from duban.clock.decide import Decision, record_decision

    decision = Decision(
        ticket=args.ticket,
        action=args.action,
        at=datetime.fromisoformat(args.at) if args.at else datetime.now(),
        request=args.request,
        working_days=args.days,
        new_due=datetime.fromisoformat(args.new_due) if args.new_due else None,
        reason=args.reason or "",
        actor=args.actor,
    )
    result = record_decision(
        _engine(settings), _config(settings), decision, default_source=args.source
    )
    for refused in result.refused:
        print(f"duban: refused: {refused.line()}", file=sys.stderr)
    print(f"{decision.event_key()}: {result.line()}")
    return 0 if result.ok else 1


def cmd_decide_workbook_export(args: argparse.Namespace, settings: Settings) -> int:
    from duban.workbooks.decisions import write_decisions_workbook

    out = Path(args.out) if args.out else settings.reports_dir / "decisions"
    path, count = write_decisions_workbook(_engine(settings), _config(settings), out)
    print(f"{count} pending requests written to {path}")
    return 0


def cmd_decide_workbook_import(args: argparse.Namespace, settings: Settings) -> int:
    from duban.workbooks.decisions import import_decisions_workbook

    result = import_decisions_workbook(
        _engine(settings), _config(settings), Path(args.path), actor=args.actor
    )
    for refused in result.refused:
        print(f"duban: refused: {refused.line()}", file=sys.stderr)
    print(f"{args.path}: {result.line()}" + ("" if result.ok else " (nothing recorded)"))
    return 0 if result.ok else 1


def cmd_calendar_due(args: argparse.Namespace, settings: Settings) -> int:
    config = _config(settings)
    received = date.fromisoformat(args.date)
    due = config.calendar.due_date(received, args.working_days)
    limit = f"{args.working_days} working days"
    print(f"received {received:%Y-%m-%d %a}, {limit}: due {due:%Y-%m-%d %a} 23:59:59")
    return 0


def cmd_run_daily(args: argparse.Namespace, settings: Settings) -> int:
    _checked_config(settings)
    from flows.daily import daily_report

    day = date.fromisoformat(args.date) if args.date else None
    summary = daily_report(day=day, dry_run=args.dry_run)
    print(_summary_line("daily report", summary))
    return 0


def cmd_run_lookback(args: argparse.Namespace, settings: Settings) -> int:
    from duban.loops.lookback.findings import build_request, unknown_codes

    request = build_request(
        closed_from=args.closed_from, closed_to=args.closed_to, problems=args.problem or None,
        units=args.unit or None, window_days=args.window_days, same_place=args.same_place,
        same_category=not args.any_category, reopen=args.reopen, notify=not args.no_notify,
    )  # fmt: skip
    config = _checked_config(settings)
    unknown = unknown_codes(
        request, [u.code for u in config.units.units], [p.code for p in config.problems.problems]
    )
    if unknown:
        raise UserError("; ".join(unknown) + " (see config/units.yaml and config/problems.yaml)")
    from flows.lookback import lookback

    summary = lookback(request=request)
    print(_summary_line("look-back", summary))
    return 0


def cmd_run_weekly(args: argparse.Namespace, settings: Settings) -> int:
    from duban.periods import parse_week
    from flows.weekly import weekly_analysis

    parse_week(args.week)  # a bad value is a clear error before Prefect starts
    _checked_config(settings)
    summary = weekly_analysis(week=args.week, dry_run=args.dry_run)
    print(_summary_line("weekly analysis", summary))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from deployments.serve import NoPrefectServer, serve_loops

    _serve_logging()
    try:
        served = serve_loops(settings, only=args.loop or None, limit=args.limit)
    except NoPrefectServer as exc:
        raise UserError(str(exc)) from None
    return 0 if served else 1


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    from deployments.deploy import NoWorkPool, deploy_loops
    from deployments.serve import NoPrefectServer

    _serve_logging()
    try:
        ids = deploy_loops(
            settings,
            args.work_pool,
            work_queue=args.work_queue,
            source=Path(args.source).resolve() if args.source else None,
            only=args.loop or None,
        )
    except (NoPrefectServer, NoWorkPool) as exc:
        raise UserError(str(exc)) from None
    for name, deployment_id in ids.items():
        print(f"deployed {name} to work pool {args.work_pool}: {deployment_id}")
    return 0 if ids else 1


def _serve_logging() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not every poll of the Prefect API


def cmd_run_monthly(args: argparse.Namespace, settings: Settings) -> int:
    from duban.periods import parse_month
    from flows.monthly import monthly_bulletin

    month = parse_month(args.month).label  # a bad value is a clear error before Prefect starts
    _checked_config(settings)
    summary = monthly_bulletin(month=month, dry_run=args.dry_run, correct=args.correct)
    print(_summary_line("monthly bulletin", summary))
    if summary.get("figures_changed") and summary.get("correction") is None:
        print(f"{summary['figures_changed']} published figures have changed since: "
              f"issue a correction with `duban run monthly --month {month} --correct`")  # fmt: skip
    if summary.get("status") == "draft":
        print(f"held as a draft; approve with `duban approve monthly {month}`")
    return 0


def cmd_run_annual(args: argparse.Namespace, settings: Settings) -> int:
    from duban.periods import parse_year
    from flows.annual import annual_evaluation

    year = parse_year(args.year) if args.year else None  # a clear error before Prefect starts
    _checked_config(settings)
    summary = annual_evaluation(year=year, dry_run=args.dry_run)
    summary = {k: v for k, v in summary.items() if k not in ("groups", "totals")}
    print(_summary_line("annual evaluation", summary))
    return 0


def cmd_run_quarterly(args: argparse.Namespace, settings: Settings) -> int:
    from duban.periods import parse_quarter
    from flows.quarterly import quarterly_spot_check

    quarter = parse_quarter(args.quarter).label if args.quarter else None
    _checked_config(settings)
    summary = quarterly_spot_check(quarter=quarter, dry_run=args.dry_run)
    print(_summary_line("quarterly spot check", summary))
    return 0


def cmd_approve_monthly(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from duban.periods import parse_month
    from flows.monthly import approve_monthly

    month = parse_month(args.month).label
    _checked_config(settings)
    by = args.by or getpass.getuser()
    result = approve_monthly(month, by, comment=args.comment, approved=not args.reject)
    print(_summary_line(f"monthly bulletin {month}", result))
    return 0


def cmd_metrics(args: argparse.Namespace, settings: Settings) -> int:
    from duban.cli.metrics import write_metrics
    from duban.queries.metrics import metrics_frame

    config = _config(settings)
    engine = _engine(settings)
    frame = metrics_frame(
        engine,
        config,
        args.by,
        date.fromisoformat(args.date_from),
        date.fromisoformat(args.date_to),
    )
    write_metrics(frame, args.format, sys.stdout)
    return 0


def _summary_line(title: str, summary: dict[str, Any]) -> str:
    return f"{title}: " + ", ".join(f"{k} {v}" for k, v in summary.items())


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from duban.demo import run_demo

    return run_demo(
        Path(args.dir),
        days=args.days,
        daily_volume=args.daily_volume,
        seed=args.seed,
        database_url=args.database_url,
        reset_database=args.reset_database,
        daily_runs=args.daily_runs,
        ui=args.ui,
    )


def _progress(path: Path) -> tuple[Any, Callable[..., None] | None]:
    """A progress bar on a terminal; nothing otherwise."""
    from contextlib import nullcontext

    if not sys.stderr.isatty():
        return nullcontext(), None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("importing {task.fields[name]}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = progress.add_task("import", total=path.stat().st_size, name=path.name, rows=0)

    def on_chunk(chunk: Any, summary: Any) -> None:
        progress.update(task, completed=chunk.bytes_read or None, rows=summary.read)

    return progress, on_chunk


def _loop_command(
    run: Any,
    name: str,
    about: str,
    func: Callable[[argparse.Namespace, Settings], int],
    flag: str,
    *,
    dry_run: str = "render and archive; send nothing",
    **period: Any,
) -> argparse.ArgumentParser:
    """`duban run NAME`: the loop's period flag and --dry-run."""
    parser: argparse.ArgumentParser = run.add_parser(name, help=about)
    parser.add_argument(flag, **period)
    parser.add_argument("--dry-run", action="store_true", help=dry_run)
    parser.set_defaults(func=func)
    return parser


def _version() -> str:
    """The installed package's version (its metadata, i.e. pyproject.toml)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("duban")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _decide_parsers(sub: Any) -> None:
    from duban.clock.decide import KIND_OF

    dec = sub.add_parser(
        "decide", help="office decisions on a ticket's clock (延期、申诉、挂起/恢复)"
    ).add_subparsers(dest="decide_command", required=True)
    for action in KIND_OF:
        one = dec.add_parser(action, help=f"record: {action.replace('_', ' ')}")
        one.add_argument("ticket", metavar="TICKET", help="source:external_id, or an external id")
        one.add_argument("--at", help="effective time, YYYY-MM-DD[ HH:MM] (default: now)")
        one.add_argument("--request", help="the key of the request or appeal it answers")
        one.add_argument("--days", type=int, help="working days an approved extension adds")
        one.add_argument("--new-due", help="the new deadline of an approved extension")
        one.add_argument("--reason", help="why (shown in notices)")
        one.add_argument("--actor", default="督办办公室", help="who decided")
        one.add_argument("--source", default="duban", help="the ticket's source (default duban)")
        one.set_defaults(func=cmd_decide, action=action)
    book = dec.add_parser("workbook", help="the decisions workbook").add_subparsers(
        dest="workbook_command", required=True
    )
    wexp = book.add_parser("export", help="write the pending requests for the office to mark")
    wexp.add_argument("--out", help="file or folder (default DUBAN_REPORTS_DIR/decisions/)")
    wexp.set_defaults(func=cmd_decide_workbook_export)
    wimp = book.add_parser("import", help="read the marked workbook back (all or nothing)")
    wimp.add_argument("path", help="the marked decisions workbook (.xlsx)")
    wimp.add_argument("--actor", default="督办办公室", help="who decided")
    wimp.set_defaults(func=cmd_decide_workbook_import)


def build_parser() -> argparse.ArgumentParser:
    parser = options.Parser(prog="duban", description="Duban (督办): supervision loops")
    parser.add_argument(
        "--version", action="version", version=f"duban {_version()}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="generate the demo city and run every loop over it")
    demo.add_argument("--dir", default="var/demo", help="where the demo writes (default var/demo)")
    demo.add_argument(
        "--days", type=options.positive, default=92, help="days of tickets (default 92)"
    )
    demo.add_argument(
        "--daily-volume", type=options.positive, default=1500, help="tickets a day (default 1500)"
    )
    demo.add_argument(
        "--seed", type=options.count, default=12345, help="of the generator (default 12345)"
    )
    demo.add_argument(
        "--daily-runs",
        default="10",
        type=options.daily_runs,
        help="run the daily loop for the last N working days of the period, or 'all' (10)",
    )
    demo.add_argument("--database-url", help="default: a SQLite file in --dir (rebuilt each run)")
    demo.add_argument(
        "--reset-database", action="store_true", help="drop Duban's tables in --database-url first"
    )
    demo.add_argument(
        "--ui",
        action="store_true",
        help="start a Prefect server (its database in DIR/prefect) on a free port, run the "
        "demo against it, then serve the demo city's deployments there until Ctrl-C",
    )
    demo.set_defaults(func=cmd_demo)

    init = sub.add_parser("init", help="write a new city's config folder from the example")
    init.add_argument(
        "dir", metavar="DIR", help="the new config folder (must not exist or be empty)"
    )
    init.set_defaults(func=cmd_init)

    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="create or upgrade the schema").set_defaults(func=cmd_db_upgrade)

    cfg = sub.add_parser("config", help="configuration").add_subparsers(dest="cfg", required=True)
    cfg.add_parser("check", help="validate config/*.yaml").set_defaults(func=cmd_config_check)

    sub.add_parser("sync", help="load units and problems from config").set_defaults(func=cmd_sync)

    imp = sub.add_parser("import", help="import files").add_subparsers(dest="what", required=True)
    tickets = imp.add_parser("tickets", help="a hotline export (CSV or XLSX)")
    tickets.add_argument("path", help="the export file")
    tickets.add_argument(
        "--source", required=True, type=options.source,
        help="mapping in config/sources/NAME.yaml (NAME: a-z, 0-9, _ and -)",
    )  # fmt: skip
    tickets.add_argument(
        "--chunk-rows", type=options.positive, default=20_000,
        help="rows read and written at a time (default 20000)",
    )  # fmt: skip
    tickets.add_argument(
        "--bulk",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bulk mode for a first load: drop the non-unique indexes of tickets for the load "
        "and rebuild them after (other readers are slow meanwhile); default: chosen "
        "automatically (a CSV of 100,000+ rows, more than twice what the table holds)",
    )
    tickets.set_defaults(func=cmd_import_tickets)
    events = imp.add_parser("events", help="an event export (one row per clock event)")
    events.add_argument("path", help="the event export (CSV or XLSX)")
    events.add_argument("--source", default="duban", help="config/sources/<name>.yaml")
    events.set_defaults(func=cmd_import_events)
    plan = imp.add_parser("plan", help="one plan, three lists (XLSX workbook)")
    plan.add_argument("path", help="the plan workbook (.xlsx)")
    plan.set_defaults(func=cmd_import_plan)
    ledger = imp.add_parser("ledger", help="a lead unit's returned ledger workbook (台账)")
    ledger.add_argument("path", help="the returned ledger workbook (.xlsx)")
    ledger.set_defaults(func=cmd_import_ledger)
    checks = imp.add_parser("checks", help="a returned spot-check checklist (抽查核验)")
    checks.add_argument("path", help="the returned checklist workbook (.xlsx)")
    checks.set_defaults(func=cmd_import_checks)
    led = sub.add_parser("ledger", help="ledger workbooks (台账)").add_subparsers(
        dest="ledger_command", required=True
    )
    export = led.add_parser("export", help="write one lead unit's ledger workbook")
    export.add_argument("unit", metavar="UNIT_CODE", help="a lead unit's code (config/units.yaml)")
    export.add_argument(
        "--as-of", type=options.iso_date, help="YYYY-MM-DD (default: today in DUBAN_TIMEZONE)"
    )
    export.add_argument("--out", help="file or folder (default DUBAN_REPORTS_DIR/ledger/)")
    export.set_defaults(func=cmd_ledger_export)

    _decide_parsers(sub)

    run = sub.add_parser("run", help="run a supervision loop now").add_subparsers(
        dest="loop", required=True
    )
    _loop_command(run, "daily", "the daily report (日报告)", cmd_run_daily,
                  "--date", type=options.iso_date,
                  help="YYYY-MM-DD (default: today in DUBAN_TIMEZONE)")  # fmt: skip
    lookback = run.add_parser("lookback", help="the look-back (回头看) of closed tickets")
    lookback.add_argument(
        "--closed-from", type=options.iso_date, required=True, help="YYYY-MM-DD (included)"
    )
    lookback.add_argument(
        "--closed-to", type=options.iso_date, required=True, help="YYYY-MM-DD (included)"
    )
    lookback.add_argument("--problem", action="append", help="a problem code (repeatable)")
    lookback.add_argument("--unit", action="append", help="a unit code (repeatable)")
    lookback.add_argument(
        "--window-days", type=options.positive, default=30, help="recurrence window (30)"
    )
    lookback.add_argument(
        "--same-place", choices=["address", "community", "street"], default="address",
        help="what counts as the same place: address (default), community or street",
    )  # fmt: skip
    lookback.add_argument(
        "--any-category", action="store_true", help="a recurrence may be of any category"
    )
    lookback.add_argument("--reopen", action="store_true", help="reopen the recurred tickets")
    lookback.add_argument("--no-notify", action="store_true", help="send no notices")
    lookback.set_defaults(func=cmd_run_lookback)
    _loop_command(run, "weekly", "the weekly analysis (周分析)", cmd_run_weekly,
                  "--week", type=options.week, required=True,
                  help="ISO week YYYY-Www, e.g. 2026-W45")  # fmt: skip

    srv = sub.add_parser("serve", help="register the loops of config/schedules.yaml and run them")
    srv.add_argument("--loop", action="append", help="only this loop (repeatable)")
    srv.add_argument("--limit", type=options.positive, help="at most this many flow runs at once")
    srv.set_defaults(func=cmd_serve)

    dep = sub.add_parser("deploy", help="register the loops with a Prefect work pool")
    dep.add_argument("--work-pool", required=True, help="a process work pool on the server")
    dep.add_argument("--work-queue", help="a queue of the pool (default: its default queue)")
    dep.add_argument("--source", help="the repository checkout on the workers (default: here)")
    dep.add_argument("--loop", action="append", help="only this loop (repeatable)")
    dep.set_defaults(func=cmd_deploy)

    monthly = _loop_command(run, "monthly", "the monthly bulletin (月通报), held for approval",
                            cmd_run_monthly, "--month", type=options.month, required=True,
                            help="YYYY-MM, e.g. 2026-10")  # fmt: skip
    monthly.add_argument(
        "--correct", action="store_true",
        help="a published month whose figures changed since: draft a correction (更正)",
    )  # fmt: skip
    _loop_command(run, "quarterly", "the quarterly spot check (季度抽查核验)", cmd_run_quarterly,
                  "--quarter", type=options.quarter, dry_run="draw and render; record nothing",
                  help="YYYY-Qn, e.g. 2026-Q3 (default: the last quarter, on the first working "
                  "day of a quarter)")  # fmt: skip
    _loop_command(run, "annual", "the year-end evaluation (年终考评) and summary",
                  cmd_run_annual, "--year", type=options.year,
                  help="YYYY, e.g. 2026 (default: last year, on its due day)")  # fmt: skip
    appr = sub.add_parser("approve", help="approve a held bulletin and send it").add_subparsers(
        dest="approve_loop", required=True
    )
    appr_monthly = appr.add_parser("monthly", help="the monthly bulletin of YYYY-MM")
    appr_monthly.add_argument("month", type=options.month, help="YYYY-MM, e.g. 2026-10")
    appr_monthly.add_argument("--by", help="who approves (default: the login name)")
    appr_monthly.add_argument("--comment", default="", help="a note for the audit trail")
    appr_monthly.add_argument("--reject", action="store_true", help="reject: send nothing")
    appr_monthly.set_defaults(func=cmd_approve_monthly)

    out = sub.add_parser("outbox", help="the outbox of e-mails").add_subparsers(
        dest="outbox_command", required=True
    )
    rty = out.add_parser(
        "retry", help="re-send failed or parked deliveries (after the cause is fixed), now"
    )
    which = rty.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every failed and parked delivery")
    which.add_argument("--id", type=int, action="append", dest="ids", metavar="N",
                       help="this delivery (repeatable)")  # fmt: skip
    which.add_argument("--status", choices=["failed", "parked", "refused"],
                       help="every delivery in this status")  # fmt: skip
    rty.set_defaults(func=cmd_outbox_retry)

    met = sub.add_parser("metrics", help="the three rates by unit, problem, category, place")
    met.add_argument(
        "--by", choices=["unit", "problem", "category", "district", "street"], default="unit",
        help="one row per unit (default), problem, category, district or street",
    )  # fmt: skip
    met.add_argument(
        "--from",
        dest="date_from",
        type=options.iso_date,
        required=True,
        help="YYYY-MM-DD (included)",
    )
    met.add_argument(
        "--to", dest="date_to", type=options.iso_date, required=True, help="YYYY-MM-DD (included)"
    )
    met.add_argument(
        "--format", choices=["csv", "json"], default="csv", help="csv (default) or json"
    )
    met.set_defaults(func=cmd_metrics)

    cal = sub.add_parser("calendar", help="the working-day calendar").add_subparsers(
        dest="cal", required=True
    )
    due = cal.add_parser("due", help="due date of a ticket received on DATE")
    due.add_argument("date", type=options.iso_date, help="YYYY-MM-DD")
    due.add_argument("working_days", type=options.count, help="the time limit in working days")
    due.set_defaults(func=cmd_calendar_due)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import os

    from pydantic import ValidationError
    from sqlalchemy.exc import OperationalError

    # Duban runs where the internet may be out of reach: no telemetry from the Prefect server.
    # Both before Prefect is imported, which reads its settings once.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault(EPHEMERAL_TIMEOUT_VARIABLE, EPHEMERAL_STARTUP_TIMEOUT)

    from duban.calendar import CalendarError
    from duban.cli.errors import quiet_config_tracebacks, report_config_error
    from duban.config import ConfigError
    from duban.ingest.sources import ExportError

    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        for err in exc.errors():
            # No field: config/city.yaml (read for the city's time zone) is invalid.
            name = "DUBAN_" + str(err["loc"][0]).upper() + ": " if err["loc"] else ""
            print(f"duban: error: {name}{err['msg']}", file=sys.stderr)
        return 2
    quiet_config_tracebacks()  # a flow that meets a ConfigError: its lines below, no traceback
    try:
        result: int = args.func(args, settings)
        return result
    except ConfigError as exc:
        return report_config_error(exc)
    except (ExportError, CalendarError, UserError, ValueError) as exc:
        print(f"duban: error: {exc}", file=sys.stderr)
        return 2
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        print(
            f"duban: error: cannot use the database {settings.safe_database_url}: {reason}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("duban: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        if "ephemeral Prefect API server" not in str(exc):
            raise
        print(no_prefect_server(os.environ.get(EPHEMERAL_TIMEOUT_VARIABLE, "")), file=sys.stderr)
        return 2


def no_prefect_server(timeout: str) -> str:
    """The one line for a temporary Prefect server that did not start in time."""
    return (
        f"duban: error: the temporary Prefect server did not start within {timeout} s: "
        f"set {EPHEMERAL_TIMEOUT_VARIABLE} higher, or start a server (`prefect server start`) "
        "and set PREFECT_API_URL (docs/operations.md)"
    )


if __name__ == "__main__":
    sys.exit(main())
