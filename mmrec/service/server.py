"""Running the app: uvicorn with a header-read timeout, and a graceful stop on SIGTERM.

Slow clients
------------
uvicorn bounds the idle time between two requests of a keep-alive connection (``timeout_keep_alive``) but
not the time a client takes to send a request's headers: a client that connects and sends nothing, or
sends its headers one byte at a time ("slowloris"), holds its socket for as long as it likes, and a few
hundred of them exhaust the server's file descriptors. :func:`timed_protocol` makes an h11 protocol whose
connections must deliver a complete request head within ``header_timeout`` seconds of connecting (or of
the first byte of the next request on a kept-alive connection), however the bytes trickle in; one that
does not is answered 408 (when it sent something) and closed. The body is bounded separately, between
chunks (:class:`mmrec.service.uploads.BodyLimitMiddleware`), since a large upload on a slow link is
legitimate.

Stopping
--------
On SIGTERM (what ``systemd``, Docker and Kubernetes send) the server stops accepting connections, closes
idle ones, lets the requests in progress finish for at most ``shutdown_timeout`` seconds, then exits 0:
a deliberate stop is a success, not the "killed by SIGTERM" status uvicorn reports by re-raising the
signal. Ctrl-C (SIGINT) still ends with status 130.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from mmrec.service.logs import Throttled

__all__ = ["GracefulServer", "serve", "timed_protocol"]

log = logging.getLogger("mmrec.service")

_TIMEOUT_BODY = b"request headers not received in time\n"
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n" + _TIMEOUT_BODY
)


def timed_protocol(header_timeout: float, on_timeout: Callable[[], None] | None = None) -> type[H11Protocol]:
    """An h11 protocol class whose connections must send each request's headers within ``header_timeout`` s.

    Parameters
    ----------
    header_timeout : float
        Seconds from connecting (or from the first byte after a finished answer) to a complete request head.
    on_timeout : callable, optional
        Called once per connection closed for being too slow (metrics).

    Returns
    -------
    type
        A subclass of uvicorn's ``H11Protocol``, to pass as ``uvicorn.Config(http=…)``.
    """
    report = Throttled(log, "closed %d connection(s) that did not send their request headers in time")

    class HeaderTimeoutProtocol(H11Protocol):
        """uvicorn's h11 protocol, plus a deadline on the request head."""

        _head_timer: Any = None
        _head_bytes = 0

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._waiting_for_head():
                if self._head_timer is None:
                    # The first byte of the next request on a kept-alive connection starts its deadline.
                    self._arm()
                self._head_bytes += len(data)
            super().data_received(data)
            if self._head_timer is not None and not self._waiting_for_head():
                self._disarm()  # the head arrived: the body has its own (per-chunk) timeout

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._head_timer is not None and not self._waiting_for_head():
                self._disarm()  # a pipelined request's head was already buffered

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _waiting_for_head(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            self._disarm()
            self._head_bytes = 0
            self._head_timer = self.loop.call_later(header_timeout, self._expired)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _expired(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or not self._waiting_for_head():
                return
            if self._head_bytes:
                # It sent part of a request: tell it why (a client that sent nothing gets no answer, as
                # a browser's idle pre-connection should not see an error).
                self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()
            report(timeout_s=header_timeout)
            if on_timeout is not None:
                on_timeout()

    return HeaderTimeoutProtocol


class GracefulServer(uvicorn.Server):
    """uvicorn's server, exiting normally after a graceful stop on SIGTERM (uvicorn re-raises the signal)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and not self.should_exit:
            log.info("SIGTERM: finishing the requests in progress, then stopping")
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM:
            # Not re-raised once the server has stopped: the stop was asked for, so the exit status is 0.
            self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]


def serve(
    app: Any,
    *,
    host: str,
    port: int,
    header_timeout: float = 10.0,
    keep_alive_timeout: float = 5.0,
    shutdown_timeout: float = 20.0,
    on_header_timeout: Callable[[], None] | None = None,
) -> None:
    """Run ``app`` until SIGTERM or Ctrl-C (the logging must already be configured: it is left as it is).

    Parameters
    ----------
    app : ASGI app
    host, port : str, int
    header_timeout : float
        Seconds a client has to send a request's headers.
    keep_alive_timeout : float
        Seconds an idle keep-alive connection is kept.
    shutdown_timeout : float
        Seconds in-flight requests get to finish after SIGTERM.
    on_header_timeout : callable, optional
        Called per connection closed by the header timeout.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=timed_protocol(header_timeout, on_header_timeout),
        timeout_keep_alive=keep_alive_timeout,  # type: ignore[arg-type]  # any number of seconds works
        timeout_graceful_shutdown=shutdown_timeout,  # type: ignore[arg-type]
        log_config=None,  # mmrec.service.logs configured every logger already
        access_log=False,  # replaced by the one line per request of ObserveMiddleware
        server_header=False,  # no "server: uvicorn": nothing gained by announcing the stack
    )
    GracefulServer(config).run()
