"""``Engine.recommend(..., explain=True)``: this version against the previous one's extra modality read, interleaved.

The previous version gathered the picked rows' per-modality vectors twice on the explained path (once for the
matched modality, ``ItemRows.closest_modality``, once in ``rows_at``); this one reads them once. In one process,
per call A B A B …: ``current`` is ``Engine.recommend`` as it is, ``previous`` the same call with that extra
``closest_modality`` read put back (a wrapper around ``UserRecommender._results``). Both serving modes: the
vectors in memory, and ``serving="lancedb"`` (no vectors in memory: each read is a LanceDB query)::

    python benchmarks/explain_latency.py --db /tmp/demo_db --rounds 200

The demo catalog (``assets/demo``) is ingested with the real encoders into ``--db`` when it is not there yet.
State the machine and load with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
USERS = {
    "animals": ["animals/cow", "animals/sheep", "animals/horse"],
    "mixed": ["animals/cow", "music/violin", "music/cello", "animals/pig"],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--k", type=int, default=10)
    args = p.parse_args(argv)
    from mmrec import Engine
    from mmrec.recsys import recommend

    if not args.db.exists():
        engine = Engine(str(args.db))
        engine.ingest(ROOT / "assets" / "demo")
        for user, items in USERS.items():
            for n, item in enumerate(items):
                engine.interact(user, item, "like", at=1_760_000_000 + 60 * n)
    current = recommend.UserRecommender._results

    def previous(self, snap, profile, picked, directions, explain):  # the extra read the previous version made
        if explain and picked:
            last = len(directions) - 1
            snap.items.closest_modality(
                [r for _, _, r in picked], lambda: directions[[min(i, last) for i, _, _ in picked]]
            )
        return current(self, snap, profile, picked, directions, explain)

    out: dict[str, dict] = {"load_before": os.getloadavg()[0]}
    for serving in ("memory", "lancedb"):
        engine = Engine(str(args.db), serving=serving)
        times: dict[str, list[float]] = {"current": [], "previous": []}
        results = {}
        for n in range(args.rounds):
            for name in ("current", "previous") if n % 2 == 0 else ("previous", "current"):
                recommend.UserRecommender._results = current if name == "current" else previous
                for user in USERS:
                    t0 = time.perf_counter()
                    r = engine.recommend(user, args.k, explain=True)
                    times[name].append((time.perf_counter() - t0) * 1e3)
                    results[name, user] = [(x.id, x.matched) for x in r.items]
        recommend.UserRecommender._results = current
        if any(results["current", u] != results["previous", u] for u in USERS):
            raise SystemExit("the two versions recommend different items or matched modalities")
        med = {name: statistics.median(v) for name, v in times.items()}
        out[serving] = {
            "median_ms": {k: round(v, 3) for k, v in med.items()},
            "previous/current": round(med["previous"] / med["current"], 3),
            "calls": len(times["current"]),
        }
        print(serving, json.dumps(out[serving]), flush=True)
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
