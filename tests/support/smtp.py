"""A real SMTP server on loopback for the tests (aiosmtpd), keeping what it receives."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Mailbox:
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
        return "250 Message accepted"

    def to(self, recipient: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if recipient in str(m["To"])]

    def wait_for(
        self, condition: Callable[[list[EmailMessage]], bool], timeout: float = 90
    ) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                messages = list(self.messages)
            if condition(messages):
                return messages
            time.sleep(0.2)
        raise AssertionError(f"mail never arrived as expected: {[m['Subject'] for m in messages]}")


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.mailbox = Mailbox()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=port)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def env(self) -> dict[str, str]:
        """Server settings sending mail here (plain SMTP on loopback)."""
        return {
            "ARCTERN_SMTP_HOST": "127.0.0.1",
            "ARCTERN_SMTP_PORT": str(self.port),
            "ARCTERN_SMTP_SECURITY": "none",
            "ARCTERN_MAIL_FROM": "Arctern <arctern@example.edu>",
        }
