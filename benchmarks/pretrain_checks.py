"""The demo checks of a pretrained layer (``pretrain_space.py --demo``): what ``mmrec demo`` will show.

The bundled demo catalog (``assets/demo``) is ingested once into ``<cache>/demo.db`` with the
untrained layer; every layer is then judged on the stored encoder vectors, exactly as
``mmrec similar`` ranks (a query is the item seen through one modality only):

* ``cat photo → audio``: the photo's image token against every item's audio token
  (``similar --image photos/chelsea_the_cat.jpg --modality audio``); right answer ``animals/cat``;
* ``alarm clock → audio``: likewise from ``household/alarm_clock.png``;
* ``more like the piano``: the fused vector of ``music/piano`` against the others' fused vectors
  (``similar --item music/piano``); the share of ``music/`` items in the top 5;
* ``weights``: the fusion weights of the items that have all three modalities (min, max, and how
  far they are from the untrained mean's exact thirds).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from encoders.base import MODALITIES  # noqa: E402

DEMO = REPO / "assets" / "demo"


def demo_rows(cache: Path):
    """``(space, rows, data)`` of the demo catalog, ingested into ``cache/demo.db`` (incremental)."""
    import eval_crossmodal as ec

    from mmrec import Engine

    engine = Engine(str(cache / "demo.db"), fusion="untrained", cache_dir=cache / "bridges")
    engine.ingest(DEMO)
    rows = ec.load(engine, DEMO)
    space = engine.space()
    return space, rows, space.inputs_from_rows(rows)


def _top(q: np.ndarray, cands: np.ndarray, ids: list[str], ok: np.ndarray, k: int, skip: int | None = None):
    sims = cands @ q
    sims[~ok] = -np.inf
    if skip is not None:
        sims[skip] = -np.inf
    order = np.argsort(-sims)[:k]
    return [(ids[i], round(float(sims[i]), 3)) for i in order if np.isfinite(sims[i])]


def demo_check(space, layer, data, rows) -> dict:
    """The checks above for one layer (see the module docstring)."""
    import torch

    ids = [r["id"] for r in rows]
    space = space.with_layer(layer, 0)
    with torch.inference_mode():
        fused, tokens, weights = space.fuse(data)
        only = data.subset(np.arange(len(rows)))
        ia, ii = MODALITIES.index("audio"), MODALITIES.index("image")
        only.mask = np.zeros_like(only.mask)
        only.mask[:, ii] = data.mask[:, ii]
        only.bridged = only.bridged * only.mask[:, :, None]
        _, img_tokens, _ = space.fuse(only)
    has_audio = data.mask[:, ia]
    out = {}
    for name, item in (
        ("cat photo → audio", "photos/chelsea_the_cat"),
        ("alarm clock → audio", "household/alarm_clock"),
    ):
        q = img_tokens[ids.index(item), ii]
        out[name] = _top(q, tokens[:, ia].copy(), ids, has_audio, 3)
    p = ids.index("music/piano")
    top = _top(fused[p], fused.copy(), ids, np.ones(len(ids), bool), 5, skip=p)
    out["more like the piano"] = top
    out["piano top 5 music share"] = sum(i.startswith("music/") for i, _ in top) / max(len(top), 1)
    tri = data.mask.all(axis=1)
    w = weights[tri]
    out["weights (3-modality items)"] = {
        "min": round(float(w.min()), 3),
        "max": round(float(w.max()), 3),
        "mean |w - 1/3|": round(float(np.abs(w - 1 / 3).mean()), 3),
        "mean text/image/audio": [round(float(x), 3) for x in w.mean(axis=0)],
    }
    return out
