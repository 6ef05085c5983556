"""Finding the items of a catalog folder.

Two layouts are understood:

* **Folder**: files that share a stem in one folder form one item
  (``birds/owl.jpg`` + ``birds/owl.ogg`` + ``birds/owl.txt`` → item ``birds/owl``);
  a sidecar ``birds/owl.json`` adds title, tags and any other metadata.
* **Manifest**: ``catalog.jsonl`` or ``catalog.csv`` at the catalog root lists
  the items (``id, title, text, image, audio, tags`` plus any extra columns as
  metadata; paths relative to the manifest).

Scanning only looks at names and file types; reading and decoding happen later
and only for items that changed.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmrec.catalog.media import modality_of
from mmrec.errors import CatalogError
from mmrec.names import parse_tags

MANIFEST_NAMES = ("catalog.jsonl", "catalog.csv")
#: Manifest columns with a meaning; every other column becomes metadata.
MANIFEST_FIELDS = ("id", "title", "text", "text_file", "image", "audio", "tags")
#: A catalog's own documentation (README.md, LICENSE.txt, …) is not an item.
DOC_STEMS = frozenset(
    {"README", "LICENSE", "LICENCE", "COPYING", "SOURCES", "CREDITS", "NOTICE", "CHANGELOG", "AUTHORS"}
)


@dataclass(frozen=True)
class Problem:
    """Something wrong with one file or manifest row; the run goes on."""

    path: str
    reason: str
    item_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason, "item_id": self.item_id}

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class CatalogItem:
    """One item as found on disk (nothing decoded yet).

    ``files`` maps a role (``image``, ``audio``, ``text``, ``text2``…, ``sidecar``)
    to a path relative to the catalog root. ``fields`` holds title, text, tags
    and metadata given by a manifest row.
    """

    id: str
    files: dict[str, str] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def image(self) -> str | None:
        return self.files.get("image")

    @property
    def audio(self) -> str | None:
        return self.files.get("audio")

    @property
    def text_files(self) -> list[str]:
        return [p for role, p in sorted(self.files.items()) if role.startswith("text")]

    @property
    def sidecar(self) -> str | None:
        return self.files.get("sidecar")


@dataclass
class ScanResult:
    """What a scan found."""

    root: Path
    items: list[CatalogItem]
    problems: list[Problem]
    ignored_files: int = 0
    manifest: str | None = None


def catalog_root(root: str | os.PathLike[str]) -> Path:
    """The resolved catalog folder; :class:`CatalogError` when it does not exist or is not a folder."""
    root_path = Path(root).expanduser()
    if not root_path.exists():
        raise CatalogError(f"catalog folder {str(root)!r} does not exist")
    if not root_path.is_dir():
        raise CatalogError(f"catalog path {str(root)!r} is not a folder")
    return root_path.resolve()


def scan_catalog(root: str | os.PathLike[str]) -> ScanResult:
    """Find the items under ``root``.

    Raises
    ------
    CatalogError
        When ``root`` does not exist or is not a folder.
    """
    root_path = catalog_root(root)
    manifests = [n for n in MANIFEST_NAMES if (root_path / n).is_file()]
    if manifests:
        result = _scan_manifest(root_path, manifests[0])
        if len(manifests) > 1:
            result.problems.append(Problem(manifests[1], f"ignored: {manifests[0]} is used as the manifest"))
        return result
    return _scan_folder(root_path)


# --------------------------------------------------------------------------- folder layout


def _walk(root: Path, problems: list[Problem]) -> list[Path]:
    """Regular files under ``root`` (symlinks followed, loops and dead links reported)."""
    files: list[Path] = []
    seen_dirs: set[tuple[int, int]] = set()
    root_st = root.stat()
    seen_dirs.add((root_st.st_dev, root_st.st_ino))
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            problems.append(Problem(_rel(folder, root), f"cannot list folder: {e.strerror or e}"))
            continue
        for entry in entries:
            if entry.name.startswith(".") or entry.name.endswith(".lance"):
                continue
            path = Path(entry.path)
            try:
                st = os.stat(path)  # follows symlinks
            except OSError as e:
                if e.errno == errno.ELOOP:
                    problems.append(Problem(_rel(path, root), "symlink loop"))
                elif entry.is_symlink():
                    problems.append(Problem(_rel(path, root), "broken symlink"))
                else:
                    problems.append(Problem(_rel(path, root), f"cannot read: {e.strerror or e}"))
                continue
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in seen_dirs:
                    problems.append(Problem(_rel(path, root), "symlink loop: folder already visited; skipped"))
                    continue
                seen_dirs.add(key)
                stack.append(path)
            else:
                files.append(path)
    return files


def _scan_folder(root: Path) -> ScanResult:
    problems: list[Problem] = []
    groups: dict[tuple[str, str], dict[str, list[Path]]] = {}
    ignored = 0
    for path in _walk(root, problems):
        ext = path.suffix.lower()
        role = "sidecar" if ext == ".json" else modality_of(path)
        if role is None or path.stem.upper() in DOC_STEMS:
            ignored += 1
            continue
        group = groups.setdefault((str(path.parent), path.stem), {})
        group.setdefault(role, []).append(path)

    items: list[CatalogItem] = []
    for (parent, stem), roles in sorted(groups.items()):
        if set(roles) == {"sidecar"}:
            ignored += len(roles["sidecar"])  # a lone JSON file is not an item
            continue
        item_id = _rel(Path(parent) / stem, root)
        item = CatalogItem(id=item_id)
        for role in ("image", "audio", "sidecar"):
            paths = sorted(roles.get(role, []))
            if not paths:
                continue
            item.files[role] = _rel(paths[0], root)
            if len(paths) > 1:
                others = ", ".join(p.name for p in paths[1:])
                problems.append(
                    Problem(item.files[role], f"several {role} files for one item ({others} ignored)", item_id)
                )
        for i, p in enumerate(sorted(roles.get("text", []))):
            item.files["text" if i == 0 else f"text{i + 1}"] = _rel(p, root)
        items.append(item)
    return ScanResult(root=root, items=items, problems=problems, ignored_files=ignored)


# --------------------------------------------------------------------------- manifest layout


def _scan_manifest(root: Path, name: str) -> ScanResult:
    path = root / name
    problems: list[Problem] = []
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CatalogError(f"cannot read manifest {str(path)!r}: {e.strerror or e}") from e
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CatalogError(f"manifest {str(path)!r} is not UTF-8 (byte {e.start})") from e

    rows: list[tuple[int, Any]] = []
    if name.endswith(".jsonl"):
        for lineno, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append((lineno, json.loads(line)))
            except json.JSONDecodeError as e:
                problems.append(Problem(f"{name}:{lineno}", f"invalid JSON: {e.msg}"))
    else:
        try:
            reader = csv.DictReader(content.splitlines())
            for lineno, row in enumerate(reader, start=2):
                if None in row:
                    problems.append(Problem(f"{name}:{lineno}", "more values than header columns"))
                    continue
                rows.append((lineno, {k.strip(): v for k, v in row.items() if k is not None}))
        except csv.Error as e:
            raise CatalogError(f"manifest {str(path)!r} is not valid CSV: {e}") from e

    items: list[CatalogItem] = []
    seen: set[str] = set()
    for lineno, row in rows:
        where = f"{name}:{lineno}"
        if not isinstance(row, dict):
            problems.append(Problem(where, f"expected an object, got {type(row).__name__}"))
            continue
        item = _manifest_item(root, row, where, problems)
        if item is None:
            continue
        if item.id in seen:
            problems.append(Problem(where, f"duplicate id {item.id!r}; row ignored", item.id))
            continue
        seen.add(item.id)
        items.append(item)
    return ScanResult(root=root, items=items, problems=problems, manifest=name)


def _manifest_item(root: Path, row: dict[str, Any], where: str, problems: list[Problem]) -> CatalogItem | None:
    row = {str(k).strip().lower() if str(k).strip().lower() in MANIFEST_FIELDS else str(k): v for k, v in row.items()}
    files: dict[str, str] = {}
    for role in ("image", "audio", "text_file"):
        value = row.get(role)
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            problems.append(Problem(where, f"{role} must be a path string, got {type(value).__name__}"))
            continue
        p = Path(value).expanduser()
        p = p if p.is_absolute() else root / p
        files["text" if role == "text_file" else role] = _rel(p, root)
    raw_id = row.get("id")
    if raw_id not in (None, ""):
        item_id = str(raw_id).strip()
    elif files:
        first = files.get("image") or files.get("audio") or files["text"]
        item_id = first.rsplit(".", 1)[0]
    else:
        problems.append(Problem(where, "row has no id and no file to derive one from; skipped"))
        return None
    fields: dict[str, Any] = {}
    for key in ("title", "text"):
        value = row.get(key)
        if value not in (None, ""):
            fields[key] = str(value)
    tags = row.get("tags")
    if isinstance(tags, str | list):
        fields["tags"] = parse_tags(tags)
    elif tags not in (None, ""):
        problems.append(Problem(where, f"tags must be a list or a string, got {type(tags).__name__}", item_id))
    meta = {k: v for k, v in row.items() if k not in MANIFEST_FIELDS and v not in (None, "")}
    if meta:
        fields["metadata"] = meta
    return CatalogItem(id=item_id, files=files, fields=fields)


def _rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with forward slashes (absolute when outside ``root``)."""
    try:
        return Path(os.path.relpath(path, root)).as_posix() if Path(path).is_relative_to(root) else str(path)
    except ValueError:
        return str(path)


def read_sidecar(path: Path) -> dict[str, Any]:
    """Read a sidecar JSON object; raises ``ValueError`` with a reason when it is not one."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read sidecar: {e.strerror or e}") from e
    if len(raw) > 1 << 20:
        raise ValueError("sidecar larger than 1 MiB")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"invalid JSON sidecar: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"sidecar must be a JSON object, got {type(data).__name__}")
    return data
