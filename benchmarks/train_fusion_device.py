"""Fusion training time on a given device, from a database or an exported array file.

Usage::

    # export the training inputs of an ingested database (float16, to carry to another machine)
    python benchmarks/train_fusion_device.py --db /work/bench_data/dbs/catalog_5k --export fusion_5k.npz
    # train on them: CPU here, or "auto" on a machine with a GPU
    python benchmarks/train_fusion_device.py --data fusion_5k.npz --device auto

Needs only torch, numpy and the ``encoders`` and ``fusion`` packages (no
``mmrec``, no LanceDB), so it runs on a bare GPU machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def export(db: str, out: str) -> None:
    from mmrec import Engine
    from mmrec.ingest.refit import _training_columns

    engine = Engine(db)
    rows = engine.store.list(limit=None, columns=_training_columns())
    space = engine.space()
    data = space.inputs_from_rows(rows)
    config = space.fusion_config(engine.encoders())
    np.savez_compressed(
        out,
        bridged=data.bridged.astype(np.float16),
        mask=data.mask,
        config=json.dumps({"dim": config.dim, "raw_dims": config.raw_dims}),
        **{f"raw_{m}": r.astype(np.float16) for m, r in data.raw.items()},
    )
    print(f"exported {len(rows)} items to {out}")


def train(path: str, device: str, epochs: int) -> None:
    import torch

    from fusion.data import FusionData
    from fusion.layers import FusionConfig, create_fusion
    from fusion.train import TrainConfig, resolve_device, train_fusion

    z = np.load(path)
    cfg = json.loads(str(z["config"]))
    config = FusionConfig(dim=cfg["dim"], raw_dims=tuple((m, int(d)) for m, d in cfg["raw_dims"]))
    raw = {k[4:]: z[k].astype(np.float32) for k in z.files if k.startswith("raw_")}
    data = FusionData(z["bridged"].astype(np.float32), raw, z["mask"].astype(bool))
    data = data.subset(np.flatnonzero(data.mask.sum(axis=1) >= 2))
    dev = resolve_device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    t0 = time.perf_counter()
    result = train_fusion(create_fusion("attention", config), data, TrainConfig(device=device, epochs=epochs))
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "device": str(dev),
                "device_name": name,
                "items": len(data),
                "seconds": round(seconds, 2),
                **result.summary(),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db")
    ap.add_argument("--export")
    ap.add_argument("--data")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()
    if args.export:
        export(args.db, args.export)
    else:
        train(args.data, args.device, args.epochs)


if __name__ == "__main__":
    main()
