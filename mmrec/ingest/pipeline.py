"""Ingest: scan a catalog, decode and encode what changed, write it to the store.

The run is incremental: every file's content hash is stored, a file whose size
and modification time are unchanged is not read again, an item whose files
and manifest fields are unchanged is not touched, and within a changed item
only the modalities whose input changed are encoded again. A run over an
unchanged catalog writes nothing, so the table version does not move.

Decoding and preprocessing run in worker threads, a chunk ahead of the
models, so that the cores spend their time in the forward passes; each model
runs once per chunk over all the chunk's items of its modality.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from encoders.base import MODALITIES, Encoder
from encoders.errors import EncoderError
from mmrec.catalog.scan import CatalogItem, Problem, read_sidecar, scan_catalog
from mmrec.config import IngestConfig
from mmrec.errors import MediaError
from mmrec.catalog.media import load_audio, load_image, read_text
from mmrec.space import SharedSpace
from mmrec.store.items import Store
from mmrec.names import scores_column, vector_column

#: Sidecar keys with a meaning; the others become metadata.
_TEXT_KEYS = ("text", "description", "caption")


@dataclass
class IngestReport:
    """What one ingest run did."""

    catalog: str
    db: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    #: Stored items whose files are gone, kept because ``prune`` was off.
    missing: int = 0
    #: Items encoded this run, per modality.
    encoded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MODALITIES, 0))
    #: Items of this catalog in the store that have each modality, after the run.
    present: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MODALITIES, 0))
    #: Seconds spent in each model's forward passes.
    encode_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MODALITIES, 0.0))
    problems: list[Problem] = field(default_factory=list)
    ignored_files: int = 0
    seconds: float = 0.0
    wrote: bool = False
    manifest: str | None = None

    @property
    def items(self) -> int:
        return self.added + self.updated + self.unchanged

    @property
    def items_per_second(self) -> float:
        done = self.added + self.updated
        return done / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "catalog": self.catalog,
            "db": self.db,
            "manifest": self.manifest,
            "items": self.items,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "missing": self.missing,
            "encoded": self.encoded,
            "present": self.present,
            "encode_seconds": {k: round(v, 3) for k, v in self.encode_seconds.items()},
            "problems": [p.to_dict() for p in self.problems],
            "ignored_files": self.ignored_files,
            "seconds": round(self.seconds, 3),
            "items_per_second": round(self.items_per_second, 2),
            "wrote": self.wrote,
        }

    def format(self, max_problems: int = 50) -> str:
        """A human-readable summary."""
        lines = [
            f"catalog  {self.catalog}" + (f" (manifest {self.manifest})" if self.manifest else ""),
            f"database {self.db}",
            f"items    {self.items}: {self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.removed} removed",
        ]
        if self.missing:
            lines.append(f"missing  {self.missing} stored items whose files are gone (run with --prune to remove them)")
        lines.append("modality " + ", ".join(f"{m} {self.present[m]} (encoded {self.encoded[m]})" for m in MODALITIES))
        if self.ignored_files:
            lines.append(f"ignored  {self.ignored_files} files of other types")
        rate = f", {self.items_per_second:.1f} items/s" if self.added + self.updated else ""
        lines.append(f"time     {self.seconds:.1f} s{rate}")
        lines.append(f"problems {len(self.problems)}")
        for p in self.problems[:max_problems]:
            lines.append(f"  - {p}")
        if len(self.problems) > max_problems:
            lines.append(f"  … and {len(self.problems) - max_problems} more (mmrec info --json lists all)")
        return "\n".join(lines)


@dataclass
class _Plan:
    """One new or changed item and what is known about its files."""

    item: CatalogItem
    files: list[dict[str, Any]]
    item_hash: str
    old: dict[str, Any] | None


@dataclass
class _Prepared:
    """An item decoded and preprocessed in a worker thread."""

    plan: _Plan
    title: str
    text: str
    tags: list[str]
    metadata: dict[str, Any]
    hashes: dict[str, str | None]
    #: Model-ready inputs of the modalities to encode.
    inputs: dict[str, Any] = field(default_factory=dict)
    #: Modalities whose stored vector is still valid.
    reuse: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)


# --------------------------------------------------------------------------- hashing


def _hash_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def file_hash(path: Path) -> str:
    """BLAKE2b-128 of a file's contents (hex)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _hash_files(root: Path, item: CatalogItem, old: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Describe an item's files with content hashes; unreadable files get a stable error marker."""
    known = {(f["role"], f["path"]): f for f in (old or {}).get("files") or []}
    out = []
    for role, rel in sorted(item.files.items()):
        path = root / rel
        entry: dict[str, Any] = {"role": role, "path": rel, "hash": None, "size": None, "mtime_ns": None}
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode):
                entry["hash"] = "!not-a-regular-file"
            else:
                entry["size"], entry["mtime_ns"] = st.st_size, st.st_mtime_ns
                prev = known.get((role, rel))
                if prev and prev["size"] == st.st_size and prev["mtime_ns"] == st.st_mtime_ns and prev["hash"]:
                    entry["hash"] = prev["hash"]  # unchanged on disk: do not read it again
                else:
                    entry["hash"] = file_hash(path)
        except OSError as e:
            entry["hash"] = f"!{e.errno}"
        out.append(entry)
    return out


def _item_hash(files: list[dict[str, Any]], fields: dict[str, Any]) -> str:
    key = json.dumps([[(f["role"], f["path"], f["hash"]) for f in files], fields], sort_keys=True, default=str)
    return _hash_bytes(key.encode())


# --------------------------------------------------------------------------- decoding (worker threads)


def _title_from_id(item_id: str) -> str:
    stem = item_id.rsplit("/", 1)[-1]
    return " ".join(stem.replace("_", " ").replace("-", " ").split()) or stem


def _prepare_item(plan: _Plan, root: Path, encoders: dict[str, Encoder], config: IngestConfig) -> _Prepared:
    """Read sidecar and text, decode media, run each encoder's ``prepare`` (never raises)."""
    item, old = plan.item, plan.old or {}
    limits = config.limits
    problems: list[Problem] = []
    fields = dict(item.fields)
    metadata: dict[str, Any] = dict(fields.pop("metadata", {}) or {})

    if item.sidecar:
        try:
            side = read_sidecar(root / item.sidecar)
        except ValueError as e:
            problems.append(Problem(item.sidecar, str(e), item.id))
        else:
            for key, value in side.items():
                if key == "title" and value not in (None, ""):
                    fields.setdefault("title", str(value))
                elif key == "tags" and isinstance(value, list | str):
                    fields.setdefault("tags", parse_tags(value))
                elif key in _TEXT_KEYS and isinstance(value, str) and value.strip():
                    fields["text"] = (fields.get("text", "") + "\n" + value.strip()).strip()
                else:
                    metadata[key] = value

    # A title made up from the file name is shown, but not encoded as the item's text.
    title = str(fields.get("title") or _title_from_id(item.id))
    tags = [str(t) for t in fields.get("tags", [])]
    text_parts = [str(fields["title"])] if fields.get("title") else []
    if fields.get("text"):
        text_parts.append(str(fields["text"]))
    for rel in item.text_files:
        try:
            body, warning = read_text(root / rel, limits)
        except MediaError as e:
            problems.append(Problem(rel, str(e), item.id))
            continue
        if warning:
            problems.append(Problem(rel, warning, item.id))
        text_parts.append(body)
    if tags:
        text_parts.append("Tags: " + ", ".join(tags) + ".")
    text = "\n".join(p for p in text_parts if p)[: limits.max_stored_text_chars]

    file_hashes = {f["role"]: f["hash"] for f in plan.files}
    hashes: dict[str, str | None] = {
        "text": _hash_bytes(text.encode()) if text else None,
        "image": file_hashes.get("image"),
        "audio": file_hashes.get("audio"),
    }
    prepared = _Prepared(plan, title, text, tags, metadata, hashes, problems=problems)

    loaders: dict[str, Callable[[], Any]] = {
        "text": lambda: text,
        "image": lambda: load_image(root / item.files["image"], limits),
        "audio": lambda: load_audio(root / item.files["audio"], limits),
    }
    for m in MODALITIES:
        if (m == "text" and not text) or (m != "text" and m not in item.files):
            continue
        if old.get(f"has_{m}") and old.get(f"{m}_hash") == hashes[m]:
            prepared.reuse.add(m)
            continue
        where = item.files.get(m, item.id)
        try:
            prepared.inputs[m] = encoders[m].prepare(loaders[m]())
        except (MediaError, EncoderError) as e:
            problems.append(Problem(where, str(e), item.id))
        except Exception as e:  # a decoder bug must not take the batch down; report it
            problems.append(Problem(where, f"unexpected {type(e).__name__}: {e}", item.id))
    return prepared


