#!/usr/bin/env python3
"""The audio ConSE bridge alone, under variants, on the validation sound sources (no training).

The pretrained audio head is residual to the bridge (``fusion.layers._ProjectionHead``), so a
better bridge is a better starting point. This measures, without any fusion layer (the bridged
audio vector against the text vector, as the ``bridge`` rows of ``pretrain_space.py``):

* the prompt: the shipped ``"the sound of {}."`` against averages of several templates (CLIP's
  zero-shot prompt ensembles);
* ``top_k``: classes mixed per sound;
* ``power``: class scores raised to a power before mixing (> 1 sharpens towards the top class).

Only the validation sources (``drums_val``, ``sounds_val``, the soundfont's validation programs)
are read: never ``sounds_heldout``. Usage::

    nice -n 10 python benchmarks/pretrain_bridge.py [--out benchmarks/results/pretrain_v4b_validation]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

TEMPLATES = {
    "shipped": ["the sound of {}."],
    "ens4": ["the sound of {}.", "a recording of {}.", "{}.", "a sound of {} can be heard."],
    "ens8": [
        "the sound of {}.",
        "a recording of {}.",
        "{}.",
        "a sound of {} can be heard.",
        "an audio clip of {}.",
        "the noise of {}.",
        "a short sound effect of {}.",
        "this is the sound of {}.",
    ],
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def class_embeddings(text_encoder, names, templates) -> np.ndarray:
    """``(C, D)``: the normalised mean over ``templates`` of each class prompt's embedding."""
    from encoders.base import l2_normalise

    acc = None
    for t in templates:
        texts = [t.format(n) for n in names]
        v = np.concatenate([text_encoder.encode(texts[i : i + 256]) for i in range(0, len(texts), 256)])
        v = l2_normalise(v.astype(np.float32))
        acc = v if acc is None else acc + v
    return l2_normalise(acc)


def bridge(scores: np.ndarray, emb: np.ndarray, top_k: int, power: float) -> np.ndarray:
    from encoders.base import l2_normalise

    k = min(top_k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    w = np.take_along_axis(scores, top, axis=1).clip(min=0) ** power
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    return l2_normalise(np.einsum("nk,nkd->nd", w, emb[top]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/bench_data/pretrain")
    ap.add_argument("--seed", type=int, default=0, help="seed of the soundfont validation programs")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "pretrain_v4b_validation"))
    args = ap.parse_args()

    import eval_crossmodal as ec
    import pretrain_eval as pe

    from mmrec import Engine

    cache = Path(args.data) / "encoded"
    parts = {}
    for name in ("drums_val", "sounds_val", "soundfont"):
        engine = Engine(str(cache / f"{name}.db"), fusion="untrained", cache_dir=cache / "bridges")
        rows = ec.load(engine, Path(args.data) / name)
        if name == "soundfont":
            _, va = pe.validation_split(name, rows, args.seed)
            rows = [rows[i] for i in va]
        rows = [r for r in rows if r.get("audio_scores") is not None and r.get("text_vec") is not None]
        parts[name] = rows
        space = engine.space()
    text_enc, audio_enc = space.encoders["text"], space.encoders["audio"]
    names = list(audio_enc.class_names)
    emb = {k: class_embeddings(text_enc, names, t) for k, t in TEMPLATES.items()}
    results = []
    for tk, e in emb.items():
        for top_k in (3, 5, 10, 20):
            for power in (0.5, 1.0, 2.0):
                row = {"templates": tk, "top_k": top_k, "power": power}
                for name, rows in parts.items():
                    scores = np.stack([np.asarray(r["audio_scores"], np.float32) for r in rows])
                    text = np.stack([np.asarray(r["text_vec"], np.float32) for r in rows])
                    text /= np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-12)
                    texts = np.array([r["text"] or "" for r in rows])
                    same = (texts[:, None] == texts[None, :]) | np.eye(len(rows), dtype=bool)
                    a = bridge(scores, e, top_k, power)
                    row[f"{name} audio→text"] = ec.recall_at_k(a, text, same)
                    row[f"{name} text→audio"] = ec.recall_at_k(text, a, same)
                results.append(row)
                log(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "load_average": os.getloadavg(),
        "items": {k: len(v) for k, v in parts.items()},
        "templates": TEMPLATES,
        "results": results,
    }
    (out / "pretrain_bridge_variants.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    keys = [k for k in results[0] if "→" in k]
    lines = ["| templates | top_k | power | " + " | ".join(keys) + " |", "|---|---|---|" + "---|" * len(keys)]
    for r in results:
        lines.append(
            f"| {r['templates']} | {r['top_k']} | {r['power']} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |"
        )
    (out / "pretrain_bridge_variants.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
