"""Prometheus metrics of the service (``/metrics``, off unless ``mmrec serve --metrics``).

What is measured, and where
---------------------------
* Requests (:class:`~mmrec.service.middleware.ObserveMiddleware`): ``mmrec_http_requests_total`` and the
  latency histogram ``mmrec_http_request_duration_seconds`` by method, route template (``/items/{item_id:path}``,
  never the raw path: ids would make one series per item) and status class (``2xx`` … ``5xx``);
  ``mmrec_http_requests_in_flight``; ``mmrec_http_errors_total`` by kind (``not_found``, ``invalid``,
  ``client_disconnect``, ``header_timeout`` …).
* The data (:class:`DataCollector`, read when scraped, at most once per second): items, users and
  interactions, each served table's version, the seconds since the served data last changed, the fusion
  layer, the encoders, and the recommender that would answer (the newest hybrid checkpoint, else profiles).
* Work: ``mmrec_recommendations_total`` by the strategy that answered; ``mmrec_job_duration_seconds`` for
  ingest, training and forgetting run in this process.

Each app has its own registry (two apps in one process, as in the tests, do not share counters), with the
process and platform collectors of ``prometheus_client`` added.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from mmrec import __version__

if TYPE_CHECKING:
    from mmrec.engine import Engine

__all__ = ["CONTENT_TYPE_LATEST", "DataCollector", "DataStats", "Metrics", "error_kind", "read_stats"]

log = logging.getLogger("mmrec.service")

#: Request latency buckets, seconds: a cached read is ~1 ms, a search 10-50 ms, an upload or cold path seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Job buckets, seconds: forgetting a user takes about a second, an ingest or a training run minutes.
JOB_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_KINDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "body_timeout",
    413: "too_large",
    415: "unsupported_type",
    422: "invalid",
    499: "client_disconnect",
    500: "internal",
    503: "unavailable",
}


def error_kind(status: int) -> str:
    """The error kind of an answer's status, as counted in ``mmrec_http_errors_total`` (``http_418`` if unnamed)."""
    return _KINDS.get(status, f"http_{status}")


