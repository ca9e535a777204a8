"""The daily loop reads the effective clock (docs/clock.md), end to end: Prefect, SQLite and
PostgreSQL, the e-mails read at a real SMTP server.

Jianguomen has, beside a plain late ticket (J-LATE), one whose extension was approved
(J-EXT: reminded and supervised for the new deadline, never for the old one, and its notice
shows both deadlines and why), one suspended (J-SUSP: no colour, no step), one whose appeal
was upheld (J-APPEAL: off every list and ladder) and one redone after a late close (J-REDO:
round 1's steps stay, round 2 starts from the fresh deadline)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, insert, select

from duban.clock import NewEvent, calendar_version, record_events
from duban.clock.decide import Decision, record_decision
from duban.db.models import ClockRefusal, Escalation, ItemKind, Ticket
from flows.daily import daily_report
from flows.monthly import approve_monthly, monthly_bulletin
from tests.clock_helpers import add_event, set_clock, steps, ticket_id
from tests.flows.helpers import add_ticket, by_recipient, unit_ids

# Mon 2026-10-12 (Thu Oct 8, Fri Oct 9, Sat Oct 10 调休 are working days before it).
DAY = date(2026, 10, 12)
OLD_DUE = datetime(2026, 10, 8, 23, 59, 59)
NEW_DUE = datetime(2026, 10, 12, 23, 59, 59)  # 3 working days later: Oct 9, 10 (调休), 12
RESPONDED = datetime(2026, 9, 28, 10)  # in time: no ticket is yellow


def event(ref: str, key: str, kind: Any, at: datetime, **kw: Any) -> NewEvent:
    return NewEvent("ticket", f"test:{ref}", key, kind, at, kw.pop("actor", "office"), **kw)


def record(city: dict[str, Any], events: list[NewEvent], as_of: datetime) -> None:
    """Through the clock's own validation and replay, as `duban decide` records them."""
    result = record_events(
        city["engine"], events, as_of=as_of, all_or_nothing=True, config=city["config"]
    )
    assert result.ok, [r.line() for r in result.refused]


def add_tickets(city: dict[str, Any], refs: tuple[str, ...], **kw: Any) -> None:
    """Tickets imported under the current calendar (no calendar correction moves them)."""
    version = calendar_version(city["config"].path("calendar.yaml"))
    for ref in refs:
        values = {"base_due_at": OLD_DUE, "first_response_at": RESPONDED,
                  "clock_calendar": version, **kw}  # fmt: skip
        add_ticket(city["engine"], ref, "dc-jianguomen", datetime(2026, 9, 28, 9),
                   values.pop("due_at", OLD_DUE), **values)  # fmt: skip


def seed(city: dict[str, Any]) -> None:
    engine = city["engine"]
    add_tickets(city, ("J-LATE", "J-EXT", "J-SUSP", "J-APPEAL"))
    # J-REDO: urgency 2 (3 working days); its round-1 steps were taken on the old deadline
    add_tickets(city, ("J-REDO",), urgency=2, due_at=datetime(2026, 9, 28, 23, 59, 59),
                base_due_at=datetime(2026, 9, 28, 23, 59, 59))  # fmt: skip
    redo = ticket_id(engine, "J-REDO")
    unit = unit_ids(engine)["dc-jianguomen"]
    with engine.begin() as conn:
        conn.execute(
            insert(Escalation.__table__),
            [
                {"item_kind": ItemKind.ticket.value, "item_id": redo, "step": step,
                 "level": level, "unit_id": unit, "due_on": on, "round": 1,
                 "applied_at": datetime(2026, 9, 30), "reason": "第一轮"}
                for step, level, on in (("reminder", 1, date(2026, 9, 28)),
                                        ("supervision", 2, date(2026, 9, 29)))
            ],
        )  # fmt: skip
    events = [
        event("J-EXT", "req-1", "extension_requested", datetime(2026, 10, 8, 10),
              actor="dc-jianguomen", reason="等待产权单位提供材料", origin="workbook"),
        event("J-EXT", "ok-1", "extension_approved", datetime(2026, 10, 10, 10),
              reason="等待产权单位提供材料", payload={"working_days": 3, "request": "req-1"}),
        event("J-SUSP", "s-1", "suspended", datetime(2026, 10, 10, 9), reason="等待法院裁定"),
        event("J-APPEAL", "a-1", "appeal_filed", datetime(2026, 10, 9, 9),
              actor="dc-jianguomen", reason="重复诉求", origin="workbook"),
        event("J-APPEAL", "a-2", "appeal_upheld", datetime(2026, 10, 10, 11), reason="重复诉求",
              payload={"request": "a-1"}),
        event("J-REDO", "r-1", "redo", datetime(2026, 10, 10, 9), reason="回访不满意"),
    ]  # fmt: skip
    record(city, events, as_of=datetime(2026, 10, 11, 12))