# --------------------------------------------------------------------------- encoding (main thread)


def _encode_chunk(
    chunk: list[_Prepared], encoders: dict[str, Encoder], report: IngestReport
) -> dict[int, dict[str, Any]]:
    """Encode the chunk's inputs, one forward pass per modality and sub-batch; returns idx → {col: value}."""
    out: dict[int, dict[str, Any]] = {i: {} for i in range(len(chunk))}
    for m in MODALITIES:
        idx = [i for i, p in enumerate(chunk) if m in p.inputs]
        if not idx:
            continue
        enc = encoders[m]
        bs = max(1, enc.default_batch_size)
        for start in range(0, len(idx), bs):
            sub = idx[start : start + bs]
            t0 = time.perf_counter()
            try:
                res = enc.encode_prepared([chunk[i].inputs[m] for i in sub])
                results = [
                    (i, res.vectors[j], None if res.class_scores is None else res.class_scores[j])
                    for j, i in enumerate(sub)
                ]
            except Exception:
                # Find the culprit instead of losing the whole batch.
                results = []
                for i in sub:
                    try:
                        r = enc.encode_prepared([chunk[i].inputs[m]])
                        results.append((i, r.vectors[0], None if r.class_scores is None else r.class_scores[0]))
                    except Exception as e:
                        p = chunk[i]
                        p.problems.append(
                            Problem(
                                p.plan.item.files.get(m, p.plan.item.id), f"{m} encoding failed: {e}", p.plan.item.id
                            )
                        )
            report.encode_seconds[m] += time.perf_counter() - t0
            for i, vec, scores in results:
                if np.isfinite(vec).all():
                    out[i][m] = (vec, scores)
                    report.encoded[m] += 1
                else:
                    p = chunk[i]
                    p.problems.append(
                        Problem(
                            p.plan.item.files.get(m, p.plan.item.id),
                            f"{m} encoder returned non-finite values",
                            p.plan.item.id,
                        )
                    )
    return out


