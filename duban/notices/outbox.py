"""The outbox: every e-mail is a `Delivery` row first, and is sent from there at most once.

- `enqueue` records one delivery per (notice, recipient) — the table's unique key — so
  re-running a flow adds nothing. Recipients outside `allowed_domains` are recorded as
  `refused` with a plain error and are never sent.
- `deliver_pending` claims pending deliveries (compare-and-set, plus `FOR UPDATE SKIP
  LOCKED` on PostgreSQL), commits the claim, sends outside any transaction, and records each
  outcome in its own short transaction. Retries with exponential back-off within a run; a
  circuit breaker ends the run when the SMTP server is down, handing everything back.
  A database restart while sending is waited out (`DATABASE_WAIT_SECONDS`): a message the
  server accepted is recorded as sent once the database is back, and the report says that
  the database was lost (`DeliveryReport.database_lost`; duban/notices/deliver.py tells the
  admins).
- Staging: the row keeps the real recipient; at send time the e-mail goes to
  `staging_redirect` with "[staging → real@recipient]" in the subject.

See docs/delivery.md for the guarantees at the crash boundary.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Collection, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar, cast

from sqlalchemy import Engine, Table, and_, delete, func, or_, select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from duban.config import MailFile
from duban.db import insert_ignore, is_postgres, session_scope
from duban.db.models import Delivery, DeliveryStatus, Notice
from duban.db.runs import process_of, worker_alive
from duban.notices.mailer import (
    AmbiguousMailError,
    Mailer,
    Message,
    PermanentMailError,
    RecipientMailError,
    TransientMailError,
)

log = logging.getLogger(__name__)

DELIVERIES = cast(Table, Delivery.__table__)
# Consecutive deliveries that failed every attempt with a transient error before the run stops.
BREAKER_THRESHOLD = 3

# A plain address, name@domain. Refused before the @-sign, besides what cannot be in one
# address: quotes (a quoted local part can hold another address), and `%` and `!`, the
# "percent hack" and bang paths — a relay that honours them sends `a%evil.com@duban.example`
# on to evil.com (config validation refuses them too: duban/config/base.py check_email).
_ADDRESS = re.compile(r"^[^@\s<>,;:\"()\[\]\\%!]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


# The recipient of the one delivery recorded for a notice that has nobody to go to (a unit
# with no e-mail address, the office with none configured): refused, so that the run's
# mail_refused and the office's digest count and list it instead of nothing being said.
NO_RECIPIENT = "（无收件地址）"
NO_RECIPIENT_ERROR = (
    "no recipient: no e-mail address for this notice's audience; "
    "check config/units.yaml (a unit's emails) and config/mail.yaml (office, leadership)"
)


class RecipientRefused(ValueError):
    """A recipient Duban must not write to; the message says why and where to change it."""


# ---------------------------------------------------------------- recipients


def normalise(recipient: str) -> str:
    """Trimmed, with the domain in lower case (the local part is left as written)."""
    recipient = recipient.strip()
    local, at, domain = recipient.rpartition("@")
    return f"{local}@{domain.lower()}" if at else recipient


def _domain_of(recipient: str) -> str | None:
    recipient = recipient.strip()
    if not _ADDRESS.match(recipient):
        return None
    return recipient.rpartition("@")[2].lower().rstrip(".")


def allowed(recipient: str, allowed_domains: list[str]) -> bool:
    """True when the address is plain (name@domain, nothing that routes elsewhere: `%`, `!`,
    quotes) and its domain equals, or is a subdomain of, one of `allowed_domains`
    (case-insensitive)."""
    domain = _domain_of(recipient)
    if domain is None:
        return False
    for entry in allowed_domains:
        base = entry.strip().lower().lstrip("@").rstrip(".")
        if base and (domain == base or domain.endswith("." + base)):
            return True
    return False


def check_recipient(recipient: str, allowed_domains: list[str]) -> None:
    """Raise RecipientRefused, with the reason and the setting to change, unless allowed."""
    if _domain_of(recipient) is None:
        raise RecipientRefused(
            f"recipient {recipient!r} is not a plain e-mail address (name@domain); "
            "check the addresses in config/units.yaml and config/mail.yaml"
        )
    if not allowed(recipient, allowed_domains):
        raise RecipientRefused(
            f"recipient {recipient} is outside the allowed mail domains "
            f"({', '.join(allowed_domains)}); see config/mail.yaml allowed_domains"
        )


def _refusal(recipient: str, allowed_domains: list[str]) -> str | None:
    try:
        check_recipient(recipient, allowed_domains)
    except RecipientRefused as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------- enqueue


def enqueue(
    session: Session, notice_id: int, recipients: Iterable[str], mail: MailFile
) -> list[Delivery]:
    """One delivery per (notice, recipient); existing ones are left alone (returned as well).

    Refused recipients are stored as `refused` with the reason, and logged; a notice with no
    recipient at all gets one refused delivery to NO_RECIPIENT. The one change to an existing
    row: a delivery refused for its domain is reopened when the domain has since been allowed
    in config/mail.yaml (re-running the flow then sends it).
    """
    wanted = _wanted(recipients)
    _enqueue_chunk(session, {notice_id: wanted}, mail)
    session.flush()
    keys = wanted or [NO_RECIPIENT]
    found = {
        d.recipient: d
        for d in session.scalars(
            select(Delivery).where(Delivery.notice_id == notice_id, Delivery.recipient.in_(keys))
        )
    }
    return [found[a] for a in keys if a in found]


def _wanted(recipients: Iterable[str]) -> list[str]:
    wanted: list[str] = []
    for recipient in recipients:
        address = normalise(recipient)
        if address and address not in wanted:
            wanted.append(address)
    return wanted


# Notices per statement in `enqueue_all` (bounded parameter counts on SQLite).
ENQUEUE_CHUNK = 500


def enqueue_all(
    session: Session, notices: Iterable[tuple[int, Iterable[str]]], mail: MailFile
) -> None:
    """`enqueue` for many notices, (notice id, recipients) each, in a few statements for all
    of them instead of four each (a daily report has ~430 notices): the same rows, the same
    refusals and warnings, the same reopening of a delivery refused for its domain."""
    wants = {notice_id: _wanted(recipients) for notice_id, recipients in notices}
    ids = list(wants)
    for start in range(0, len(ids), ENQUEUE_CHUNK):
        _enqueue_chunk(session, {i: wants[i] for i in ids[start : start + ENQUEUE_CHUNK]}, mail)
    session.flush()


def _enqueue_chunk(session: Session, wants: dict[int, list[str]], mail: MailFile) -> None:
    rows: list[dict[str, Any]] = []
    for notice_id in [i for i, wanted in wants.items() if not wanted]:
        log.warning("notice %s: not sending: %s", notice_id, NO_RECIPIENT_ERROR)
        rows.append({"notice_id": notice_id, "recipient": NO_RECIPIENT, "attempts": 0,
                     "status": DeliveryStatus.refused.value,
                     "last_error": NO_RECIPIENT_ERROR})  # fmt: skip
    addressed = [i for i, wanted in wants.items() if wanted]
    existing: dict[tuple[int, str], Delivery] = {}
    if addressed:
        # Recipients now known: the earlier "nobody to send to" is no longer true.
        session.execute(
            delete(DELIVERIES).where(
                DELIVERIES.c.notice_id.in_(addressed),
                DELIVERIES.c.recipient == NO_RECIPIENT,
                DELIVERIES.c.status == DeliveryStatus.refused.value,
            )
        )
        existing = {
            (d.notice_id, d.recipient): d
            for d in session.scalars(select(Delivery).where(Delivery.notice_id.in_(addressed)))
        }
    for notice_id in addressed:
        for address in wants[notice_id]:
            error = _refusal(address, mail.allowed_domains)
            delivery = existing.get((notice_id, address))
            if delivery is not None:
                if (
                    delivery.status == DeliveryStatus.refused
                    and error is None
                    and (delivery.last_error or "").startswith(f"recipient {address} is outside")
                ):
                    delivery.status = DeliveryStatus.pending
                    delivery.attempts = 0
                    delivery.last_error = None
                    log.info(
                        "delivery %s to %s: domain now allowed, pending again", delivery.id, address
                    )
                continue
            if error is not None:
                log.warning("notice %s: not sending: %s", notice_id, error)
            rows.append(
                {
                    "notice_id": notice_id,
                    "recipient": address,
                    "status": (DeliveryStatus.refused if error else DeliveryStatus.pending).value,
                    "attempts": 0,
                    "last_error": error,
                }
            )
    if rows:
        # INSERT .. ON CONFLICT DO NOTHING: a concurrent enqueue of the same key is harmless.
        insert_ignore(session.connection(), DELIVERIES, rows, ["notice_id", "recipient"])


# ---------------------------------------------------------------- delivery


@dataclass
class DeliveryReport:
    sent: int = 0
    pending: int = 0  # claimed in this run (or not reached) and still pending after it
    failed: int = 0  # refused for good by the server (5xx) or unbuildable: status failed
    refused: int = 0  # not sent by policy (allowed domains)
    parked: int = 0  # failed `park_after` runs: status parked
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (id, recipient, error)
    stopped: bool = False  # the circuit breaker ended the run early
    database_lost: list[str] = field(default_factory=list)  # outages waited out: the errors


# ---------------------------------------------------------------- a database restart

# How long the send loop waits for a lost database (a restart, a fail-over) to come back
# before the run gives up; a restart takes seconds.
DATABASE_WAIT_SECONDS = 60.0
DATABASE_RETRY_SECONDS = 0.5
# The outages one `deliver_pending` call waited out (its DeliveryReport.database_lost).
_lost: ContextVar[list[str] | None] = ContextVar("duban_outbox_database_lost", default=None)
# The outcome of the message the server accepted last, (delivery id, values), not committed
# yet: it is written in the transaction of the send loop's next statement — the lease
# renewal before the next message, the next claim, a hand-back — so that a delivery costs
# one commit, not two, and is still recorded `sent` before anything else is sent.
_carried: ContextVar[list[tuple[int, dict[str, Any]]] | None] = ContextVar(
    "duban_outbox_carried", default=None
)

P = ParamSpec("P")
R = TypeVar("R")


def _connection_lost(engine: Engine, exc: DBAPIError) -> bool:
    """The connection is gone (server restarted, shutting down, starting up, unreachable):
    worth waiting for. On SQLite only an invalidated connection is ("database is locked" has
    its own busy timeout)."""
    return bool(exc.connection_invalidated) or (
        is_postgres(engine) and isinstance(exc, OperationalError)
    )


def _waits_for_database(work: Callable[P, R]) -> Callable[P, R]:
    """Run `work(engine, ...)` (one short transaction, safe to repeat); while the database
    is lost, wait and try again, up to DATABASE_WAIT_SECONDS, then raise."""

    @functools.wraps(work)
    def patient(*args: P.args, **kwargs: P.kwargs) -> R:
        engine = cast(Engine, args[0])
        deadline = time.monotonic() + DATABASE_WAIT_SECONDS
        waited = False
        while True:
            try:
                result = work(*args, **kwargs)
            except DBAPIError as exc:
                if not _connection_lost(engine, exc) or time.monotonic() >= deadline:
                    raise
                if not waited:
                    reason = str(exc.orig or exc).strip().splitlines()[0][:200]
                    log.warning("%s: the database is lost (%s); waiting for it", work.__name__,
                                reason)  # fmt: skip
                    lost = _lost.get()
                    if lost is not None:
                        lost.append(reason)
                    waited = True
                time.sleep(DATABASE_RETRY_SECONDS)
                continue
            if waited:
                log.warning("%s: the database is back", work.__name__)
            return result

    return patient


def _recorded(delivery_id: int, worker: str | None, values: dict[str, Any]) -> Any:
    """The UPDATE setting `values` on a delivery not sent yet (and, given a worker, only
    while that worker's claim holds)."""
    where = [DELIVERIES.c.id == delivery_id, DELIVERIES.c.status != DeliveryStatus.sent.value]
    if worker is not None:
        where += [
            DELIVERIES.c.status == DeliveryStatus.sending.value,
            DELIVERIES.c.claimed_by == worker,
        ]
    return update(DELIVERIES).where(*where).values(**values)


def _write_carried(conn: Any) -> list[tuple[int, dict[str, Any]]]:
    """Write the carried outcomes in `conn`'s transaction; returns them, for `_done` once
    that transaction has committed (a transaction lost to a restart writes them again)."""
    carried = list(_carried.get() or [])
    for delivery_id, values in carried:
        conn.execute(_recorded(delivery_id, None, values))
    return carried


def _done(written: list[tuple[int, dict[str, Any]]]) -> None:
    carried = _carried.get()
    if carried is not None and written:
        del carried[: len(written)]


def _carry(engine: Engine, delivery_id: int, values: dict[str, Any]) -> None:
    """Record a sent delivery with the send loop's next statement (outside a send loop: now)."""
    carried = _carried.get()
    if carried is None:
        _record(engine, delivery_id, None, values)
    else:
        carried.append((delivery_id, values))


@_waits_for_database
def _flush(engine: Engine) -> None:
    """Commit the carried outcomes, if any (the send loop's end)."""
    if not _carried.get():
        return
    with engine.begin() as conn:
        written = _write_carried(conn)
    _done(written)


def _claimable(stale_before: datetime, worker: str) -> Any:
    return or_(
        and_(
            DELIVERIES.c.status == DeliveryStatus.pending.value,
            # An uncertain delivery (the server may have it) is tried again by a later run only.
            or_(
                DELIVERIES.c.uncertain.is_(False),
                DELIVERIES.c.claimed_by.is_(None),
                DELIVERIES.c.claimed_by != worker,
            ),
        ),
        and_(
            DELIVERIES.c.status == DeliveryStatus.sending.value,
            or_(DELIVERIES.c.claimed_at.is_(None), DELIVERIES.c.claimed_at < stale_before),
        ),
    )


@_waits_for_database
def _claim(
    engine: Engine,
    worker: str,
    batch: int,
    after_id: int,
    notice_ids: Collection[int] | None,
    lease_seconds: int,
    now: datetime,
) -> list[tuple[Delivery, Notice]]:
    """Claim up to `batch` deliveries with id > after_id and commit; return them with notices.

    One WITH picked AS (SELECT .. LIMIT n) UPDATE .. RETURNING id: the CTE picks candidates
    (skipping rows another worker has locked, on PostgreSQL), and the outer WHERE repeats the
    condition as a compare-and-set, so a row claimed meanwhile by someone else is not ours.
    """
    cond = _claimable(now - timedelta(seconds=lease_seconds), worker)
    pick = (
        select(DELIVERIES.c.id)
        .where(cond, DELIVERIES.c.id > after_id)
        .order_by(DELIVERIES.c.id)
        .limit(batch)
    )
    if notice_ids is not None:
        pick = pick.where(DELIVERIES.c.notice_id.in_(list(notice_ids)))
    if is_postgres(engine):
        pick = pick.with_for_update(skip_locked=True)
    # A CTE, not a plain IN (subquery): PostgreSQL may re-run a LIMIT .. SKIP LOCKED subquery
    # while the UPDATE proceeds and so claim far more than `batch` rows; a CTE runs once.
    picked = pick.cte("picked")
    claim = (
        update(DELIVERIES)
        .where(DELIVERIES.c.id.in_(select(picked.c.id)), cond)
        .values(status=DeliveryStatus.sending.value, claimed_by=worker, claimed_at=now)
        .returning(DELIVERIES.c.id)
    )
    rows: list[Any] = []
    with session_scope(engine) as session:
        written = _write_carried(session.connection())
        ids = sorted(session.execute(claim).scalars().all())
        if ids:
            rows = list(
                session.execute(
                    select(Delivery, Notice)
                    .join(Notice, Notice.id == Delivery.notice_id)
                    .where(Delivery.id.in_(ids))
                    .order_by(Delivery.id)
                ).all()
            )
    _done(written)
    return [(d, n) for d, n in rows]


@_waits_for_database
def _renew(engine: Engine, delivery_id: int, worker: str, now: datetime) -> None:
    """Renew the lease of the next delivery of a batch, in the transaction that records the
    previous one's outcome (carried): one commit per delivery."""
    with engine.begin() as conn:
        written = _write_carried(conn)
        conn.execute(
            update(DELIVERIES)
            .where(
                DELIVERIES.c.id == delivery_id,
                DELIVERIES.c.status == DeliveryStatus.sending.value,
                DELIVERIES.c.claimed_by == worker,
            )
            .values(claimed_at=now)
        )
    _done(written)


@_waits_for_database
def _still_mine(engine: Engine, delivery_id: int, worker: str) -> bool:
    """Just before sending (a read, no commit): False when the claim is no longer ours. The
    lease was taken or renewed moments before (`_claim`, `_renew`)."""
    with engine.connect() as conn:
        found = conn.execute(
            select(DELIVERIES.c.id).where(
                DELIVERIES.c.id == delivery_id,
                DELIVERIES.c.status == DeliveryStatus.sending.value,
                DELIVERIES.c.claimed_by == worker,
            )
        ).first()
    return found is not None


@_waits_for_database
def _record(engine: Engine, delivery_id: int, worker: str | None, values: dict[str, Any]) -> bool:
    """One short transaction: set `values` on a delivery that is not sent yet (and, given a
    worker, only while that worker's claim holds); the carried outcome with it."""
    with engine.begin() as conn:
        written = _write_carried(conn)
        result = conn.execute(_recorded(delivery_id, worker, values))
    _done(written)
    return result.rowcount == 1


@_waits_for_database
def _release(engine: Engine, ids: list[int], worker: str, error: str | None) -> None:
    """Hand claimed, unsent deliveries back (no attempt counted)."""
    if not ids:
        return
    values: dict[str, Any] = {
        "status": DeliveryStatus.pending.value,
        "claimed_by": None,
        "claimed_at": None,
    }
    if error is not None:
        values["last_error"] = error
    with engine.begin() as conn:
        conn.execute(
            update(DELIVERIES)
            .where(
                DELIVERIES.c.id.in_(ids),
                DELIVERIES.c.status == DeliveryStatus.sending.value,
                DELIVERIES.c.claimed_by == worker,
            )
            .values(**values)
        )


def _note_untried(
    engine: Engine, after_id: int, notice_ids: Collection[int] | None, error: str
) -> int:
    """Set last_error on pending deliveries beyond `after_id`; return how many."""
    stmt = (
        update(DELIVERIES)
        .where(DELIVERIES.c.id > after_id, DELIVERIES.c.status == DeliveryStatus.pending.value)
        .values(last_error=error)
    )
    if notice_ids is not None:
        stmt = stmt.where(DELIVERIES.c.notice_id.in_(list(notice_ids)))
    with engine.begin() as conn:
        return max(int(conn.execute(stmt).rowcount or 0), 0)


def release_dead_claims(engine: Engine, dead: Collection[str]) -> int:
    """Hand back, at once, `sending` deliveries claimed by a worker that is gone: one of
    `dead` (the workers of abandoned runs) or a process of this host that no longer exists.
    Their lease need not run out. Returns how many."""
    with engine.connect() as conn:
        workers = set(
            conn.execute(
                select(DELIVERIES.c.claimed_by)
                .where(DELIVERIES.c.status == DeliveryStatus.sending.value)
                .distinct()
            ).scalars()
        )
    gone = [w for w in workers if w and (process_of(w) in dead or worker_alive(w) is False)]
    if not gone:
        return 0
    with engine.begin() as conn:
        result = conn.execute(
            update(DELIVERIES)
            .where(
                DELIVERIES.c.status == DeliveryStatus.sending.value,
                DELIVERIES.c.claimed_by.in_(gone),
            )
            .values(status=DeliveryStatus.pending.value, claimed_by=None, claimed_at=None)
        )
    released = max(int(result.rowcount or 0), 0)
    if released:
        log.warning("%d deliveries claimed by %s (gone) handed back", released, ", ".join(gone))
    return released


RETRYABLE = (DeliveryStatus.failed, DeliveryStatus.parked)


def retry(
    engine: Engine,
    *,
    ids: Collection[int] = (),
    statuses: Collection[DeliveryStatus] = (),
) -> list[int]:
    """An admin's re-send: the deliveries with these ids (any not sent, not being sent) and
    every delivery in these statuses (failed, parked; refused too if asked) become pending
    again, with a fresh count of failures. Returns their ids; the next delivery sends them."""
    if not ids and not statuses:
        return []
    which = []
    if ids:
        which.append(
            and_(
                DELIVERIES.c.id.in_(list(ids)),
                DELIVERIES.c.status.not_in(
                    [DeliveryStatus.sent.value, DeliveryStatus.sending.value]
                ),
            )
        )
    if statuses:
        which.append(DELIVERIES.c.status.in_([DeliveryStatus(s).value for s in statuses]))
    stmt = (
        update(DELIVERIES)
        .where(or_(*which))
        .values(
            status=DeliveryStatus.pending.value,
            failures=0,
            uncertain=False,
            claimed_by=None,
            claimed_at=None,
        )
        .returning(DELIVERIES.c.id)
    )
    with engine.begin() as conn:
        found = sorted(int(i) for i in conn.execute(stmt).scalars())
    log.info("re-sending %d deliveries: %s", len(found), found[:20])
    return found


def status_counts(engine: Engine, notice_ids: Collection[int] | None) -> dict[str, int]:
    """{"pending" (pending or sending), "failed", "refused", "parked"}: the deliveries of these
    notices (of all, given None) as the database has them now."""
    stmt = select(DELIVERIES.c.status, func.count()).group_by(DELIVERIES.c.status)
    if notice_ids is not None:
        stmt = stmt.where(DELIVERIES.c.notice_id.in_(list(notice_ids)))
    with engine.connect() as conn:
        found = {str(status): int(n) for status, n in conn.execute(stmt)}
    return {
        "pending": found.get("pending", 0) + found.get("sending", 0),
        "failed": found.get("failed", 0),
        "refused": found.get("refused", 0),
        "parked": found.get("parked", 0),
    }


def staged(message: Message, redirect: str) -> Message:
    """The message as sent in staging: to `redirect`, the real recipient in the subject."""
    return replace(
        message, recipient=redirect, subject=f"[staging → {message.recipient}] {message.subject}"
    )


def deliver_pending(
    engine: Engine,
    mailer: Mailer,
    render: Callable[[Delivery, Notice], Message],
    mail: MailFile,
    *,
    worker: str,
    batch: int = 50,
    notice_ids: Collection[int] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    lease_seconds: int = 600,
    now: Callable[[], datetime] = datetime.now,
) -> DeliveryReport:
    """Send every pending delivery (and every 'sending' one whose lease has expired).

    Never holds a transaction across an SMTP call and never sends a delivery marked sent.
    Raises RecipientRefused, before touching anything, when `staging_redirect` is itself
    outside the allowed domains.
    """
    if mail.staging_redirect is not None:
        check_recipient(mail.staging_redirect, mail.allowed_domains)
    report = DeliveryReport()
    if notice_ids is not None and not notice_ids:
        return report
    token = _lost.set(report.database_lost)
    carrying = _carried.set([])
    try:
        return _send_all(
            engine, mailer, render, mail, report, worker, batch, notice_ids, sleep,
            lease_seconds, now,
        )  # fmt: skip
    finally:
        try:
            _flush(engine)  # the last message's outcome (also when the loop ended in an error)
        finally:
            _carried.reset(carrying)
            _lost.reset(token)


def _send_all(
    engine: Engine,
    mailer: Mailer,
    render: Callable[[Delivery, Notice], Message],
    mail: MailFile,
    report: DeliveryReport,
    worker: str,
    batch: int,
    notice_ids: Collection[int] | None,
    sleep: Callable[[float], None],
    lease_seconds: int,
    now: Callable[[], datetime],
) -> DeliveryReport:
    consecutive_failures = 0
    after_id = 0
    last_transient = ""
    queue: list[tuple[Delivery, Notice]] = []
    while not report.stopped:
        claimed = _claim(engine, worker, batch, after_id, notice_ids, lease_seconds, now())
        if not claimed:
            break
        after_id = claimed[-1][0].id
        queue = list(claimed)
        try:
            while queue:
                delivery, notice = queue.pop(0)
                if len(queue) < len(claimed) - 1:  # the claim itself is the first one's lease
                    _renew(engine, delivery.id, worker, now())
                kind, error = _deliver_one(
                    engine, mailer, render, mail, delivery, notice, worker, sleep, now
                )
                if kind == "lost":  # the claim went to another worker; nothing to record
                    continue
                if kind == "sent":
                    report.sent += 1
                    consecutive_failures = 0
                    continue
                report.errors.append((delivery.id, delivery.recipient, error))
                if kind == "transient":  # the connection: the server may be down
                    report.pending += 1
                    consecutive_failures += 1
                    last_transient = error
                    if consecutive_failures >= BREAKER_THRESHOLD:
                        report.stopped = True  # the server is down: stop, hand the rest back
                        break
                    continue
                # This delivery's own failure: says nothing about the server.
                setattr(report, kind, getattr(report, kind) + 1)
        finally:
            # An exception: hand back what was not started (the breaker does so below, with
            # the reason). A delivery in flight when an exception hit is left 'sending': the
            # next run recovers it (duban.notices.recovery) or its lease expires.
            if queue and not report.stopped:
                _release(engine, [d.id for d, _ in queue], worker, None)
    if report.stopped:
        reason = (
            f"not attempted: sending stopped after {BREAKER_THRESHOLD} consecutive failures "
            f"(last: {last_transient})"
        )
        _release(engine, [d.id for d, _ in queue], worker, reason)
        report.pending += len(queue)
        # The pending deliveries this run did not reach get the reason too (the digest shows it).
        report.pending += _note_untried(engine, after_id, notice_ids, reason)
        log.warning(
            "stopped sending after %d consecutive failures; %d deliveries still pending: %s",
            BREAKER_THRESHOLD,
            report.pending,
            last_transient,
        )
    return report


def _deliver_one(
    engine: Engine,
    mailer: Mailer,
    render: Callable[[Delivery, Notice], Message],
    mail: MailFile,
    delivery: Delivery,
    notice: Notice,
    worker: str,
    sleep: Callable[[float], None],
    now: Callable[[], datetime],
) -> tuple[str, str]:
    """Send one claimed delivery and record the outcome, one of: sent, refused, failed,
    parked, pending (this delivery's own transient failure), transient (the connection's),
    lost (the claim went elsewhere)."""
    refusal = _refusal(delivery.recipient, mail.allowed_domains)
    if refusal is not None:  # e.g. enqueued before allowed_domains was narrowed
        log.warning("delivery %s: not sending: %s", delivery.id, refusal)
        _record(engine, delivery.id, worker, _ended(DeliveryStatus.refused, refusal))
        return "refused", refusal
    try:
        message = render(delivery, notice)
        if mail.staging_redirect is not None:
            message = staged(message, mail.staging_redirect)
    except Exception as exc:  # the archived files are gone, a bad value: never retried
        error = f"cannot build the e-mail: {type(exc).__name__}: {exc}"
        log.warning("delivery %s to %s: %s", delivery.id, delivery.recipient, error)
        _record(engine, delivery.id, worker, _ended(DeliveryStatus.failed, error))
        return "failed", error

    if not _still_mine(engine, delivery.id, worker):
        log.warning("delivery %s: claim taken over by another worker; skipped", delivery.id)
        return "lost", ""
    delay = mail.retry_backoff_seconds
    attempts = 0
    error = ""
    own = False  # the last failure was this delivery's own (the server is up)
    while attempts < mail.max_attempts_per_run:
        attempts += 1
        try:
            mailer.send(message)
        except PermanentMailError as exc:
            error = str(exc)
            log.warning("delivery %s to %s failed: %s", delivery.id, message.recipient, error)
            values = _ended(DeliveryStatus.failed, error, delivery.attempts + attempts)
            _record(engine, delivery.id, worker, values)
            return "failed", error
        except AmbiguousMailError as exc:
            return _ambiguous(engine, delivery, worker, attempts, str(exc))
        except RecipientMailError as exc:
            error, own = str(exc), True
        except TransientMailError as exc:
            error, own = str(exc), False
        except Exception as exc:  # a mailer bug must not lose the delivery
            error, own = f"{type(exc).__name__}: {exc}", False
        else:  # recorded with the next statement, before the next message is sent
            _carry(
                engine,
                delivery.id,
                {
                    "status": DeliveryStatus.sent.value,
                    "sent_at": now(),
                    "attempts": delivery.attempts + attempts,
                    "last_error": None,
                    "claimed_by": worker,
                },
            )
            return "sent", ""
        log.info(
            "delivery %s to %s: attempt %d failed: %s",
            delivery.id,
            message.recipient,
            attempts,
            error,
        )
        if attempts < mail.max_attempts_per_run:
            sleep(delay)
            delay *= 2
    if not own:
        log.warning(
            "delivery %s to %s: %d attempts failed, still pending: %s",
            delivery.id, message.recipient, attempts, error,
        )  # fmt: skip
        _record(engine, delivery.id, worker, _back(delivery, attempts, error))
        return "transient", error
    failures = delivery.failures + 1
    if failures >= mail.park_after:
        reason = f"parked after failing in {failures} runs: {error}"
        log.warning("delivery %s to %s: %s", delivery.id, message.recipient, reason)
        values = _ended(DeliveryStatus.parked, reason, delivery.attempts + attempts)
        _record(engine, delivery.id, worker, values | {"failures": failures})
        return "parked", reason
    log.warning(
        "delivery %s to %s: failed in %d of %d runs, still pending: %s",
        delivery.id, message.recipient, failures, mail.park_after, error,
    )  # fmt: skip
    _record(engine, delivery.id, worker, _back(delivery, attempts, error) | {"failures": failures})
    return "pending", error


def _ambiguous(
    engine: Engine, delivery: Delivery, worker: str, attempts: int, error: str
) -> tuple[str, str]:
    """The server may have the message: never again in this run; once more in a later run
    (the claim stays with this worker's name so this run does not take it again); lost a
    second time, it is failed — at most one extra copy."""
    total = delivery.attempts + attempts
    if delivery.uncertain:
        reason = f"not sent again: the connection was lost twice after sending ({error})"
        log.warning("delivery %s to %s: %s", delivery.id, delivery.recipient, reason)
        _record(engine, delivery.id, worker, _ended(DeliveryStatus.failed, reason, total))
        return "failed", reason
    log.warning(
        "delivery %s to %s: %s; tried once more by the next run",
        delivery.id, delivery.recipient, error,
    )  # fmt: skip
    values = {
        "status": DeliveryStatus.pending.value,
        "attempts": total,
        "last_error": error,
        "uncertain": True,
        "claimed_by": worker,
        "claimed_at": None,
    }
    _record(engine, delivery.id, worker, values)
    return "pending", error


def _ended(status: DeliveryStatus, error: str, attempts: int | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "status": status.value,
        "last_error": error,
        "claimed_by": None,
        "claimed_at": None,
    }
    if attempts is not None:
        values["attempts"] = attempts
    return values


def _back(delivery: Delivery, attempts: int, error: str) -> dict[str, Any]:
    return {
        "status": DeliveryStatus.pending.value,
        "attempts": delivery.attempts + attempts,
        "last_error": error,
        "claimed_by": None,
        "claimed_at": None,
    }
