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
        # Whatever surrounds the number (issue 15, item 12):
        ("ID11010119900307124X", "ID110101********124X", "19900307"),
        ("身份证ｉｄ：１１０１０１１９９００３０７１２４Ｘ", "110101********124X", "19900307"),
        ("电话１３９１２３４５６７８", "139****5678", "1234"),
        ("call 139.2222.3333 please", "139****3333", "2222"),
        ("tel:13812345678abc", "138****5678abc", "1234"),
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


def test_citizen_text_is_cut_to_the_limit_with_a_pointer_to_the_full_text() -> None:
    from duban.rules.masking import CITIZEN_TEXT_LIMIT, SHORTENED, citizen_text, shortened

    complaint = "噪音扰民，电话13912345678。" + "楼下施工" * 25_000  # 100,000+ characters
    shown = citizen_text(complaint, CITIZEN_TEXT_LIMIT)
    assert len(shown) == CITIZEN_TEXT_LIMIT + len(SHORTENED) and shown.endswith(SHORTENED)
    assert "13912345678" not in shown  # masked before it is cut
    assert citizen_text("短文本", CITIZEN_TEXT_LIMIT) == "短文本"
    assert shortened("x" * 2000) == "x" * 2000  # exactly the limit: whole
    assert shortened("x" * 11, 10) == "x" * 10 + SHORTENED


def test_daily_ticket_rows_follow_the_configured_limit() -> None:
    from collections import namedtuple
    from datetime import datetime

    from duban.loops.daily.report import _ticket_rows
    from duban.rules.masking import SHORTENED

    Row = namedtuple("Row", "external_id received_at due_at category street address content colour")
    row = Row("T1", datetime(2026, 10, 12), None, "噪音", "建外", "1号", "长" * 5000, "red")
    [shown] = _ticket_rows([row], {}, text_limit=300)
    assert shown["content"] == "长" * 300 + SHORTENED


def test_an_id_number_needs_a_birth_date() -> None:
    """An 18-digit ticket number is not an ID number: its middle 8 digits are not a date."""
    assert mask_personal_data("工单202610201234567890") == "工单202610201234567890"
    assert mask_personal_data("110101199013071234") == "110101199013071234"  # month 13
    assert mask_personal_data("110101199012311234") == "110101********1234"


def test_every_field_a_notice_prints_is_masked() -> None:
    """Not only the citizen text: an id, a category or an address that carries a number is
    masked too, in text and HTML alike; the templates' own markup is untouched."""
    from pathlib import Path

    from duban.notices.render import make_environment

    env = make_environment(Path(__file__).resolve().parents[2] / "templates")
    page = env.from_string("{% autoescape true %}{{ a }}|{{ b }}|<b>{{ c }}</b>{% endautoescape %}")
    out = page.render(a="T13812345678", b="ID11010119900307124X", c=None)
    assert out == "T138****5678|ID110101********124X|<b></b>"