def test_the_daily_loop_reads_the_effective_clock(city: dict[str, Any]) -> None:
    engine, smtp = city["engine"], city["smtp"]
    seed(city)
    with engine.connect() as conn:
        due = dict(conn.execute(select(Ticket.external_id, Ticket.due_at)).tuples().all())
    assert due["J-EXT"] == NEW_DUE
    redo_due = due["J-REDO"]  # the fresh deadline: 3 working days from the redo
    assert redo_due.date() > DAY
    daily_report(day=DAY)

    # The plain late ticket is supervised; the extended one only reminded, for its new
    # deadline (today); the suspended and the appealed ones have no step.
    assert {s for _, s, _ in steps(engine, "J-LATE")} >= {"reminder", "supervision"}
    assert steps(engine, "J-EXT") == {(1, "reminder", DAY)}
    assert steps(engine, "J-SUSP") == set()
    assert steps(engine, "J-APPEAL") == set()
    # round 1 stays recorded; round 2 waits for the fresh deadline
    assert {r for r, _, _ in steps(engine, "J-REDO")} == {1}

    mail = by_recipient(smtp)
    [unit_mail] = mail["jianguomen@duban.example"]
    text, html = unit_mail.part("plain"), unit_mail.part("html")
    ext_line = next(line for line in text.splitlines() if "J-EXT [" in line)
    assert "蓝色" in ext_line and "红色" not in ext_line
    assert "时限 2026-10-12" in ext_line and "原时限 2026-10-08" in ext_line
    assert "批准延期：等待产权单位提供材料" in ext_line
    assert "原时限 2026-10-08" in html and "批准延期" in html
    late_line = next(line for line in text.splitlines() if "J-LATE [" in line)
    assert "红色" in late_line and "原时限" not in late_line  # never moved
    for hidden in ("J-SUSP", "J-APPEAL"):
        assert hidden not in text and hidden not in html
    assert "挂起 1" in text and "挂起工单 1 件" in html

    [office] = mail["office@duban.example"]
    digest, digest_html = office.part("plain"), office.part("html")
    decisions = digest.split("当日督办决定")[1].split("待决定的申请")[0]
    for ref, kind in (("J-EXT", "批准延期"), ("J-SUSP", "挂起"), ("J-REDO", "重办"),
                      ("J-APPEAL", "申诉成立（不纳入考核）")):  # fmt: skip
        assert f"{ref} [{kind}]" in decisions
    assert "J-EXT [申请延期]" not in digest  # answered: not pending
    assert "申诉成立（不纳入考核）" in digest_html

    # Past the new deadline the extended ticket is supervised, from its new deadline on;
    # past the redo's deadline round 2 starts (round 1's steps untouched).
    daily_report(day=date(2026, 10, 14))
    assert steps(engine, "J-EXT") == {(1, "reminder", DAY), (1, "supervision", date(2026, 10, 13))}
    assert steps(engine, "J-SUSP") == set() and steps(engine, "J-APPEAL") == set()
    daily_report(day=date(2026, 10, 19))
    redo = steps(engine, "J-REDO")
    assert {(1, "reminder", date(2026, 9, 28)), (1, "supervision", date(2026, 9, 29))} <= redo
    round_2 = {s: on for r, s, on in redo if r == 2}
    assert round_2["reminder"] == redo_due.date() and round_2["supervision"] > redo_due.date()


def test_a_pending_request_is_listed_for_the_office(city: dict[str, Any]) -> None:
    smtp = city["smtp"]
    add_tickets(city, ("J-ASK",))
    record(city, [event("J-ASK", "req-9", "extension_requested", datetime(2026, 10, 8, 9),
                        actor="dc-jianguomen", reason="需协调燃气公司", origin="workbook")],
           as_of=datetime(2026, 10, 11))  # fmt: skip
    daily_report(day=DAY)
    [office] = by_recipient(smtp)["office@duban.example"]
    pending = office.part("plain").split("待决定的申请")[1]
    assert "J-ASK [申请延期]：需协调燃气公司" in pending
    assert "J-ASK" in office.part("html").split("待决定的申请")[1]


