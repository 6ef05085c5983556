"""Rows written as Lance fragments by many processes, committed once by the single writer.

A distributed ingest (:mod:`mmrec.ingest.distributed`) has each worker write its rows as a Lance
fragment (data files only: no table version sees them yet) and hand back the fragment's metadata.
The driver then makes them visible in **one** commit under the writer: an ``Append`` when every row
is new, or an ``Update`` that also puts deletion vectors on the rows stored for the same ids, so that
readers see either the old rows or the new ones, never both and never neither. A crash before the
commit leaves only unreferenced data files: no version reads them, the next run writes its own, and
an optimise deletes them once they are seven days old (Lance's guard for writes still in flight).

This uses Lance's fragment API (``pylance``, the ``ray`` extra) on the same dataset LanceDB opens;
LanceDB 0.40 bundles Lance 13, and the pinned ``pylance`` writes the table's own data storage version.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mmrec.errors import StoreError
from mmrec.store.items import Store
from mmrec.store.sql import first_line, id_in
from mmrec.store.writer import retry_conflicts


def _lance() -> Any:
    try:
        import lance
    except ImportError as e:
        raise StoreError(
            "a distributed ingest needs the `ray` extra (pylance, ray[data]): pip install 'mmrec[ray]'"
        ) from e
    return lance


def fragment_target(store: Store) -> dict[str, Any]:
    """What a worker needs to write fragments of ``store``'s items table (picklable).

    Returns
    -------
    dict
        ``uri`` of the items dataset, its Arrow ``schema``, ``data_storage_version`` and ``storage_options``.
    """
    tbl = store.items()
    ds = _lance().dataset(tbl.uri, storage_options=store.storage_options or None)
    return {
        "uri": tbl.uri,
        "schema": tbl.schema,
        "data_storage_version": ds.data_storage_version,
        "storage_options": dict(store.storage_options),
    }


def write_fragment(target: dict[str, Any], rows: list[dict[str, Any]]) -> str | None:
    """Write ``rows`` as one uncommitted fragment of the target table; its metadata as JSON (``None`` for no rows)."""
    if not rows:
        return None
    import pyarrow as pa
    from lance.fragment import LanceFragment

    data = pa.Table.from_pylist(rows, schema=target["schema"])
    frag = LanceFragment.create(
        target["uri"],
        data,
        schema=target["schema"],
        data_storage_version=target["data_storage_version"],
        storage_options=target["storage_options"] or None,
    )
    meta = frag.to_json()  # a dict in pylance 14, a string in older releases
    return meta if isinstance(meta, str) else json.dumps(meta)


def commit_fragments(store: Store, fragments: Sequence[str], ids: Sequence[str]) -> int:
    """Make written fragments part of the items table in one commit; returns the new table version.

    Call under ``store.writer.hold(...)``. The rows of ``ids`` that the table holds *at commit time*
    are deleted in the same commit, not only those the driver planned to replace: another ingest of
    the same catalog may have committed them after this run planned (both planned them as new), and
    each id must end up stored exactly once, as the local path's merge on ``id`` guarantees.

    Parameters
    ----------
    store : Store
    fragments : sequence of str
        Fragment metadata JSON from :func:`write_fragment`.
    ids : sequence of str
        Every id in the new fragments.
    """
    lance = _lance()
    from lance.fragment import FragmentMetadata

    new = [FragmentMetadata.from_json(f) for f in fragments if f]
    if not new:
        return int(store.version() or 0)
    uri, options = store.items().uri, store.storage_options or None

    def commit() -> int:
        ds = lance.dataset(uri, storage_options=options)  # the latest version: deletions are computed on it
        removed, updated = _deletions(ds, ids)
        if removed or updated:
            op: Any = lance.LanceOperation.Update(
                removed_fragment_ids=removed, updated_fragments=updated, new_fragments=new
            )
        else:
            op = lance.LanceOperation.Append(new)
        try:
            done = lance.LanceDataset.commit(uri, op, read_version=ds.version, storage_options=options)
        except (OSError, RuntimeError, ValueError) as e:
            if "conflict" in str(e).lower() or "retryable" in str(e).lower():
                raise  # retried below: another machine's writer committed first
            raise StoreError(f"cannot commit the ingested fragments to {store.uri!r}: {first_line(e)}") from e
        return int(done.version)

    version = retry_conflicts(commit)
    store.reopen()
    return version


def _deletions(ds: Any, ids: Sequence[str]) -> tuple[list[int], list[Any]]:
    """Fragments to drop whole and fragments with new deletion vectors, so that no stored row of ``ids`` is left.

    One scan of the ``id`` column (with row addresses) matched against ``ids`` in Arrow: linear in the
    table, where one ``id IN (...)`` query per thousand ids would scan it once per thousand.
    """
    if not ids or ds.count_rows() == 0:
        return [], []
    import pyarrow as pa
    import pyarrow.compute as pc

    tbl = ds.to_table(columns=["id"], with_row_address=True)
    hit = tbl.filter(pc.is_in(tbl.column("id"), value_set=pa.array(list(ids), pa.string())))
    by_fragment: dict[int, list[str]] = {}
    for item_id, addr in zip(hit.column("id").to_pylist(), hit.column("_rowaddr").to_pylist(), strict=True):
        by_fragment.setdefault(int(addr) >> 32, []).append(item_id)  # row address = fragment id << 32 | offset
    removed: list[int] = []
    updated: list[Any] = []
    for frag_id, frag_ids in sorted(by_fragment.items()):
        meta = ds.get_fragment(frag_id).delete(id_in(sorted(set(frag_ids))))
        if meta is None:  # every row of the fragment is replaced
            removed.append(frag_id)
        else:
            updated.append(meta)
    return removed, updated
