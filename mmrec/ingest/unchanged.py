"""A re-ingest that finds nothing changed, answered without opening the database.

Opening a LanceDB database costs ~3.6 s of CPU here before the first read (``import lancedb``
alone), which is most of a no-op re-ingest. Its answer, though, is a function of two things only:
the database's state and the catalog's files. After a run that found nothing to do (no repair, no
encoding, no write), :class:`UnchangedMemo` keeps that run's report in the cache folder, keyed on

* every table's **latest version** (each table folder's newest ``_versions/*.manifest``: its
  number, size and modification time; any commit of any table, a drop and re-create included,
  adds a manifest, so any write anywhere changes the key), read before the run and checked
  unchanged after it (a concurrent writer makes the run not remembered);
* the catalog: every path the scan walks with its kind, size and ``mtime_ns`` (for a manifest
  catalog, the scanned rows and each named file's stat) — the same test the plan uses to trust a
  stored content hash — taken before the scan, so a file changed during the run shows up next time;
* the code (mmrec's version, this format), the database and catalog paths, ``prune``, and the
  stored encoder specs (asking for other encoders still fails as before).

The next run over the same database and catalog first compares that key, with nothing but
``os.stat`` and a JSON file; when it matches it returns the remembered report (its time is the new
run's), and otherwise runs as before. Local databases only: an object store's versions are not
files to stat.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from mmrec.catalog.scan import Problem
from mmrec.ingest.report import IngestReport
from mmrec.store.location import is_local, local_path

#: Bumped whenever what the key covers or the file's layout changes.
FORMAT = 1
_U64 = (1 << 64) - 1


def table_versions(db: Path) -> list[list[Any]] | None:
    """``[table, version, manifest size, manifest mtime_ns]`` per ``*.lance`` folder of ``db``; ``None`` if unreadable.

    Lance names manifests ``<version>.manifest`` or, in its newer scheme, ``<2^64-1-version>.manifest``
    (so that a listing in order starts with the newest); either way the newest is the highest version.
    """
    out: list[list[Any]] = []
    try:
        tables = sorted((p for p in os.scandir(db) if p.name.endswith(".lance") and p.is_dir()), key=lambda p: p.name)
        for t in tables:
            newest: tuple[int, str] | None = None
            for e in os.scandir(os.path.join(t.path, "_versions")):
                stem, dot, ext = e.name.partition(".")
                if ext != "manifest" or not stem.isdigit():
                    continue
                n = int(stem)
                version = _U64 - n if n > (1 << 63) else n
                if newest is None or version > newest[0]:
                    newest = (version, e.path)
            if newest is None:
                return None
            st = os.stat(newest[1])
            out.append([t.name, newest[0], st.st_size, st.st_mtime_ns])
    except OSError:
        return None
    return out or None


def _version() -> str:
    # The installed distribution's (mmrec/__init__ would import the Engine's layer: an upward import).
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mmrec")
    except PackageNotFoundError:
        return "unknown"


def _stat_entry(path: str) -> list[Any]:
    """``[kind, size, mtime_ns]`` of one path, symlinks followed; ``["!errno", is_symlink]`` when it cannot be stat'ed."""
    import stat

    try:
        st = os.stat(path)
    except OSError as e:
        return [f"!{e.errno}", os.path.islink(path)]
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
    return (
        [kind, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino]
        if kind == "dir"
        else [kind, st.st_size, st.st_mtime_ns]
    )


def _listing(root: Path, h: Any) -> None:
    """Feed ``h`` every path the folder scan looks at (as :func:`mmrec.catalog.scan._walk` walks) with its stat."""
    seen: set[tuple[int, int]] = set()
    top = os.stat(root)
    seen.add((top.st_dev, top.st_ino))
    stack = [(str(root), "")]
    while stack:
        folder, rel = stack.pop()
        try:
            names = sorted(e.name for e in os.scandir(folder))
        except OSError as e:
            h.update(json.dumps([rel, f"!list {e.errno}"]).encode())
            continue
        for name in names:
            if name.startswith(".") or name.endswith(".lance"):
                continue  # skipped by the scan
            path, sub = os.path.join(folder, name), f"{rel}/{name}" if rel else name
            entry = _stat_entry(path)
            if entry[0] == "dir":
                key = (entry[3], entry[4])
                entry = ["dir", "seen" if key in seen else "new"]  # a folder's own mtime does not matter
                if key not in seen:
                    seen.add(key)
                    stack.append((path, sub))
            h.update(json.dumps([sub, *entry]).encode())


def catalog_signature(root: Path) -> str:
    """A digest of what the catalog scan and the plan read: names, layout, sizes and modification times.

    A folder catalog: every path the scan walks, with its kind, size and ``mtime_ns``. A manifest
    catalog (whose rows may name files anywhere): the manifest's scan, and the stat of each file it names.
    """
    from mmrec.catalog.scan import MANIFEST_NAMES, scan_catalog

    h = hashlib.blake2b(digest_size=16)
    root = Path(root)
    h.update(str(root).encode())
    if not any((root / n).is_file() for n in MANIFEST_NAMES):
        _listing(root, h)
        return "folder:" + h.hexdigest()
    scan = scan_catalog(root)
    head = [scan.manifest, scan.ignored_files, [p.to_dict() for p in scan.problems]]
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    for item in scan.items:
        files = [[role, rel, *_stat_entry(str(root / rel))] for role, rel in sorted(item.files.items())]
        h.update(json.dumps([item.id, files, item.fields], sort_keys=True, default=str).encode())
    return "manifest:" + h.hexdigest()


