"""rules/places.py: the place key of a ticket — spellings of one place agree, different
places (the same address text in two districts) do not."""

from __future__ import annotations

import pytest

from duban.rules.places import chinese_number, normalise_address, place_key

D, S = "通州区", "梨园镇"
KEY = "通州区|梨园镇|高家庄村1号"


@pytest.mark.parametrize(
    "address",
    [
        "高家庄村1号",
        "高家庄村1号院",  # 号院 ≡ 号
        "高家庄村１号",  # full-width digit
        "高家庄村 1 号",  # spaces
        "高家庄村\u30001号",  # ideographic space
        "\t高家庄村1号\n",
        "高家庄村\u200b1号",  # zero-width space
        "高家庄村一号",  # Chinese numeral before 号
        "高家庄村1#",  # 1# ≡ 1号
        "高家庄村1号。",  # trailing punctuation
        "高家庄村1号，",
        "“高家庄村1号”",
        "通州区梨园镇高家庄村1号",  # the ticket's own district and street as a prefix
        "通州区 梨园镇 高家庄村1号院",
        "梨园镇高家庄村1号",  # the street only
        "通州区高家庄村1号",  # the district only
        "通州区，梨园镇，高家庄村1号",
    ],
)
def test_spellings_of_one_place_have_one_key(address: str) -> None:
    assert place_key(D, S, address) == KEY


@pytest.mark.parametrize(
    "district, street, address",
    [
        ("房山区", "周口店镇", "高家庄村1号"),  # same text, another district
        ("房山区", "周口店镇", "房山区周口店镇高家庄村1号"),
        ("通州区", "永顺镇", "高家庄村1号"),  # same district, another street
        (None, "梨园镇", "高家庄村1号"),  # no district: not any district's
        ("通州区", None, "高家庄村1号"),  # no street
        (None, None, "高家庄村1号"),
        ("通州区", "梨园镇", "高家庄村11号"),
        ("通州区", "梨园镇", "高家庄村1号楼"),
        ("通州区", "梨园镇", "房山区周口店镇高家庄村1号"),  # another district's prefix is kept
    ],
)
def test_other_places_have_other_keys(
    district: str | None, street: str | None, address: str
) -> None:
    assert place_key(district, street, address) != KEY


def test_missing_parts_are_part_of_the_key() -> None:
    assert place_key(None, S, "高家庄村1号") == "|梨园镇|高家庄村1号"
    assert place_key(None, None, "高家庄村1号") == "||高家庄村1号"
    assert place_key("", " ", "高家庄村1号") == place_key(None, None, "高家庄村1号")
    # Two tickets without a district at the same street and address are one place.
    assert place_key(None, S, "高家庄村１号院") == place_key(None, S, "梨园镇高家庄村1号")


@pytest.mark.parametrize("address", [None, "", "   ", "\u3000", "。", "——"])
def test_no_address_is_no_place(address: str | None) -> None:
    assert place_key(D, S, address) is None


def test_a_district_and_street_spelled_with_wide_forms_or_spaces_are_the_same() -> None:
    assert place_key(" 通州区", "梨园镇 ", "高家庄村1号") == KEY
    assert place_key("通州区", "梨园镇", "Ａ座１０１") == place_key("通州区", "梨园镇", "a座101")


def test_a_prefix_is_dropped_only_when_something_follows_it() -> None:
    assert normalise_address("通州区", D, S) == "通州区"
    assert normalise_address("7号院3号楼", D, S) == "7号3号楼"
    assert normalise_address("3#楼2单元", D, S) == "3号楼2单元"
    assert normalise_address("A#楼", D, S) == "a#楼"  # 号 only after a digit


@pytest.mark.parametrize(
    "text, value",
    [("一", 1), ("十", 10), ("十一", 11), ("二十", 20), ("二十三", 23), ("一百零五", 105),
     ("三百", 300), ("一千二百三十四", 1234), ("一〇五", 105), ("零", 0)],
)  # fmt: skip
def test_chinese_numbers(text: str, value: int) -> None:
    assert chinese_number(text) == value


@pytest.mark.parametrize("text", ["", "二三十", "十十", "十百"])
def test_not_chinese_numbers(text: str) -> None:
    assert chinese_number(text) is None


def test_numbers_before_hao_only() -> None:
    assert normalise_address("二十三号", D, S) == "23号"
    assert normalise_address("十里河一号", D, S) == "十里河1号"
    assert normalise_address("三里屯", D, S) == "三里屯"