class Metrics:
    """The app's registry and the metrics its middleware and routes update.

    Parameters
    ----------
    engine : Engine
        Read by the data collector when scraped.
    """

    def __init__(self, engine: Engine) -> None:
        # The *_created series (one per labelled child) double the output and no dashboard uses them.
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        GCCollector(registry=reg)
        build = Gauge("mmrec_build_info", "mmrec version serving (always 1).", ["version"], registry=reg)
        build.labels(__version__).set(1)
        self.requests = Counter(
            "mmrec_http_requests",
            "HTTP requests answered, by method, route template and status class.",
            ["method", "route", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "mmrec_http_request_duration_seconds",
            "Time from the request's headers to the end of its answer, by method, route template and status class.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.in_flight = Gauge("mmrec_http_requests_in_flight", "Requests being answered now.", registry=reg)
        self.errors = Counter(
            "mmrec_http_errors",
            "Failed requests and closed connections by kind (the status's name, client_disconnect, header_timeout).",
            ["kind"],
            registry=reg,
        )
        self.recommendations = Counter(
            "mmrec_recommendations",
            "Recommendation lists served, by the strategy that made them (hybrid, profile or a cold-start one).",
            ["strategy"],
            registry=reg,
        )
        self.jobs = Histogram(
            "mmrec_job_duration_seconds",
            "Duration of ingest, training and forget runs in this process.",
            ["job"],
            buckets=JOB_BUCKETS,
            registry=reg,
        )
        self.job_failures = Counter(
            "mmrec_job_failures", "Ingest, training and forget runs in this process that failed.", ["job"], registry=reg
        )
        self.data = DataCollector(engine)
        reg.register(self.data)
        # Child lookups by label tuple: prometheus_client's .labels() re-validates the labels on every call.
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._error_children: dict[str, Any] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request (called by the middleware for every request)."""
        method = method if method in _METHODS else "OTHER"
        key = (method, route, f"{status // 100}xx")
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(*key), self.latency.labels(*key))
        children[0].inc()
        children[1].observe(seconds)
        if status >= 400:
            self.count_error(error_kind(status))

    def count_error(self, kind: str) -> None:
        """Count one error of ``kind`` (also used for connections closed before a request was read)."""
        child = self._error_children.get(kind)
        if child is None:
            child = self._error_children[kind] = self.errors.labels(kind)
        child.inc()

    def render(self) -> bytes:
        """The registry in the Prometheus text format (reads the database: run it in a worker thread)."""
        return generate_latest(self.registry)

    def timed(self, job: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` wrapped to record its duration in ``mmrec_job_duration_seconds{job=…}`` (failures counted)."""

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except BaseException:
                self.job_failures.labels(job).inc()
                raise
            self.jobs.labels(job).observe(time.perf_counter() - t0)
            return result

        return run


@dataclass
class DataStats:
    """What the database holds, as served (one reading).

    Attributes
    ----------
    items, users, interactions : int
    versions : dict
        Table name → version (only the tables that exist).
    fusion : dict or None
        The fusion layer's identity (``name``, ``version``).
    encoders : dict
        Modality → encoder spec.
    recommender : tuple of (str, str)
        ``("hybrid", "<checkpoint version>")`` when a hybrid is trained, else ``("profile", "")``.
    read_at : float
        ``time.monotonic()`` of the reading.
    """

    items: int = 0
    users: int = 0
    interactions: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    fusion: dict[str, Any] | None = None
    encoders: dict[str, str] = field(default_factory=dict)
    recommender: tuple[str, str] = ("profile", "")
    read_at: float = 0.0


def read_stats(engine: Engine) -> DataStats:
    """Read :class:`DataStats` from the engine's database (a few milliseconds; several small reads).

    Parameters
    ----------
    engine : Engine

    Returns
    -------
    DataStats
        All zero for a database without items.
    """
    store = engine.store
    stats = DataStats(read_at=time.monotonic())
    if not engine.has_items():
        return stats
    stats.items = engine.count()
    stats.versions = {name: int(v) for name, v in engine.table_versions().items() if v is not None}
    stats.versions.setdefault("items", 0)
    specs = store.encoder_specs() or {}
    stats.encoders = {m: str(s.get("spec", "")) for m, s in specs.items()}
    stats.fusion = store.fusion_identity()
    tables = engine.users().tables
    stats.users = tables.count_users()
    stats.interactions = tables.count_interactions()
    hybrid = store.checkpoints("hybrid")
    if hybrid:
        stats.recommender = ("hybrid", str(hybrid[-1]["version"]))
    return stats


class DataCollector:
    """A Prometheus collector of :class:`DataStats`, read at most once per ``max_age`` seconds.

    It also tracks when the served versions last changed: ``mmrec_data_refresh_age_seconds`` is the time
    since this process first saw the current versions (at start-up, or after another process wrote).

    Parameters
    ----------
    engine : Engine
    max_age : float
        A scrape within this many seconds of the last reading reuses it.
    """

    def __init__(self, engine: Engine, max_age: float = 1.0) -> None:
        self.engine = engine
        self.max_age = max_age
        self._stats: DataStats | None = None
        self._changed_at = time.monotonic()
        self._readable = True
        self._lock = threading.Lock()

    def stats(self) -> DataStats:
        """The newest reading, refreshed when older than ``max_age`` (thread-safe; blocking).

        A database that cannot be read keeps the last reading (``mmrec_data_readable`` says 0), so the
        request metrics are still scraped while the database is the problem.
        """
        with self._lock:
            if self._stats is None or time.monotonic() - self._stats.read_at >= self.max_age:
                try:
                    fresh = read_stats(self.engine)
                except Exception as e:  # MMRecError or a LanceDB error: reported as a metric, not a failed scrape
                    log.warning("metrics: cannot read the database: %s", str(e).strip().splitlines()[0][:300])
                    self._readable = False
                    fresh = dataclasses.replace(self._stats or DataStats(), read_at=time.monotonic())
                else:
                    self._readable = True
                    if self._stats is None or fresh.versions != self._stats.versions:
                        self._changed_at = fresh.read_at
                self._stats = fresh
            return self._stats

    def last(self) -> DataStats | None:
        """The last reading without reading again (``None`` before the first)."""
        return self._stats

    def describe(self) -> list[Any]:
        # Nothing to describe without reading the database (registration must not touch it).
        return []

    def collect(self) -> Iterator[Any]:
        s = self.stats()
        for name, value, text in (
            ("mmrec_items", s.items, "Items in the catalog."),
            ("mmrec_users", s.users, "Users with a profile."),
            ("mmrec_interactions", s.interactions, "Interactions stored."),
        ):
            yield GaugeMetricFamily(name, text, value=value)
        yield GaugeMetricFamily(
            "mmrec_data_readable",
            "1 when the database could be read at the last scrape, else 0.",
            value=int(self._readable),
        )
        versions = GaugeMetricFamily("mmrec_table_version", "Version of each served table.", labels=["table"])
        for table, version in sorted(s.versions.items()):
            versions.add_metric([table], version)
        yield versions
        yield GaugeMetricFamily(
            "mmrec_data_refresh_age_seconds",
            "Seconds since the served table versions last changed (start-up counts as a change).",
            value=max(0.0, time.monotonic() - self._changed_at),
        )
        info = InfoMetricFamily("mmrec_recommender", "The model that answers recommendations for known users.")
        info.add_metric([], {"model": s.recommender[0], "checkpoint": s.recommender[1]})
        yield info
        if s.fusion is not None:
            fusion = InfoMetricFamily("mmrec_fusion", "The fusion layer that made the stored fused vectors.")
            fusion.add_metric([], {"layer": str(s.fusion.get("name", "")), "version": str(s.fusion.get("version", ""))})
            yield fusion
        encoders = InfoMetricFamily("mmrec_encoder", "The encoder of each modality.", labels=["modality"])
        for modality, spec in sorted(s.encoders.items()):
            encoders.add_metric([modality], {"encoder": spec})
        yield encoders
