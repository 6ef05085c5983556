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

Workers
-------
With ``workers`` > 1 (:func:`serve_workers`) the parent binds the socket and runs uvicorn's process
supervisor; each worker is a fresh interpreter (spawned) that builds its own app from the import string
:data:`WORKER_APP`, a factory that reads the resolved settings from the :data:`SETTINGS_ENV` variable the
parent sets (so the API key never appears on a command line), and opens and warms its own engine and
serving snapshot. The header timeout is installed in each worker by :class:`TimedConfig`. On SIGTERM the
supervisor passes the signal to every worker, each finishes its requests in progress (within
``shutdown_timeout``) and the parent exits 0.
"""

from __future__ import annotations

import functools
import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors.multiprocess import Multiprocess

from mmrec.service.logs import Throttled

__all__ = ["SETTINGS_ENV", "WORKER_APP", "GracefulServer", "TimedConfig", "serve", "serve_workers", "timed_protocol"]

log = logging.getLogger("mmrec.service")

#: The factory each worker process builds its app with (``factory=True``).
WORKER_APP = "mmrec.service.app:app_from_env"
#: The variable that carries the resolved settings (JSON) from ``mmrec serve`` to its workers.
SETTINGS_ENV = "MMREC_SERVE_SETTINGS"
#: Seconds a worker has to answer the supervisor's ping: loading the models holds the GIL at times, and
#: uvicorn's default (5 s) would kill a worker that is only busy warming up on a loaded machine.
WORKER_HEALTHCHECK_S = 60

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


class TimedConfig(uvicorn.Config):
    """uvicorn's config, whose h11 protocol has the header timeout (:func:`timed_protocol`).

    The protocol class is made in :meth:`load`, in the process that serves: a config sent to a spawned
    worker must pickle, and a class made by :func:`timed_protocol` does not. ``on_header_timeout`` is
    then the given callable (one process) or, in a worker, the metrics counter of the app it built.
    """

    def __init__(
        self,
        app: Any,
        *,
        header_timeout: float,
        on_header_timeout: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.header_timeout = header_timeout
        self.on_header_timeout = on_header_timeout

    def __getstate__(self) -> dict[str, Any]:
        # The callable is this process's metrics; a worker finds its own in load().
        return {**self.__dict__, "on_header_timeout": None}

    def load(self) -> None:
        super().load()
        hook = self.on_header_timeout or _metrics_hook(self.loaded_app)
        self.http_protocol_class = timed_protocol(self.header_timeout, hook)


def _metrics_hook(app: Any) -> Callable[[], None] | None:
    """The header-timeout counter of the mmrec app inside uvicorn's middleware wrappers, if it has metrics."""
    for _ in range(8):  # uvicorn wraps the app in a few middlewares, each holding the next as ``.app``
        state = getattr(app, "state", None)
        service = getattr(state, "service", None) if state is not None else None
        if service is not None:
            metrics = service.metrics
            return functools.partial(metrics.count_error, "header_timeout") if metrics is not None else None
        app = getattr(app, "app", None)
        if app is None:
            break
    return None


class _Supervisor(Multiprocess):
    """uvicorn's process supervisor, remembering a Ctrl-C (exit 130, as with one process)."""

    interrupted = False

    def handle_int(self) -> None:
        self.interrupted = True
        super().handle_int()


def serve_workers(
    *,
    host: str,
    port: int,
    workers: int,
    header_timeout: float = 10.0,
    keep_alive_timeout: float = 5.0,
    shutdown_timeout: float = 20.0,
) -> None:
    """Run ``workers`` processes of :data:`WORKER_APP` on one socket until SIGTERM or Ctrl-C.

    The caller sets :data:`SETTINGS_ENV` first (each worker reads its settings from it).

    Parameters
    ----------
    host, port : str, int
    workers : int
        Worker processes, each with its own engine and serving snapshot (at least 2).
    header_timeout, keep_alive_timeout, shutdown_timeout : float
        As for :func:`serve`, in every worker.

    Raises
    ------
    MMRecError
        A worker failed to start (its error is in the log above).
    KeyboardInterrupt
        After a Ctrl-C, once the workers have stopped (the CLI exits 130).
    """
    config = _config(
        WORKER_APP,
        host=host,
        port=port,
        header_timeout=header_timeout,
        keep_alive_timeout=keep_alive_timeout,
        shutdown_timeout=shutdown_timeout,
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
    )
    sock = config.bind_socket()
    try:
        supervisor = _Supervisor(config, sockets=[sock])
        supervisor.run()
    finally:
        sock.close()
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        from mmrec.errors import MMRecError

        raise MMRecError("a worker failed to start (its error is logged above); the server stopped")
    if supervisor.interrupted:
        raise KeyboardInterrupt


def serve(
    app: Any,
    *,
    host: str,
    port: int,
    header_timeout: float = 10.0,
    keep_alive_timeout: float = 5.0,
    shutdown_timeout: float = 20.0,
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

    A connection closed by the header timeout counts in the app's metrics (``TimedConfig``'s default hook).
    """
    config = _config(
        app,
        host=host,
        port=port,
        header_timeout=header_timeout,
        keep_alive_timeout=keep_alive_timeout,
        shutdown_timeout=shutdown_timeout,
    )
    GracefulServer(config).run()


def _config(
    app: Any,
    *,
    host: str,
    port: int,
    header_timeout: float,
    keep_alive_timeout: float,
    shutdown_timeout: float,
    **extra: Any,
) -> TimedConfig:
    """The one uvicorn config of :func:`serve` and :func:`serve_workers` (``extra``: what differs between them)."""
    return TimedConfig(
        app,
        header_timeout=header_timeout,
        host=host,
        port=port,
        timeout_keep_alive=keep_alive_timeout,  # any number of seconds works
        timeout_graceful_shutdown=shutdown_timeout,
        log_config=None,  # mmrec.service.logs configured every logger already
        access_log=False,  # replaced by the one line per request of ObserveMiddleware
        server_header=False,  # no "server: uvicorn": nothing gained by announcing the stack
        **extra,
    )
