"""The service's state: one engine, its query lock and limits, the auth check, health, recording interactions."""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException

from mmrec.errors import InvalidArgumentError, ItemNotFoundError, MMRecError, UnknownItemsError
from mmrec.service.messages import DATABASE_UNAVAILABLE, public_message
from mmrec.service.schemas import InteractionIn
from mmrec.service.uploads import ServiceLimits

if TYPE_CHECKING:
    from mmrec.engine import Engine
    from mmrec.recsys.interactions import Interaction
    from mmrec.service.metrics import Metrics

log = logging.getLogger("mmrec.service")

#: Seconds a health verdict is reused: load balancers may poll often, the check reads the database.
HEALTH_TTL = 1.0


class BatchError(Exception):
    """Some entries of an interaction batch are bad; nothing was recorded."""

    def __init__(self, bad: list[tuple[int, str]]) -> None:
        self.bad = bad
        shown = "; ".join(f"[{i}] {reason}" for i, reason in bad[:10])
        more = f"; … and {len(bad) - 10} more" if len(bad) > 10 else ""
        super().__init__(f"{len(bad)} bad interaction(s), nothing recorded: {shown}{more}")


class Service:
    """What the routes share: the engine, the auth settings, the limits and the query-encoding lock.

    Profile updates need no lock here: :meth:`~mmrec.engine.Engine.record_interactions` takes the engine's
    own write lock.

    Parameters
    ----------
    engine : Engine
    api_key : str, optional
        Key required for writes (and for reads when ``private``).
    private : bool
        Require the key for reads too.
    limits : ServiceLimits
    """

    def __init__(
        self,
        engine: Engine,
        api_key: str | None,
        private: bool,
        limits: ServiceLimits,
        metrics: Metrics | None = None,
    ) -> None:
        if private and not api_key:
            raise InvalidArgumentError("private mode needs an API key")
        self.engine = engine
        self.api_key = api_key or None
        self.private = private
        self.limits = limits
        #: Prometheus metrics (``None`` when ``/metrics`` is off).
        self.metrics = metrics
        # Hugging Face fast tokenizers fail with "Already borrowed" when one instance is used from two threads.
        self.model_lock = threading.Lock()
        self.ready = False
        self._limiter: Any = None
        self._health: tuple[float, str | None] = (-float("inf"), None)
        self._health_lock: asyncio.Lock | None = None
        self.version_watch = VersionWatch(engine)

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in a worker thread, at most ``limits.workers`` (default 2 × cores) at a time."""
        import anyio.to_thread

        if self._limiter is None:
            # Created in the running event loop (an anyio limiter belongs to one loop); reset at each start-up.
            self._limiter = anyio.CapacityLimiter(self.limits.workers or 2 * (os.cpu_count() or 1))
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self._limiter)

    def reset_limiter(self) -> None:
        """Forget the limiter and the health lock (the next event loop makes its own)."""
        self._limiter = None
        self._health_lock = None

    # ----------------------------------------------------------------- health

    async def health_problem(self) -> str | None:
        """Why the service cannot answer now (one line, no paths), or ``None``; checked at most once per second.

        The check runs in its own thread, outside the limiter of :meth:`run`: a server busy with slow
        requests is still healthy, and its load balancer must hear so without waiting behind them.
        """
        if not self.ready:
            return "the models are loading"
        if time.monotonic() - self._health[0] < HEALTH_TTL:
            return self._health[1]
        import anyio.to_thread

        if self._health_lock is None:
            self._health_lock = asyncio.Lock()
        async with self._health_lock:  # one check at a time; the others reuse its verdict
            if time.monotonic() - self._health[0] >= HEALTH_TTL:
                problem = await anyio.to_thread.run_sync(self._check_health)
                self._health = (time.monotonic(), problem)
        return self._health[1]

    def _check_health(self) -> str | None:
        try:
            # A database without items yet can be read: its data routes answer 503 saying so, and the server
            # becomes useful as soon as an ingest (another process) fills it, so it stays ready.
            if not self.engine.has_items():
                return None
            problem = self.engine.health_problem()
        except MMRecError as e:
            problem = str(e)
        except Exception as e:  # a LanceDB failure no mmrec error wraps
            log.warning("health check: %s: %s", type(e).__name__, str(e).strip()[:500])
            problem = DATABASE_UNAVAILABLE
        if problem is not None:
            problem = public_message(problem, self.engine.uri) or "the database cannot be read"
        return problem

    # ----------------------------------------------------------------- auth

    def check_key(self, presented: str | None, *, write: bool) -> None:
        """Raise 401 unless ``presented`` is the key, where this kind of request needs one."""
        if self.api_key is None or (not write and not self.private):
            return
        if presented is None:
            raise HTTPException(
                401,
                "this request needs the API key (header X-API-Key or Authorization: Bearer)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        # Constant-time comparison: the time taken says nothing about how much of the key was right.
        if not hmac.compare_digest(presented.encode(), self.api_key.encode()):
            raise HTTPException(401, "wrong API key", headers={"WWW-Authenticate": "Bearer"})

    # ----------------------------------------------------------------- writes (run in the thread pool)

    def record(
        self, entries: list[tuple[int, InteractionIn]], bad: list[tuple[int, str]], *, single: bool = False
    ) -> tuple[list[Interaction], int, int, int]:
        """Check every entry, then record all of them or none: ``(interactions, added, duplicates, users)``.

        Parameters
        ----------
        entries : list of (index, InteractionIn)
            The entries that passed the schema, with their position in the request.
        bad : list of (index, reason)
            Entries that failed the schema; reported together with the ones found bad here.
        single : bool
            The request was one object, not a list: an unknown item is then a plain 404.

        Raises
        ------
        BatchError
            When any entry is bad (nothing is recorded).
        ItemNotFoundError
            For a single interaction with an unknown item.
        """
        from mmrec.recsys.interactions import make_interaction

        now = datetime.now(timezone.utc)
        parsed: list[tuple[int, Interaction]] = []
        bad = list(bad)
        for i, e in entries:
            try:
                parsed.append(
                    (i, make_interaction(e.user, e.item, e.event, weight=e.weight, rating=e.rating, ts=e.at, now=now))
                )
            except ValueError as err:
                bad.append((i, str(err)))
        if bad:
            # Nothing may be written, but the answer still names the unknown items among the valid entries.
            known = self.engine.known_items(sorted({p.item for _, p in parsed})) if parsed else set()
            bad += [(i, f"unknown item {p.item!r}") for i, p in parsed if p.item not in known]
            raise BatchError(sorted(bad))
        inters = [p for _, p in parsed]
        try:
            added, duplicates, users = self.engine.record_interactions(inters)
        except UnknownItemsError as e:
            # The engine reports positions in the list it was given; the client knows its request's indices.
            unknown = [(parsed[pos][0], item) for pos, item in e.unknown]
            if single:
                raise ItemNotFoundError(f"no item with id {unknown[0][1]!r}") from e
            raise BatchError(sorted((i, f"unknown item {item!r}") for i, item in unknown)) from e
        return inters, added, duplicates, users


class VersionWatch:
    """The items table version the service serves, for the access log, read at most once per second.

    :meth:`current` never reads the database: it returns the last reading and, when that is older than
    ``every`` seconds, starts a new one in a worker thread (one at a time), so a request never waits on it.

    Parameters
    ----------
    engine : Engine
    every : float
        Seconds between two readings.
    """

    def __init__(self, engine: Engine, every: float = 1.0) -> None:
        self.engine = engine
        self.every = every
        self._version: int | None = None
        self._read_at = -float("inf")
        self._reading = False

    def current(self) -> int | None:
        """The last version read (``None`` before the first reading or for a database without items)."""
        if not self._reading and time.monotonic() - self._read_at >= self.every:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside the event loop: read in place
                self.read()
            else:
                self._reading = True
                loop.run_in_executor(None, self.read)
        return self._version

    def read(self) -> None:
        """Read the version now (blocking)."""
        try:
            self._version = int(self.engine.store.version() or 0) if self.engine.has_items() else None
        except Exception:  # unreadable for now: /health reports it; the log keeps the last version seen
            pass
        finally:
            self._read_at = time.monotonic()
            self._reading = False


def warm_engine(engine: Engine) -> float:
    """Load everything a request needs, so that the first request is as fast as the next.

    Kept for the CLI and the tests; the work is :meth:`mmrec.engine.Engine.warm` (encoders, shared space
    and bridges, user book, hybrid recommender, one forward pass per model; a database without items is
    left as it is), then the serving snapshot (:meth:`mmrec.engine.Engine.snapshot`).

    Parameters
    ----------
    engine : Engine

    Returns
    -------
    float
        Seconds taken.

    Raises
    ------
    EncoderMismatchError, StoreError, EncoderError
        When the database cannot be served (other encoders, unreadable fusion checkpoint, missing weights).
    """
    t0 = time.perf_counter()
    seconds = engine.warm()
    if engine.has_items():
        engine.snapshot()  # the serving snapshot (vectors, index, profiles): built now, not by the first request
        seconds = time.perf_counter() - t0
    return seconds
