"""Import rate of `duban import tickets` on a ~1-million-row canonical CSV.

    .venv/bin/python bench/import_rate.py [--rows-per-day N] [--days N] [--sqlite] [--postgres URL]

Generates the demo city's export (deterministic) under var/bench/, then imports it into a
fresh SQLite file and/or a fresh PostgreSQL schema, and prints rows/s for each, plus a
second (re-)import of the same file, which should change nothing.
"""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from duban.city import sync_city
from duban.config import load_config
from duban.db import make_engine, session_scope, upgrade
from duban.demo_city import DemoSpec, generate_city
from duban.ticket_import import import_tickets

REPO = Path(__file__).resolve().parents[1]


def run(url: str, config_dir: Path, csv_path: Path, reports: Path, **engine_kw: object) -> None:
    engine = make_engine(url, **engine_kw)  # type: ignore[arg-type]
    upgrade(engine)
    config = load_config(config_dir)
    with session_scope(engine) as session:
        sync_city(session, config)
    for label in ("first import", "re-import"):
        started = time.perf_counter()
        summary = import_tickets(engine, config, csv_path, "duban", reports)
        seconds = time.perf_counter() - started
        print(
            f"{engine.dialect.name:10} {label:12} {summary.read:>9} rows {seconds:7.1f} s "
            f"{summary.read / seconds:>9,.0f} rows/s  ({summary.line()})",
            flush=True,
        )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows-per-day", type=int, default=11_000)
    parser.add_argument("--days", type=int, default=92)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--postgres", metavar="URL")
    args = parser.parse_args()
    out = REPO / "var" / "bench" / f"import-{args.rows_per_day}x{args.days}"
    csv_path = out / "tickets.csv"
    if not csv_path.exists():
        started = time.perf_counter()
        files = generate_city(
            DemoSpec(days=args.days, daily_volume=args.rows_per_day), out, REPO / "config"
        )
        print(
            f"generated {files.tickets} rows in {time.perf_counter() - started:.1f} s "
            f"({csv_path.stat().st_size / 1e6:.0f} MB)",
            flush=True,
        )
    if args.sqlite:
        db = out / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        run(f"sqlite:///{db}", out / "config", csv_path, out / "reports")
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            run(
                args.postgres,
                out / "config",
                csv_path,
                out / "reports",
                connect_args={"options": f"-csearch_path={schema}"},
            )
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