def _row(
    p: _Prepared,
    encoded: dict[str, Any],
    catalog: str,
    full_old: dict[str, Any] | None,
    has_scores: dict[str, bool],
    now: datetime,
) -> dict[str, Any]:
    item = p.plan.item
    row: dict[str, Any] = {
        "id": item.id,
        "catalog": catalog,
        "title": p.title,
        "text": p.text,
        "tags": p.tags,
        "metadata": json.dumps(p.metadata, ensure_ascii=False, default=str),
        "files": p.plan.files,
        "item_hash": p.plan.item_hash,
        "problems": [{"path": q.path, "reason": q.reason} for q in p.problems],
        "created_at": (full_old or {}).get("created_at") or now,
        "updated_at": now,
    }
    for m in MODALITIES:
        vec = scores = None
        if m in encoded:
            vec, scores = encoded[m]
        elif m in p.reuse and full_old is not None:
            vec = full_old.get(vector_column(m))
            scores = full_old.get(scores_column(m))
        row[f"has_{m}"] = vec is not None
        row[f"{m}_hash"] = p.hashes[m]
        row[vector_column(m)] = None if vec is None else np.asarray(vec, np.float32)
        if has_scores[m]:
            row[scores_column(m)] = None if vec is None or scores is None else np.asarray(scores, np.float32)
    return row


# --------------------------------------------------------------------------- the run