def test_a_resumed_suspension_moves_the_deadline_by_its_working_days(
    city: dict[str, Any],
) -> None:
    """Suspended on Oct 8 and 9 (working days), resumed on Oct 10: the deadline moves two
    working days; the ladder and the notice follow the moved deadline."""
    engine, smtp, config = city["engine"], city["smtp"], city["config"]
    add_tickets(city, ("J-SR", "J-LATE"))
    events = [
        event("J-SR", "s", "suspended", datetime(2026, 10, 8, 9), reason="等待鉴定"),
        event("J-SR", "r", "resumed", datetime(2026, 10, 10, 9), reason="鉴定完成"),
    ]
    record(city, events, as_of=datetime(2026, 10, 11, 12))
    with engine.connect() as conn:
        due = dict(conn.execute(select(Ticket.external_id, Ticket.due_at)).tuples().all())
    assert due["J-SR"] == datetime.combine(
        config.calendar.add_working_days(OLD_DUE.date(), 2), OLD_DUE.time()
    )

    daily_report(day=DAY)
    late = {s for _, s, _ in steps(engine, "J-LATE")}
    assert {"reminder", "supervision", "ledger"} <= late  # the old deadline's ladder
    # supervised from the day after the moved deadline, not the old one
    assert min(on for _, s, on in steps(engine, "J-SR") if s == "supervision") > due["J-SR"].date()
    assert "ledger" not in {s for _, s, _ in steps(engine, "J-SR")}
    [unit_mail] = by_recipient(smtp)["jianguomen@duban.example"]
    sr = next(line for line in unit_mail.part("plain").splitlines() if "J-SR [" in line)
    assert f"时限 {due['J-SR']:%Y-%m-%d}" in sr and "原时限 2026-10-08" in sr
    assert "恢复（挂起结束）：鉴定完成" in sr


def test_the_bulletin_drops_upheld_appeals_and_shows_the_redo_rate(city: dict[str, Any]) -> None:
    """Three of Sanlitun's five October tickets had their appeal upheld: it falls below the
    ranking's minimum (3 tickets) and is named nowhere; the bulletin says 3 were not
    counted. One of Jianguomen's six closed tickets was redone: 重办率 16.7 %."""
    from tests.flows.test_monthly_flow import MONTH
    from tests.flows.test_monthly_flow import seed as seed_month

    engine, smtp = city["engine"], city["smtp"]
    seed_month(city)
    sanlitun = unit_ids(engine)["cy-sanlitun"]
    with engine.connect() as conn:
        refs = conn.scalars(
            select(Ticket.external_id)
            .where(Ticket.unit_id == sanlitun, Ticket.external_id.like("M%"))
            .order_by(Ticket.external_id)
        ).all()
    for ref in refs[:3]:
        add_event(engine, ref, "appeal", "appeal_upheld", datetime(2026, 10, 20), reason="重复诉求")
        set_clock(engine, ref, evaluated=False, excluded_reason="申诉成立：重复诉求")
    add_event(engine, "M001", "redo", "redo", datetime(2026, 10, 3), reason="回访不满意")
    set_clock(engine, "M001", redo_count=1, ladder_round=2)
    monthly_bulletin(month=MONTH)
    approve_monthly(MONTH, "张主任")
    [office] = by_recipient(smtp)["office@duban.example"]
    text, html = office.part("plain"), office.part("html")
    ranking = text.split("一、")[1].split("退单、重办与延期")[0]
    assert "不参与排名：三里屯街道" in ranking and "被通报" not in ranking.split("三里屯")[0][-30:]
    clock = text.split("退单、重办与延期")[1].split("二、")[0]
    sanlitun_line = next(line for line in clock.splitlines() if "三里屯街道" in line)
    assert "不纳入考核 3 件" in sanlitun_line
    jianguomen_line = next(line for line in clock.splitlines() if "建国门街道" in line)
    assert "重办率 16.7%" in jianguomen_line and "一次解决率 83.3%" in jianguomen_line
    assert "退单率 —" in jianguomen_line and "延期 — 次" in jianguomen_line  # no such events
    assert "不纳入考核" in html and "16.7%" in html
    # a unit's bulletin carries its own clock figures, not its peers'; Sanlitun, not
    # ranked, is sent none
    mail = by_recipient(smtp)
    [unit_mail] = mail["jianguomen@duban.example"]
    unit_text = unit_mail.part("plain")
    assert "重办率 16.7%" in unit_text and "不纳入考核 0 件" in unit_text
    assert "不纳入考核 3 件" not in unit_text
    assert "sanlitun@duban.example" not in mail


