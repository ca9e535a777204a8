"""Benchmark databases: the demo city's year of tickets, streamed into PostgreSQL with COPY.

One database per size (`duban_bench_full`, `duban_bench_tenth`, …), kept between runs and
reused when its `bench_spec` table records the same spec and says it is complete
(`--rebuild` forces a new one). The city, its problems and its plan come from
`duban.demo.city` through Duban's own `sync_city` and `import_plan`; the tickets come from
the demo city's per-day generator (`_day_tickets`), are validated and given their due time
by the import's own vectorised `validate_rows` (so `due_at`, `problem_id`, `status` … are
what `duban import tickets` would store) and hashed with its `hash_rows`, then go straight
into `tickets` with one COPY per day — never the whole year in memory, and not through the
import's per-chunk upsert. The secondary indexes are dropped for the load and rebuilt after.

The year is 2025 (chinese-calendar knows 2025 and 2026, so every due time is computable):
tickets from 2025-01-01 to 2025-12-30, the demo's "today" is 2025-12-31 (the daily report's
day). 2025-12-30 — the day the daily report reports as new — is forced to `peak_day`
tickets. After loading, the escalation ladder is applied once for 2025-12-30 (with a
catch-up of the whole year) so that the monthly ledger and the year-end evaluation see the
escalations a city running Duban daily would have; that state is saved in `bench_base_*`
tables and restored before each measured run (`reset`).
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg

REPO = Path(__file__).resolve().parents[1]
# DUBAN_BENCH_DIR: where the generated files and results go (a clean clone can point it at
# an earlier checkout's folder to reuse the databases built from it).
BENCH_DIR = Path(os.environ.get("DUBAN_BENCH_DIR") or REPO / "var" / "bench")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# DUBAN_BENCH_DB_PREFIX: the loops databases' names (default duban_bench_<size>); a second
# checkout benchmarking beside the first on the same server needs its own.
DB_PREFIX = os.environ.get("DUBAN_BENCH_DB_PREFIX") or "duban_bench_"
YEAR = 2025
START = date(YEAR, 1, 1)
DAYS = 364  # 2025-01-01 … 2025-12-30
REPORT_DAY = date(YEAR, 12, 31)
MONTH = f"{YEAR}-11"
# Beijing scale (docs: DOMAIN.md): ~12 million tickets a year, ~1 million a month, a busy
# working day 50,000.
FULL_YEAR = 12_000_000
FULL_PEAK_DAY = 50_000
# size: (stream, day, days) — the tickets a day over the year and the report's new day, as
# fractions of Beijing's, and the days of history before the report's day. `history-tenth`
# is `full` (its stream, its 50,000-ticket day) over the last 36 days only, a tenth of the
# history: the daily report's growth with history at a fixed day's work (issue 17).
SIZES = {
    "full": (1.0, 1.0, DAYS),
    "tenth": (0.1, 0.1, DAYS),
    "hundredth": (0.01, 0.01, DAYS),
    "history-tenth": (1.0, 1.0, 36),
    # a tenth's day (5,000) over a hundredth of the stream, beside `tenth`: the same case
    # at a tenth of the day, cheap to build
    "tenth-history-hundredth": (0.01, 0.1, DAYS),
}
# A ticket the generator leaves stuck (~0.8 %, never closed) is closed unresolved this many
# days after it came in, as a city's look-back (回头看) would close it: else the open set
# grows with the history (at a tenth, 9,900 of the 31,700 open were such), and a day's work
# with it.
STUCK_DAYS = 92
# Tables a loop writes to: saved after preparation, restored before each run.
STATE_TABLES = (
    "escalations",
    "notices",
    "deliveries",
    "runs",
    "audit",
    "spot_check_samples",
    "lookback_findings",
)


@dataclass(frozen=True)
class BenchSpec:
    size: str
    daily_volume: int
    peak_day: int
    start: str = START.isoformat()
    days: int = DAYS
    seed: int = 12345
    version: int = 4  # bump when the generation or the schema changes (4: STUCK_DAYS)

    @property
    def database(self) -> str:
        return f"{DB_PREFIX}{self.size.replace('-', '_')}"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.database}"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:5432/{self.database}"

    @property
    def folder(self) -> Path:
        return BENCH_DIR / f"loops-{self.size}"

    @property
    def config_dir(self) -> Path:
        return self.folder / "config"


def spec_for(size: str) -> BenchSpec:
    stream, day, days = SIZES[size]
    return BenchSpec(
        size=size,
        daily_volume=round(FULL_YEAR * stream / DAYS),
        peak_day=round(FULL_PEAK_DAY * day),
        start=(REPORT_DAY - timedelta(days=days)).isoformat(),
        days=days,
    )


def _spec_json(spec: BenchSpec) -> str:
    return json.dumps(asdict(spec), sort_keys=True)


def is_complete(spec: BenchSpec) -> bool:
    try:
        with psycopg.connect(spec.dsn, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT spec FROM bench_spec WHERE complete ORDER BY id DESC LIMIT 1"
            ).fetchone()
    except psycopg.Error:
        return False
    return bool(row) and row[0] == _spec_json(spec) and spec.config_dir.exists()


def ensure(spec: BenchSpec, rebuild: bool = False) -> dict[str, Any]:
    """The database of `spec`, built unless a complete one exists; returns its facts."""
    if rebuild or not is_complete(spec):
        build(spec)
    from duban.db import make_engine, upgrade

    engine = make_engine(spec.url)  # a database built before a migration: brought to head
    upgrade(engine)  # here, not inside the first measured run (load_context upgrades too)
    engine.dispose()
    record_daily_history(spec)
    with psycopg.connect(spec.dsn) as conn:
        facts = conn.execute(
            "SELECT facts FROM bench_spec WHERE complete ORDER BY id DESC"
        ).fetchone()
    assert facts is not None
    return dict(json.loads(facts[0]))


def _log(message: str) -> None:
    print(f"[data {time.strftime('%H:%M:%S')}] {message}", flush=True)


def build(spec: BenchSpec) -> None:
    import shutil

    from duban.config import load_config
    from duban.db import make_engine, session_scope, upgrade
    from duban.demo import city as dc
    from duban.demo.plan import build_plan
    from duban.ingest.city import sync_city
    from duban.ingest.plan import import_plan, write_plan_workbook

    started = time.perf_counter()
    _log(f"building {spec.database} ({spec.daily_volume} tickets a day, peak {spec.peak_day})")
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{spec.database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{spec.database}"')
    shutil.rmtree(spec.folder, ignore_errors=True)
    spec.folder.mkdir(parents=True)

    # The city, as duban.demo.city.generate_city writes it, without the ticket CSV.
    demo = dc.DemoSpec(
        seed=spec.seed,
        start=date.fromisoformat(spec.start),
        days=spec.days,
        daily_volume=spec.daily_volume,
        year=YEAR,
    )
    base_config = REPO / "config"
    comment = "# Generated by bench/data.py through duban.demo.city.\n"
    city, coop = dc.write_city_config(demo, spec.config_dir, base_config, comment)
    tasks, duties, policies, plans = build_plan(demo, city, coop)
    plan_path = spec.folder / "plan.xlsx"
    write_plan_workbook(plan_path, tasks, duties, policies, plans)

    engine = make_engine(spec.url)
    upgrade(engine)
    config = load_config(spec.config_dir)
    with session_scope(engine) as session:
        sync_city(session, config)
    import_plan(engine, config, plan_path, spec.folder / "reports")
    with psycopg.connect(spec.dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_spec (id serial PRIMARY KEY, spec text NOT NULL, "
            "facts text, complete boolean NOT NULL DEFAULT false, "
            "created_at timestamp NOT NULL DEFAULT now())"
        )
        conn.execute("INSERT INTO bench_spec (spec) VALUES (%s)", [_spec_json(spec)])
    _log(f"city and plan ready ({time.perf_counter() - started:.0f} s)")

    tickets = load_tickets(spec, demo, city, coop, config, engine)
    _log(f"{tickets} tickets loaded ({time.perf_counter() - started:.0f} s)")

    # The daily loop's history: the ladder applied once, catching up the whole year.
    from duban.loops.daily.escalation import apply_escalations

    t0 = time.perf_counter()
    last = date.fromisoformat(spec.start)
    for month in range(1, 13):  # month by month, as a daily loop would have caught up
        day = min(date(YEAR + month // 12, month % 12 + 1, 1), REPORT_DAY) - timedelta(days=1)
        if day < last:
            continue
        result = apply_escalations(engine, config, day, last_run_day=last, dry_run=False)
        last = day
        with engine.begin() as conn:  # as autovacuum would between a city's daily runs
            conn.exec_driver_sql("ANALYZE escalations")
        _log(f"escalations to {day}: {result.counts()} ({time.perf_counter() - t0:.0f} s)")
    engine.dispose()

    with psycopg.connect(spec.dsn, autocommit=True) as conn:
        for table in STATE_TABLES:
            conn.execute(f'DROP TABLE IF EXISTS "bench_base_{table}"')
            conn.execute(f'CREATE TABLE "bench_base_{table}" AS TABLE "{table}"')
        conn.execute("VACUUM ANALYZE")
        counts = {
            "tickets": tickets,
            "units": conn.execute("SELECT count(*) FROM units").fetchone()[0],  # type: ignore[index]
            "problems": conn.execute("SELECT count(*) FROM problems").fetchone()[0],  # type: ignore[index]
            "plan_tasks": conn.execute("SELECT count(*) FROM plan_tasks").fetchone()[0],  # type: ignore[index]
            "escalations": conn.execute("SELECT count(*) FROM escalations").fetchone()[0],  # type: ignore[index]
            "peak_day": conn.execute(
                "SELECT count(*) FROM tickets WHERE received_at >= %s AND received_at < %s",
                [REPORT_DAY - timedelta(days=1), REPORT_DAY],
            ).fetchone()[0],  # type: ignore[index]
            "month": conn.execute(
                "SELECT count(*) FROM tickets WHERE received_at >= %s AND received_at < %s",
                [date(YEAR, 11, 1), date(YEAR, 12, 1)],
            ).fetchone()[0],  # type: ignore[index]
            "size_mb": round(
                conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20  # type: ignore[index]
            ),
            "build_seconds": round(time.perf_counter() - started),
        }
        conn.execute(
            "UPDATE bench_spec SET complete = true, facts = %s WHERE spec = %s",
            [json.dumps(counts), _spec_json(spec)],
        )
    _log(f"{spec.database} complete: {counts}")


def load_tickets(spec: BenchSpec, demo: Any, city: Any, coop: Any, config: Any, engine: Any) -> int:
    """Generate each day's tickets, validate them as the import does, COPY them in."""
    import yaml
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex

    from duban.config import DATETIME_FIELDS
    from duban.db import session_scope
    from duban.demo.tickets import daily_counts, day_tickets, ticket_model, ticket_workdays
    from duban.ingest.places import with_place_keys
    from duban.ingest.rows import validate_rows
    from duban.ingest.tickets import HASHED, hash_rows, secondary_indexes, ticket_refs

    urgency = yaml.safe_load((spec.config_dir / "urgency.yaml").read_text(encoding="utf-8"))
    model = ticket_model(demo, city, coop, urgency)
    workdays = ticket_workdays(demo, REPO / "config")
    counts, p_category = daily_counts(demo, model, workdays)
    counts[-1] = spec.peak_day  # 2025-12-30: the day the daily report reports as new
    id_width = max(5, len(str(int(counts.max(initial=0)))))
    mapping = config.source("duban")
    with session_scope(engine) as session:
        refs = ticket_refs(session, config, mapping, "Asia/Shanghai")
    indexes = secondary_indexes()  # the ones bulk import drops and rebuilds, as declared
    columns = [*HASHED, "place_key", "row_hash", "source"]
    copy_sql = f"COPY tickets ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
    total = 0
    started = time.perf_counter()
    with psycopg.connect(spec.dsn) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK triggers while loading
        for ix in indexes:
            conn.execute(f'DROP INDEX IF EXISTS "{ix.name}"')
        conn.commit()
        for d in range(spec.days):
            frame = close_stuck(
                day_tickets(demo, city, model, d, int(counts[d]), p_category[d], workdays, id_width)
            )
            good, bad = validate_rows(frame, 2, mapping, refs)
            if bad:
                raise RuntimeError(f"day {d}: {len(bad)} rows refused, e.g. {bad[0].errors}")
            good = with_place_keys(good.assign(row_hash=hash_rows(good), source="duban"))[columns]
            text = good.copy()
            for name in DATETIME_FIELDS:
                text[name] = good[name].dt.strftime("%Y-%m-%d %H:%M:%S")
            text["resolved"] = good["resolved"].map({True: "t", False: "f"})
            buffer = io.StringIO()
            text.to_csv(buffer, index=False, header=False, na_rep="")
            with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                copy.write(buffer.getvalue())
            conn.commit()
            total += len(good)
            if d % 30 == 29 or d == spec.days - 1:
                rate = total / (time.perf_counter() - started)
                _log(f"day {d + 1}/{spec.days}: {total} tickets ({rate:,.0f} a second)")
        conn.execute("SET maintenance_work_mem = '512MB'")
        t0 = time.perf_counter()
        for ix in indexes:  # as the model declares them (partial ones keep their WHERE)
            conn.execute(str(CreateIndex(ix).compile(dialect=postgresql.dialect())))
            conn.commit()
        # The planner's statistics, as `duban import tickets` takes them after a bulk load:
        # without them the ladder's catch-up below slows month by month (a nested-loop
        # anti-join planned for an empty table; full size: >1 h instead of minutes).
        conn.execute("ANALYZE tickets")
        conn.commit()
        _log(f"{len(indexes)} indexes rebuilt, tickets analyzed ({time.perf_counter() - t0:.0f} s)")
    return total


