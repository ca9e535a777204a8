"""The look-back flow end to end: Prefect, a real database (SQLite and PostgreSQL) and a real
SMTP server. Report-only changes nothing in the tickets; reopening happens once, audited;
the same request run again neither reopens nor sends anything new."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from duban.db import session_scope
from duban.db.models import AuditRecord, LookbackFinding, Run, Ticket, TicketStatus
from duban.loops.lookback.findings import LookbackRequest, LookbackRequestError, build_request
from flows.lookback import lookback
from tests.flows.helpers import add_ticket, by_recipient

SCRIPT = "<script>alert('x')</script>"
CLOSED = TicketStatus.closed


def closed(engine: Engine, ext: str, unit: str, received: datetime, closed_at: datetime,
           **kw: Any) -> None:  # fmt: skip
    add_ticket(engine, ext, unit, received, received + timedelta(days=5), status=CLOSED,
               closed_at=closed_at, resolved=True, **kw)  # fmt: skip


def seed(engine: Engine) -> None:
    """Jianguomen: J-BACK came back (J-AGAIN, same address and category), J-FINE did not;
    Sanlitun: S-BACK came back, with personal data and markup in the citizen text;
    Donghuamen: D-FINE did not come back — it must receive nothing."""
    d = datetime
    closed(engine, "J-BACK", "dc-jianguomen", d(2026, 9, 1, 9), d(2026, 9, 3, 17))
    add_ticket(engine, "J-AGAIN", "dc-jianguomen", d(2026, 9, 20, 8), d(2026, 9, 25, 18))
    closed(engine, "J-FINE", "dc-jianguomen", d(2026, 9, 2, 9), d(2026, 9, 4, 17),
           address="建国门内大街7号", category="占道经营")  # fmt: skip
    closed(engine, "S-BACK", "cy-sanlitun", d(2026, 9, 5, 9), d(2026, 9, 7, 17),
           street="三里屯街道", address="三里屯路<b>19</b>号",
           content=f"请回电13812345678，身份证110101199003071234 {SCRIPT}")  # fmt: skip
    add_ticket(engine, "S-AGAIN", "cy-sanlitun", d(2026, 9, 9, 8), d(2026, 9, 14, 18),
               street="三里屯街道", address="三里屯路<b>19</b>号",
               content="又来了13900001111")  # fmt: skip
    closed(engine, "D-FINE", "dc-donghuamen", d(2026, 9, 2, 9), d(2026, 9, 6, 17),
           street="东华门街道", address="东华门大街5号")  # fmt: skip


def september(**kw: Any) -> LookbackRequest:
    return build_request(closed_from=date(2026, 9, 1), closed_to=date(2026, 9, 30), **kw)


def tickets_table(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(Ticket.__table__).order_by(Ticket.id))]


def test_report_only_tells_each_unit_its_own_items_and_changes_no_ticket(
    city: dict[str, Any],
) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed(engine)
    before = tickets_table(engine)
    summary = lookback(september())
    assert tickets_table(engine) == before  # reopen=False: nothing in the tickets changes
    assert (summary["closed"], summary["examined"], summary["recurred"]) == (4, 4, 2)
    assert summary["reopened"] == 0 and summary["mail_sent"] == summary["notices"] == 3

    mail = by_recipient(smtp)
    assert set(mail) == {
        "jianguomen@duban.example",
        "sanlitun@duban.example",
        "office@duban.example",
    }  # fmt: skip  (Donghuamen had nothing come back: it receives nothing)
    [jianguomen] = mail["jianguomen@duban.example"]
    text, html = jianguomen.part("plain"), jianguomen.part("html")
    assert "回头看" in jianguomen.message["Subject"]
    for part in (text, html):
        assert "J-BACK" in part and "J-AGAIN" in part
        assert "J-FINE" not in part and "S-BACK" not in part and "D-FINE" not in part

    [sanlitun] = mail["sanlitun@duban.example"]
    text, html = sanlitun.part("plain"), sanlitun.part("html")
    assert "S-BACK" in text and "S-AGAIN" in text and "J-" not in text and "J-" not in html
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>19</b>" not in html
    for secret in ("13812345678", "110101199003071234", "19900307", "13900001111"):
        assert secret not in text and secret not in html
    assert "138****5678" in text

    [office] = mail["office@duban.example"]
    text = office.part("plain")
    assert "J-BACK" in text and "S-BACK" in text and "J-FINE" not in text
    assert "13812345678" not in text and "50.0%" in text  # 2 of 4 examined came back

    with session_scope(engine) as session:
        findings = session.scalars(select(LookbackFinding)).all()
        run = session.scalars(select(Run).where(Run.loop == "lookback")).one()
    assert len(findings) == 2 and not any(f.reopened for f in findings)
    assert run.status == "ok" and run.period == september().fingerprint()


def test_reopen_happens_once_with_audit_and_a_rerun_neither_reopens_nor_resends(
    city: dict[str, Any],
) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed(engine)
    request = september(reopen=True)
    first = lookback(request)
    assert first["reopened"] == 2 and first["mail_sent"] == 3
    with session_scope(engine) as session:
        status = dict(session.execute(select(Ticket.external_id, Ticket.status)).tuples().all())
        audit = session.scalars(select(AuditRecord)).all()
    assert {e for e, s in status.items() if s == TicketStatus.reopened} == {"J-BACK", "S-BACK"}
    assert status["J-FINE"] == CLOSED and status["J-AGAIN"] == TicketStatus.open
    assert sorted((a.field, a.old, a.new) for a in audit) == [("status", "closed", "reopened")] * 2
    [j_back] = [a for a in audit if a.entity_id == _id(engine, "J-BACK")]
    assert j_back.entity == "ticket" and request.fingerprint() in (j_back.origin or "")
    [jianguomen] = by_recipient(smtp)["jianguomen@duban.example"]
    assert "已重新开启" in jianguomen.part("plain")

    sent = len(smtp.messages)
    again = lookback(request)
    assert again["reopened"] == 0 and again["recurred"] == 2  # still found, not reopened again
    assert again["mail_sent"] == 0 and again["notices_already_recorded"] == 3
    assert len(smtp.messages) == sent

    # The unit closes J-BACK again within September; the same request still leaves it alone.
    with session_scope(engine) as session:
        ticket = session.get_one(Ticket, _id(engine, "J-BACK"))
        ticket.status, ticket.closed_at = CLOSED, datetime(2026, 9, 10, 12)
    add_ticket(engine, "J-THIRD", "dc-jianguomen", datetime(2026, 9, 21, 8), datetime(2026, 9, 26))
    third = lookback(request)
    assert third["reopened"] == 0 and len(smtp.messages) == sent
    with session_scope(engine) as session:
        assert session.get_one(Ticket, _id(engine, "J-BACK")).status == CLOSED
        assert len(session.scalars(select(AuditRecord)).all()) == 2
        reopened = session.scalars(
            select(LookbackFinding.item_id).where(LookbackFinding.reopened.is_(True))
        ).all()
    assert sorted(reopened) == sorted([_id(engine, "J-BACK"), _id(engine, "S-BACK")])


def test_unknown_code_fails_the_run_naming_the_code(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed(engine)
    with pytest.raises(LookbackRequestError, match="unknown unit code 'dc-nowhere'"):
        lookback(september(units=["dc-jianguomen", "dc-nowhere"], reopen=True))
    with session_scope(engine) as session:
        assert session.scalars(select(Run.status)).all() == ["failed"]
        assert session.scalars(select(LookbackFinding)).all() == []
    # No findings go out; the failed flow run alerts the administrators only.
    recipients = {r for m in smtp.messages for r in m.rcpt_tos}
    assert recipients <= set(city["config"].mail.admins)


def test_no_notify_records_findings_and_sends_nothing(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed(engine)
    summary = lookback(september(notify=False, same_place="street"))
    assert summary["recurred"] == 2 and "notices" not in summary and smtp.messages == []


def _id(engine: Engine, ext: str) -> int:
    with session_scope(engine) as session:
        return int(session.scalars(select(Ticket.id).where(Ticket.external_id == ext)).one())


def test_scheduled_lookback_examines_the_closures_whose_window_just_ended(
    city: dict[str, Any],
) -> None:
    """On Tue 2026-09-15 the 30-day schedule looks at the tickets closed on 2026-08-15 (their
    windows ended on 2026-09-14 at the latest); one closed a day later waits its turn."""
    from flows.scheduled_lookback import scheduled_lookback

    engine, smtp = city["engine"], city["smtp"]
    d = datetime
    closed(engine, "J-AUG", "dc-jianguomen", d(2026, 8, 10, 9), d(2026, 8, 15, 17))
    add_ticket(engine, "J-AUG-AGAIN", "dc-jianguomen", d(2026, 8, 20, 8), d(2026, 8, 25, 18))
    closed(engine, "J-LATER", "dc-jianguomen", d(2026, 8, 11, 9), d(2026, 8, 16, 17),
           address="建国门内大街9号")  # fmt: skip
    add_ticket(engine, "J-LATER-AGAIN", "dc-jianguomen", d(2026, 8, 21, 8), d(2026, 8, 26, 18),
               address="建国门内大街9号")  # fmt: skip

    result = scheduled_lookback(day=date(2026, 9, 15))
    assert result["30天回头看"]["closed"] == 1 and result["30天回头看"]["recurred"] == 1
    unit_mail = by_recipient(smtp)["jianguomen@duban.example"]
    assert len(unit_mail) == 1
    assert "J-AUG" in unit_mail[0].part("plain") and "J-LATER" not in unit_mail[0].part("plain")

    assert scheduled_lookback(day=date(2026, 9, 15))["30天回头看"]["mail_sent"] == 0  # re-run
    assert scheduled_lookback(day=date(2026, 9, 19))["skipped"] == "not a working day"


def test_a_units_notice_shows_only_its_own_tickets_when_others_recurred_its_items(
    city: dict[str, Any],
) -> None:
    """Issue 15, item 13: recurrences that span two units in two districts. J-MIX (Jianguomen,
    Dongcheng) came back as another district's ticket first (S-FOREIGN, Sanlitun, Chaoyang),
    then as its own (J-OWN); J-ONLY-FOREIGN came back only as Sanlitun's; S-MIX (Sanlitun)
    came back as Jianguomen's first. Each unit's notice lists its items and its own tickets
    only; the office sees every first recurrence."""
    engine, smtp = city["engine"], city["smtp"]
    d = datetime
    here = {"street": "建国门街道", "address": "建国门内大街1号", "district": "东城区"}
    there = {"street": "建国门街道", "address": "建国门内大街5号", "district": "东城区"}
    closed(engine, "J-MIX", "dc-jianguomen", d(2026, 9, 1, 9), d(2026, 9, 3, 17), **here)
    add_ticket(engine, "S-FOREIGN", "cy-sanlitun", d(2026, 9, 5, 8), d(2026, 9, 9, 18),
               content="外区工单内容", **here)  # fmt: skip
    add_ticket(engine, "J-OWN", "dc-jianguomen", d(2026, 9, 8, 8), d(2026, 9, 12, 18), **here)
    closed(engine, "J-ONLY-FOREIGN", "dc-jianguomen", d(2026, 9, 2, 9), d(2026, 9, 4, 17),
           **there)  # fmt: skip
    add_ticket(engine, "S-FOREIGN-2", "cy-sanlitun", d(2026, 9, 6, 8), d(2026, 9, 10, 18),
               content="外区工单内容二", **there)  # fmt: skip
    s_place = {"street": "三里屯街道", "address": "三里屯路19号", "district": "朝阳区"}
    closed(engine, "S-MIX", "cy-sanlitun", d(2026, 9, 5, 9), d(2026, 9, 7, 17), **s_place)
    add_ticket(engine, "J-FOREIGN", "dc-jianguomen", d(2026, 9, 9, 8), d(2026, 9, 14, 18),
               content="东城工单内容", **s_place)  # fmt: skip
    add_ticket(engine, "S-OWN", "cy-sanlitun", d(2026, 9, 10, 8), d(2026, 9, 15, 18), **s_place)

    summary = lookback(september())
    assert summary["recurred"] == 3 and summary["mail_sent"] == summary["notices"] == 3
    mail = by_recipient(smtp)
    [jianguomen] = mail["jianguomen@duban.example"]
    [sanlitun] = mail["sanlitun@duban.example"]
    # What went out, and the archived notice (a look-back unit notice has no attachment).
    archive = city["reports"] / "lookback" / september().fingerprint()
    for code, message, foreign in (
        ("dc-jianguomen", jianguomen, "S-"),
        ("cy-sanlitun", sanlitun, "J-"),
    ):
        assert not list(message.message.iter_attachments())
        archived = [p.read_text(encoding="utf-8") for p in archive.glob(f"{code}-unit.*")]
        assert len(archived) == 2
        for part in (message.part("plain"), message.part("html"), *archived):
            assert foreign not in part, (code, part)
            assert "外区工单内容" not in part and "东城工单内容" not in part
    for part in (jianguomen.part("plain"), jianguomen.part("html")):
        assert "J-MIX" in part and "J-OWN" in part and "J-ONLY-FOREIGN" in part
        assert "另有 1 件由其他单位受理" in part
    for part in (sanlitun.part("plain"), sanlitun.part("html")):
        assert "S-MIX" in part and "S-OWN" in part and "另有 1 件由其他单位受理" in part

    [office] = mail["office@duban.example"]
    text = office.part("plain")
    for first in ("S-FOREIGN", "S-FOREIGN-2", "J-FOREIGN"):
        assert first in text  # the office is told which ticket came back first


def test_the_artifact_shows_an_imported_id_as_text(city: dict[str, Any]) -> None:
    """Issue 15, item 14: an id `<img src=x onerror=…>` from an export reaches the Prefect
    artifact escaped: no HTML, no link, no broken table row."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    engine = city["engine"]
    d = datetime
    evil = "<img src=x onerror=alert(1)>|[x](javascript:alert(1))"
    closed(engine, evil, "dc-jianguomen", d(2026, 9, 1, 9), d(2026, 9, 3, 17))
    add_ticket(engine, "J-AGAIN", "dc-jianguomen", d(2026, 9, 20, 8), d(2026, 9, 25, 18))
    lookback(september(notify=False))
    with get_client(sync_client=True) as client:
        [found] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["lookback"])),
            limit=1,
            sort="CREATED_DESC",
        )
    markdown = str(found.data)
    assert "<img" not in markdown and "](javascript" not in markdown
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;\\|\\[x\\]" in markdown
    [row] = [line for line in markdown.splitlines() if "onerror" in line]
    assert row.count("|") - row.count("\\|") == 7  # six cells