def refusal_rows(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(ClockRefusal.item_ref, ClockRefusal.event_key, ClockRefusal.code)
        )
        return sorted((str(r), str(k), str(c)) for r, k, c in rows)


def ask_and_be_refused(city: dict[str, Any]) -> None:
    """Requests refused for being late (after the deadline; after the 17:00 cut-off on the
    deadline day) or over a cap (5 working days), and two refused for other reasons (a
    resume without a suspension, an unknown ticket), through the paths the office uses."""
    engine, config = city["engine"], city["config"]
    asks = [
        event("J-LATE-ASK", "req-late", "extension_requested", datetime(2026, 10, 10, 9),
              actor="dc-jianguomen", reason="材料未齐", origin="workbook"),
        event("J-CUT", "req-cut", "extension_requested", datetime(2026, 10, 10, 17, 30),
              actor="dc-jianguomen", reason="需协调物业", origin="workbook"),
        event("J-CAP", "req-cap", "extension_requested", datetime(2026, 10, 10, 9),
              actor="dc-jianguomen", reason="需协调燃气公司", origin="workbook"),
    ]  # fmt: skip
    record(city, asks, as_of=datetime(2026, 10, 10, 18))
    decisions = [
        Decision(ticket="J-LATE-ASK", action="approve_extension", at=datetime(2026, 10, 10, 10),
                 request="req-late", working_days=2),
        Decision(ticket="J-CUT", action="approve_extension", at=datetime(2026, 10, 10, 18),
                 request="req-cut", working_days=1),
        Decision(ticket="J-CAP", action="approve_extension", at=datetime(2026, 10, 10, 10),
                 request="req-cap", working_days=5),
        Decision(ticket="J-CAP", action="resume", at=datetime(2026, 10, 10, 11)),
        Decision(ticket="NOPE", action="suspend", at=datetime(2026, 10, 10, 11)),
    ]  # fmt: skip
    for decision in decisions:
        result = record_decision(engine, config, decision, now=datetime(2026, 10, 11),
                                 default_source="test")  # fmt: skip
        assert not result.ok and not result.recorded


