"""The audit trail of a workbook import: one AuditRecord per created item and changed field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy.orm import Session

from duban.db.models import AuditRecord

__all__ = ("AuditTrail", "audit_text")


def audit_text(value: Any) -> str | None:
    """A field's value as the audit shows it: None, an enum's value, a date ISO, else str."""
    if value is None:
        return None
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class AuditTrail:
    """Adds AuditRecords to `session`, all at one time (`at`), by `actor`, from `origin`
    (callers may set `origin` per row). `show(field, value)` words old and new values."""

    def __init__(
        self,
        session: Session,
        actor: str,
        origin: str,
        *,
        show: Callable[[str, Any], str | None] = lambda _name, value: audit_text(value),
        at: datetime | None = None,
    ) -> None:
        self.session = session
        self.actor = actor
        self.origin = origin
        self.show = show
        self.at = at or datetime.now()

    def record(
        self, entity: str, entity_id: int, name: str, old: str | None, new: str | None
    ) -> None:
        row = AuditRecord(entity=entity, entity_id=entity_id, field=name, old=old, new=new)
        row.at, row.actor, row.origin = self.at, self.actor, self.origin
        self.session.add(row)

    def change(self, entity: str, entity_id: int, name: str, old: Any, new: Any) -> None:
        self.record(entity, entity_id, name, self.show(name, old), self.show(name, new))
