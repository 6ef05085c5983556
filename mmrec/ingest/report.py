"""What one ingest run did: :class:`IngestReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmrec.catalog.scan import Problem
from mmrec.names import MODALITIES


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
