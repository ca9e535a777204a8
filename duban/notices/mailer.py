"""Sending one e-mail: over SMTP (through yagmail's connection handling) or into a folder.

A mailer sends exactly what it is given: the outbox (`duban.notices.outbox`) decides who gets what,
how often to retry, and records the outcome. Failures come back as two exceptions:

- `TransientMailError`: worth retrying later (connection refused or dropped, time-out,
  4xx replies, authentication or sender problems — configuration the admins can fix);
- `PermanentMailError`: the server refused this recipient or this message for good (5xx),
  or the message cannot be built from its values (`MessageBuildError`).

Two kinds of transient failure say more: `RecipientMailError` (a 4xx for this recipient or
message only — the server is up, so it never trips the outbox's circuit breaker) and
`AmbiguousMailError` (the connection was lost after the whole message was sent: the server
may have it).

Neither message ever contains the SMTP password.
"""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import os
import re
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any, Protocol

from duban.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}


@dataclass(frozen=True)
class Message:
    """One e-mail to one recipient; `message_id` is stable per delivery."""

    recipient: str
    subject: str
    html: str
    text: str
    message_id: str  # e.g. "<delivery-42.daily-2026-10-12-dc@duban>"
    attachments: tuple[Path, ...] = ()
    # Images the HTML shows as <img src="NAME.png"> (as in the archived copy, where the file
    # sits beside the page): sent inline, the src rewritten to the part's cid.
    inline: tuple[Path, ...] = ()


class MailError(Exception):
    """Base of the two failures a mailer reports."""


class TransientMailError(MailError):
    """Worth retrying: connection refused or dropped, time-out, a 4xx reply."""


class PermanentMailError(MailError):
    """Not worth retrying for this recipient: a 5xx refusal of the recipient or message."""


class MessageBuildError(PermanentMailError):
    """The e-mail cannot be built (e.g. a header value with a line separator)."""


class RecipientMailError(TransientMailError):
    """A 4xx for this recipient or this message only: the server itself is working."""


class AmbiguousMailError(TransientMailError):
    """The connection was lost after the message was sent: the server may have it."""


class Mailer(Protocol):
    def send(self, message: Message) -> None: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------- the MIME message


def _message_id(value: str) -> str:
    value = value.strip()
    return value if value.startswith("<") and value.endswith(">") else f"<{value}>"


def inline_cid(path: Path) -> str:
    """The Content-ID of an inline image: stable, derived from its file name only."""
    safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", Path(path).name)
    return f"{safe}@duban"


