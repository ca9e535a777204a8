"""督办决定 — an office decision about a ticket's clock: approve or refuse an extension,
uphold or reject an appeal, suspend or resume (docs/clock.md). Started from its form in the
Prefect UI; the same as `duban decide …`. A decision the rules refuse changes nothing and
fails the run with the reason; the same decision again records nothing twice."""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow

from duban.clock.decide import Decision
from duban.context import load_context
from flows.parameters import form
from tasks.clock import decide_one

DecisionForm = Annotated[
    Decision,
    form(
        "督办决定内容 The decision",
        "One decision about one ticket's clock (each field below explains itself); a "
        "decision the rules refuse changes nothing and fails the run with the reason. "
        "对一张工单时限的一项决定。",
    ),
]


class DecisionRefused(ValueError):
    """The clock's rules refused the decision; the message says why."""


@flow(
    name="decide",
    description="督办决定: approve/refuse an extension, uphold/reject an appeal, suspend/resume",
)
def decide(decision: DecisionForm) -> dict[str, Any]:
    """Record `decision` (one event of the ticket's clock) and replay its clock."""
    ctx = load_context()
    summary = decide_one(ctx, decision)
    if summary["refused"]:
        raise DecisionRefused("; ".join(summary["refused"]))
    return summary
