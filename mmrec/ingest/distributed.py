"""Ingest on a Ray cluster: Ray Data actors decode and encode, Lance fragments are committed once.

The scan and the plan (what changed, by content hash: :mod:`mmrec.ingest.plan`) stay on the driver,
so an unchanged catalog starts no Ray at all and encodes nothing. The planned items become a Ray
dataset; ``map_batches`` runs them through a pool of actors (:class:`EncodeWorker`), each of which
loads the database's encoders once and then runs exactly the local pipeline's code on its batches
(:func:`mmrec.ingest.encode.encode_plans`: same decoding, same forward passes, same fusion, so the
same vectors and problems), and writes its rows as one uncommitted Lance fragment per batch
(:func:`mmrec.store.fragments.write_fragment`). The driver gathers the fragments' metadata and makes
them visible in one commit under the single writer (:func:`mmrec.store.fragments.commit_fragments`);
the caller then updates the problems table and the index as after a local ingest.

Without an address, a local Ray is started (``num_cpus`` = the workers) and shut down at the end; a
Ray already initialised in this process is used as it is; with ``ray_address`` the run joins that
cluster and passes it the object store's credentials (:func:`mmrec.store.location.env_for_workers`)
in the job's ``runtime_env``. The workers must reach the catalog folder (a shared mount) and the
database (an object store, or a folder on a shared mount), and have mmrec installed.
"""

from __future__ import annotations

import copy
import json
import math
import os
import pickle
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from encoders.base import EncoderIdentity
from mmrec.catalog.scan import Problem
from mmrec.config import IngestConfig
from mmrec.errors import InvalidArgumentError, StoreError
from mmrec.ingest.plan import Plan
from mmrec.ingest.report import IngestReport
from mmrec.names import MODALITIES
from mmrec.space import SharedSpace
from mmrec.store.fragments import commit_fragments, fragment_target, write_fragment
from mmrec.store.items import Store
from mmrec.store.location import absolute, env_for_workers
from mmrec.store.writer import crash_point

#: Valid values of :attr:`mmrec.config.IngestConfig.engine`.
ENGINES = ("local", "ray")


def check_engine(config: IngestConfig) -> None:
    """:class:`InvalidArgumentError` for an unknown engine or bad Ray sizes (before any model loads)."""
    if config.engine not in ENGINES:
        raise InvalidArgumentError(f"unknown ingest engine {config.engine!r}; valid: {', '.join(ENGINES)}")
    if config.ray_workers is not None and config.ray_workers < 1:
        raise InvalidArgumentError(f"--ray-workers must be >= 1, got {config.ray_workers}")
    if config.ray_batch < 1:
        raise InvalidArgumentError(f"ray_batch must be >= 1, got {config.ray_batch}")
    gpus = config.ray_gpus_per_worker
    if config.ray_cpus_per_worker <= 0 or (gpus is not None and gpus < 0):
        raise InvalidArgumentError(
            f"ray_cpus_per_worker must be > 0 and ray_gpus_per_worker >= 0 (or None: GPUs when the cluster "
            f"has them), got {config.ray_cpus_per_worker} and {gpus}"
        )


