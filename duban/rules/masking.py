"""Masking personal data in anything that leaves the database (mail, archive, reports).

- mainland mobile numbers (11 digits, 1[3-9]…): keep the first 3 and last 4 — 138****5678;
- landlines (area code + 7-8 digits, with or without a dash): keep the area code and the
  last 2 digits — 010-****5678 becomes 010-******78;
- resident ID numbers (18 characters, last may be X): keep the first 6 and last 4 (the
  birth date is hidden) — 110101********123X.
Other digit runs (ticket numbers, amounts, dates) are left alone. A number is found whatever
surrounds it — Latin letters (ID110101…), full-width digits (１３９…, read as ASCII digits and
shown so), dots, dashes or spaces between the groups of a mobile number (139.2222.3333).
"""

from __future__ import annotations

import functools
import re

_ID_CARD = re.compile(r"(?<!\d)(\d{6})(\d{8})(\d{3}[\dXx])(?!\d)")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[-. ]?)?(1[3-9]\d)[-. ]?(\d{4})[-. ]?(\d{4})(?!\d)")
# Full-width digits and X (from Chinese input methods) as ASCII, so that they are found.
_FULL_WIDTH = str.maketrans("０１２３４５６７８９Ｘｘ", "0123456789Xx")
# An 18-character run is an ID number only if its middle 8 digits can be a birth date
# (YYYYMMDD, 1900–2099): a ticket number of 18 digits (2026102012345678…) is left readable.
_BIRTH_DATE = re.compile(r"(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")


def _masked_id(m: re.Match[str]) -> str:
    if not _BIRTH_DATE.fullmatch(m.group(2)):
        return m.group(0)
    return m.group(1) + "*" * 8 + m.group(3)


_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})([- ]?)(\d{5,6})(\d{2})(?!\d)")


def mask_personal_data(text: str | None) -> str:
    """`text` with ID numbers, mobile and landline numbers masked; None becomes "".

    Anything else (a pandas NaN for a missing cell) is the caller's mistake and a TypeError
    that names it: frames built from database rows carry None (queries.kernel.none_for_missing).
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        raise TypeError(f"mask_personal_data: expected text or None, got {text!r}")
    if not text:
        return ""
    # A notice prints the same short texts (labels, categories, dates, names) thousands of
    # times: those are masked once each (the function is pure).
    return _masked_short(text) if len(text) <= _CACHED_LENGTH else _masked(text)


_CACHED_LENGTH = 120
_ANY_DIGIT = re.compile(r"\d")  # every pattern needs one (as they read it: Unicode digits)


@functools.lru_cache(maxsize=32768)
def _masked_short(text: str) -> str:
    return _masked(text)


def _masked(text: str) -> str:
    text = text.translate(_FULL_WIDTH)
    if not _ANY_DIGIT.search(text):
        return text
    text = _ID_CARD.sub(_masked_id, text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return _LANDLINE.sub(
        lambda m: m.group(1) + m.group(2) + "*" * len(m.group(3)) + m.group(4), text
    )


# Citizen text in a mail: at most this many characters per text (config/mail.yaml
# max_citizen_text, whose default this is); the rest is in the attachment or the system.
CITIZEN_TEXT_LIMIT = 2000
SHORTENED = "…（全文见附件/系统）"


def shortened(text: str, limit: int = CITIZEN_TEXT_LIMIT) -> str:
    """`text` cut to `limit` characters, followed by SHORTENED when it was longer."""
    return text if len(text) <= limit else text[:limit] + SHORTENED


def citizen_text(text: str | None, limit: int) -> str:
    """Citizen text (a complaint, an address) as a notice shows it: personal data masked,
    at most `limit` characters (config/mail.yaml `max_citizen_text`). Every notice that
    prints citizen text goes through here."""
    return shortened(mask_personal_data(text), limit)
