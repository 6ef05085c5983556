"""Evaluation of a pretrained shared space (``pretrain_space.py``): validation split, metrics, report.

**Validation** (for choosing settings; the held-out sources are reported once, with the chosen
settings): a seeded 20 % of the *groups* of two training sources is taken out of training —
Noto emoji by Unicode subgroup (``animal-mammal``, ``food-fruit`` …: every skin tone and
variant of one emoji stays on one side) and the soundfont by General MIDI program or
percussion sound (its three pitches or two velocities together). Those groups are concepts the
layer has not seen, as on the held-out sources; the shipped layer is then trained on everything.

**Metrics** are those of ``eval_crossmodal.py`` (ranking among the evaluated items only), plus
``raw``: same-category P@10 of the encoder features themselves. **Fine-tuning** compares, on
80/20 splits of one catalog (several split seeds, medians), ``mmrec train`` from the untrained
layer (scratch) against ``mmrec train`` from the pretrained one, with the default
:class:`fusion.train.TrainConfig` and any variants asked for.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from dataclasses import replace

import numpy as np

#: Validation parts of training sources: name → tasks (the format of ``eval_crossmodal.CATALOGS``).
VALIDATION = {
    "noto": [("text", "image"), ("image", "text"), "category:image"],
    "soundfont": [("audio", "text"), ("text", "audio"), "category:audio"],
    "sounds_val": [("audio", "text"), ("text", "audio"), "category:audio"],
    "drums_val": [("audio", "text"), ("text", "audio"), "category:audio"],
}
#: Whole validation sources (never trained on, and not the held-out test sources): ``pretrain_sfx.py``.
VALIDATION_SOURCES = ("sounds_val", "drums_val")
VAL_FRACTION = 0.2


def group_of(source: str, row: dict) -> str:
    """The group an item of a training source is split by (see the module docstring)."""
    if source == "noto":
        meta = json.loads(row.get("metadata") or "{}")
        return str(meta.get("subgroup") or row["id"])
    if source == "soundfont":
        return re.sub(r"-v?\d+$", "", row["id"])  # "bass/acoustic_bass-48", "drums/hand_clap-v72"
    return row["id"]


def validation_split(source: str, rows: list[dict], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)`` of a source; no validation part for sources not in :data:`VALIDATION`."""
    if source not in VALIDATION:
        return np.arange(len(rows)), np.zeros(0, int)
    groups = [group_of(source, r) for r in rows]
    names = sorted(set(groups))
    rng = np.random.default_rng(seed + 101)
    held = set(rng.choice(names, size=max(1, round(len(names) * VAL_FRACTION)), replace=False).tolist())
    is_val = np.array([g in held for g in groups])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def raw_precision(data, rows, modality: str) -> float:
    """Same-category P@10 of the raw encoder features of one modality (query and candidates)."""
    import eval_crossmodal as ec

    feats = data.raw[modality]
    feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    cats = np.array([r["category"] for r in rows])
    return ec.category_precision(feats, feats, cats)


def evaluate_all(space, layers: dict, data, rows, tasks, seed: int) -> dict[str, dict[str, float]]:
    """``random``, ``raw``, ``bridge`` (ConSE + mean) and every layer of ``layers`` on ``tasks``."""
    import eval_crossmodal as ec

    from fusion.layers import create_fusion

    config = space.fusion_config(space.encoders)
    first = next(iter(layers.values()))
    out = {"random": ec.evaluate(space, first, data, rows, tasks, seed, random_ranking=True)}
    m = [t for t in tasks if isinstance(t, str)][0].split(":")[1]
    out["raw"] = {f"{m} category P@10": raw_precision(data, rows, m)}
    out["bridge"] = ec.evaluate(space, create_fusion("mean", config), data, rows, tasks, seed)
    for name, layer in layers.items():
        out[name] = ec.evaluate(space, layer, data, rows, tasks, seed)
    return out