def test_the_digest_lists_requests_refused_for_being_late_or_over_a_cap(
    city: dict[str, Any],
) -> None:
    engine, smtp = city["engine"], city["smtp"]
    add_tickets(city, ("J-LATE-ASK",))  # due Oct 8
    add_tickets(city, ("J-CUT",), due_at=datetime(2026, 10, 10, 23, 59, 59),
                base_due_at=datetime(2026, 10, 10, 23, 59, 59))  # fmt: skip
    add_tickets(city, ("J-CAP",), due_at=datetime(2026, 10, 16, 23, 59, 59),
                base_due_at=datetime(2026, 10, 16, 23, 59, 59))  # fmt: skip
    ask_and_be_refused(city)
    stored = refusal_rows(engine)
    assert stored == [
        ("test:J-CAP", "office:approve_extension:req-cap", "cap_working_days"),
        ("test:J-CAP", "office:resume:2026-10-10T11:00:00", "not_suspended"),
        ("test:J-CUT", "office:approve_extension:req-cut", "late_cutoff"),
        ("test:J-LATE-ASK", "office:approve_extension:req-late", "late_deadline"),
        ("test:NOPE", "office:suspend:2026-10-10T11:00:00", "unknown_ticket"),
    ]
    ask_and_be_refused(city)  # sent again: refused again, stored once
    assert refusal_rows(engine) == stored

    daily_report(day=DAY)
    [office] = by_recipient(smtp)["office@duban.example"]
    digest, html = office.part("plain"), office.part("html")
    section = digest.split("当日被拒绝的请求（逾期或超过上限）")[1].split("未能送达的邮件")[0]
    assert "共 3 项（逾期 2，超过上限 1）" in section
    lines = [line for line in section.splitlines() if line.startswith("- ")]
    assert len(lines) == 3
    late = next(line for line in lines if "J-LATE-ASK" in line)
    assert "建国门街道 J-LATE-ASK [批准延期] 逾期：延期申请晚于办理时限 2026-10-08" in late
    cut = next(line for line in lines if "J-CUT" in line)
    assert "逾期" in cut and "17:00 截止时间" in cut
    cap = next(line for line in lines if "J-CAP" in line)
    assert "超过上限" in cap and "超过上限 3 个工作日" in cap
    assert "另有 2 项其他原因被拒绝的请求" in section
    assert "NOPE" not in section  # counted, not listed
    html_section = html.split("当日被拒绝的请求（逾期或超过上限）")[1].split("未能送达的邮件")[0]
    assert "J-LATE-ASK" in html_section and "超过上限" in html_section

    # The next report's window holds none of them: each refusal is reported once.
    daily_report(day=date(2026, 10, 13))
    digests = by_recipient(smtp)["office@duban.example"]
    assert len(digests) == 2
    section = digests[1].part("plain").split("当日被拒绝的请求（逾期或超过上限）")[1]
    assert "共 0 项（逾期 0，超过上限 0）" in section and "J-LATE-ASK" not in section
    assert refusal_rows(engine) == stored

    # A request of Oct 12 refused only after the Oct 13 report was measured (a workbook
    # read late): no report's window holds Oct 12 any more, the next report lists it by the
    # time it was recorded — once.
    record(city, [event("J-LATE-ASK", "req-late-2", "extension_requested",
                        datetime(2026, 10, 12, 9), actor="dc-jianguomen", reason="补充材料",
                        origin="workbook")], as_of=datetime(2026, 10, 12, 9))  # fmt: skip
    late_decision = Decision(ticket="J-LATE-ASK", action="approve_extension", request="req-late-2",
                             at=datetime(2026, 10, 12, 10), working_days=1)  # fmt: skip
    assert not record_decision(engine, city["config"], late_decision, default_source="test").ok
    for day, listed in ((date(2026, 10, 14), 1), (date(2026, 10, 15), 0)):
        daily_report(day=day)
        digest = by_recipient(smtp)["office@duban.example"][-1].part("plain")
        section = digest.split("当日被拒绝的请求（逾期或超过上限）")[1].split("未能送达的邮件")[0]
        assert f"共 {listed} 项（逾期 {listed}，超过上限 0）" in section, day
        assert section.count("J-LATE-ASK") == listed, day


def test_the_city_ledger_follows_a_redone_tickets_current_round(city: dict[str, Any]) -> None:
    """LATE-1 reached 挂账 (Sep 11) and 通报 (Sep 22) in round 1, was redone on Oct 1 and
    reached 挂账 again on Oct 20 in round 2: the October ledger lists it at 挂账 since Oct 20,
    saying a redo restarted it — not at round 1's 通报 since Sep 11."""
    from tests.flows.test_monthly_flow import MONTH
    from tests.flows.test_monthly_flow import seed as seed_month

    engine, smtp = city["engine"], city["smtp"]
    seed_month(city)
    add_event(engine, "LATE-1", "redo", "redo", datetime(2026, 10, 1), reason="回访不满意")
    set_clock(engine, "LATE-1", redo_count=1, ladder_round=2)
    with engine.begin() as conn:
        conn.execute(insert(Escalation.__table__), [{
            "item_kind": ItemKind.ticket.value, "item_id": ticket_id(engine, "LATE-1"),
            "step": "ledger", "level": 3, "unit_id": unit_ids(engine)["cy-sanlitun"],
            "due_on": date(2026, 10, 20), "round": 2, "applied_at": datetime(2026, 10, 20),
            "reason": "重办后超期未办结",
        }])  # fmt: skip
    summary = monthly_bulletin(month=MONTH)
    assert summary["ledger_items"] == 1
    approve_monthly(MONTH, "张主任")
    [office] = by_recipient(smtp)["office@duban.example"]
    text, html = office.part("plain"), office.part("html")
    [line] = [line for line in text.splitlines() if "LATE-1" in line]
    assert "[挂账] 挂账日 2026-10-20（重办后重新计时，第 2 轮）" in line
    assert "通报]" not in line and "2026-09-11" not in line
    assert "重办后重新计时，第 2 轮" in html