def run_ingest(
    store: Store,
    encoders: dict[str, Encoder],
    space: SharedSpace,
    catalog_dir: str | os.PathLike[str],
    *,
    config: IngestConfig | None = None,
    prune: bool = False,
    progress: bool = False,
) -> IngestReport:
    """Bring the store up to date with ``catalog_dir``.

    Parameters
    ----------
    store : Store
        The database; its ``items`` table must exist (see :meth:`mmrec.engine.Engine.ingest`).
    encoders : dict
        Modality → encoder, the same that made the stored vectors.
    space : SharedSpace
        Bridges and the current fusion layer, for the fused and shared-space columns.
    catalog_dir : path
        The catalog folder.
    config : IngestConfig, optional
    prune : bool
        Delete stored items of this catalog whose files are gone.
    progress : bool
        Show a progress bar on stderr.
    """
    config = config or IngestConfig()
    t0 = time.perf_counter()
    scan = scan_catalog(catalog_dir)
    root = scan.root
    catalog = str(root)
    report = IngestReport(catalog=catalog, db=store.uri, ignored_files=scan.ignored_files, manifest=scan.manifest)
    problems: list[Problem] = list(scan.problems)

    state = store.state(catalog)
    taken = store.ids_of_other_catalogs(catalog)
    plans: list[_Plan] = []
    kept_rows: list[dict[str, Any]] = []
    for item in scan.items:
        if item.id in taken:
            # Ids are the database's keys: a second catalog must not silently replace the first one's item.
            where = item.image or item.audio or (item.text_files or [item.id])[0]
            problems.append(
                Problem(where, f"item id {item.id!r} already belongs to catalog {taken[item.id]}; skipped", item.id)
            )
            continue
        old = state.get(item.id)
        files = _hash_files(root, item, old)
        item_hash = _item_hash(files, item.fields)
        if old is not None and old["item_hash"] == item_hash:
            report.unchanged += 1
            kept_rows.append(old)
            problems.extend(Problem(q["path"], q["reason"], item.id) for q in old.get("problems") or [])
            continue
        plans.append(_Plan(item, files, item_hash, old))

    scanned_ids = {it.id for it in scan.items}
    gone = sorted(set(state) - scanned_ids)
    has_scores = {m: scores_column(m) in store.items().schema.names for m in MODALITIES}

    written_rows: list[dict[str, Any]] = []
    if plans:
        for enc in encoders.values():
            enc.set_threads(config.threads)
        pbar = _progress_bar(len(plans), progress)
        buffer: list[dict[str, Any]] = []
        chunks = [plans[i : i + config.chunk_size] for i in range(0, len(plans), config.chunk_size)]
        with ThreadPoolExecutor(max_workers=max(1, config.decode_workers), thread_name_prefix="mmrec-decode") as pool:
            pending: deque[list[Future[_Prepared]]] = deque()

            def submit(k: int) -> None:
                if k < len(chunks):
                    pending.append([pool.submit(_prepare_item, pl, root, encoders, config) for pl in chunks[k]])

            submit(0)
            submit(1)  # decode one chunk ahead of the models
            for k in range(len(chunks)):
                prepared = [f.result() for f in pending.popleft()]
                submit(k + 2)
                encoded = _encode_chunk(prepared, encoders, report)
                reuse_ids = [p.plan.item.id for p in prepared if p.plan.old is not None]
                full_old = store.rows(reuse_ids) if reuse_ids else {}
                now = datetime.now(timezone.utc)
                rows = [
                    _row(p, encoded[i], catalog, full_old.get(p.plan.item.id), has_scores, now)
                    for i, p in enumerate(prepared)
                ]
                for row, values in zip(rows, space.fusion_values(rows), strict=True):
                    row.update(values)
                buffer.extend(rows)
                for p in prepared:
                    problems.extend(p.problems)
                    if p.plan.old is None:
                        report.added += 1
                    else:
                        report.updated += 1
                if len(buffer) >= config.write_batch:
                    store.upsert(buffer)
                    written_rows.extend(_light(r) for r in buffer)
                    buffer = []
                pbar.update(len(prepared))
            if buffer:
                store.upsert(buffer)
                written_rows.extend(_light(r) for r in buffer)
        pbar.close()
        report.wrote = True

    if gone:
        if prune:
            store.delete(gone)
            report.removed = len(gone)
            report.wrote = True
        else:
            report.missing = len(gone)
            kept_rows.extend(state[i] for i in gone)

    for row in kept_rows + written_rows:
        for m in MODALITIES:
            report.present[m] += bool(row.get(f"has_{m}"))

    report.problems = problems
    if store.replace_problems(catalog, [p.to_dict() for p in problems]):
        report.wrote = True
    if report.wrote:
        store.ensure_vector_index()
        store.optimize(config.keep_versions)
    report.seconds = time.perf_counter() - t0
    return report


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
