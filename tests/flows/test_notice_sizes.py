"""Every notice kind within its size budget (issue 16) on the demo city at its own size (92
days of 1,500 tickets a day, ~430 units): no notice over 200 KB of HTML; the office's
quarterly report and look-back a summary plus a workbook. Prints the table of sizes, the
largest notice of each kind against its budget (`pytest -s` shows it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from duban.demo import run_demo
from duban.settings import get_settings
from flows.annual import annual_evaluation
from tests.flows.test_phone_layout import KINDS, kind_of  # every kind, the annual's too

REPO = Path(__file__).resolve().parents[2]
BUDGET = 200_000  # bytes of HTML in one notice (docs/delivery.md, "Size budgets")
ENV = ("DUBAN_DATABASE_URL", "DUBAN_CONFIG_DIR", "DUBAN_OUTBOX_DIR", "DUBAN_REPORTS_DIR",
       "DUBAN_SMTP_HOST")  # fmt: skip


def size_table(reports: Path) -> dict[tuple[str, str, str], tuple[int, int, Path]]:
    """Per notice kind: (notices, bytes of HTML of the largest, its path)."""
    out: dict[tuple[str, str, str], tuple[int, int, Path]] = {}
    for path in reports.rglob("*.html"):
        if path.relative_to(reports).parts[0] == "dry-run":
            continue
        kind = kind_of(reports, path)
        count, largest, where = out.get(kind, (0, -1, path))
        size = path.stat().st_size
        out[kind] = (count + 1, size, path) if size > largest else (count + 1, largest, where)
    return out


def mail_sizes(outbox: Path) -> dict[tuple[str, str], int]:
    """Per (loop, office or unit): bytes of the largest e-mail (.eml, attachments and inline
    charts included) — shown beside the budget, not held to it."""
    out: dict[tuple[str, str], int] = {}
    for path in outbox.glob("*.eml"):  # duban-<id>.<loop>-<period>-<audience>@duban.eml
        loop = path.name.split(".", 1)[1].split("-", 1)[0]
        who = "office" if path.name.endswith("-office@duban.eml") else "unit"
        out[(loop, who)] = max(out.get((loop, who), 0), path.stat().st_size)
    return out


def test_no_notice_of_the_demo_city_is_over_its_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in ENV:  # run_demo points the settings at its city: put them back afterwards
        monkeypatch.setenv(key, os.environ.get(key, "-"))
        if key not in os.environ or os.environ[key] == "-":
            monkeypatch.delenv(key)
    monkeypatch.setenv("DUBAN_TEMPLATES_DIR", str(REPO / "templates"))
    get_settings.cache_clear()
    try:
        assert run_demo(tmp_path / "demo", days=92, daily_volume=1500, seed=12345,
                        database_url=None, daily_runs=2) == 0  # fmt: skip
        annual_evaluation(year=2026)
    finally:
        get_settings.cache_clear()
    sizes = size_table(tmp_path / "demo" / "reports")
    assert set(sizes) == KINDS
    mails = mail_sizes(tmp_path / "demo" / "outbox")
    lines = [
        f"{'notice kind':<28} {'notices':>7} {'largest HTML':>13} {'budget':>8}  status"
        f"  {'largest e-mail of its loop and audience':>12}"
    ]
    for kind, (count, largest, _) in sorted(sizes.items()):
        status = "ok  " if largest <= BUDGET else "OVER"
        mail = mails.get(kind[:2], 0)
        lines.append(
            f"{'/'.join(kind):<28} {count:>7} {largest / 1000:>10.1f} KB {BUDGET // 1000:>5} KB"
            f"  {status}  {mail / 1000:>9.1f} KB"
        )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    over = {"/".join(k): f"{v[1]} bytes ({v[2].name})" for k, v in sizes.items() if v[1] > BUDGET}
    assert over == {}
