"""回头看 — the look-back.

Supervision staff revisit the tickets closed in a period: where the same problem came back
(another ticket at the same place, of the same category, within the window after the
closure), the closure is recorded as a finding; on request the ticket is reopened; the
supervision office gets every finding and each unit concerned its own. The same request
run again reopens nothing again and sends nothing new. Definitions: docs/lookback.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow

from duban.context import load_context
from duban.loops.lookback.findings import LOOP, LookbackRequest, LookbackSnapshot, check_request
from flows.bracket import artifact, loop_run, mail_keys, rows_table, table
from flows.parameters import form
from tasks.deliver import deliver
from tasks.lookback import find_recurrences, render_lookback, reopen, summary_of
from tasks.notify import notify_admins

ARTIFACT_ROWS = 20
RequestForm = Annotated[
    LookbackRequest,
    form(
        "回头看请求 Look-back request",
        "Which closed tickets to revisit and what counts as a recurrence (each field below "
        "explains itself). 回头看的范围与复发判定。",
    ),
]


@flow(
    name="lookback",
    description="回头看: find closed tickets whose problem came back",
    on_failure=[notify_admins],
)
def lookback(request: RequestForm) -> dict[str, Any]:
    """Revisit the tickets closed from `request.closed_from` to `request.closed_to`."""
    check_request(request)  # the UI's form does not run the model's validators
    ctx = load_context()
    period = request.fingerprint()
    parameters = request.model_dump(mode="json")
    with loop_run(ctx, LOOP, "request", period, parameters, False) as run:
        snap = find_recurrences(ctx, request, run.run_id)
        reopened = reopen(ctx, request, run.run_id) if request.reopen else None
        summary: dict[str, Any] = {"request": period, **summary_of(snap, reopened)}
        if request.notify:
            rendered = render_lookback(ctx, snap, reopened)
            delivered = deliver(ctx, rendered)
            summary |= {
                "notices": len(rendered.notices),
                "notices_already_recorded": rendered.reused,
                "archive": rendered.folder,
                **mail_keys(delivered),
            }
        run.finish(summary)
        _artifact(request, snap, set(reopened.reopened) if reopened else set(), summary)
        return summary


def _artifact(
    request: LookbackRequest, snap: LookbackSnapshot, reopened: set[int], summary: dict[str, Any]
) -> None:
    lines: list[str] = []
    rates = snap.unit_rates[snap.unit_rates["recurred"] > 0].head(ARTIFACT_ROWS)
    if len(rates):
        lines += ["", "## 复发率最高的单位", ""]
        lines += rows_table(
            ("unit", "examined", "recurred", "rate"),
            (
                (f"{r.unit_code} {r.unit_name}", r.examined, r.recurred,
                 f"{100 * r.recurrence_rate:.1f}%")
                for r in rates.itertuples(index=False)
            ),
            right=("examined", "recurred", "rate"),
        )  # fmt: skip
    if len(snap.findings):
        lines += ["", f"## 复发工单（前 {ARTIFACT_ROWS} 项）", ""]
        lines += rows_table(
            ("ticket", "unit", "closed", "recurrences", "first recurrence", "reopened"),
            (
                (f.external_id, f.unit_code, f"{f.closed_at:%Y-%m-%d %H:%M}", f.recurrences,
                 f.first_recurrence_external_id, "yes" if f.item_id in reopened else "")
                for f in snap.findings.head(ARTIFACT_ROWS).itertuples(index=False)
            ),
            right=("recurrences",),
        )  # fmt: skip
    period = summary["request"]
    artifact(
        "lookback",
        f"回头看 look-back {period}",
        f"look-back {period}",
        summary,
        skip=("request",),
        header="| result | |",
        before=[*table(request.describe(), "| parameter | value |"), ""],
        after=lines,
    )
