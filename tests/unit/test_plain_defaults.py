"""A flow called without Prefect (its `.fn`, as bench/loops.py's plain mode does) gets real
default values, not the form's FieldInfo objects (found by the bench: `dry_run` arrived as a
FieldInfo and the runs row could not be written)."""

from __future__ import annotations

import inspect

from pydantic.fields import FieldInfo

from flows.annual import annual_evaluation
from flows.daily import daily_report
from flows.monthly import monthly_bulletin
from flows.parameters import plain_defaults
from flows.weekly import weekly_analysis


def test_every_described_parameter_has_a_plain_default() -> None:
    for flow in (daily_report, weekly_analysis, monthly_bulletin, annual_evaluation):
        params = inspect.signature(flow.fn).parameters
        described = {n for n, p in params.items() if isinstance(p.default, FieldInfo)}
        defaults = plain_defaults(flow.fn)
        assert described and set(defaults) == described, flow.name
        assert not any(isinstance(v, FieldInfo) for v in defaults.values())
    assert plain_defaults(daily_report.fn)["dry_run"] is False
