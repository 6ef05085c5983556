"""Start-up times of short commands as processes: this tree against a baseline tree, interleaved.

Usage::

    python benchmarks/build_catalog.py --out /work/bench_data/catalog_800 --n-items 800
    python benchmarks/startup.py --catalog /work/bench_data/catalog_800 --repeats 5

Commands, each a fresh ``python -m mmrec.cli …`` process (wall time from spawn to exit, and the
process's CPU time, user + system, which a busy shared machine inflates less than wall time):

* ``--help``;
* ``ingest CATALOG`` over an unchanged catalog (a no-op re-ingest);
* ``similar --text "…"`` and ``similar --image FILE``.

The baseline is the committed version (``git archive HEAD`` into a temporary folder, nothing in
the repository changes) or any source tree given with ``--baseline``; both run with this venv's
Python, the tree first on ``PYTHONPATH``. The runs alternate A B A B … per command; the report
gives medians, the highest run (p99 with few runs) and the ratio of medians. The databases are
built once per encoder set (``--encoders onnx`` is the defaults, the ONNX fp32 exports; ``torch``
the torch models) by this tree and read by both. The untimed first run of each command leaves what
this tree keeps between runs (the remembered no-op ingest, ``mmrec/ingest/unchanged.py``) in place,
as a user's second re-ingest finds it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from child_timing import run_mmrec  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ENCODER_FLAGS = {
    "onnx": [],  # the defaults: the fp32 ONNX exports
    "torch": ["--text-encoder", "minilm-l6", "--image-encoder", "efficientnet-lite0"],
}
QUERY_TEXT = "a cat sleeping in the sun"


def baseline_tree(dest: Path) -> Path:
    """The committed source (``git archive HEAD``), unpacked into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def run(tree: Path, args: list[str]) -> tuple[float, float]:
    """One ``mmrec`` process from ``tree``: (wall seconds, CPU seconds)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    _, wall, cpu = run_mmrec(args, cwd=tree, env=env, what=str(tree))
    return wall, cpu


def which_mmrec(tree: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", "import mmrec; print(mmrec.__file__)"], capture_output=True, text=True, env=env, cwd=tree
    )
    return out.stdout.strip()


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "max": max(values), "runs": values}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", required=True, help="catalog folder (800 items in the README figures)")
    ap.add_argument("--baseline", help="source tree to compare with (default: git archive HEAD)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--encoders", default="onnx,torch", help="encoder sets, comma-separated (onnx, torch)")
    ap.add_argument("--db-root", help="keep the databases here (default: a temporary folder)")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--only", help="comma-separated labels to run (e.g. 'no-op ingest,similar --text')")
    args = ap.parse_args()

    catalog = Path(args.catalog).resolve()
    image = next(p for p in sorted(catalog.rglob("*.png")))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.baseline).resolve() if args.baseline else baseline_tree(Path(tmp) / "baseline")
        trees = {"new": REPO, "baseline": base}
        for name, tree in trees.items():
            found = which_mmrec(tree)
            if not found.startswith(str(tree)):
                raise SystemExit(f"{name}: imports mmrec from {found}, not from {tree}")
        db_root = Path(args.db_root) if args.db_root else Path(tmp) / "dbs"
        results: dict = {
            "machine": {"arch": platform.machine(), "cores": os.cpu_count(), "load_avg_start": os.getloadavg()},
            "catalog": str(catalog),
            "repeats": args.repeats,
            "commands": {},
        }
        for enc in [e.strip() for e in args.encoders.split(",") if e.strip()]:
            db = db_root / enc
            if not db.exists():
                print(f"building the {enc} database (once, with this tree) …", flush=True)
                wall, _ = run(REPO, ["ingest", str(catalog), "--db", str(db), "--quiet", *ENCODER_FLAGS[enc]])
                print(f"  {wall:.1f} s", flush=True)
            commands = {
                "no-op ingest": ["ingest", str(catalog), "--db", str(db), "--quiet"],
                "similar --text": ["similar", "--text", QUERY_TEXT, "--db", str(db), "-k", "5"],
                "similar --image": ["similar", "--image", str(image), "--db", str(db), "-k", "5"],
            }
            if enc == "onnx":
                commands = {"--help": ["--help"], **commands}
            if args.only:
                wanted = {w.strip() for w in args.only.split(",")}
                commands = {k: v for k, v in commands.items() if k in wanted}
            for label, cmd in commands.items():
                key = f"{label} [{enc}]"
                times: dict[str, dict[str, list[float]]] = {t: {"wall": [], "cpu": []} for t in trees}
                run(REPO, cmd)  # one untimed run: file caches warm for both trees alike
                for _ in range(args.repeats):
                    for t, tree in trees.items():
                        wall, cpu = run(tree, cmd)
                        times[t]["wall"].append(wall)
                        times[t]["cpu"].append(cpu)
                entry = {t: {k: summary(v) for k, v in d.items()} for t, d in times.items()}
                entry["ratio_wall"] = entry["new"]["wall"]["median"] / entry["baseline"]["wall"]["median"]
                entry["ratio_cpu"] = entry["new"]["cpu"]["median"] / entry["baseline"]["cpu"]["median"]
                results["commands"][key] = entry
                n, b = entry["new"], entry["baseline"]
                print(
                    f"{key:<28} new {n['wall']['median']:6.2f} s (max {n['wall']['max']:6.2f}, cpu {n['cpu']['median']:5.2f})"
                    f"   baseline {b['wall']['median']:6.2f} s (max {b['wall']['max']:6.2f}, cpu {b['cpu']['median']:5.2f})"
                    f"   ratio {entry['ratio_wall']:.2f} wall, {entry['ratio_cpu']:.2f} cpu",
                    flush=True,
                )
        results["machine"]["load_avg_end"] = os.getloadavg()
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
