"""A bulletin is a record (issue 14, item 7), end to end on SQLite and PostgreSQL with a real
SMTP server: October is published; later its tickets change; a re-run of October writes the
published files back byte for byte and sends the deliveries still pending with the published
bodies; the change is reported to the run and to the office, once; a correction (更正) lists
exactly the changed figures (compared with a plain pandas computation of the documented
definitions, docs/metrics.md), is approved like the bulletin, sent once; a second correction
compares against the first."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from sqlalchemy import Engine, select, update

from duban.cli import main
from duban.db import session_scope
from duban.db.models import Publication, PublishedFigure, Ticket, Unit
from duban.rules.ranking import RATE_NAMES, RATES
from flows.monthly import approve_monthly, monthly_bulletin
from tests.flows.helpers import by_recipient
from tests.flows.test_monthly_flow import MONTH, STREETS, seed

START, END = pd.Timestamp("2026-10-01"), pd.Timestamp("2026-11-01")
CHARTS = ("monthly-problems.png", "monthly-scores.png")


# ---------------------------------------------------------------- plain computations


def plain_unit_figures(engine: Engine, config_dir: Path) -> dict[tuple[str, str], str | None]:
    """Per ranked unit: its four rates and its score for October, from the tickets table in
    plain pandas, as docs/metrics.md and docs/monthly-bulletin.md define them, printed as the
    bulletin prints them (rates to 0.1 %, score to 0.1; missing: None)."""
    metrics = yaml.safe_load((config_dir / "metrics.yaml").read_text(encoding="utf-8"))
    urgency = yaml.safe_load((config_dir / "urgency.yaml").read_text(encoding="utf-8"))
    hours = {lv["level"]: lv["response_hours"] for lv in urgency["levels"]}
    weight = float(metrics.get("basically_satisfied_weight", 0.8))
    with engine.connect() as conn:
        t = pd.read_sql(select(Ticket.__table__, Unit.code.label("unit_code"))
                        .join(Unit, Unit.id == Ticket.unit_id), conn)  # fmt: skip
    for col in ("received_at", "first_response_at", "due_at", "closed_at"):
        t[col] = pd.to_datetime(t[col])
    out: dict[tuple[str, str], str | None] = {}
    for unit in STREETS:
        mine = t[t["unit_code"] == unit]
        rec = mine[(mine["received_at"] >= START) & (mine["received_at"] < END)]
        due = mine[(mine["due_at"] >= START) & (mine["due_at"] < END)]
        wait = (rec["first_response_at"] - rec["received_at"]).dt.total_seconds()
        limit = rec["urgency"].map(hours) * 3600
        in_time = rec["first_response_at"].notna() & (wait <= limit)
        closed = rec[rec["closed_at"].notna()]
        rated = rec[rec["satisfaction"].notna()]
        satisfied = (rated["satisfaction"] == "satisfied").sum() + weight * (
            rated["satisfaction"] == "basically_satisfied"
        ).sum()
        rates = {
            "response_rate": in_time.sum() / len(rec) if len(rec) else None,
            "on_time_rate": (due["closed_at"].notna() & (due["closed_at"] <= due["due_at"])).sum()
            / len(due) if len(due) else None,
            "resolution_rate": (closed["resolved"].astype(bool)).sum() / len(closed)
            if len(closed) else None,
            "satisfaction_rate": satisfied / len(rated) if len(rated) else None,
        }  # fmt: skip
        weights = {k: float(w) for k, w in metrics["score_weights"].items()}
        known = {k: v for k, v in rates.items() if v is not None}
        score = 100 * sum(weights[k] * v for k, v in known.items()) / sum(weights[k] for k in known)
        for k, v in rates.items():
            out[(unit, k)] = None if v is None else f"{100 * v:.1f}%"
        out[(unit, "score")] = f"{score:.1f}"
    return out


def diff(
    old: dict[tuple[str, str], str | None], new: dict[tuple[str, str], str | None]
) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    return {key: (old[key], new[key]) for key in new if old[key] != new[key]}


# ---------------------------------------------------------------- what the database recorded


def recorded_figures(engine: Engine, version: int) -> dict[tuple[str, str], tuple[str, Any]]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(PublishedFigure.unit, PublishedFigure.figure, PublishedFigure.label,
                   PublishedFigure.value)
            .join(Publication, Publication.id == PublishedFigure.publication_id)
            .where(Publication.loop == "monthly", Publication.period == MONTH,
                   Publication.version == version)
        ).all()  # fmt: skip
    return {(r.unit, r.figure): (r.label, r.value) for r in rows}


def correction_lines(changes: dict[tuple[str, str], tuple[str, Any, Any]]) -> list[str]:
    return sorted(f"- {label}：原为 {old or '—'}，更正为 {new or '—'}"
                  for label, old, new in changes.values())  # fmt: skip


def shown_to(
    audience: str,
    changes: dict[tuple[str, str], tuple[str, Any, Any]],
    city: dict[str, Any],
    ranked: set[str],
) -> dict[tuple[str, str], tuple[str, Any, Any]]:
    """The changes among what `audience`'s bulletin showed (docs/monthly-bulletin.md,
    "Audiences"): the office, all; a unit, the city's figures, its own and, of the units of
    its peer group (its kind's group in metrics.yaml, among the units the bulletin ranks or
    lists), their tickets, rates, score, rank and whether named — not their items."""
    if audience == "office":
        return changes
    config = city["config"]
    group = config.metrics.peer_groups
    kind = {u.code: group.get(str(u.kind), str(u.kind)) for u in config.units.units}
    peers = {c for c in ranked if audience in ranked and kind[c] == kind[audience]}
    row = {"tickets", "score", "rank", "named", *RATES}
    return {
        (unit, figure): v for (unit, figure), v in changes.items()
        if unit in ("*", audience) or (unit in peers and figure in row)
    }  # fmt: skip


def listed(text: str) -> list[str]:
    return sorted(line for line in text.splitlines() if line.startswith("- "))


def audience_of(city: dict[str, Any]) -> dict[str, str]:
    out = {}
    for unit in city["config"].units.units:
        for address in unit.emails or []:
            out[address] = unit.code
    return out | {"office@duban.example": "office"}


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def assert_sent_as_published(message: Any, audience: str, published: dict[str, bytes]) -> None:
    """The e-mail's text is the published .txt byte for byte; its HTML the published .html
    with the charts' src pointing at the inline parts (as the mailer writes them); SMTP
    carries lines as CRLF, and the e-mail library ends a part with a newline."""
    text = published[f"{audience}-bulletin.txt"].decode("utf-8")
    html = published[f"{audience}-bulletin.html"].decode("utf-8")
    for chart in CHARTS:
        html = html.replace(f'src="{chart}"', f'src="cid:{chart}@duban"')
    assert crlf(message.part("plain")) == text
    assert crlf(message.part("html")) == (html if html.endswith("\n") else html + "\n")


def crlf(body: str) -> str:
    return body.replace("\r\n", "\n")


def change_ticket(engine: Engine, external_id: str, **values: Any) -> None:
    with session_scope(engine) as session:
        session.execute(update(Ticket).where(Ticket.external_id == external_id).values(**values))


def first_ticket_of(engine: Engine, unit: str, good: bool) -> str:
    """The first October ticket of `unit` that was (good=True) or was not resolved."""
    with session_scope(engine) as session:
        return str(session.scalars(
            select(Ticket.external_id).join(Unit, Unit.id == Ticket.unit_id)
            .where(Unit.code == unit, Ticket.received_at >= START.to_pydatetime(),
                   Ticket.resolved.is_(good))
            .order_by(Ticket.external_id)
        ).first())  # fmt: skip


# ---------------------------------------------------------------- the story


def test_published_bulletin_is_a_record_and_corrections_list_what_changed(
    city: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    engine, smtp = city["engine"], city["smtp"]
    config_dir = city["config"].root
    folder = city["reports"] / "monthly" / MONTH
    seed(city)
    audiences = audience_of(city)

    # 1. October is rendered and approved; the SMTP server takes 3 messages, then fails.
    monthly_bulletin(month=MONTH)
    smtp.fail_after(3)
    approved = approve_monthly(MONTH, "张主任")
    notices = approved["approved"]
    assert approved["mail_sent"] == 3 and approved["mail_pending"] == notices - 3
    published = folder_bytes(folder)
    assert {"office-bulletin.html", "office-bulletin.txt", *CHARTS} <= set(published)
    assert any(name.endswith(".xlsx") for name in published)  # the ledger workbooks too
    early = list(smtp.messages)
    for message in early:
        assert_sent_as_published(message, audiences[message.rcpt_tos[0]], published)
    before = plain_unit_figures(engine, config_dir)
    v0 = recorded_figures(engine, 0)
    for key, value in before.items():  # the record holds what the bulletin showed
        assert v0[key][1] == value, key

    # 2. Later, a spot check finds one of 建国门's "resolved, satisfied" tickets was not:
    #    October's figures change. The archive is lost too (a new disk, a bad clean-up).
    change_ticket(engine, first_ticket_of(engine, "dc-jianguomen", good=True),
                  resolved=False, satisfaction="dissatisfied")  # fmt: skip
    after = plain_unit_figures(engine, config_dir)
    expected = diff(before, after)
    assert {k for k, _ in expected} == {"dc-jianguomen"}
    assert {f for _, f in expected} >= {"resolution_rate", "satisfaction_rate", "score"}
    shutil.rmtree(folder)
    smtp.recover()

    # 3. A re-run of October reproduces it byte for byte and sends what was pending, as it
    #    was published; it reports the change and tells the office, once.
    rerun = monthly_bulletin(month=MONTH)
    assert rerun["status"] == "approved" and rerun["published_version"] == 0
    assert rerun["files_restored"] == rerun["files_reproduced"] == len(published)
    restored = folder_bytes(folder)
    assert {name: restored[name] for name in published} == published
    alert_files = set(restored) - set(published)  # the office's notice of the change
    assert len(alert_files) == 2 and all(n.startswith("office-changed-") for n in alert_files)
    changed_now = rerun["figures_changed"]
    assert changed_now >= len(expected) and rerun["office_told"] is True
    for (unit, figure), (old, new) in expected.items():
        label = f"{v0[(unit, figure)][0]}: {old} → {new}"
        assert label in rerun["changed"], label
    late = smtp.messages[len(early) :]
    office_alert = [m for m in late if "数据变化提示" in m.message["Subject"]]
    assert len(office_alert) == 1 and office_alert[0].rcpt_tos == ("office@duban.example",)
    bulletins = [m for m in late if m not in office_alert]
    assert len(bulletins) == notices - 3 == rerun["mail_sent"] - 1
    for message in bulletins:
        assert_sent_as_published(message, audiences[message.rcpt_tos[0]], published)
    assert {audiences[m.rcpt_tos[0]] for m in early + bulletins} == {
        audiences[a] for a in by_recipient(smtp)
    }
    again = monthly_bulletin(month=MONTH)  # the same change: the office is not told twice
    assert again["figures_changed"] == changed_now and again["office_told"] is False
    assert again["mail_sent"] == 0 and len(smtp.messages) == notices + 1
    dry = monthly_bulletin(month=MONTH, dry_run=True)  # a dry run shows what was published
    assert dry["status"] == "dry-run"
    dry_files = folder_bytes(city["reports"] / "dry-run" / "monthly" / MONTH)
    assert dry_files == published

    # 4. The correction: every changed figure, old and new, to the office; to each unit the
    #    changes among what its bulletin showed it (none: no correction). Held for approval,
    #    sent once.
    drafted = monthly_bulletin(month=MONTH, correct=True)
    assert drafted["status"] == "draft" and drafted["correction"] == 1
    v1 = recorded_figures(engine, 1)
    record_changes = {k: (v0[k][0], v0[k][1], v1[k][1]) for k in v1 if v0[k][1] != v1[k][1]}
    for key, (old, new) in expected.items():  # the plain computation's changes are listed
        assert record_changes[key][1:] == (old, new), key
    for (unit, figure), _ in record_changes.items():  # and every other one has a reason
        assert (unit, figure) in expected or figure in ("rank", "named") or unit == "*", (
            unit, figure)  # fmt: skip
    ranked = {unit for unit, figure in v0 if figure == "rank"}
    every = {audiences[m.rcpt_tos[0]] for m in early + bulletins}
    told = {a for a in every if shown_to(a, record_changes, city, ranked)}
    # the change is 建国门's: the streets and the office are told, a department is not
    assert "office" in told and "dc-jianguomen" in told and "dc-donghuamen" in told
    assert "water" not in told
    assert drafted["correction_notices"] == len(told) == drafted["drafts"] < notices
    assert len(smtp.messages) == notices + 1  # nothing before approval
    sent_before = len(smtp.messages)
    result = approve_monthly(MONTH, "张主任", comment="更正")
    assert result["approved"] == len(told) == result["mail_sent"]
    corrections = smtp.messages[sent_before:]
    assert {audiences[m.rcpt_tos[0]] for m in corrections} == told
    for message in corrections:
        assert "【更正】" in message.message["Subject"]
        mine = shown_to(audiences[message.rcpt_tos[0]], record_changes, city, ranked)
        assert listed(crlf(message.part("plain"))) == correction_lines(mine)
    assert len(correction_lines(record_changes)) == changed_now
    # the correction is a record too: lost files come back, a re-run sends nothing new
    shutil.rmtree(folder)
    quiet = monthly_bulletin(month=MONTH)
    assert quiet["published_version"] == 1 and quiet["figures_changed"] == 0
    assert quiet["mail_sent"] == 0 and "office_told" not in quiet
    restored = folder_bytes(folder)
    assert {n: b for n, b in restored.items() if "correction" not in n} == published
    [office_correction] = [m for m in corrections if m.rcpt_tos == ("office@duban.example",)]
    assert restored["office-correction-1.txt"].decode() == crlf(office_correction.part("plain"))
    assert monthly_bulletin(month=MONTH, correct=True)["mail_sent"] == 0
    assert approve_monthly(MONTH, "张主任")["mail_sent"] == 0
    assert len(smtp.messages) == sent_before + len(told)

    # 5. A second change, a second correction: compared with the first, not the bulletin.
    change_ticket(engine, first_ticket_of(engine, "water", good=False),
                  resolved=True, satisfaction="satisfied")  # fmt: skip
    latest = plain_unit_figures(engine, config_dir)
    second = diff(after, latest)
    assert {k for k, _ in second} == {"water"}
    capsys.readouterr()
    assert main(["run", "monthly", "--month", MONTH]) == 0  # the command line says so
    out = capsys.readouterr().out
    assert f"issue a correction with `duban run monthly --month {MONTH} --correct`" in out
    assert main(["run", "monthly", "--month", MONTH, "--correct"]) == 0
    out = capsys.readouterr().out
    assert "correction 2," in out and f"approve with `duban approve monthly {MONTH}`" in out
    v2 = recorded_figures(engine, 2)
    changes2 = {k: (v1[k][0], v1[k][1], v2[k][1]) for k in v2 if v1[k][1] != v2[k][1]}
    for key, (old, new) in second.items():
        assert changes2[key][1:] == (old, new), key
    assert not any(unit == "dc-jianguomen" and figure in RATES for unit, figure in changes2)
    sent_before = len(smtp.messages)
    approve_monthly(MONTH, "张主任")
    [office] = [m for m in smtp.messages[sent_before:] if m.rcpt_tos == ("office@duban.example",)]
    assert "第2次更正" in office.message["Subject"]
    assert listed(crlf(office.part("plain"))) == correction_lines(changes2)
    assert f"{RATE_NAMES['satisfaction_rate']}" in office.part("plain")
    told2 = {a for a in every if shown_to(a, changes2, city, ranked)}
    assert "water" in told2 and "dc-jianguomen" not in told2  # a street is not told of it
    sent2 = smtp.messages[sent_before:]
    assert {audiences[m.rcpt_tos[0]] for m in sent2} == told2 and len(sent2) == len(told2)
