from __future__ import annotations

import pytest

from duban.rules.masking import mask_personal_data


@pytest.mark.parametrize(
    ("text", "masked", "hidden"),
    [
        ("请回电13812345678谢谢", "请回电138****5678谢谢", "1234"),
        ("手机 +86 139-8765-4321", "139****4321", "8765"),
        ("座机010-62345678", "010-******78", "623456"),
        ("身份证号110101199003071234", "110101********1234", "19900307"),
        ("证件11010119900307123X。", "110101********123X", "19900307"),
    ],
)
def test_personal_numbers_are_masked(text: str, masked: str, hidden: str) -> None:
    out = mask_personal_data(text)
    assert masked in out
    assert hidden not in out


def test_other_numbers_are_left_alone() -> None:
    text = "工单2026080100012，金额1500元，2026-08-01 09:30"
    assert mask_personal_data(text) == text


def test_none_and_empty() -> None:
    assert mask_personal_data(None) == ""
    assert mask_personal_data("") == ""


def test_a_missing_cell_that_is_not_none_is_named_not_masked() -> None:
    # pandas 3 gives NaN for a None among strings: frames carry None (none_for_missing)
    with pytest.raises(TypeError, match="expected text or None, got nan"):
        mask_personal_data(float("nan"))  # type: ignore[arg-type]
