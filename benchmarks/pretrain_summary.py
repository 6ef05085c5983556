#!/usr/bin/env python3
"""One table of ``pretrain_space.py --validate`` reports: each run, then each setting's mean (min–max) over seeds.

Runs are named by their ``--tag`` (``noOC_<setting>[_seed<N>]``; no ``_seed`` is seed 0), so a
setting tried at several ``--seed`` with one ``--val-seed`` shows its seed spread beside the others::

    python benchmarks/pretrain_summary.py benchmarks/results/pretrain_v4b_validation \\
        benchmarks/results/pretrain_v4_validation/pretrain_mmrec-space-v4_validation_noOC_base_keep.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

COLUMNS = [
    ("noto", "text→image R@10"),
    ("noto", "image→text R@10"),
    ("noto", "image category P@10"),
    ("soundfont", "audio→text R@10"),
    ("soundfont", "text→audio R@10"),
    ("drums_val", "audio→text R@10"),
    ("drums_val", "text→audio R@10"),
    ("drums_val", "audio category P@10"),
    ("sounds_val", "audio→text R@10"),
    ("sounds_val", "text→audio R@10"),
    ("sounds_val", "audio category P@10"),
]


def run_name(path: Path) -> str:
    tag = path.stem.split("_validation_", 1)[-1].removeprefix("noOC_").replace("base_keep", "base_seed0")
    return tag if "_seed" in tag or tag.startswith("soup") else tag + "_seed0"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", help="report JSON files or folders of them")
    args = ap.parse_args()
    files = []
    for p in map(Path, args.paths):
        files += sorted(p.glob("pretrain_*_validation_*.json")) if p.is_dir() else [p]
    rows = {}
    for f in files:
        val = json.loads(f.read_text())["validation"]
        if any("finetune" in block for block in val.values()):
            continue  # a fine-tuning re-evaluation of a kept layer (--evaluate-shipped), not a pretraining run
        rows[run_name(f)] = [val[s]["results"]["pretrained"][m] for s, m in COLUMNS]
    lines = ["| run | " + " | ".join(f"{s} {m.split(' ')[0]}" for s, m in COLUMNS) + " |"]
    lines.append("|---|" + "---|" * len(COLUMNS))
    lines += [f"| {k} | " + " | ".join(f"{x:.3f}" for x in v) + " |" for k, v in sorted(rows.items())]
    groups: dict[str, list[list[float]]] = {}
    for k, v in rows.items():
        if "_seed" in k:
            groups.setdefault(k.rsplit("_seed", 1)[0], []).append(v)
    for g, vs in sorted(groups.items()):
        if len(vs) > 1:
            cells = (f"{statistics.mean(c):.3f} ({min(c):.3f}–{max(c):.3f})" for c in zip(*vs, strict=True))
            lines.append(f"| **{g}, mean of {len(vs)} seeds (min–max)** | " + " | ".join(cells) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
