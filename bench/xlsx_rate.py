"""Reading and importing a 100,000-row Excel export: calamine (Duban's reader) beside openpyxl
(the reader it replaced), and the same rows as CSV for scale.

    .venv/bin/python bench/xlsx_rate.py [--rows N] [--repeat N] [--out FILE]

Writes the demo city's export (deterministic: `generate_city`, its first N rows) under
var/bench/xlsx-N/ as tickets.csv and as export.xlsx, the way an Excel export looks: a title
row above the header, times as date cells, numbers as numbers, ids and other text as text
(openpyxl's write-only mode, so inline strings; ~1 min, once). Then, per round and per
reader, each in a subprocess of its own: `read`, every chunk of `read_export` (nothing
stored), and `import`, `import_tickets` into a fresh SQLite file (a first import). Rounds
alternate the readers; the figures are medians of `--repeat` rounds; peak memory is the
subprocess's own VmHWM (bench/memory.py). Other processes share the CPU: compare the
ratios of one run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from memory import peak_rss_mib

from duban.config import DATETIME_FIELDS, load_config
from duban.db import make_engine, session_scope, upgrade
from duban.demo.city import DemoSpec, generate_city
from duban.ingest.city import sync_city
from duban.ingest.sources import read_export
from duban.ingest.tickets import import_tickets

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(os.environ.get("DUBAN_BENCH_DIR") or REPO / "var" / "bench")
NUMBERS = ("urgency", "returned_count", "reassigned_count")
# (label, file, reader): the CSV line is the scale, not a floor of the same work.
CASES = (("xlsx, openpyxl", "export.xlsx", "openpyxl"), ("xlsx, calamine", "export.xlsx",
         "calamine"), ("csv (same rows)", "tickets.csv", "calamine"))  # fmt: skip


def write_exports(folder: Path, rows: int) -> None:
    """The demo's first `rows` tickets as tickets.csv and as export.xlsx (see the doc)."""
    from openpyxl import Workbook

    days = rows // 10_000 + 1
    generate_city(DemoSpec(days=days, daily_volume=11_000), folder / "demo", REPO / "config")
    with (folder / "demo" / "tickets.csv").open(encoding="utf-8-sig", newline="") as source:
        records = csv.reader(source)
        header = next(records)
        body = list(islice(records, rows))
    with (folder / "tickets.csv").open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(body)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("工单明细")
    sheet.append([f"12345热线工单导出（{len(body)} 条）"])  # a title row above the header
    sheet.append(header)
    for record in body:
        cells: list[Any] = []
        for name, value in zip(header, record, strict=True):
            if not value:
                cells.append(None)
            elif name in DATETIME_FIELDS:
                cells.append(datetime.fromisoformat(value))
            elif name in NUMBERS:
                cells.append(int(value))
            else:
                cells.append(value)
        sheet.append(cells)
    book.save(folder / "export.xlsx")


def child(folder: Path, file: str, reader: str, what: str) -> None:
    """One read or import in this process; prints one JSON line."""
    config = load_config(folder / "demo" / "config")
    path = folder / file
    started = time.perf_counter()
    if what == "read":
        chunks = read_export(path, config.source("duban"), xlsx_reader=reader)  # type: ignore[arg-type]
        rows = sum(len(c.frame) for c in chunks)
        line = f"{rows} rows read"
    else:
        db = folder / f"bench-{os.getpid()}.db"
        engine = make_engine(f"sqlite:///{db}")
        upgrade(engine)
        with session_scope(engine) as session:
            sync_city(session, config)
        started = time.perf_counter()
        summary = import_tickets(
            engine, config, path, "duban", folder / "reports", xlsx_reader=reader  # type: ignore[arg-type]
        )  # fmt: skip
        rows, line = summary.read, summary.line()
        engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_mib": peak_rss_mib(), "line": line}))


def measure(folder: Path, file: str, reader: str, what: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", str(folder), file, reader, what]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _median(found: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = statistics.median(r["seconds"] for r in found)
    peak = statistics.median(r["peak_mib"] for r in found)
    return {"seconds": seconds, "peak_mib": peak, "rows": found[0]["rows"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="medians of this many rounds")
    parser.add_argument("--out", type=Path, help="write the medians here as JSON")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, file, reader, what = args.child
        child(Path(folder), file, reader, what)
        return
    folder = BENCH_DIR / f"xlsx-{args.rows}"
    if not (folder / "export.xlsx").exists():
        started = time.perf_counter()
        folder.mkdir(parents=True, exist_ok=True)
        write_exports(folder, args.rows)
        size = (folder / "export.xlsx").stat().st_size / 1e6
        print(
            f"wrote {folder}/export.xlsx ({size:.0f} MB) in {time.perf_counter() - started:.0f} s"
        )
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for round_ in range(args.repeat):
        for label, file, reader in CASES:
            for what in ("read", "import"):
                result = measure(folder, file, reader, what)
                runs.setdefault((label, what), []).append(result)
                seconds, peak = result["seconds"], result["peak_mib"]
                print(f"round {round_ + 1} {label:16} {what:6} {seconds:7.1f} s "
                      f"peak {peak:4.0f} MiB  ({result['line']})", flush=True)  # fmt: skip
    medians = {f"{label} {what}": _median(found) for (label, what), found in runs.items()}
    print(f"\nmedians of {args.repeat} rounds, {folder / 'export.xlsx'}:\n")
    print("| file, reader | read s | rows/s | import into SQLite s | rows/s | peak MiB (import) |")
    print("|---|---|---|---|---|---|")
    for label, _, _ in CASES:
        read, load = medians[f"{label} read"], medians[f"{label} import"]
        print(f"| {label} | {read['seconds']:.1f} | {read['rows'] / read['seconds']:,.0f} | "
              f"{load['seconds']:.1f} | {load['rows'] / load['seconds']:,.0f} | "
              f"{load['peak_mib']:.0f} |")  # fmt: skip
    old, new = "xlsx, openpyxl", "xlsx, calamine"
    for what in ("read", "import"):
        ratio = medians[f"{old} {what}"]["seconds"] / medians[f"{new} {what}"]["seconds"]
        print(f"\n{what}: calamine is {ratio:.1f}x faster than openpyxl", end="")
    print()
    if args.out:
        args.out.write_text(json.dumps(medians, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
