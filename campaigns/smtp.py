"""Django's SMTP email backend with a commit point just before the end of the message data.

An SMTP server takes responsibility for a message only when the client ends the data with
``<CRLF>.<CRLF>`` and the server answers 250; a connection that breaks before the final dot leaves
an incomplete transaction that the server discards. This backend sends the whole message body,
then calls the commit point set by the sender (``campaigns.delivery``) and only writes the final
dot if it returns True. The sender's commit point records in the database that the message was
handed over, so after a crash the sender knows on which side of the dot it died: before it, the
message can safely be sent again; after it, it is never sent again automatically.

Used automatically for campaign messages when ``EMAIL_BACKEND`` is Django's SMTP backend; any other
backend (file, console, locmem, an ESP's) gets the commit point called right before the hand-over.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.core.mail.backends import smtp

CRLF = b"\r\n"
commit_point: ContextVar[Callable[[], bool] | None] = ContextVar("campaigns_smtp_commit_point", default=None)


class CommitPointLost(Exception):
    """The commit point refused (another worker owns the message now): the data was never ended."""


def _dot_stuffed(message: bytes | str) -> bytes:
    data = message.encode("ascii") if isinstance(message, str) else message
    data = re.sub(rb"(?:\r\n|\n|\r(?!\n))", CRLF, data)
    data = re.sub(rb"(?m)^\.", b"..", data)
    return data if data.endswith(CRLF) else data + CRLF


class _CommitPointMixin:
    """Overrides ``smtplib.SMTP.data`` to call the commit point before the final dot."""

    def data(self, msg: Any) -> tuple[int, bytes]:
        hook = commit_point.get()
        if hook is None:
            return super().data(msg)  # type: ignore[misc]
        connection: smtplib.SMTP = self  # type: ignore[assignment]
        connection.putcmd("data")
        code, reply = connection.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        connection.send(_dot_stuffed(msg))
        if not hook():
            connection.close()  # the data never ends: the server drops the transaction
            raise CommitPointLost("the message was claimed by another sender before the end of data")
        connection.send(b"." + CRLF)
        return connection.getreply()


class CommitPointSMTP(_CommitPointMixin, smtplib.SMTP):
    pass


class CommitPointSMTP_SSL(_CommitPointMixin, smtplib.SMTP_SSL):
    pass


class EmailBackend(smtp.EmailBackend):
    """Django's SMTP backend (same settings) whose connections honour the commit point; a timeout
    is always set, so a stalled server cannot hold a worker forever."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.timeout is None:
            self.timeout = 60

    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return CommitPointSMTP_SSL if self.use_ssl else CommitPointSMTP

    def abandon(self) -> None:
        """Drop the connection without QUIT: after an error mid-transaction a QUIT would be read as
        message data."""
        if self.connection is not None:
            try:
                self.connection.close()
            finally:
                self.connection = None
