"""Ingest: scan a catalog, plan what changed, decode and encode it, write it to the store.

The run is incremental (:mod:`mmrec.ingest.plan`): an item whose files and manifest fields are
unchanged is not touched, and a run over an unchanged catalog writes nothing, so the table version
does not move. Decoding and encoding (:mod:`mmrec.ingest.encode`) run a chunk at a time; rows are
written in batches of ``write_batch`` (one commit each), then the vector index and the problems
table are brought up to date.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from encoders.base import Encoder
from mmrec.catalog.scan import scan_catalog
from mmrec.config import IngestConfig
from mmrec.ingest.encode import encode_plans
from mmrec.ingest.plan import plan_ingest
from mmrec.ingest.report import IngestReport
from mmrec.ingest.unchanged import UnchangedMemo, catalog_signature
from mmrec.names import FUSED_COLUMN, MODALITIES
from mmrec.space import SharedSpace
from mmrec.store.items import INDEX_MIN_ROWS, Store
from mmrec.store.writer import crash_point


def run_ingest(
    store: Store,
    encoders: Mapping[str, Encoder],
    space: SharedSpace | Callable[[], SharedSpace],
    catalog_dir: str | os.PathLike[str],
    *,
    config: IngestConfig | None = None,
    prune: bool = False,
    progress: bool = False,
    memo: UnchangedMemo | None = None,
) -> IngestReport:
    """Bring the store up to date with ``catalog_dir``: plan → decode/encode → write.

    Parameters
    ----------
    store : Store
        The database; its ``items`` table must exist (see :meth:`mmrec.engine.Engine.ingest`).
    encoders : mapping
        Modality → encoder, the same that made the stored vectors. Only the encoders of modalities
        with work are looked up (:class:`encoders.lazy.LazyEncoders` then loads no other model).
    space : SharedSpace or callable
        Bridges and the current fusion layer, for the fused and shared-space columns; a callable
        is called only when there is something to encode, so a run that finds nothing changed
        loads neither the fusion layer nor torch.
    catalog_dir : path
        The catalog folder.
    config : IngestConfig, optional
    prune : bool
        Delete stored items of this catalog whose files are gone.
    progress : bool
        Show a progress bar on stderr.
    memo : UnchangedMemo, optional
        Remembers the report of a run that changes nothing, for the next run to answer without the
        database (:mod:`mmrec.ingest.unchanged`).
    """
    config = config or IngestConfig()
    t0 = time.perf_counter()
    # Taken before the scan reads anything: a file changed from here on is seen by the next run's key.
    # The memo's own check may have taken it already (a miss), earlier still, so that one is reused.
    signature = (memo.signature or catalog_signature(memo.catalog)) if memo is not None and memo.enabled else None
    scan = scan_catalog(catalog_dir)
    catalog = str(scan.root)
    report = IngestReport(catalog=catalog, db=store.uri, ignored_files=scan.ignored_files, manifest=scan.manifest)
    plan = plan_ingest(store, scan)
    report.unchanged = len(plan.kept)
    problems = plan.problems
    kept_rows = list(plan.kept)

    written_rows: list[dict[str, Any]] = []
    if plan.todo and config.engine != "local":  # the one dispatch point of a distributed run (one commit)
        from mmrec.ingest.distributed import ray_encode_write

        space = space if isinstance(space, SharedSpace) else space()
        found, written_rows = ray_encode_write(store, encoders, space, plan.todo, scan.root, config, report)
        problems.extend(found)
        report.wrote = True
    elif plan.todo:
        pbar = _progress_bar(len(plan.todo), progress)
        buffer: list[dict[str, Any]] = []
        for prepared, rows in encode_plans(plan.todo, scan.root, store, encoders, space, config, report):
            buffer.extend(rows)
            for p in prepared:
                problems.extend(p.problems)
                if p.plan.old is None:
                    report.added += 1
                else:
                    report.updated += 1
            if len(buffer) >= config.write_batch:
                _write(store, buffer)
                written_rows.extend(_light(r) for r in buffer)
                buffer = []
            pbar.update(len(prepared))
        if buffer:
            _write(store, buffer)
            written_rows.extend(_light(r) for r in buffer)
        pbar.close()
        report.wrote = True

    # The rest is short: hold the writer for all of it, so that the problems and the index match the rows.
    with store.writer.hold("ingest"):
        if plan.gone:
            if prune:
                store.delete(plan.gone)
                report.removed = len(plan.gone)
                report.wrote = True
            else:
                report.missing = len(plan.gone)
                kept_rows.extend(plan.state[i] for i in plan.gone)

        for row in kept_rows + written_rows:
            for m in MODALITIES:
                report.present[m] += bool(row.get(f"has_{m}"))

        report.problems = problems
        crash_point("ingest:before-problems")
        if store.replace_problems(catalog, [p.to_dict() for p in problems]):
            report.wrote = True
        if report.wrote or upkeep_due(store):  # also finishes the upkeep of a run that died after its commit
            crash_point("ingest:before-optimize")
            store.ensure_vector_index()
            store.optimize(config.keep_versions)
        if memo is not None and signature is not None and plan.todo:
            # still under the writer: the versions the memo keeps are this run's result
            memo.remember_written(signature, report, {m: s["spec"] for m, s in (store.encoder_specs() or {}).items()})
    report.seconds = time.perf_counter() - t0
    if memo is not None and signature is not None and not plan.todo:
        memo.remember(signature, report, {m: s["spec"] for m, s in (store.encoder_specs() or {}).items()})
    return report


def upkeep_due(store: Store) -> bool:
    """Whether the items table still needs the compaction or index update that follows a write.

    A run that died after committing rows (a Ray ingest commits one fragment per batch) left small
    fragments, or rows outside the vector index; the next run, even with nothing to encode, finishes
    that. Reads only table metadata; after a completed run it is false, so a re-run writes nothing.
    """
    tbl = store.items()
    stats = tbl.stats()
    if stats["fragment_stats"]["num_small_fragments"] > 1:
        return True
    if not store.vector_indexed():
        return stats["num_rows"] >= INDEX_MIN_ROWS
    for ix in tbl.list_indices():
        if FUSED_COLUMN in ix.columns:
            info = tbl.index_stats(ix.name)
            return bool(info and info.num_unindexed_rows)
    return False


def _write(store: Store, rows: list[dict[str, Any]]) -> None:
    """One batch of rows, committed under the writer.

    Encoding runs outside the lock (other writers, such as the service recording events, are not held
    up for minutes); each commit holds it and merges on ``id`` from the latest version, so two ingests
    of the same folder end with one row per item.
    """
    with store.writer.hold("ingest"):
        store.upsert(rows)
    crash_point("ingest:after-batch")


def _light(row: dict[str, Any]) -> dict[str, Any]:
    return {f"has_{m}": row[f"has_{m}"] for m in MODALITIES}


class _NullBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, enabled: bool) -> Any:
    import sys

    if not enabled or not sys.stderr.isatty():
        return _NullBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="item", desc="ingest", file=sys.stderr, dynamic_ncols=True)
