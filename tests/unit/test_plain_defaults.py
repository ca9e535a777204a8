"""A flow called without Prefect (its `.fn`, as bench/loops.py's plain mode does) gets the
same default values as a flow run: the form (title, description) lives in the parameter's
`Annotated` type, never in its default (found by the bench: `dry_run` arrived as a pydantic
FieldInfo and the runs row could not be written)."""

from __future__ import annotations

import inspect

import pytest
from pydantic.fields import FieldInfo

from flows.annual import annual_evaluation
from flows.daily import daily_report
from flows.decide import decide
from flows.lookback import lookback
from flows.monthly import monthly_bulletin
from flows.outbox import outbox_retry
from flows.quarterly import quarterly_spot_check
from flows.scheduled_lookback import scheduled_lookback
from flows.weekly import weekly_analysis

FLOWS = [
    annual_evaluation, daily_report, decide, lookback, monthly_bulletin, outbox_retry,
    quarterly_spot_check, scheduled_lookback, weekly_analysis,
]  # fmt: skip


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_defaults_are_plain_values(flow) -> None:
    for name, p in inspect.signature(flow.fn).parameters.items():
        assert not isinstance(p.default, FieldInfo), f"{flow.name}.{name}"


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_every_parameter_has_a_form_title_and_description(flow) -> None:
    properties = flow.parameters.properties
    assert properties
    for name, schema in properties.items():
        assert schema.get("title") and schema.get("description"), f"{flow.name}.{name}"


def test_the_plain_defaults() -> None:
    params = inspect.signature(monthly_bulletin.fn).parameters
    assert params["dry_run"].default is False
    assert params["approval_timeout_hours"].default == 72.0
    assert params["wait_for_approval"].default is None
    assert inspect.signature(decide.fn).parameters["decision"].default is inspect.Parameter.empty
