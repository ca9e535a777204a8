"""The weekly analysis flow, end to end: Prefect, a real database (SQLite and PostgreSQL) and a
real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from duban.cli import main
from duban.db import session_scope
from duban.db.models import Delivery, Notice, Problem, Run
from duban.periods import WeekError
from flows.weekly import weekly_analysis
from tests.flows.helpers import add_ticket, by_recipient

WEEK = "2026-W45"  # Mon 2026-11-02 .. Sun 2026-11-08; the week before is 2026-W44
MONDAY = datetime(2026, 11, 2)
SCRIPT = "<script>alert('x')</script>"
HRSS_ADDRESS = "幸福路8号工地"  # hrss's tickets only: the housing notice must not show it
HOUSING_ADDRESS = "安居路<b>3</b>号"
CHARTS = ("weekly-problems.png", "weekly-daily.png")


def problem_ids(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        return {code: pid for code, pid in session.execute(select(Problem.code, Problem.id))}


def seed_tickets(engine: Engine) -> None:
    """P01 (lead: housing) rises from 1 to 4 tickets, three of them at one address; P02 (lead:
    hrss) falls from 4 to 3, all three at one address from one caller; five more tickets of a
    street unit outside any problem. This week 12 tickets, last week 5."""
    problems = problem_ids(engine)
    n = 0

    def ticket(unit: str, received: datetime, **kw: Any) -> None:
        nonlocal n
        n += 1
        add_ticket(engine, f"T{n:03d}", unit, received, received + timedelta(days=5), **kw)

    housing = {"problem_id": problems["P01"], "category": "房产证办理", "street": "建外街道",
               "district": "朝阳区"}  # fmt: skip
    hrss = {"problem_id": problems["P02"], "category": "拖欠工资", "street": "建国门街道",
            "district": "东城区"}  # fmt: skip
    ticket("housing", MONDAY - timedelta(days=3), **housing, address="安居路1号")
    for day in range(3):
        ticket(
            "housing", MONDAY + timedelta(days=day, hours=9), **housing, address=HOUSING_ADDRESS,
            content=f"房产证办不下来 {SCRIPT} 请回电13912345678",
        )  # fmt: skip
    ticket("housing", MONDAY + timedelta(days=4, hours=10), **housing, address="安居路2号")
    for day in range(4):
        ticket("hrss", MONDAY - timedelta(days=6 - day), **hrss, address="旧址1号")
    for day in range(3):
        ticket(
            "hrss", MONDAY + timedelta(days=day, hours=14), **hrss, address=HRSS_ADDRESS,
            caller_phone="13812345678", content="工资拖欠三个月，身份证110101199003071234",
        )  # fmt: skip
    for day in range(5):  # street tickets, no problem
        ticket("dc-jianguomen", MONDAY + timedelta(days=day, hours=11))


def inline_images(message: Any) -> dict[str, bytes]:
    """Content-ID -> bytes of every image/png part."""
    return {
        str(part["Content-ID"]).strip("<>"): part.get_payload(decode=True)
        for part in message.walk()
        if part.get_content_type() == "image/png"
    }


def test_office_and_lead_units_receive_the_analysis_with_inline_charts(
    city: dict[str, Any],
) -> None:
    engine, smtp, reports = city["engine"], city["smtp"], city["reports"]
    seed_tickets(engine)
    summary = weekly_analysis(week=WEEK)
    assert summary["notices"] == 3 and summary["mail_sent"] == 3
    assert summary["tickets"] == 12 and summary["tickets_last_week"] == 5

    mail = by_recipient(smtp)
    assert set(mail) == {"office@duban.example", "housing@duban.example", "hrss@duban.example"}
    folder = reports / "weekly" / WEEK
    for received in (m for ms in mail.values() for m in ms):
        html = received.part("html")
        images = inline_images(received.message)
        assert set(images) == {f"{name}@duban" for name in CHARTS}
        for name in CHARTS:
            assert f'src="cid:{name}@duban"' in html
            assert images[f"{name}@duban"] == (folder / name).read_bytes()
            assert images[f"{name}@duban"].startswith(b"\x89PNG\r\n\x1a\n")
        assert "<script>" not in html
        for secret in ("13812345678", "13912345678", "110101199003071234"):
            assert secret not in html and secret not in received.part("plain")
    # The archived page shows the charts from files beside it.
    office_page = (folder / "office-analysis.html").read_text(encoding="utf-8")
    assert all(f'src="{name}"' in office_page for name in CHARTS)

    [office] = mail["office@duban.example"]
    assert (
        office.message["Subject"] == f"【督办】全市接诉即办周分析 {WEEK}（2026-11-02至2026-11-08）"
    )
    text = office.part("plain")
    assert "P01 房产证办证难（市住房城乡建设委）：4 / 1，+3（+300.0%）" in text
    assert "P02 拖欠工资（市人力资源社会保障局）：3 / 4，-1（-25.0%）" in text
    assert HRSS_ADDRESS in text and "138****5678" in text  # the office sees every repeat
    # Repeat complaints name their units by name, never by code.
    repeats = [line for line in text.splitlines() if line.startswith(("- 地址 ", "- 来电 "))]
    assert any(line.endswith("（市人力资源社会保障局）") for line in repeats), repeats
    assert not any("hrss" in line for line in repeats), repeats
    assert "1. 建国门街道：5" in text and "nan" not in text  # a street without a district
    assert "安居路&lt;b&gt;3&lt;/b&gt;号" in office.part("html")

    [housing] = mail["housing@duban.example"]
    text, html = housing.part("plain"), housing.part("html")
    assert "市住房城乡建设委 接诉即办周分析" in housing.message["Subject"]
    assert text.index("P01 房产证办证难") < text.index("P02 拖欠工资")  # its own problem first
    assert "安居路<b>3</b>号" in text and "3 件" in text  # its own repeat complaint
    assert HRSS_ADDRESS not in text and HRSS_ADDRESS not in html  # not another unit's
    assert "138****5678" not in text and "来电 " not in text  # no caller numbers to units
    assert "房产证办不下来" not in text  # no ticket content at all

    [hrss] = mail["hrss@duban.example"]
    text = hrss.part("plain")
    assert text.index("P02 拖欠工资") < text.index("P01 房产证办证难")
    assert HRSS_ADDRESS in text and "安居路" not in text


def test_rerun_for_the_same_week_sends_nothing_new(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed_tickets(engine)
    first = weekly_analysis(week=WEEK)
    sent = len(smtp.messages)
    again = weekly_analysis(week=WEEK)
    assert sent == 3 and len(smtp.messages) == sent
    assert again["mail_sent"] == 0 and again["notices_already_recorded"] == first["notices"] == 3
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Notice)) == 3
        assert session.scalar(select(func.count()).select_from(Delivery)) == 3
        assert session.scalars(select(Run.status).order_by(Run.id)).all() == ["ok", "ok"]


def test_dry_run_renders_and_archives_but_sends_nothing(city: dict[str, Any]) -> None:
    engine, smtp, reports = city["engine"], city["smtp"], city["reports"]
    seed_tickets(engine)
    summary = weekly_analysis(week=WEEK, dry_run=True)
    assert summary["notices"] == 3 and summary["mail_sent"] == 0 and smtp.messages == []
    folder = reports / "dry-run" / "weekly" / WEEK
    assert sorted(p.name for p in folder.glob("*.html")) == [
        "housing-analysis.html", "hrss-analysis.html", "office-analysis.html",
    ]  # fmt: skip
    assert all((folder / name).stat().st_size > 1000 for name in CHARTS)
    assert not (reports / "weekly").exists()
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Notice)) == 0
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
        assert session.scalars(select(Run.dry_run)).all() == [True]


@pytest.mark.parametrize("bad", ["2026-45", "2026-W54"])
def test_a_bad_week_is_a_clear_error(
    city: dict[str, Any], bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(WeekError, match=repr(bad)):
        weekly_analysis(week=bad)
    with pytest.raises(SystemExit) as stop:  # refused while the arguments are parsed
        main(["run", "weekly", "--week", bad])
    assert stop.value.code == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("duban: --week: expected YYYY-Www") and repr(bad) in err
    # No analysis goes out; the failed flow run alerts the administrators only.
    recipients = {r for m in city["smtp"].messages for r in m.rcpt_tos}
    assert recipients <= set(city["config"].mail.admins)
    with session_scope(city["engine"]) as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 0
