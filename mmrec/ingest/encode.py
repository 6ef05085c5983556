"""Ingest, step 2: decode and encode the planned items, chunk by chunk.

Decoding and preprocessing run in worker threads, a chunk ahead of the models, so that the cores
spend their time in the forward passes; each model runs once per chunk over all the chunk's items
of its modality. Within a changed item only the modalities whose input changed are encoded again.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from encoders.base import Encoder
from encoders.errors import EncoderError
from mmrec.catalog.media import load_audio, load_image, read_text
from mmrec.catalog.scan import Problem, read_sidecar
from mmrec.config import IngestConfig
from mmrec.errors import MediaError
from mmrec.ingest.plan import Plan, hash_bytes
from mmrec.ingest.report import IngestReport
from mmrec.names import MODALITIES, parse_tags, scores_column, vector_column
from mmrec.space import SharedSpace
from mmrec.store.items import Store

#: Sidecar keys with a meaning; the others become metadata.
_TEXT_KEYS = ("text", "description", "caption")


@dataclass
class Prepared:
    """An item decoded and preprocessed in a worker thread."""

    plan: Plan
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


def encode_plans(
    plans: list[Plan],
    root: Path,
    store: Store,
    encoders: Mapping[str, Encoder],
    space: SharedSpace | Callable[[], SharedSpace],
    config: IngestConfig,
    report: IngestReport,
) -> Iterator[tuple[list[Prepared], list[dict[str, Any]]]]:
    """Decode, encode and fuse ``plans`` a chunk at a time: yields ``(prepared items, rows to write)``.

    Counts the encoded modalities in ``report``; a failed file is a problem of its item, never of the chunk.
    Only the encoders of modalities that some plan needs are touched (``space`` may be a callable,
    called at the first chunk).
    """
    catalog = str(root)
    has_scores = {m: scores_column(m) in store.column_names() for m in MODALITIES}
    for m in _modalities_with_work(plans):
        encoders[m].set_threads(config.threads)
    chunks = [plans[i : i + config.chunk_size] for i in range(0, len(plans), config.chunk_size)]
    with ThreadPoolExecutor(max_workers=max(1, config.decode_workers), thread_name_prefix="mmrec-decode") as pool:
        pending: deque[list[Future[Prepared]]] = deque()

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
            if not isinstance(space, SharedSpace):
                space = space()
            for row, values in zip(rows, space.fusion_values(rows), strict=True):
                row.update(values)
            yield prepared, rows


def _modalities_with_work(plans: list[Plan]) -> list[str]:
    """The modalities some planned item may encode (an item with files of that kind, or any text)."""
    roles = {role for pl in plans for role in pl.item.files}
    return [m for m in MODALITIES if m == "text" or m in roles]


def _title_from_id(item_id: str) -> str:
    stem = item_id.rsplit("/", 1)[-1]
    return " ".join(stem.replace("_", " ").replace("-", " ").split()) or stem


def _prepare_item(plan: Plan, root: Path, encoders: Mapping[str, Encoder], config: IngestConfig) -> Prepared:
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
        "text": hash_bytes(text.encode()) if text else None,
        "image": file_hashes.get("image"),
        "audio": file_hashes.get("audio"),
    }
    prepared = Prepared(plan, title, text, tags, metadata, hashes, problems=problems)

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
    chunk: list[Prepared], encoders: Mapping[str, Encoder], report: IngestReport
) -> dict[int, dict[str, Any]]:
    """Encode the chunk's inputs, one forward pass per modality and sub-batch; returns idx → {col: value}."""
    out: dict[int, dict[str, Any]] = {i: {} for i in range(len(chunk))}
    for m in MODALITIES:
        idx = [i for i, p in enumerate(chunk) if m in p.inputs]
        if not idx:
            continue
        enc = encoders[m]
        # Load the model and check it against the database's identity here, outside the per-item
        # isolation below: a missing model or other weights is the run's error, not each item's problem.
        verify = getattr(enc, "verified_identity", None)
        if verify is not None:
            verify()
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
    p: Prepared,
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