class UnchangedMemo:
    """The remembered no-op report of one (database, catalog), and the key it is valid for.

    Parameters
    ----------
    cache_dir : path or None
        The cache folder (``None``: nothing is remembered).
    db_uri : str
        The database (only a local folder is remembered).
    catalog : path
        The catalog folder.
    prune : bool
        Part of the key (a pruning run over a catalog with gone items is not a no-op).
    """

    def __init__(self, cache_dir: Path | None, db_uri: str, catalog: Path, prune: bool) -> None:
        self.enabled = cache_dir is not None and is_local(db_uri)
        self.db_uri = db_uri
        self.db = local_path(db_uri).expanduser().resolve() if self.enabled else None
        self.catalog = Path(catalog).resolve()
        self.prune = prune
        self.path: Path | None = None
        self.before: list[list[Any]] | None = None
        #: :func:`catalog_signature` as :meth:`report` computed it (``None``: not computed): a run that follows
        #: a miss reuses it instead of walking the catalog again.
        self.signature: str | None = None
        if self.enabled and cache_dir is not None and self.db is not None:
            name = hashlib.blake2b(f"{self.db}\0{self.catalog}".encode(), digest_size=8).hexdigest()
            self.path = Path(cache_dir) / "ingest" / f"unchanged-{name}.json"
            self.before = table_versions(self.db)

    def _key(self, versions: list[list[Any]], signature: str) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "mmrec": _version(),
            "db": str(self.db),
            "catalog": str(self.catalog),
            "prune": self.prune,
            "tables": versions,
            "scan": signature,
        }

    def report(self, requested: dict[str, str] | None) -> IngestReport | None:
        """The remembered report if the database and the catalog are as they were, else ``None``.

        Parameters
        ----------
        requested : dict, optional
            Modality → encoder spec the caller asked for; a mismatch with the stored ones is left to
            the full run (which raises).
        """
        if self.path is None or self.before is None:
            return None
        t0 = time.perf_counter()
        try:
            entry = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key", {}).get("tables") != self.before:
            return None  # cheap test first: a write since, anywhere in the database
        if requested is not None and requested != entry.get("specs"):
            return None
        self.signature = catalog_signature(self.catalog)
        if entry["key"] != self._key(self.before, self.signature):
            return None
        if table_versions(self.db) != self.before:  # type: ignore[arg-type]  # a commit while we scanned
            return None
        r = entry["report"]
        report = IngestReport(
            catalog=r["catalog"],
            db=self.db_uri,
            manifest=r["manifest"],
            unchanged=int(r["unchanged"]),
            missing=int(r["missing"]),
            present={m: int(n) for m, n in r["present"].items()},
            problems=[Problem(p["path"], p["reason"], p.get("item_id")) for p in r["problems"]],
            ignored_files=int(r["ignored_files"]),
        )
        report.seconds = time.perf_counter() - t0
        return report

    def remember(self, signature: str, report: IngestReport, specs: dict[str, str]) -> bool:
        """Keep ``report`` of a run that changed nothing; ``False`` when it cannot be trusted (or kept).

        ``signature`` is :func:`catalog_signature` of the catalog, taken before the run scanned it.
        """
        if self.path is None or self.before is None or report.wrote or report.added or report.updated:
            return False
        if report.removed or table_versions(self.db) != self.before:  # type: ignore[arg-type]
            return False  # the run (a repair) or another writer committed: the key would not describe it
        return self._keep(signature, report, specs)

    def _keep(self, signature: str, report: IngestReport, specs: dict[str, str]) -> bool:
        entry = {"key": self._key(self.before, signature), "specs": specs, "report": report.to_dict()}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(entry, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)  # atomic: a concurrent reader sees the old entry or the new one
        except OSError:
            return False  # the memo is an optimisation only
        _prune(self.path.parent)
        return True

    def remember_written(self, signature: str, report: IngestReport, specs: dict[str, str]) -> bool:
        """After a run that wrote, keep what the *next* run over the same catalog would report.

        Called while the run still holds the writer, after its last commit: the tables' versions read
        now are this run's result and nobody else's, so a next run that finds them (and the catalog)
        unchanged has nothing to do. Only for a run with no problems: an item that failed is retried
        by the next run, which is then not a no-op.
        """
        if self.path is None or report.problems:
            return False
        self.before = table_versions(self.db)  # type: ignore[arg-type]
        if self.before is None:
            return False
        quiet = IngestReport(
            catalog=report.catalog,
            db=report.db,
            manifest=report.manifest,
            unchanged=report.unchanged + report.added + report.updated,
            missing=report.missing,
            present=dict(report.present),
            problems=[],
            ignored_files=report.ignored_files,
        )
        # The versions were read just now, under the writer: no second read as in remember().
        return self._keep(signature, quiet, specs)


#: Remembered reports kept per cache folder (one per database and catalog; the oldest go first).
KEEP = 64


def _prune(folder: Path) -> None:
    try:
        entries = sorted(folder.glob("unchanged-*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # another process pruned the same files first


def answer_unchanged(
    db: str, catalog: str | os.PathLike[str], *, prune: bool, requested: dict[str, str] | None, cache_dir: Any
) -> IngestReport | None:
    """The remembered report when nothing changed (:meth:`UnchangedMemo.report`), for a caller with no Engine yet.

    ``mmrec ingest`` asks this before importing the Engine (whose imports cost about a second here);
    ``None`` sends it the usual way. Raises :class:`~mmrec.errors.CatalogError` for a bad catalog path.
    """
    from mmrec.catalog.scan import catalog_root
    from mmrec.store.location import check_uri

    cache = Path(cache_dir).expanduser() if cache_dir else None
    return UnchangedMemo(cache, check_uri(str(db)), catalog_root(catalog), prune).report(requested)
