"""Ingest, step 1: decide what changed since the last run, by content hash.

Every file's content hash is stored; a file whose size and modification time are unchanged is not
read again, and an item whose files and manifest fields are unchanged is not touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmrec.catalog.scan import CatalogItem, Problem, ScanResult
from mmrec.store.items import Store


@dataclass
class Plan:
    """One new or changed item and what is known about its files."""

    item: CatalogItem
    files: list[dict[str, Any]]
    item_hash: str
    old: dict[str, Any] | None


@dataclass
class IngestPlan:
    """What a run must do for one catalog."""

    #: New and changed items, to decode and encode.
    todo: list[Plan] = field(default_factory=list)
    #: Stored rows (state columns) of the unchanged items.
    kept: list[dict[str, Any]] = field(default_factory=list)
    #: Ids stored for this catalog whose files are gone, sorted.
    gone: list[str] = field(default_factory=list)
    #: Stored state of every item of this catalog: id → row.
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Problems known before encoding: the scan's, unchanged items' stored ones, id clashes.
    problems: list[Problem] = field(default_factory=list)


def plan_ingest(store: Store, scan: ScanResult) -> IngestPlan:
    """Compare a scanned catalog with what the store holds for it.

    Parameters
    ----------
    store : Store
    scan : ScanResult
        The catalog as scanned now (:func:`mmrec.catalog.scan.scan_catalog`).
    """
    root = scan.root
    catalog = str(root)
    state = store.state(catalog)
    taken = store.ids_of_other_catalogs(catalog)
    plan = IngestPlan(state=state, problems=list(scan.problems))
    for item in scan.items:
        if item.id in taken:
            # Ids are the database's keys: a second catalog must not silently replace the first one's item.
            where = item.image or item.audio or (item.text_files or [item.id])[0]
            plan.problems.append(
                Problem(where, f"item id {item.id!r} already belongs to catalog {taken[item.id]}; skipped", item.id)
            )
            continue
        old = state.get(item.id)
        files = _hash_files(root, item, old)
        item_hash = _item_hash(files, item.fields)
        if old is not None and old["item_hash"] == item_hash:
            plan.kept.append(old)
            plan.problems.extend(Problem(q["path"], q["reason"], item.id) for q in old.get("problems") or [])
            continue
        plan.todo.append(Plan(item, files, item_hash, old))
    plan.gone = sorted(set(state) - {it.id for it in scan.items})
    return plan


# --------------------------------------------------------------------------- hashing


def hash_bytes(data: bytes) -> str:
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
    return hash_bytes(key.encode())


# --------------------------------------------------------------------------- decoding (worker threads)