def plan_resources(resources: Mapping[str, float], config: IngestConfig) -> tuple[int, float, float, str]:
    """How many actors, and what each reserves, on a cluster with these resources.

    Parameters
    ----------
    resources : mapping
        ``ray.cluster_resources()``: ``{"CPU": 16.0, "GPU": 2.0, ...}``.
    config : IngestConfig
        ``ray_gpus_per_worker`` ``None`` (the default) asks for one GPU per actor exactly when the
        cluster reports GPUs, else none; an explicit value > 0 on a cluster without GPUs is refused
        (Ray would wait for them forever). ``ray_workers`` ``None``: as many actors as fit.

    Returns
    -------
    (workers, num_cpus, num_gpus, device)
        ``num_gpus`` is 0 for CPU actors (then pass no ``num_gpus`` to Ray); ``device`` is ``"cuda"`` or ``"cpu"``.
    """
    have_gpus = float(resources.get("GPU", 0) or 0)
    gpus = config.ray_gpus_per_worker
    if gpus is None:
        gpus = 1.0 if have_gpus >= 1 else 0.0
    elif gpus > 0 and have_gpus <= 0:
        raise InvalidArgumentError(
            f"ray_gpus_per_worker={gpus} but the Ray cluster reports no GPU "
            f"(resources: {', '.join(f'{k}={v:g}' for k, v in sorted(resources.items()) if k in ('CPU', 'GPU'))}); "
            "use 0 for CPU actors, or None to use GPUs only where there are some"
        )
    cpus = config.ray_cpus_per_worker
    workers = config.ray_workers
    if workers is None:
        per, have = (gpus, have_gpus) if gpus else (cpus, float(resources.get("CPU", 1) or 1))
        workers = max(1, int(have // per))
    return workers, cpus, gpus, "cuda" if gpus else "cpu"


class EncodeWorker:
    """A Ray Data actor: loads the encoders once, then encodes batches of plans into Lance fragments.

    Parameters
    ----------
    job : dict
        Built by :func:`ray_encode_write`: the encoder specs and identities, the fusion space without
        its encoders, the database URI, the fragment target, the catalog root and the ingest config.
    """

    def __init__(self, job: dict[str, Any]) -> None:
        from encoders.registry import shared_encoder

        self.job = job
        self.encoders = {m: shared_encoder(spec, m, job["device"]) for m, spec in job["specs"].items()}
        for m, enc in self.encoders.items():
            wanted = EncoderIdentity.from_dict(job["identities"][m])
            if enc.identity != wanted:
                raise StoreError(
                    f"the {m} encoder on this Ray worker is {enc.identity}, not the database's {wanted}; "
                    "install the same mmrec and encoder packages on every node"
                )
        space: SharedSpace = pickle.loads(job["space"])
        space.encoders = self.encoders  # bridges and the fusion layer came from the driver: the same fused vectors
        self.space = space
        self.store = Store(job["db"])  # read only: the stored vectors of changed items' unchanged modalities

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        """Encode one batch of pickled plans; returns one row: the fragment and what the report needs."""
        from mmrec.ingest.encode import encode_plans

        plans: list[Plan] = [pickle.loads(b) for b in batch["plan"]]
        job = self.job
        report = IngestReport(catalog=job["root"], db=job["db"])
        rows: list[dict[str, Any]] = []
        problems: list[Problem] = []
        added = updated = 0
        root = Path(job["root"])
        for prepared, chunk_rows in encode_plans(
            plans, root, self.store, self.encoders, self.space, job["config"], report
        ):
            rows.extend(chunk_rows)
            for p in prepared:
                problems.extend(p.problems)
                added += p.plan.old is None
                updated += p.plan.old is not None
        fragment = write_fragment(job["target"], rows)
        summary = {
            "added": added,
            "updated": updated,
            "encoded": report.encoded,
            "encode_seconds": report.encode_seconds,
            "light": [{f"has_{m}": bool(r[f"has_{m}"]) for m in MODALITIES} for r in rows],
            "first": int(min(batch["i"])),  # results are put back in plan order: the report lists problems in it
            "ids": [r["id"] for r in rows],
        }
        return {
            "fragment": [fragment or ""],
            "summary": [json.dumps(summary)],
            "problems": [pickle.dumps(problems)],
        }


def ray_encode_write(
    store: Store,
    encoders: dict[str, Any],
    space: SharedSpace,
    todo: list[Plan],
    root: Path,
    config: IngestConfig,
    report: IngestReport,
) -> tuple[list[Problem], list[dict[str, bool]]]:
    """Decode, encode and write ``todo`` on Ray, committed once; fills ``report``'s counts.

    Parameters
    ----------
    store : Store
        The database (its items table exists).
    encoders : mapping
        The driver's encoders; none is used here (the workers load their own and check them against
        the identities stored in the database).
    space : SharedSpace
        The driver's shared space; its bridges are built here once and shipped with the fusion layer.
    todo : list of Plan
        New and changed items (from :func:`mmrec.ingest.plan.plan_ingest`).
    root : Path
        The catalog folder (absolute; the workers must see it at the same path).
    config : IngestConfig
    report : IngestReport

    Returns
    -------
    (problems, written)
        The problems met while decoding and encoding, and the ``has_<modality>`` flags of each written row.
    """
    check_engine(config)
    ray = _import_ray()
    stored = store.encoder_specs() or {}
    for m in MODALITIES:
        if not space.aligned(m):
            space.bridge(m)  # built (or read from the cache) once here, not once per worker
    shipped = copy.copy(space)
    shipped.encoders = {}  # models are loaded on the workers, not pickled
    started = False
    if not ray.is_initialized():
        init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
        if config.ray_address:
            init["address"] = config.ray_address
            init["runtime_env"] = {"env_vars": env_for_workers(store.uri)}
        else:
            # A local Ray gets the CPUs its workers reserve, or every core of this machine by default.
            want = config.ray_workers * config.ray_cpus_per_worker if config.ray_workers else (os.cpu_count() or 1)
            init["num_cpus"] = max(1, math.ceil(want))
        try:
            with warnings.catch_warnings():
                # Ray starts its processes by fork+exec (subprocess), which the fork warnings of LanceDB
                # and Lance (loaded by then in this process) do not concern: keep the CLI's output clean.
                warnings.filterwarnings("ignore", message=r"(lancedb fork support|lance is not fork-safe)")
                ray.init(**init)
        except Exception as e:  # ConnectionError, RuntimeError, ValueError for a bad address
            raise StoreError(f"cannot start or join Ray ({config.ray_address or 'local'}): {e}") from e
        started = True
    try:
        workers, cpus, gpus, device = plan_resources(ray.cluster_resources(), config)
        job = {
            "specs": {m: s["spec"] for m, s in stored.items()},
            "identities": stored,  # what made the stored vectors: every worker's encoders must match it
            "device": device,
            "space": pickle.dumps(shipped),
            "db": absolute(store.uri),
            "target": fragment_target(store),
            "root": str(Path(root).resolve()),
            "config": replace(config, threads=max(1, int(cpus))),
        }
        results = _run(ray, todo, job, workers, cpus, gpus, config.ray_batch)
    finally:
        if started:
            ray.shutdown()
    fragments: list[str] = []
    problems: list[Problem] = []
    ids: list[str] = []
    written: list[dict[str, bool]] = []
    for r in sorted(results, key=lambda r: json.loads(r["summary"])["first"]):
        s = json.loads(r["summary"])
        report.added += s["added"]
        report.updated += s["updated"]
        for m in MODALITIES:
            report.encoded[m] += s["encoded"][m]
            report.encode_seconds[m] += s["encode_seconds"][m]
        ids += s["ids"]
        written += s["light"]
        problems += pickle.loads(r["problems"])
        if r["fragment"]:
            fragments.append(r["fragment"])
    # Crash points (tests): the fragments are written but not committed; then committed, with the
    # problems table, the index and the compaction still to do (the caller's part, repaired by the next run).
    crash_point("ray:before-commit")
    with store.writer.hold("ingest (committing the Ray fragments)"):
        commit_fragments(store, fragments, ids)
    crash_point("ray:after-commit")
    return problems, written


def _run(
    ray: Any, todo: list[Plan], job: dict[str, Any], workers: int, cpus: float, gpus: float, ray_batch: int
) -> list[dict[str, Any]]:
    """The Ray Data pipeline: plans → actor pool → one summary row per batch (gathered on the driver)."""
    import logging

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the CLI prints its own report; Ray Data's bars and INFO lines are noise
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled": we did
    # Small runs are spread over every worker; large ones get fragments of ``ray_batch`` rows.
    batch = max(1, min(ray_batch, -(-len(todo) // workers)))
    ds = ray.data.from_items(
        [{"i": i, "plan": pickle.dumps(p)} for i, p in enumerate(todo)], override_num_blocks=-(-len(todo) // batch)
    )
    out = ds.map_batches(
        EncodeWorker,
        # Ray Data keeps the constructor arguments in the object store itself (its core worker logs
        # one "constructor arguments in the object store" line per run; nothing to act on here).
        fn_constructor_args=(job,),
        batch_size=batch,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=cpus,
        num_gpus=gpus or None,  # only asked for when the cluster has GPUs (plan_resources)
    )
    return list(_rows(out))


def _rows(ds: Any) -> Iterator[dict[str, Any]]:
    for row in ds.iter_rows():
        yield {k: (v.item() if hasattr(v, "item") and getattr(v, "ndim", 1) == 0 else v) for k, v in row.items()}


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise InvalidArgumentError("--engine ray needs Ray Data: pip install 'mmrec[ray]'") from e
    return ray
