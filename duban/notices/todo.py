"""What the reader of a notice must do, and by when: the short summary at the top of every
notice (templates/mail/_macros.html.j2 `todo_box`, templates/mail/_todo.txt.j2).

Each loop's context sets `todo` from its own figures (duban/loops/*/); a template without it
fails to render (StrictUndefined), so no notice goes out without its summary.
"""

from __future__ import annotations

from datetime import date, datetime

__all__ = ("todo",)


def todo(do: str, by: date | datetime | str | None = None) -> dict[str, str | None]:
    """{"do": what to do, "by": the deadline as printed (None: none to meet)}."""
    if isinstance(by, datetime):
        shown: str | None = f"{by:%Y-%m-%d %H:%M}"
    elif isinstance(by, date):
        shown = f"{by:%Y-%m-%d}"
    else:
        shown = by
    return {"do": do, "by": shown}
