"""The clock keys of a source mapping (docs/sources.md, "The clock's columns", "Event
exports") are validated like the rest of the mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from duban.config import SourceMapping

REPO = Path(__file__).resolve().parents[2]


def mapping(**extra: Any) -> dict[str, Any]:
    data = yaml.safe_load((REPO / "config/sources/duban.yaml").read_text(encoding="utf-8"))
    return {**data, **extra}


def test_clock_columns_and_an_event_export_are_read() -> None:
    m = SourceMapping.model_validate(
        mapping(
            clock_columns={
                "extended_due": "延期后时限",
                "callback": "回访",
                "callback_at": "回访时间",
            },
            events={"columns": {"ticket": "工单", "kind": "事件", "at": "时间"}},
        )
    )
    assert m.clock_columns["extended_due"] == "延期后时限" and m.events is not None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"clock_columns": {"callback": "回访"}}, "callback and callback_at go together"),
        ({"clock_columns": {"deadline": "x"}}, "clock_columns.deadline"),
        ({"events": {"columns": {"ticket": "工单", "kind": "事件"}}}, "must map at"),
    ],
)
def test_a_wrong_clock_key_is_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SourceMapping.model_validate(mapping(**extra))