def finetune_comparison(
    space, data, rows, tasks, pretrained, untrained, seeds, epochs: int, n_train: int | None, variants: dict
) -> dict:
    """Scratch against fine-tuned (default config, then each of ``variants``) on 80/20 splits.

    Parameters
    ----------
    seeds : list of int
        One 80/20 split (and training seed) each; every figure is the median over them.
    n_train : int, optional
        Cap on the training items (the first ``n_train`` of the 80 %).
    variants : dict
        Label → ``TrainConfig`` field overrides for extra fine-tuned conditions.
    """
    import eval_crossmodal as ec

    from fusion.train import TrainConfig, train_fusion

    per_seed: dict[str, list[dict[str, float]]] = {}
    runs: dict[str, list[dict]] = {}
    n_test = len(rows) // 5
    for seed in seeds:
        perm = np.random.default_rng(seed).permutation(len(rows))
        test_idx, train_idx = np.sort(perm[:n_test]), perm[n_test:]
        if n_train is not None:
            train_idx = train_idx[:n_train]
        train_idx = np.sort(train_idx)
        test_rows, test_data, train = [rows[i] for i in test_idx], data.subset(test_idx), data.subset(train_idx)
        base = TrainConfig(epochs=epochs, seed=seed, device="cpu")
        # As in ``mmrec train``: a start from the pretrained layer fine-tunes with TrainConfig.for_finetuning.
        conds = [("scratch", untrained, base), ("fine-tuned", pretrained, base.for_finetuning())]
        conds += [(f"fine-tuned {k}", pretrained, replace(base, **v)) for k, v in variants.items()]
        for label, start, cfg in conds:
            t0 = time.process_time()
            result = train_fusion(start, train, cfg)
            runs.setdefault(label, []).append({**result.summary(), "cpu_seconds": round(time.process_time() - t0, 1)})
            per_seed.setdefault(label, []).append(ec.evaluate(space, result.layer, test_data, test_rows, tasks, seed))
        per_seed.setdefault("pretrained (no fine-tuning)", []).append(
            ec.evaluate(space, pretrained, test_data, test_rows, tasks, seed)
        )
    res = {label: {m: statistics.median(r[m] for r in rs) for m in rs[0]} for label, rs in per_seed.items()}
    return {
        "train_items": len(train_idx),
        "test_items": n_test,
        "seeds": list(seeds),
        "results": res,
        "per_seed": per_seed,
        "runs": runs,
    }


def beats_scratch(ft: dict, label: str = "fine-tuned") -> bool:
    """Whether ``label`` is above scratch on every metric of a fine-tuning comparison (medians)."""
    res = ft["results"]
    return all(res[label][m] > res["scratch"][m] for m in res["scratch"])


def table(results: dict) -> list[str]:
    metrics = sorted({m for v in results.values() for m in v})
    lines = ["| condition | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for cond, vals in results.items():
        lines.append(f"| {cond} | " + " | ".join(f"{vals[m]:.3f}" if m in vals else "–" for m in metrics) + " |")
    return lines


def markdown(report: dict) -> str:
    lines = [
        f"# Pretrained shared space `{report['name']}`",
        "",
        f"Machine: {report['machine']}. Seed {report['seed']}. Corpus: "
        + ", ".join(f"{k} {v} items" for k, v in report["corpus"].items())
        + f"; training {report['train']['seconds']} s, {report['train']['epochs']} epochs, "
        f"held-out loss {report['train']['val_loss_untrained']} → {report['train']['val_loss_trained']}.",
    ]
    if report.get("settings"):
        lines += ["", f"Settings: `{json.dumps(report['settings'])}`."]
    for part, title in (("validation", "Validation part"), ("held_out", "Held-out source")):
        for cat, block in (report.get(part) or {}).items():
            lines += ["", f"## {title} `{cat}` ({block['items']} items), zero-shot", ""]
            lines += table(block["results"])
            for key in ("finetune", "finetune_10"):
                ft = block.get(key)
                if ft:
                    lines += [
                        "",
                        f"### `{cat}`: fine-tuning on {ft['train_items']} items, evaluated on {ft['test_items']} "
                        f"others (median of split seeds {ft['seeds']})",
                        "",
                    ]
                    lines += table(ft["results"])
    for label, checks in (report.get("demo") or {}).items():
        lines += ["", f"## Demo catalog, {label} layer (`pretrain_checks.py`)", ""]
        lines += [f"- {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in checks.items()]
    return "\n".join(lines) + "\n"