def close_stuck(frame: pd.DataFrame) -> pd.DataFrame:
    """The day's tickets (export fields, as text) with those still open STUCK_DAYS before
    the report's day closed, unresolved, STUCK_DAYS after they came in."""
    received = pd.to_datetime(frame["received_at"])
    stuck = (frame["status"] != "closed") & (
        received < pd.Timestamp(REPORT_DAY - timedelta(days=STUCK_DAYS))
    )
    if not stuck.any():
        return frame
    frame = frame.copy()
    hour_after = (received + pd.Timedelta(hours=1)).dt.strftime("%Y-%m-%d %H:%M:%S")
    for name in ("dispatched_at", "first_response_at"):
        frame.loc[stuck & (frame[name] == ""), name] = hour_after
    closed = received + pd.Timedelta(days=STUCK_DAYS)
    frame.loc[stuck, "closed_at"] = closed.dt.strftime("%Y-%m-%d %H:%M:%S")
    frame.loc[stuck, "status"] = "closed"
    frame.loc[stuck, "resolved"] = "0"
    return frame


def record_daily_history(spec: BenchSpec) -> None:
    """The daily loop ran yesterday (2025-12-30): a completed `runs` row in the saved state,
    so that the measured daily report is a regular day's run (candidates: open items and
    those closed since yesterday), not a first run catching up 31 days. Idempotent."""
    yesterday = (REPORT_DAY - timedelta(days=1)).isoformat()
    with psycopg.connect(spec.dsn) as conn:
        done = conn.execute(
            "SELECT 1 FROM bench_base_runs WHERE loop = 'daily' AND period = %s", [yesterday]
        ).fetchone()
    if done:
        return
    reset(spec)
    from duban.db import make_engine
    from duban.db.runs import finish_run, start_run

    engine = make_engine(spec.url)
    run_id = start_run(engine, "daily", yesterday, {"day": yesterday, "dry_run": False}, False)
    finish_run(engine, run_id, "ok", {"day": yesterday, "note": "bench/data.py history"})
    engine.dispose()
    with psycopg.connect(spec.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE bench_base_runs")
        conn.execute("CREATE TABLE bench_base_runs AS TABLE runs")


def prewarm(spec: BenchSpec) -> float:
    """Read the tickets and escalations tables and their indexes once (pg_prewarm, 'read'
    mode: into the OS cache), so that the first measured run does not pay for a cold cache
    that the runs after it do not. Returns the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(spec.dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        conn.execute(
            "SELECT pg_prewarm(c.oid, 'read') FROM pg_class c "
            "LEFT JOIN pg_index i ON i.indexrelid = c.oid "
            "WHERE c.relname IN ('tickets', 'escalations') "
            "OR i.indrelid IN ('tickets'::regclass, 'escalations'::regclass)"
        )
    return time.perf_counter() - started


RECORD_TABLES = ("published_files", "published_figures", "publications")  # children first


def reset(spec: BenchSpec) -> None:
    """Restore the loops' tables to their state after preparation: the loops only add rows
    there, so delete those above the saved copy's highest id (children first)."""
    order = ("deliveries", "audit", "spot_check_samples", "lookback_findings", "notices",
             "escalations", "runs")  # fmt: skip
    with psycopg.connect(spec.dsn) as conn:
        # A monthly run's records (migration 0009): none after preparation, all its own; they
        # refer to its notices, so they go first. Without this the second monthly run failed.
        for table in RECORD_TABLES:
            conn.execute(f'DELETE FROM "{table}"')
        for table in order:
            row = conn.execute(f'SELECT coalesce(max(id), 0) FROM "bench_base_{table}"').fetchone()
            conn.execute(f'DELETE FROM "{table}" WHERE id > %s', [row[0] if row else 0])
        conn.commit()


# The supervision clock's share of the tickets (issue 13: ~1 million events in a 12-million
# year): `set_clock_events(spec, fraction)` gives that fraction of the tickets one event
# each — six in ten an approved extension (+2 days), two a suspension still open, two a
# redo (round 2, +5 days) — with the clock columns `apply_clock` would leave, so that a run
# with events and one without are measured on the same database, side by side.
CLOCK_ORIGIN = "bench"


def set_clock_events(spec: BenchSpec, fraction: float) -> int:
    """Remove the bench's clock events (restoring the tickets' deadlines), then record them
    for `fraction` of the tickets (0: none). Returns the events recorded."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"--clock-events: a fraction 0..1 (got {fraction})")
    per_mille = round(fraction * 1000)
    with psycopg.connect(spec.dsn) as conn:
        conn.execute(
            "UPDATE tickets t SET due_at = t.base_due_at, extension_count = 0, redo_count = 0, "
            "ladder_round = 1, suspended_since = NULL, clock_events = 0 "
            "FROM clock_events e WHERE e.origin = %s AND e.item_kind = 'ticket' "
            "AND e.item_id = t.id",
            [CLOCK_ORIGIN],
        )
        conn.execute("DELETE FROM clock_events WHERE origin = %s", [CLOCK_ORIGIN])
        if per_mille:
            ext, sus = per_mille * 6 // 10, per_mille * 8 // 10
            picked = f"(mod(t.id, 1000)) < {per_mille} AND t.due_at IS NOT NULL"
            kind = (
                f"CASE WHEN mod(t.id, 1000) < {ext} THEN 'extension_approved' "
                f"WHEN mod(t.id, 1000) < {sus} THEN 'suspended' ELSE 'redo' END"
            )
            conn.execute(
                "INSERT INTO clock_events (item_kind, item_id, key, kind, at, actor, reason, "
                "payload, supersedes, origin, origin_ref, recorded_at) "
                f"SELECT 'ticket', t.id, 'bench:1', {kind}, t.received_at + interval '2 hours', "
                "'office', 'bench', '{}', '[]', %s, NULL, now() FROM tickets t "
                f"WHERE {picked}",
                [CLOCK_ORIGIN],
            )
            conn.execute(
                "UPDATE tickets t SET base_due_at = COALESCE(t.base_due_at, t.due_at), "
                "clock_events = 1, "
                f"due_at = COALESCE(t.base_due_at, t.due_at) + CASE WHEN mod(t.id, 1000) < {ext} "
                f"THEN interval '2 days' WHEN mod(t.id, 1000) < {sus} THEN interval '0 days' "
                "ELSE interval '5 days' END, "
                f"extension_count = CASE WHEN mod(t.id, 1000) < {ext} THEN 1 ELSE 0 END, "
                f"suspended_since = CASE WHEN mod(t.id, 1000) >= {ext} AND mod(t.id, 1000) < {sus} "
                "THEN t.received_at + interval '2 hours' END, "
                f"redo_count = CASE WHEN mod(t.id, 1000) >= {sus} THEN 1 ELSE 0 END, "
                f"ladder_round = CASE WHEN mod(t.id, 1000) >= {sus} THEN 2 ELSE 1 END "
                f"WHERE {picked}"
            )
        n = conn.execute("SELECT count(*) FROM clock_events WHERE origin = %s", [CLOCK_ORIGIN])
        row = n.fetchone()
        conn.commit()
    conn.close()
    _log(f"clock events: {row[0] if row else 0} ({fraction:.1%} of the tickets)")
    settle_clock(spec)
    return int(row[0]) if row else 0


def settle_clock(spec: BenchSpec) -> None:
    """The clock as a city's daily runs leave it: every open ticket stamped with the
    calendar's version and those with events replayed (`apply_clock` with no `since`, as
    the first daily after an import does). The bench writes its tickets and events with SQL,
    so without this the first measured daily would do it (120 s at full size); after it a
    daily replays only what changed since the previous one. Idempotent."""
    from duban.clock import apply_clock
    from duban.config import load_config
    from duban.db import make_engine

    started = time.perf_counter()
    engine = make_engine(spec.url)
    try:
        changed = apply_clock(
            engine, None, as_of=datetime.now(), config=load_config(spec.config_dir)
        )
    finally:
        engine.dispose()
    _log(f"clock settled: {changed} tickets changed ({time.perf_counter() - started:.0f} s)")
