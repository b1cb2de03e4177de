"""A deadline for every request `runbook serve` waits on (Uvicorn's h11 protocol, one timer more).

Uvicorn closes a connection idle after an answer (`timeout_keep_alive`), but waits for ever on a
connection that never sends a request, sends its headers a byte at a time, or never finishes
its body: enough of them fill the file-descriptor limit, and then neither the intake nor
`/healthz` is answered. Here a connection has `request_timeout` seconds, from its opening or
from the end of its previous answer, to send a whole request (headers and body); past that it
is closed, with a 408 when the headers were in and a body was still due (the app waiting on
that body hears the client left). The time an answer takes is not counted: a long-lived
answer (the status page's live updates) is never cut. So `runbook serve` always speaks h11,
even where httptools is installed (Uvicorn's "auto" would take it, without this deadline).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_REQUEST_TIMEOUT = 10.0


class DeadlineProtocol(H11Protocol):
    def __init__(self, *args, request_timeout: float = DEFAULT_REQUEST_TIMEOUT, **kwargs):
        super().__init__(*args, **kwargs)
        self.request_timeout = request_timeout
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        self._arm()  # before the base class: it may take a pipelined request at once
        super().on_response_complete()

    def handle_events(self) -> None:
        super().handle_events()
        cycle = self.cycle
        if cycle is not None and not cycle.more_body and not cycle.response_complete:
            self._disarm()  # the request is whole: the answer takes the time it takes

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and cycle.more_body and not cycle.response_started:
            cycle.disconnected = True  # the app's next receive hears the client is gone
            cycle.message_event.set()
            self._send_408()
        self.transport.close()

    def _send_408(self) -> None:
        message = f"the request did not arrive whole within {self.request_timeout:g}s\n".encode()
        try:
            for event in (h11.Response(status_code=408, reason=b"Request Timeout",
                                       headers=[(b"content-type", b"text/plain; charset=utf-8"),
                                                (b"connection", b"close"),
                                                (b"content-length", str(len(message)).encode())]),
                          h11.Data(data=message), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event))
        except h11.LocalProtocolError:  # h11 will not answer in the state it is in: closing says enough
            pass


def protocol(request_timeout: float):
    """Uvicorn's `http=` for a server whose requests must arrive whole within `request_timeout` s."""
    return functools.partial(DeadlineProtocol, request_timeout=request_timeout)


class AcceptFailures(logging.Filter):
    """asyncio logs "socket.accept() out of system resource" with a traceback at every retry
    (thousands a second while no file descriptor is free): one line, at most every `every` s."""

    def __init__(self, every: float = 10.0):
        super().__init__()
        self.every = every
        self.last = None

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("socket.accept() out of system resource"):
            return True
        now = time.monotonic()
        if self.last is not None and now - self.last < self.every:
            return False
        self.last = now
        error = record.exc_info[1] if record.exc_info else None
        record.msg, record.args = "cannot take new connections: %s (until some close; see --request-timeout)", (
            getattr(error, "strerror", None) or "out of file descriptors",)
        record.exc_info = record.exc_text = None
        return True
