"""A real SMTP server for the tests (aiosmtpd), recording what it receives.

`smtp_server` starts an `SmtpRecorder` on 127.0.0.1 (explicitly: the default may bind ::1)
at a free port picked first (aiosmtpd cannot take port=0). Switches:

- `down()` / `up()`: stop the server (connections are refused) and start it again on the
  same port;
- `fail_after(k)`: accept k more messages, then answer 421 to every MAIL FROM until
  `recover()`;
- `reject(address)`: answer 550 to RCPT TO for that address.

Loaded as a pytest plugin by tests/conftest.py (`pythonpath = ["."]` makes `tests` importable).
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None and body.get_content_subtype() == subtype, subtype
        return str(body.get_content())


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _Handler:
    def __init__(self, recorder: SmtpRecorder) -> None:
        self.recorder = recorder

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        rec = self.recorder
        with rec.lock:
            if rec._failing or (rec._fail_after is not None and rec._fail_after <= 0):
                rec._failing = True
                rec.refusals += 1
                return "421 4.3.2 Service not available, try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        rec = self.recorder
        with rec.lock:
            if address.lower() in rec._rejected:
                rec.refusals += 1
                return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        rec = self.recorder
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with rec.lock:
            rec.received.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos), parsed))
            if rec._fail_after is not None:
                rec._fail_after -= 1
        return "250 Message accepted for delivery"


class SmtpRecorder:
    host = "127.0.0.1"

    def __init__(self) -> None:
        self.port = free_port(self.host)
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.refusals = 0  # 421s and 550s answered
        self._fail_after: int | None = None
        self._failing = False
        self._rejected: set[str] = set()
        self._controller: Controller | None = None

    # -- switches
    def up(self) -> None:
        if self._controller is None:
            # A new Controller each time: a stopped one has closed its event loop.
            self._controller = Controller(_Handler(self), hostname=self.host, port=self.port)
            self._controller.start()

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def fail_after(self, k: int) -> None:
        with self.lock:
            self._fail_after = k
            self._failing = False

    def recover(self) -> None:
        with self.lock:
            self._fail_after = None
            self._failing = False

    def reject(self, address: str) -> None:
        with self.lock:
            self._rejected.add(address.lower())

    # -- what arrived
    @property
    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def message_ids(self) -> Counter[str]:
        return Counter(r.message_id for r in self.messages)

    def recipients(self) -> Counter[str]:
        return Counter(rcpt for r in self.messages for rcpt in r.rcpt_tos)


@pytest.fixture
def smtp_server() -> Iterator[SmtpRecorder]:
    recorder = SmtpRecorder()
    recorder.up()
    try:
        yield recorder
    finally:
        recorder.down()