def build_email(message: Message, sender: str) -> EmailMessage:
    """The RFC 5322 message: multipart/alternative (our text, our HTML with its inline images
    as multipart/related), then attachments."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = message.recipient
    msg["Subject"] = message.subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = _message_id(message.message_id)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    # base64 for both parts: safe for any UTF-8 text, any line length, any server (no 8BITMIME).
    msg.set_content(message.text, subtype="plain", charset="utf-8", cte="base64")
    html = message.html
    for path in message.inline:
        html = html.replace(f'src="{Path(path).name}"', f'src="cid:{inline_cid(path)}"')
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    if message.inline:
        html_part: EmailMessage = msg.get_payload()[1]  # type: ignore[index,assignment]
        for path in message.inline:
            image_type = mimetypes.guess_type(Path(path).name)[0] or "image/png"
            maintype, subtype = image_type.split("/", 1)
            html_part.add_related(
                Path(path).read_bytes(),
                maintype=maintype,
                subtype=subtype,
                cid=f"<{inline_cid(path)}>",
                filename=Path(path).name,
                disposition="inline",
            )
    for path in message.attachments:
        ctype, encoding = mimetypes.guess_type(path.name)
        if ctype is None or encoding is not None:
            ctype = "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        name = attachment_name(path)
        msg.add_attachment(
            Path(path).read_bytes(), maintype=maintype, subtype=subtype, filename=name
        )
    return msg


def attachment_name(path: Path) -> str | tuple[str, str, str]:
    """The file name of an attachment part as `add_attachment` takes it: a Chinese name
    (台账-住房城乡建设委-2026-10-31.xlsx) as RFC 2231 UTF-8 (`filename*=utf-8''%E5%8F%B0…`),
    which every current mail client decodes; an ASCII name as it is."""
    name = Path(path).name
    return name if name.isascii() else ("utf-8", "", name)


def envelope_address(sender: str) -> str:
    """The bare address of a From value such as '督办室 <duban@city.example>'."""
    return parseaddr(sender)[1] or sender


# ---------------------------------------------------------------- SMTP


def _reply(code: int, resp: bytes | str) -> str:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    return f"{code} {' '.join(text.split())}".strip()


def classify(exc: BaseException) -> MailError:
    """Map an smtplib/socket failure to Transient or Permanent, with a password-free message."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = list(exc.recipients.items())
        shown = "; ".join(f"{rcpt}: {_reply(code, resp)}" for rcpt, (code, resp) in replies)
        if replies and all(code >= 500 for _, (code, _) in replies):
            return PermanentMailError(f"recipient refused by the SMTP server ({shown})")
        return RecipientMailError(f"recipient temporarily refused ({shown})")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        # Never echo the credentials: the server's reply only.
        return TransientMailError(
            f"SMTP authentication failed ({_reply(exc.smtp_code, exc.smtp_error)}); "
            "check DUBAN_SMTP_USER and DUBAN_SMTP_PASSWORD"
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        # Affects every message: a configuration problem, not this recipient's. Transient, so
        # the circuit breaker stops the run and nothing is marked refused.
        return TransientMailError(
            f"sender {exc.sender} refused ({_reply(exc.smtp_code, exc.smtp_error)}); "
            "check DUBAN_MAIL_FROM"
        )
    if isinstance(exc, smtplib.SMTPDataError):
        reply = _reply(exc.smtp_code, exc.smtp_error)
        if exc.smtp_code >= 500:
            return PermanentMailError(f"message refused by the SMTP server ({reply})")
        return RecipientMailError(f"message temporarily refused ({reply})")
    if isinstance(exc, smtplib.SMTPConnectError):
        return TransientMailError(
            f"SMTP server refused the connection ({_reply(exc.smtp_code, exc.smtp_error)})"
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return TransientMailError(f"SMTP error ({_reply(exc.smtp_code, exc.smtp_error)})")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransientMailError(f"SMTP server disconnected ({exc})")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return TransientMailError(f"SMTP server does not support a needed extension ({exc})")
    if isinstance(exc, smtplib.SMTPException):
        return TransientMailError(f"SMTP error ({exc})")
    if isinstance(exc, ssl.SSLError):
        return TransientMailError(f"TLS error talking to the SMTP server ({exc})")
    if isinstance(exc, OSError):
        return TransientMailError(
            f"cannot reach the SMTP server ({exc.strerror or type(exc).__name__})"
        )
    return TransientMailError(f"{type(exc).__name__}: {exc}")


def message_bytes(message: Message, sender: str) -> bytes:
    """The message on the wire; a value the email module cannot put in a header (a line
    separator, a control character) is a MessageBuildError: permanent, never retried."""
    try:
        return build_email(message, sender).as_bytes(policy=policy.SMTP)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise MessageBuildError(f"cannot build the e-mail: {type(exc).__name__}: {exc}") from None


def _sendmail(
    smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes, sent: list[bool]
) -> None:
    """smtplib's sendmail for one recipient, noting (sent[0]) when the whole message has been
    written, so that a connection lost while waiting for the final reply is told apart."""
    smtp.ehlo_or_helo_if_needed()
    code, resp = smtp.mail(sender)
    if code != 250:
        if code == 421:
            smtp.close()
        else:
            smtp.rset()
        raise smtplib.SMTPSenderRefused(code, resp, sender)
    code, resp = smtp.rcpt(recipient)
    if code not in (250, 251):
        if code == 421:
            smtp.close()
        else:
            smtp.rset()
        raise smtplib.SMTPRecipientsRefused({recipient: (code, resp)})
    smtp.putcmd("data")
    code, resp = smtp.getreply()
    if code != 354:
        if code == 421:
            smtp.close()
        else:
            smtp.rset()
        raise smtplib.SMTPDataError(code, resp)
    body = smtplib._quote_periods(data)  # type: ignore[attr-defined]
    if body[-2:] != smtplib.bCRLF:
        body += smtplib.bCRLF
    body += b"." + smtplib.bCRLF
    smtp.send(body)
    sent[0] = True
    code, resp = smtp.getreply()
    if code != 250:
        sent[0] = False  # a reply: the server said what it did with the message
        raise smtplib.SMTPDataError(code, resp)


class SmtpMailer:
    """SMTP through yagmail: one connection reused for a batch, reconnected after a failure.

    Why not `yag.send()`: yagmail 0.16 builds its own multipart whose text/plain part is the
    HTML again (newlines turned into <br>, wrapped in <div>), cannot take our own plain-text
    alternative, and on repeated disconnects returns False and parks the message in
    `yag.unsent` (sleeping 3 + 6 s) instead of raising. So yagmail only opens, secures and
    logs in the connection (`yag.login()`), and we hand our own `EmailMessage` — text and
    HTML alternatives, our Message-ID — to that connection's `sendmail`, whose exceptions we
    map to Transient/Permanent errors ourselves.

    yagmail pitfalls handled here: host, port, smtp_ssl and smtp_starttls always explicit;
    `smtp_skip_login=True` without user and password (it would prompt otherwise); the user is
    passed as a one-entry {login: From} dict so a login without "@" does not become
    "...@gmail.com"; TLS certificates are verified (yagmail/smtplib would not by default).
    """

    def __init__(
        self, settings: Settings, *, connect_timeout: float = 10.0, timeout: float = 60.0
    ) -> None:
        if not settings.smtp_host:
            raise ValueError("SmtpMailer needs DUBAN_SMTP_HOST; use FileMailer without it")
        self.host = settings.smtp_host
        self.security = settings.smtp_security
        self.port = settings.smtp_port or DEFAULT_PORTS[self.security]
        self.sender = settings.mail_from
        self.envelope_from = envelope_address(settings.mail_from)
        self.connect_timeout = connect_timeout  # connecting, TLS and login: fail fast when down
        self.timeout = timeout  # then each reply (a server may scan a large message a while)
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
        self._login = bool(settings.smtp_user and password)
        if settings.smtp_user and not password:
            log.warning("DUBAN_SMTP_USER is set without DUBAN_SMTP_PASSWORD: not logging in")
        self._user = settings.smtp_user if self._login else self.envelope_from
        self._password = password if self._login else None
        self._yag: Any = None  # yagmail.SMTP, connected lazily
        self._connected = False

    def __repr__(self) -> str:
        return f"SmtpMailer({self.host}:{self.port}, security={self.security})"

    def _client(self) -> Any:
        import yagmail

        kwargs: dict[str, Any] = {"timeout": self.connect_timeout}
        starttls: bool | dict[str, Any] = False
        if self.security == "ssl":
            kwargs["context"] = ssl.create_default_context()
        elif self.security == "starttls":
            starttls = {"context": ssl.create_default_context()}
        yag = yagmail.SMTP(
            user={self._user: self.sender},
            password=self._password,
            host=self.host,
            port=self.port,
            smtp_ssl=self.security == "ssl",
            smtp_starttls=starttls,
            smtp_skip_login=not self._login,
            soft_email_validation=False,  # our own checks; it rejects logins without "@"
            **kwargs,
        )
        yag.set_logging(None)  # no stray console handler; failures surface as our exceptions
        return yag

    def _connection(self) -> smtplib.SMTP:
        if self._yag is None:
            self._yag = self._client()
        if self._connected:
            try:  # a reused connection may have been dropped by the server while idle
                code, _ = self._yag.smtp.noop()
                if code == 250:
                    return self._yag.smtp
            except (smtplib.SMTPException, OSError):
                pass
            self._disconnect()
        try:
            self._yag.login()
            self._yag.smtp.sock.settimeout(self.timeout)
        except Exception as exc:
            self._disconnect()
            raise classify(exc) from None
        self._connected = True
        return self._yag.smtp

    def _disconnect(self) -> None:
        smtp = getattr(self._yag, "smtp", None)
        self._connected = False
        if smtp is None:
            return
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.close()

    def send(self, message: Message) -> None:
        data = message_bytes(message, self.sender)
        smtp = self._connection()
        sent = [False]  # set once the whole message is on the wire
        try:
            _sendmail(smtp, self.envelope_from, message.recipient, data, sent)
        except Exception as exc:
            error = classify(exc)
            if isinstance(error, TransientMailError) and not isinstance(error, RecipientMailError):
                self._disconnect()  # reconnect on the next send
                if sent[0]:
                    raise AmbiguousMailError(
                        f"connection lost after the message was sent; the server may have it "
                        f"({error})"
                    ) from None
            raise error from None

    def close(self) -> None:
        if self._yag is not None and self._connected:
            try:
                self._yag.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._disconnect()
        self._connected = False
        if self._yag is not None:
            self._yag.is_closed = True  # its __del__ must not try again


# ---------------------------------------------------------------- files


def eml_name(message_id: str) -> str:
    """A safe file name for a Message-ID: '<delivery-42.x@duban>' -> 'delivery-42.x@duban.eml'."""
    stem = re.sub(r"[^A-Za-z0-9._@+-]", "_", message_id.strip().strip("<>")).strip(".")
    return f"{stem or 'message'}.eml"


class FileMailer:
    """No SMTP server configured: one .eml file per message, written atomically.

    The file is named after the Message-ID, so sending the same delivery again replaces the
    file instead of adding a second one.
    """

    def __init__(self, outbox_dir: Path, sender: str) -> None:
        self.outbox_dir = Path(outbox_dir)
        self.sender = sender

    def __repr__(self) -> str:
        return f"FileMailer({self.outbox_dir})"

    def send(self, message: Message) -> None:
        data = message_bytes(message, self.sender)
        target = self.outbox_dir / eml_name(message.message_id)
        try:
            self.outbox_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.outbox_dir, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise TransientMailError(f"cannot write {target}: {exc.strerror or exc}") from None

    def close(self) -> None:
        pass


def make_mailer(settings: Settings) -> Mailer:
    """SMTP when DUBAN_SMTP_HOST is set, else .eml files in DUBAN_OUTBOX_DIR."""
    if settings.smtp_host:
        return SmtpMailer(settings)
    return FileMailer(settings.outbox_dir, settings.mail_from)
