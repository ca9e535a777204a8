"""Values that go into e-mail headers (names, subject prefixes, addresses) must be one plain
line: Python's email module refuses a header with a control or line-separator character
(U+2028, U+2029, \\r, \\n, \\x0b, \\x85 ...) — and such a value must never reach a header."""

from __future__ import annotations

import unicodedata

__all__ = ["control_character"]

_REFUSED = {"Cc", "Zl", "Zp"}  # control characters, line and paragraph separators


def control_character(value: str) -> str | None:
    """A description of the first control or line-separator character in `value`, e.g.
    "U+2028 (LINE SEPARATOR) at position 3"; None when there is none."""
    for i, ch in enumerate(value):
        if unicodedata.category(ch) in _REFUSED:
            name = unicodedata.name(ch, "control character")
            return f"U+{ord(ch):04X} ({name}) at position {i + 1}"
    return None
