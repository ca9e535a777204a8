"""The monthly bulletin flow end to end: Prefect, a real database (SQLite and PostgreSQL) and a
real SMTP server. Drafts are held until approved — from the command line's path
(`approve_monthly`) or by resuming a paused flow run with the approval form's input."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from sqlalchemy import Engine, func, insert, select

from duban.db import session_scope
from duban.db.models import (
    AuditRecord,
    Delivery,
    DeliveryStatus,
    Escalation,
    Notice,
    PlanTask,
    Problem,
    Run,
    Ticket,
    TicketStatus,
)
from flows.monthly import approve_monthly, monthly_bulletin, pause_key, paused_flow_run
from tests.flows.helpers import add_ticket, by_recipient, unit_ids

MONTH = "2026-10"
STREETS = {  # unit → (tickets in October, how many closed on time and satisfied)
    "dc-jianguomen": (6, 6),
    "dc-donghuamen": (5, 1),
    "cy-jianwai": (4, 4),
    "cy-sanlitun": (5, 0),
    "dc": (3, 3),
    "cy": (3, 1),
    "housing": (4, 2),
    "hrss": (3, 3),
    "water": (3, 1),
}
SCRIPT = "<script>alert('x')</script>"
LEADS = {"housing": "housing@duban.example", "hrss": "hrss@duban.example"}


def seed(city: dict[str, Any]) -> None:
    """October tickets for every unit that ranks, September for the month-on-month change, an
    overdue open ticket of Sanlitun on the ledger, and plan tasks of P01 and P02."""
    engine: Engine = city["engine"]
    config_dir = city["config"].root
    metrics = yaml.safe_load((config_dir / "metrics.yaml").read_text(encoding="utf-8"))
    metrics["min_tickets_to_rank"] = 3
    metrics["lowest_named"] = 1
    (config_dir / "metrics.yaml").write_text(yaml.safe_dump(metrics), encoding="utf-8")
    units = unit_ids(engine)
    with session_scope(engine) as session:
        problems = {code: pid for code, pid in session.execute(select(Problem.code, Problem.id))}
    rows: list[dict[str, Any]] = []
    n = 0
    for unit, (count, good) in STREETS.items():
        for i in range(count):
            n += 1
            received = datetime(2026, 10, 1 + i * 3 % 27, 9)
            ok = i < good
            rows.append({
                "source": "test", "external_id": f"M{n:03d}", "received_at": received,
                "first_response_at": received + timedelta(hours=1 if ok else 40),
                "due_at": received + timedelta(days=5),
                "closed_at": received + timedelta(days=2 if ok else 9),
                "status": TicketStatus.closed, "resolved": ok,
                "satisfaction": "satisfied" if ok else "dissatisfied",
                "category": "噪声扰民", "district": "东城区", "street": "建国门街道",
                "content": f"市民原话 {SCRIPT} 13812345678", "unit_id": units[unit],
                "problem_id": problems["P01" if n % 2 else "P02"], "urgency": 3, "row_hash": 0,
            })  # fmt: skip
    for i in range(40):  # September: P01 had more tickets, so it fell
        rows.append(dict(rows[0], external_id=f"S{i}", received_at=datetime(2026, 9, 10, 9),
                         due_at=datetime(2026, 9, 15), closed_at=datetime(2026, 9, 11),
                         problem_id=problems["P01"]))  # fmt: skip
    late = dict(
        rows[0], external_id="LATE-1", received_at=datetime(2026, 9, 1, 9),
        due_at=datetime(2026, 9, 8, 23, 59, 59), closed_at=None,
        status=TicketStatus.in_progress, unit_id=units["cy-sanlitun"], problem_id=None,
        category="楼道堆物",
    )  # fmt: skip
    rows.append(late)
    with engine.begin() as conn:
        conn.execute(insert(Ticket.__table__), rows)
    on_ledger(engine, "LATE-1", "cy-sanlitun")
    with session_scope(engine) as session:
        for problem, owner in (("P01", "housing"), ("P02", "hrss")):
            session.add(PlanTask(
                problem_id=problems[problem], code=f"{problem}-T1", title=f"{problem}任务一",
                owner_unit_id=units[owner], due_month=date(2026, 9, 1), status="in_progress",
                progress=0.4,
            ))  # fmt: skip


def on_ledger(engine: Engine, external_id: str, unit: str) -> None:
    """Put ticket `external_id` of `unit` on the city ledger: 挂账 and 通报 due in September."""
    units = unit_ids(engine)
    with session_scope(engine) as session:
        item = session.scalar(select(Ticket.id).where(Ticket.external_id == external_id))
        for step, level, due_on in (("ledger", 3, date(2026, 9, 11)),
                                    ("bulletin", 4, date(2026, 9, 22))):  # fmt: skip
            session.add(Escalation(
                item_kind="ticket", item_id=item, step=step, level=level,
                unit_id=units[unit], due_on=due_on,
                applied_at=datetime.combine(due_on, datetime.min.time()),
                reason=f"超期未办结（{step}）",
            ))  # fmt: skip


def counts(engine: Engine) -> tuple[int, int, int]:
    with session_scope(engine) as session:
        notices = session.scalar(select(func.count(Notice.id)).where(Notice.loop == "monthly"))
        drafts = session.scalar(
            select(func.count(Notice.id)).where(
                Notice.loop == "monthly", Notice.approved_at.is_(None)
            )
        )
        deliveries = session.scalar(select(func.count(Delivery.id)))
    return int(notices or 0), int(drafts or 0), int(deliveries or 0)


# Each unit's items on the ledger: (ticket id, its category as the ledger lists it).
ITEMS = {"cy-sanlitun": ("LATE-1", "楼道堆物"), "dc-donghuamen": ("LATE-2", "占道经营")}


def test_held_as_draft_then_approved_once_for_each_recipient(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed(city)
    add_ticket(
        engine, "LATE-2", "dc-donghuamen", datetime(2026, 9, 2, 9), datetime(2026, 9, 9, 18),
        status=TicketStatus.in_progress, category="占道经营", content=f"东华门市民原话 {SCRIPT}",
    )  # fmt: skip
    on_ledger(engine, "LATE-2", "dc-donghuamen")
    summary = monthly_bulletin(month=MONTH)
    assert summary["status"] == "draft"
    assert summary["notices"] >= 10 and summary["workbooks"] == 2
    assert summary["ledger_items"] == 2
    notices, drafts, deliveries = counts(engine)
    assert notices == drafts == summary["notices"]
    assert deliveries == 0 and smtp.messages == []  # nothing goes out before approval

    approved = approve_monthly(MONTH, "张主任", comment="同意印发")
    assert approved["status"] == "approved" and approved["approved"] == notices
    mail = by_recipient(smtp)
    assert all(len(messages) == 1 for messages in mail.values()), Counter(
        {k: len(v) for k, v in mail.items()}
    )
    assert len(smtp.messages) == notices == approved["mail_sent"]
    # every ranked unit, the lead units and the office
    emails = {u.code: u.emails for u in city["config"].units.units}
    expected = {"office@duban.example"} | {a for unit in STREETS for a in emails[unit]}
    assert set(mail) == expected

    [office] = mail["office@duban.example"]
    html, text = office.part("html"), office.part("plain")
    assert "月通报" in office.message["Subject"]
    assert "LATE-1" in html and "挂账" in text  # the full ledger, for the office only
    assert "2个问题中1个环比下降，其中1个降幅超过10%" in text  # P01 fell; P02 had no September
    for part in (html, text):
        assert "市民原话" not in part and "<script>" not in part and "13812345678" not in part
    images = [p for p in office.message.walk() if p.get_content_type() == "image/png"]
    assert {p.get_filename() for p in images} == {"monthly-problems.png", "monthly-scores.png"}
    assert 'src="cid:monthly-problems.png@duban"' in html
    assert not list(office.message.iter_attachments())

    assert all(ref in html and ref in text for ref, _ in ITEMS.values())  # the office: all

    [sanlitun] = mail["sanlitun@duban.example"]
    s_text = sanlitun.part("plain")
    assert "月末仍有 1 项挂账事项" in s_text
    assert "被通报" in s_text and "满意率" in s_text  # lowest of the streets, and why
    assert not list(sanlitun.message.iter_attachments())
    # Each unit: its own items, nobody else's; its peer group's ranks, no other group's.
    addresses = {a: u.code for u in city["config"].units.units for a in u.emails or []}
    for address, [message] in mail.items():
        if address == "office@duban.example":
            continue
        unit = addresses[address]
        for part in (message.part("plain"), message.part("html")):
            for owner, (ref, category) in ITEMS.items():
                assert (ref in part) == (owner == unit), (address, ref)
                assert (category in part) == (owner == unit), (address, category)
            assert "市民原话" not in part and "<script>" not in part and "13812345678" not in part
    d_text = mail["donghuamen@duban.example"][0].part("plain")
    for text_ in (s_text, d_text):
        assert "街道（乡镇）" in text_ and "三里屯街道" in text_ and "东华门街道" in text_
        assert "市级部门" not in text_ and "东城区：得分" not in text_  # no other group
    housing = mail[LEADS["housing"]][0].part("plain")
    assert "市级部门" in housing and "街道（乡镇）：" not in housing and "三里屯街道" not in housing

    for lead, address in LEADS.items():
        [message] = mail[address]
        files = [a.get_filename() for a in message.message.iter_attachments()]
        name = next(u.name for u in city["config"].units.units if u.code == lead)
        assert files == [f"台账-{name}-2026-10-31.xlsx"], files  # RFC 2231, decoded
        [book] = list(message.message.iter_attachments())
        assert book.get_payload(decode=True)[:2] == b"PK"  # an XLSX (zip) file
        assert "本单位牵头问题推进情况" in message.part("plain")
        assert "monthly-" not in message.part("html")  # the charts are the office's
        assert not [p for p in message.message.walk() if p.get_content_type() == "image/png"]

    with session_scope(engine) as session:
        audit = session.execute(select(AuditRecord.actor, AuditRecord.new)).all()
    assert Counter(audit) == Counter({("张主任", "approved"): notices})

    # Approving again, and re-running the month, send nothing new and render nothing new.
    again = approve_monthly(MONTH, "张主任")
    assert again["approved"] == 0 and again["mail_sent"] == 0
    rerun = monthly_bulletin(month=MONTH)
    assert rerun["status"] == "approved" and rerun["mail_sent"] == 0
    assert rerun["notices_already_recorded"] == notices and "notices" not in rerun
    assert len(smtp.messages) == notices
    assert counts(engine)[0] == notices
    with session_scope(engine) as session:
        statuses = set(session.scalars(select(Delivery.status)))
        runs = session.scalars(select(Run.status).where(Run.loop == "monthly")).all()
    assert statuses == {DeliveryStatus.sent} and runs == ["ok", "ok"]


def test_rejected_bulletin_sends_nothing(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed(city)
    monthly_bulletin(month=MONTH)
    rejected = approve_monthly(MONTH, "李处长", comment="数据需核实", approved=False)
    assert rejected["status"] == "rejected"
    notices, drafts, deliveries = counts(engine)
    assert drafts == notices and deliveries == 0 and smtp.messages == []
    with session_scope(engine) as session:
        audit = session.execute(select(AuditRecord.new, AuditRecord.origin)).all()
    assert len(audit) == notices and {a.new for a in audit} == {"rejected"}
    assert all("数据需核实" in (a.origin or "") for a in audit)


def test_paused_flow_run_is_resumed_with_the_approval(city: dict[str, Any]) -> None:
    """A deployment-style run (wait_for_approval=True) pauses with the approval form; the
    command line's approval finds it paused and resumes it with the input; the resumed run
    approves, audits and delivers."""
    engine, smtp = city["engine"], city["smtp"]
    seed(city)
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["summary"] = monthly_bulletin(
                month=MONTH, wait_for_approval=True, approval_poll_seconds=1,
                approval_timeout_hours=0.1,
            )  # fmt: skip
        except BaseException as exc:  # reported below
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    run_id = None
    deadline = time.monotonic() + 90
    while run_id is None and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.5)
        run_id = paused_flow_run(MONTH)
    assert run_id is not None, result.get("error", "the flow run never paused")
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
    assert state is not None and state.is_paused()
    assert state.state_details.pause_key == pause_key(MONTH)  # how a scheduled run is found
    assert state.state_details.run_input_keyset  # the form the Prefect UI shows
    notices, drafts, deliveries = counts(engine)
    assert notices == drafts > 0 and deliveries == 0 and smtp.messages == []
    # What the approver reads before deciding: the draft, its ranking and named units.
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    drafted = {a.key: a for a in found}
    draft = str(drafted[f"monthly-draft-{MONTH}"].data)
    assert "office-bulletin.html" in draft and "```text" in draft
    ranking = json.loads(str(drafted[f"monthly-draft-{MONTH}-ranking"].data))
    assert ranking and {"组别", "排名", "单位", "得分", "工单数", "点名"} <= set(ranking[0])
    assert f"monthly-draft-{MONTH}-named" in drafted
    assert "file://" in str(drafted[f"monthly-draft-{MONTH}-file"].data)

    outcome = approve_monthly(MONTH, "王局长", comment="UI 审批")
    assert outcome["resumed_flow_run"] == str(run_id)
    thread.join(timeout=90)
    assert not thread.is_alive() and "error" not in result, result.get("error")
    summary = result["summary"]
    assert summary["status"] == "approved" and summary["approver"] == "王局长"
    assert summary["mail_sent"] == notices == len(smtp.messages)
    assert all(len(m) == 1 for m in by_recipient(smtp).values())
    with session_scope(engine) as session:
        origins = set(session.scalars(select(AuditRecord.origin)))
    assert origins == {f"monthly {MONTH} via prefect flow run {run_id}: UI 审批"}
    # the CLI's own path afterwards finds nothing to do
    assert approve_monthly(MONTH, "王局长")["mail_sent"] == 0
    assert len(smtp.messages) == notices
