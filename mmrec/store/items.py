"""The LanceDB store: the ``items`` table and the ``problems`` table.

One row per item, with its files and their content hashes, title, text, tags,
metadata, which modalities are present, each modality's vector and class
scores, the problems met while decoding it, and timestamps. The identities of
the encoders that made the vectors are in the table's schema metadata; opening
the table with other encoders is an error rather than silently mixed vectors.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import numpy as np

from encoders.base import MODALITIES, EncoderIdentity
from mmrec.errors import EncoderMismatchError, InvalidArgumentError, ItemNotFoundError, MMRecError, StoreError
from mmrec.names import FUSED_COLUMN, LISTING_COLUMNS, STATE_COLUMNS, scores_column, shared_column, vector_column
from mmrec.store.checkpoints import CheckpointTables
from mmrec.store.location import check_uri, storage_options
from mmrec.store.sql import check_where, first_line, id_in, in_chunks, sql_quote
from mmrec.store.vector_index import INDEX_MIN_ROWS, build_index, ensure_id_index, indexed_rows, search_rows
from mmrec.store.writer import Writer, is_local, local_path, retry_conflicts

T = TypeVar("T")

# lance logs a warning for every table it creates; keep the CLI's output readable.
os.environ.setdefault("LANCE_LOG", "error")

ITEMS_TABLE = "items"
PROBLEMS_TABLE = "problems"
SCHEMA_VERSION = "1"
_META_ENCODERS = b"mmrec.encoders"
_META_VERSION = b"mmrec.schema_version"
_META_FUSION = b"mmrec.fusion"


def items_schema(
    identities: dict[str, EncoderIdentity], specs: dict[str, str], n_classes: dict[str, int], fusion: dict[str, Any]
):
    """The Arrow schema of the ``items`` table for these encoders and this fusion layer."""
    import pyarrow as pa

    file_t = pa.struct(
        [
            ("role", pa.string()),
            ("path", pa.string()),
            ("hash", pa.string()),
            ("size", pa.int64()),
            ("mtime_ns", pa.int64()),
        ]
    )
    problem_t = pa.struct([("path", pa.string()), ("reason", pa.string())])
    ts = pa.timestamp("us", tz="UTC")
    fields = [
        pa.field("id", pa.string(), nullable=False),
        pa.field("catalog", pa.string()),
        pa.field("title", pa.string()),
        pa.field("text", pa.string()),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("metadata", pa.string()),  # JSON object: arbitrary user keys
        pa.field("files", pa.list_(file_t)),
        pa.field("item_hash", pa.string()),
    ]
    for m in MODALITIES:
        fields.append(pa.field(f"has_{m}", pa.bool_()))
        fields.append(pa.field(f"{m}_hash", pa.string()))
        fields.append(pa.field(vector_column(m), pa.list_(pa.float32(), identities[m].dim)))
        if n_classes.get(m):
            fields.append(pa.field(scores_column(m), pa.list_(pa.float32(), n_classes[m])))
    shared_dim = identities["text"].dim  # the shared space is the text encoder's
    fields.append(
        pa.field(FUSED_COLUMN, pa.list_(pa.float32(), shared_dim), metadata={_META_FUSION: json.dumps(fusion).encode()})
    )
    fields += [pa.field(shared_column(m), pa.list_(pa.float32(), shared_dim)) for m in MODALITIES]
    fields += [
        pa.field("fusion_weights", pa.list_(pa.float32(), len(MODALITIES))),
        pa.field("problems", pa.list_(problem_t)),
        pa.field("created_at", ts),
        pa.field("updated_at", ts),
    ]
    meta = {m: {"spec": specs[m], **identities[m].to_dict()} for m in MODALITIES}
    return pa.schema(
        fields, metadata={_META_ENCODERS: json.dumps(meta).encode(), _META_VERSION: SCHEMA_VERSION.encode()}
    )


def problems_schema():
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("catalog", pa.string()),
            pa.field("path", pa.string()),
            pa.field("reason", pa.string()),
            pa.field("item_id", pa.string()),
        ]
    )


#: How stale a table handle may be: another process's commits are seen within this interval.
READ_CONSISTENCY = timedelta(milliseconds=500)


class Store(CheckpointTables):
    """A LanceDB database holding one catalog index.

    Parameters
    ----------
    uri : str or path
        A local folder (created when missing) or an object store (``s3://``, ``gs://``, ``az://``; see
        :mod:`mmrec.store.location` for the credentials, read from the cloud's standard environment).
    """

    def __init__(self, uri: str | os.PathLike[str], *, wait: bool = True, on_wait: Any = None) -> None:
        self.uri = check_uri(str(uri))
        #: LanceDB/Lance ``storage_options`` of an object store (from the environment; empty for a folder).
        self.storage_options = storage_options(self.uri)
        self._db: Any = None
        self._items: Any = None
        self._indexed: dict[str, int] = {}  # column -> rows its vector index covers (0: none)
        #: The one writer of this database (see :mod:`mmrec.store.writer`).
        self.writer = Writer(self.uri, wait=wait, on_wait=on_wait, on_acquire=self.reopen)

    # ----------------------------------------------------------------- connection

    @property
    def db(self) -> Any:
        """The LanceDB connection, opened on first use.

        A local path that does not exist is only created by a write (:meth:`Writer.hold` makes the
        folder), so a read command on a mistyped path fails with one line and creates nothing.
        """
        if self._db is None:
            import lancedb

            if is_local(self.uri):
                path = local_path(self.uri)
                if not path.exists():
                    raise StoreError(
                        f"no database at {self.uri!r} (no items yet); run `mmrec ingest CATALOG --db {self.uri}` first"
                    )
                if not path.is_dir():
                    raise StoreError(f"{self.uri!r} is a file, not a database folder")
            try:
                # Re-check the newest table version at most this often: another process's writes (an
                # ingest, the service recording events) become visible without re-opening anything.
                self._db = lancedb.connect(
                    self.uri, read_consistency_interval=READ_CONSISTENCY, storage_options=self.storage_options or None
                )
            except Exception as e:  # lancedb raises ValueError/OSError/RuntimeError for bad URIs
                raise StoreError(f"cannot open database {self.uri!r}: {first_line(e)}") from e
        return self._db

    def exists(self) -> bool:
        """Whether there is a database folder (always true for a remote URI, which is only known on use)."""
        return not is_local(self.uri) or local_path(self.uri).is_dir()

    def reopen(self) -> None:
        """Drop the open table handles (after another process cleaned the versions they pointed to)."""
        self._items = None
        self._indexed = {}

    def read(self, fn: Callable[[], T], where: str | None = None) -> T:
        """Run a read; re-open the tables and retry once when another process cleaned the version it used.

        Errors become one line without internal paths: :class:`InvalidArgumentError` naming the filter
        when there is one (LanceDB's message for bad SQL), else :class:`StoreError`.
        """
        try:
            return fn()
        except MMRecError:
            raise
        except Exception as e:  # lance raises RuntimeError/OSError/ValueError alike
            if _is_missing_file(e):
                self.reopen()
                try:
                    return fn()
                except MMRecError:
                    raise
                except Exception as again:
                    e = again
            if _is_missing_file(e):
                raise StoreError(f"database {self.uri!r} changed while it was read; try again") from e
            if where:
                raise InvalidArgumentError(f"invalid filter {where!r}: {_clean(first_line(e))}") from e
            raise StoreError(f"cannot read database {self.uri!r}: {_clean(first_line(e))}") from e

    # ----------------------------------------------------------------- tables

    def table_names(self) -> list[str]:
        if not self.exists():
            return []
        try:
            res = self.db.list_tables()
        except StoreError:
            raise
        except Exception as e:  # a folder that is not a LanceDB database, an unreadable one
            raise StoreError(f"cannot read database {self.uri!r}: {first_line(e)}") from e
        return list(getattr(res, "tables", res))

    def has_items(self) -> bool:
        return ITEMS_TABLE in self.table_names()

    def items(self) -> Any:
        """The ``items`` table; :class:`StoreError` when the database has none yet."""
        if self._items is None:
            if is_local(self.uri) and not local_path(self.uri).is_dir():
                raise StoreError(
                    f"no database at {self.uri!r} (no items yet); run `mmrec ingest CATALOG --db {self.uri}` first"
                )
            if not self.has_items():
                raise StoreError(
                    f"database {self.uri!r} has no items yet; run `mmrec ingest CATALOG --db {self.uri}` first"
                )
            try:
                self._items = self.db.open_table(ITEMS_TABLE)
            except Exception as e:
                raise StoreError(f"cannot open the items table of {self.uri!r}: {first_line(e)}") from e
        return self._items

    def column_names(self) -> list[str]:
        """Columns of the items table (older databases may lack newer columns)."""
        return list(self.items().schema.names)

    def encoder_specs(self) -> dict[str, dict[str, Any]] | None:
        """Per modality: the registry spec and identity that made the stored vectors (``None`` when empty)."""
        if not self.has_items():
            return None
        meta = self.items().schema.metadata or {}
        raw = meta.get(_META_ENCODERS)
        if raw is None:
            raise StoreError(f"table {ITEMS_TABLE!r} in {self.uri!r} was not written by mmrec (no encoder metadata)")
        return json.loads(raw)

    def create_items(
        self,
        identities: dict[str, EncoderIdentity],
        specs: dict[str, str],
        n_classes: dict[str, int],
        fusion: dict[str, Any],
    ) -> Any:
        if is_local(self.uri):  # the first write of a new database makes its folder
            local_path(self.uri).mkdir(parents=True, exist_ok=True)
        schema = items_schema(identities, specs, n_classes, fusion)
        self._items = self.db.create_table(ITEMS_TABLE, schema=schema)
        return self._items

    def check_encoders(self, identities: dict[str, EncoderIdentity]) -> None:
        """Raise :class:`EncoderMismatchError` when the stored vectors came from other encoders."""
        stored = self.encoder_specs()
        if stored is None:
            return
        for m, ident in identities.items():
            s = stored.get(m)
            if s is None:
                continue
            old = EncoderIdentity.from_dict(s)
            if old != ident:
                raise EncoderMismatchError(
                    f"database {self.uri!r} holds {m} vectors made by {old}; the requested {m} encoder is {ident}. "
                    f"Use a new --db, or the same encoder ({s['spec']!r})"
                )

    # ----------------------------------------------------------------- fusion

    def fusion_identity(self) -> dict[str, Any] | None:
        """The fusion layer that made the stored fused vectors (name, version, fingerprint)."""
        if not self.has_items():
            return None
        raw = (self.items().schema.field(FUSED_COLUMN).metadata or {}).get(_META_FUSION)
        return json.loads(raw) if raw else None

    def set_fusion_identity(self, identity: dict[str, Any]) -> None:
        self.items().update_field_metadata(
            {"path": FUSED_COLUMN, "metadata": {_META_FUSION.decode(): json.dumps(identity)}}
        )
        self._items = None  # reopen to see the new schema

    def update_columns(self, rows: list[dict[str, Any]]) -> None:
        """Replace some columns of existing rows (each row: ``id`` plus the columns), in one commit."""
        if not rows:
            return
        import pyarrow as pa

        tbl = self.items()
        schema = pa.schema([tbl.schema.field(n) for n in rows[0]])
        data = pa.Table.from_pylist(rows, schema=schema)
        # Idempotent (a merge on id): safe to retry when another writer committed first (object storage).
        retry_conflicts(lambda: tbl.merge_insert("id").when_matched_update_all().execute(data, on_bad_vectors="null"))

    # ----------------------------------------------------------------- reads

    def state(self, catalog: str) -> dict[str, dict[str, Any]]:
        """What the last ingest stored for ``catalog``: id → row of :data:`STATE_COLUMNS`."""
        if not self.has_items():
            return {}
        tbl = self.items()
        rows = (
            tbl.search()
            .where(f"catalog = {sql_quote(catalog)}")
            .select(STATE_COLUMNS)
            .limit(None)
            .to_arrow()
            .to_pylist()
        )
        return {r["id"]: r for r in rows}

    def ids_of_other_catalogs(self, catalog: str) -> dict[str, str]:
        """Item id → catalog folder, for the items that came from other catalogs."""
        if not self.has_items():
            return {}
        q = self.items().search().where(f"catalog != {sql_quote(catalog)}").select(["id", "catalog"]).limit(None)
        return {r["id"]: r["catalog"] for r in q.to_arrow().to_pylist()}

    def rows(self, ids: Sequence[str], columns: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Full rows (or ``columns``) of the given ids."""
        out: dict[str, dict[str, Any]] = {}
        if not ids or not self.has_items():
            return out
        for chunk in in_chunks(ids):

            def read(chunk: Any = chunk) -> list[dict[str, Any]]:
                q = self.items().search().where(id_in(chunk)).limit(None)
                if columns:
                    q = q.select(columns)
                return q.to_arrow().to_pylist()

            for r in self.read(read):
                out[r["id"]] = r
        return out

    def fused_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray | None]:
        """Item id → fused vector ``(D,)`` float32 (``None`` for an item without one); unknown ids are absent."""
        rows = self.rows(sorted(set(ids)), columns=["id", FUSED_COLUMN])
        return {
            i: None if r.get(FUSED_COLUMN) is None else np.asarray(r[FUSED_COLUMN], np.float32) for i, r in rows.items()
        }

    def item_vectors(self, column: str = FUSED_COLUMN) -> tuple[list[str], np.ndarray]:
        """Every item's id and ``column`` vector, in table order: ``(ids, (N, D) float32)``; zeros where null."""
        tbl = self.items().search().select(["id", column]).limit(None).to_arrow()
        ids = tbl.column("id").to_pylist()
        col = tbl.column(column).combine_chunks()
        dim = col.type.list_size
        # .values includes the slots of null vectors (as NaN or garbage); zero them.
        vecs = np.asarray(col.values.to_numpy(zero_copy_only=False), np.float32)[col.offset * dim :]
        vecs = vecs[: len(col) * dim].reshape(len(col), dim)
        vecs = np.where(np.asarray(col.is_valid())[:, None], np.nan_to_num(vecs), 0.0).astype(np.float32)
        return ids, vecs

    def media_flags(self, ids: Sequence[str]) -> dict[str, tuple[bool, bool]]:
        """Item id → ``(has_image, has_audio)``, in one query."""
        rows = self.rows(list(ids), columns=["id", "has_image", "has_audio"])
        return {i: (bool(r.get("has_image")), bool(r.get("has_audio"))) for i, r in rows.items()}

    def get(self, item_id: str, columns: list[str] | None = None) -> dict[str, Any]:
        row = self.rows([item_id], columns).get(item_id)
        if row is None:
            raise ItemNotFoundError(f"no item with id {item_id!r} in {self.uri!r}")
        return row

    def list(
        self, limit: int | None = 50, offset: int = 0, where: str | None = None, columns: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Items sorted by id, optionally filtered with a SQL ``where`` clause."""
        if limit is not None and limit < 0:
            raise InvalidArgumentError(f"limit must be >= 0, got {limit}")
        if offset < 0:
            raise InvalidArgumentError(f"offset must be >= 0, got {offset}")
        where = check_where(where)

        def read() -> list[dict[str, Any]]:
            q = self.items().search().select(columns or LISTING_COLUMNS).limit(None)
            if where:
                q = q.where(where)
            return q.to_arrow().to_pylist()

        rows = self.read(read, where)
        rows.sort(key=lambda r: r["id"])
        end = None if limit is None else offset + limit
        return rows[offset:end]

    def count(self, where: str | None = None) -> int:
        where = check_where(where)
        if not self.has_items():
            return 0
        return self.read(lambda: int(self.items().count_rows(where)), where)

    def problems(self) -> list[dict[str, Any]]:
        if PROBLEMS_TABLE not in self.table_names():
            return []
        return self.db.open_table(PROBLEMS_TABLE).to_arrow().to_pylist()

    # ----------------------------------------------------------------- writes

    def upsert(self, rows: list[dict[str, Any]]) -> None:
        """Insert or replace rows by id, in one commit."""
        if not rows:
            return
        import pyarrow as pa

        tbl = self.items()
        data = pa.Table.from_pylist(rows, schema=tbl.schema)
        # Absent modalities are null vectors, which lancedb's vector check counts as "bad";
        # the ingest pipeline has already dropped non-finite vectors, so nulls are the only case.
        retry_conflicts(
            lambda: (
                tbl.merge_insert("id")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(data, on_bad_vectors="null")
            )
        )

    def duplicate_ids(self) -> list[str]:
        """Ids stored in more than one row (left by concurrent writers before the single writer existed)."""
        if not self.has_items():
            return []
        ids = self.read(lambda: self.items().search().select(["id"]).limit(None).to_arrow().column("id").to_pylist())
        if len(ids) == len(set(ids)):
            return []
        seen: set[str] = set()
        return sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]

    def dedupe_ids(self) -> int:
        """Keep one row per id (the most recently updated); returns the rows removed. Call under the writer.

        The stale copies are deleted by row id in one commit, so a crash cannot lose the kept copy.
        """
        dups = self.duplicate_ids()
        if not dups:
            return 0
        tbl = self.items()
        stale: list[int] = []
        for chunk in in_chunks(dups):
            q = tbl.search().where(id_in(chunk)).select(["id", "updated_at"]).with_row_id(True).limit(None)
            newest: dict[str, dict[str, Any]] = {}
            for r in q.to_arrow().to_pylist():
                best = newest.get(r["id"])
                if best is None or (r["updated_at"], r["_rowid"]) > (best["updated_at"], best["_rowid"]):
                    if best is not None:
                        stale.append(int(best["_rowid"]))
                    newest[r["id"]] = r
                else:
                    stale.append(int(r["_rowid"]))
        for start in range(0, len(stale), 1000):
            tbl.delete(f"_rowid IN ({', '.join(str(i) for i in stale[start : start + 1000])})")
        self.reopen()
        return len(stale)

    def delete(self, ids: Iterable[str]) -> int:
        ids = list(ids)
        tbl = self.items()
        for chunk in in_chunks(ids):
            tbl.delete(id_in(chunk))
        return len(ids)

    def replace_problems(self, catalog: str, problems: list[dict[str, Any]]) -> bool:
        """Make the stored problems of ``catalog`` equal ``problems``; returns whether anything was written."""
        import pyarrow as pa

        new = sorted((p["path"], p["reason"], p.get("item_id") or "") for p in problems)
        if PROBLEMS_TABLE in self.table_names():
            tbl = self.db.open_table(PROBLEMS_TABLE)
            old_rows = tbl.search().where(f"catalog = {sql_quote(catalog)}").limit(None).to_arrow().to_pylist()
            old = sorted((r["path"], r["reason"], r["item_id"] or "") for r in old_rows)
            if old == new:
                return False
            if old_rows:
                tbl.delete(f"catalog = {sql_quote(catalog)}")
        elif not new:
            return False
        else:
            tbl = self.db.create_table(PROBLEMS_TABLE, schema=problems_schema())
        if new:
            rows = [{"catalog": catalog, "path": p, "reason": r, "item_id": i or None} for p, r, i in new]
            tbl.add(pa.Table.from_pylist(rows, schema=problems_schema()))
        return True

    def vector_indexed(self, column: str = FUSED_COLUMN) -> bool:
        """Whether ``column`` has a vector index (remembered until this Store changes the table)."""
        if column not in self._indexed:
            self._indexed[column] = indexed_rows(self.items(), column) if self.has_items() else 0
        return self._indexed[column] > 0

    def ensure_vector_index(
        self, column: str = FUSED_COLUMN, min_rows: int = INDEX_MIN_ROWS, rebuild: bool = False
    ) -> bool:
        """Build an IVF_PQ index on ``column`` once the table has ``min_rows`` rows; returns whether one was built.

        Its partitions, probes and refine factor scale with the table (:mod:`mmrec.store.vector_index`).
        New rows are folded in by :meth:`optimize`; ``rebuild`` retrains it (after ``mmrec train`` rewrote
        every vector).
        """
        tbl = self.items()
        n = tbl.count_rows()
        if n >= min_rows and ensure_id_index(tbl):  # reads by id (a LanceDB-served snapshot's) look rows up
            self._items = None
        if n < min_rows or (self.vector_indexed(column) and not rebuild):
            return False
        build_index(tbl, column, n)
        self._items = None
        self._indexed[column] = n
        return True

    def nearest(self, vectors: list[Any], column: str, columns: list[str], limit: int, filters: list[str]) -> Any:
        """Nearest items (cosine) to each of ``vectors`` in one LanceDB call, newest version: one list of rows per vector.

        ``filters`` are SQL conditions, ANDed and applied inside the search (prefilter), so a selective
        filter still yields ``limit`` rows. An indexed column is searched with the probes and refine factor
        planned for its size (:func:`mmrec.store.vector_index.search_rows`; a serving snapshot calls it on
        its own handle, pinned at its version).
        """
        query: Any = vectors[0] if len(vectors) == 1 else list(vectors)
        conds = [w for f in filters if (w := check_where(f))]  # one filter as given: errors quote the caller's text
        where = conds[0] if len(conds) == 1 else " AND ".join(f"({w})" for w in conds)

        def read() -> Any:
            n = self._indexed[column] if self.vector_indexed(column) else 0
            return search_rows(self.items(), query, column, columns, limit, n, where or None, len(vectors))

        out: list[list[dict[str, Any]]] = [[] for _ in vectors]
        for r in self.read(read, where or None).to_pylist():
            out[int(r.pop("query_index", 0))].append(r)
        return out

    def optimize(self, keep_versions: timedelta) -> None:
        """Compact fragments, update indices and drop versions older than ``keep_versions``."""
        for name in self.table_names():
            self.db.open_table(name).optimize(cleanup_older_than=keep_versions)
        self._items = None

    def version(self) -> int | None:
        return self.items().version if self.has_items() else None

    def size_on_disk(self) -> int | None:
        """Bytes under the database folder (``None`` for an object store: listing a bucket is not free)."""
        if not is_local(self.uri):
            return None
        return sum(f.stat().st_size for f in local_path(self.uri).rglob("*") if f.is_file())


def jsonable_row(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as plain JSON values: ISO timestamps, lists for arrays, ``metadata`` parsed."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, datetime):
            v = v.isoformat()
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        elif k == "metadata" and isinstance(v, str):
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                pass
        out[k] = v
    return out


def _is_missing_file(e: BaseException) -> bool:
    """A read that failed because a data file or manifest of the version it used is gone (cleaned)."""
    text = str(e)
    return isinstance(e, FileNotFoundError) or "Not found" in text or "not found" in text and ".lance" in text


_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[^\s,;:'\"()]+){2,}")


def _clean(message: str) -> str:
    """A library message without file paths (they say nothing to a user and leak the server's layout)."""
    return _PATH.sub("<path>", message)
