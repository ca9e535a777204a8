"""What "the same place" is: the place key of a ticket (district, street, normalised address).

Two tickets are at the same place when their place keys are equal. The key is built from
three parts, each normalised the same way, joined by ``|``:

- the district (区) and the street or township (街道/乡镇) as the export gives them. A
  missing one is part of the key (an empty part): a ticket without a district matches only
  tickets at the same street and address that have no district either — never one that has
  a district, since 通州区 and 房山区 may both have a 高家庄村1号 and nothing says which one
  a ticket without district is at;
- the address, normalised: NFKC (full-width letters, digits and punctuation become their
  half-width forms), case folded, every white space and zero-width character removed, ``#``
  after a digit read as 号, 号院 read as 号 (``1号院`` ≡ ``1号``; ``7号院3号楼`` ≡
  ``7号3号楼``), a number in Chinese numerals directly before 号 written in digits (``一号`` ≡
  ``1号``, ``二十三号`` ≡ ``23号``), punctuation at either end dropped; and a leading district
  and then street name *equal to the ticket's own* dropped, so that ``通州区梨园镇高家庄村1号``
  with district 通州区 and street 梨园镇 is the same place as ``高家庄村1号`` there. A prefix
  naming another district is kept (it is then simply a different address).

A ticket without an address (None, empty, or only spaces and punctuation) has no place
key (None): it is at no place and matches nothing. Pure: no I/O. Documented in
docs/lookback.md and docs/metrics.md.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

SEPARATOR = "|"
MAX_LENGTH = 510  # the column: district 100 + street 100 + address 300 + two separators

_INVISIBLE = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff|]+")
_HASH_MARK = re.compile(r"(?<=\d)#")
_YARD = re.compile(r"号院")
_CHINESE_NUMBER = re.compile(r"[零〇一二三四五六七八九十百千]+(?=号)")
_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
           "八": 8, "九": 9}  # fmt: skip
_UNITS = {"十": 10, "百": 100, "千": 1000}


def chinese_number(text: str) -> int | None:
    """The value of a number in Chinese numerals below 10,000 (十 = 10, 二十三 = 23, 一百零五 =
    105), or digit by digit (一〇五 = 105); None when `text` is not such a number."""
    if not text:
        return None
    if not any(ch in _UNITS for ch in text):
        return int("".join(str(_DIGITS[ch]) for ch in text))
    total, digit, last_unit = 0, None, 10_000
    for ch in text:
        if ch in _DIGITS:
            if digit is not None and _DIGITS[ch] != 0:
                return None  # two digits without a unit between them: 二三十
            digit = _DIGITS[ch] if _DIGITS[ch] != 0 else None
        else:
            unit = _UNITS[ch]
            if unit >= last_unit:
                return None  # 十百, 十十
            total += (1 if digit is None else digit) * unit
            digit, last_unit = None, unit
    return total + (digit or 0)


def _arabic(match: re.Match[str]) -> str:
    value = chinese_number(match.group(0))
    return match.group(0) if value is None else str(value)


def _strip_punctuation(text: str) -> str:
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(text[end - 1]).startswith("P"):
        end -= 1
    return text[start:end]


def _folded(text: str | None) -> str:
    if text is None:
        return ""
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text).casefold())


@lru_cache(maxsize=4096)  # districts and streets: a few hundred names, asked once a row
def normalise_name(text: str | None) -> str:
    """A district or street name as compared: NFKC, case folded, without white space or
    zero-width characters (and without the key's separator); "" for None."""
    return _folded(text)


def normalise_address(address: str | None, district: str | None, street: str | None) -> str:
    """The address as compared (see the module): "" when there is none."""
    text = _folded(address)
    text = _HASH_MARK.sub("号", text)
    text = _YARD.sub("号", text)
    text = _CHINESE_NUMBER.sub(_arabic, text)
    text = _strip_punctuation(text)
    for prefix in (normalise_name(district), normalise_name(street)):
        if prefix and text.startswith(prefix) and len(text) > len(prefix):
            text = _strip_punctuation(text[len(prefix) :])
    return text


def place_key(district: str | None, street: str | None, address: str | None) -> str | None:
    """The place key of a ticket: ``district|street|address``, normalised (see the module);
    None when the ticket has no address."""
    normalised = normalise_address(address, district, street)
    if not normalised:
        return None
    key = SEPARATOR.join((normalise_name(district), normalise_name(street), normalised))
    return key[:MAX_LENGTH]
