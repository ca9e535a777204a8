"""A real SMTP server for the tests (aiosmtpd), recording what it receives.

`smtp_server` starts an `SmtpRecorder` on 127.0.0.1 (explicitly: the default may bind ::1)
at a free port picked first (aiosmtpd cannot take port=0). Switches:

- `down()` / `up()`: stop the server (connections are refused) and start it again on the
  same port;
- `fail_after(k)`: accept k more messages, then answer 421 to every MAIL FROM until
  `recover()`;
- `reject(address, reply=...)`: answer RCPT TO for that address with `reply` (default a 550;
  e.g. `MAILBOX_FULL`, a 452) until `accept(address)`;
- `refuse_messages(reply)`: answer every message, after its DATA, with `reply` (e.g. a 554)
  until `refuse_messages(None)`;
- `hold()` / `release()`: keep every message's final reply back (the client waits, as on a
  slow server) until released; `held` counts the messages waiting;
- `drop_after_data(n)`: for the next n messages, keep the message (it counts as received)
  and drop the connection before answering 250 — a lost 250;
- `after_messages(k, action)`: once k more messages are received, call `action()` (e.g.
  restart the database) before answering the k-th one; once.

Loaded as a pytest plugin by tests/conftest.py (`pythonpath = ["."]` makes `tests` importable).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
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
            reply = rec._rejected.get(address.lower())
            if reply is not None:
                rec.refusals += 1
                return reply.format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        rec = self.recorder
        if not rec._released.is_set():
            with rec.lock:
                rec.held += 1
            await asyncio.get_running_loop().run_in_executor(None, rec._released.wait)
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with rec.lock:
            if rec._refuse_messages is not None:
                rec.refusals += 1
                return rec._refuse_messages
            rec.received.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos), parsed))
            if rec._fail_after is not None:
                rec._fail_after -= 1
            drop = rec._drop_after_data > 0
            if drop:
                rec._drop_after_data -= 1
                rec.dropped += 1
            action = None
            if rec._action is not None:
                rec._action_after -= 1
                if rec._action_after <= 0:
                    action, rec._action = rec._action, None
        if action is not None:  # in a thread: the server's event loop keeps running
            await asyncio.get_running_loop().run_in_executor(None, action)
        if drop:
            server.transport.abort()  # the message is here; the 250 never reaches the client
            return "250 (never seen)"
        return "250 Message accepted for delivery"


USER_UNKNOWN = "550 5.1.1 <{address}>: Recipient address rejected: User unknown"
MAILBOX_FULL = "452 4.2.2 <{address}>: mailbox full"
MESSAGE_REFUSED = "554 5.7.1 Message refused: policy"


class SmtpRecorder:
    host = "127.0.0.1"

    def __init__(self) -> None:
        self.port = free_port(self.host)
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.refusals = 0  # 421s, 4xx/5xx at RCPT and refused messages answered
        self.dropped = 0  # connections dropped after DATA
        self._fail_after: int | None = None
        self._failing = False
        self._rejected: dict[str, str] = {}
        self._refuse_messages: str | None = None
        self._drop_after_data = 0
        self._action: Callable[[], object] | None = None
        self._action_after = 0
        self.held = 0
        self._released = threading.Event()
        self._released.set()
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

    def reject(self, address: str, reply: str = USER_UNKNOWN) -> None:
        with self.lock:
            self._rejected[address.lower()] = reply

    def accept(self, address: str) -> None:
        with self.lock:
            self._rejected.pop(address.lower(), None)

    def refuse_messages(self, reply: str | None = MESSAGE_REFUSED) -> None:
        with self.lock:
            self._refuse_messages = reply

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def drop_after_data(self, n: int) -> None:
        with self.lock:
            self._drop_after_data = n

    def after_messages(self, k: int, action: Callable[[], object]) -> None:
        with self.lock:
            self._action_after, self._action = k, action

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
        recorder.release()
        recorder.down()
