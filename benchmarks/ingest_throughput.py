"""Ingest throughput: mmrec's pipeline against a naive loop and the compute limit.

Usage::

    python benchmarks/build_catalog.py --out /work/bench_data/catalog_1k --n-items 1000
    python benchmarks/ingest_throughput.py --catalog /work/bench_data/catalog_1k

What it measures (each run in a fresh subprocess, models loaded and warmed up
before the clock starts, so peak memory and timing belong to one mode):

* **pipeline** — ``Engine.ingest``: decoding in worker threads a chunk ahead,
  one forward pass per modality per batch, batched writes.
* **naive** — the same decoding and the same models, one item per forward pass,
  sequential (the way LanceDB's OpenCLIP embedding function encodes images).

The two run interleaved (A B A B …) on the same subset of the catalog, and the
report gives medians and the ratio. Then the pipeline ingests the whole catalog
once, then again unchanged. The compute limit is model FLOPs per item (counted
with ``torch.utils.flop_counter`` for the torch models and from the ONNX graph's
convolutions for YAMNet) over the FLOP rate of an fp32 matrix product measured
on the same machine.

``--whole`` measures the issue's target instead: ``mmrec ingest`` of the catalog as a whole
process (start-up, decoding, encoding, fusing, writing; a fresh database each time), with the
default encoders (the ONNX fp32 variants) and with the torch ones, against the **bare packaged fp32
models** (the torch MiniLM and EfficientNet-Lite0, and YAMNet) running ``encode_prepared`` in their
own batch sizes on inputs decoded and prepared beforehand (untimed) — interleaved A B C A B C, wall
and CPU time (user + system) each. ``--subset N`` runs it on N items, ``--modes`` picks the modes.
Quality: the per-item cosine between the vectors the two ingests stored (text and image; audio is
YAMNet in both), when both ingests ran.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from child_timing import run_mmrec  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


# --------------------------------------------------------------------------- child processes


def _warm_engine(db: str):
    from mmrec import Engine

    engine = Engine(db)
    encs = engine.encoders()
    import numpy as np
    from PIL import Image

    from encoders.base import Waveform

    encs["text"].encode(["warm up"])
    encs["image"].encode([Image.new("RGB", (256, 256), "white")])
    encs["audio"].encode([Waveform(np.zeros(16000, np.float32), 16000)])
    space = engine.space()
    space.bridge("image"), space.bridge("audio")  # class-name embeddings: built once per machine, then cached
    return engine


def child_pipeline(catalog: str, twice: bool) -> dict:
    from mmrec.config import IngestConfig

    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "db")
        engine = _warm_engine(db)
        t0 = time.perf_counter()
        report = engine.ingest(catalog, config=IngestConfig())
        first = time.perf_counter() - t0
        out = {
            "mode": "pipeline",
            "items": report.items,
            "seconds": first,
            "encoded": report.encoded,
            "encode_seconds": report.encode_seconds,
            "problems": len(report.problems),
        }
        if twice:
            t0 = time.perf_counter()
            again = engine.ingest(catalog)
            out["second_run_seconds"] = time.perf_counter() - t0
            out["second_run_changed"] = again.added + again.updated
            out["second_run_wrote"] = again.wrote
        out["size_bytes"] = engine.store.size_on_disk()
        out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return out


def child_naive(catalog: str) -> dict:
    """Sequential: decode one item, encode it with batch size 1 per modality, collect rows, write once."""
    from datetime import datetime, timezone

    from encoders.base import MODALITIES
    from mmrec.catalog.scan import scan_catalog
    from mmrec.config import IngestConfig
    from mmrec.ingest.encode import _prepare_item, _row
    from mmrec.ingest.plan import Plan as _Plan
    from mmrec.ingest.plan import _hash_files, _item_hash
    from mmrec.ingest.report import IngestReport
    from mmrec.names import scores_column

    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "db")
        engine = _warm_engine(db)
        encs = engine.encoders()
        space = engine.space()
        engine.store.create_items(
            {m: e.identity for m, e in encs.items()},
            engine.encoder_specs(),
            {m: len(e.class_names or ()) for m, e in encs.items()},
            space.identity(),
        )
        config = IngestConfig()
        report = IngestReport(catalog=catalog, db=db)
        has_scores = {m: scores_column(m) in engine.store.items().schema.names for m in MODALITIES}
        t0 = time.perf_counter()
        scan = scan_catalog(catalog)
        rows = []
        for item in scan.items:
            files = _hash_files(scan.root, item, None)
            plan = _Plan(item, files, _item_hash(files, item.fields), None)
            p = _prepare_item(plan, scan.root, encs, config)
            encoded = {}
            for m, x in p.inputs.items():
                t1 = time.perf_counter()
                res = encs[m].encode_prepared([x])
                report.encode_seconds[m] += time.perf_counter() - t1
                report.encoded[m] += 1
                encoded[m] = (res.vectors[0], None if res.class_scores is None else res.class_scores[0])
            row = _row(p, encoded, str(scan.root), None, has_scores, datetime.now(timezone.utc))
            row.update(space.fusion_values([row])[0])
            rows.append(row)
        engine.store.upsert(rows)
        seconds = time.perf_counter() - t0
        return {
            "mode": "naive",
            "items": len(rows),
            "seconds": seconds,
            "encoded": report.encoded,
            "encode_seconds": report.encode_seconds,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def child_bare(catalog: str) -> dict:
    """The packaged fp32 models alone: decode and prepare every item first (untimed), then encode."""
    from encoders.base import MODALITIES
    from encoders.registry import shared_encoder
    from mmrec.catalog.scan import scan_catalog
    from mmrec.config import IngestConfig
    from mmrec.ingest.encode import _prepare_item
    from mmrec.ingest.plan import Plan as _Plan
    from mmrec.ingest.plan import _hash_files, _item_hash

    encs = {m: shared_encoder(s, m) for m, s in TORCH_ENCODERS.items()}
    config = IngestConfig()
    scan = scan_catalog(catalog)
    inputs: dict[str, list] = {m: [] for m in MODALITIES}
    for item in scan.items:
        files = _hash_files(scan.root, item, None)
        p = _prepare_item(_Plan(item, files, _item_hash(files, item.fields), None), scan.root, encs, config)
        for m, x in p.inputs.items():
            inputs[m].append(x)
    seconds, cpu = {}, {}
    for m, enc in encs.items():
        enc.set_threads(config.threads)
        enc.encode_prepared(inputs[m][:1])  # load and warm up: the bare models are timed running only
        bs = max(1, enc.default_batch_size)
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(inputs[m]), bs):
            enc.encode_prepared(inputs[m][i : i + bs])
        seconds[m], cpu[m] = time.perf_counter() - t0, time.process_time() - c0
    return {
        "mode": "bare",
        "items": len(scan.items),
        "seconds": sum(seconds.values()),
        "cpu": sum(cpu.values()),
        "per_modality": seconds,
        "encoded": {m: len(v) for m, v in inputs.items()},
    }


#: The packaged fp32 torch models the pipeline started from (the defaults until the ONNX exports replaced them).
TORCH_ENCODERS = {"text": "minilm-l6", "image": "efficientnet-lite0", "audio": "yamnet"}
TORCH_FLAGS = ["--text-encoder", "minilm-l6", "--image-encoder", "efficientnet-lite0"]
ONNX_FLAGS = ["--text-encoder", "minilm-l6-onnx", "--image-encoder", "efficientnet-lite0-onnx"]


def ingest_process(catalog: str, db: str, flags: list[str]) -> dict:
    """``mmrec ingest`` as a process into a fresh ``db``: wall time from spawn to exit, and its CPU time."""
    stdout, seconds, cpu = run_mmrec(["ingest", catalog, "--db", db, "--quiet", "--json", *flags], cwd=REPO)
    report = json.loads(stdout)
    return {"seconds": seconds, "cpu": cpu, "items": report.get("items"), "encoded": report.get("encoded")}


def stored_cosines(db_a: str, db_b: str) -> dict:
    """Per-item cosine between the vectors two databases stored, per modality: mean and minimum."""
    import numpy as np

    from mmrec.store.items import Store

    def vectors(db: str, col: str) -> dict:
        rows = Store(db).items().to_arrow().select(["id", col]).to_pylist()
        return {r["id"]: np.asarray(r[col], np.float32) for r in rows if r[col] is not None}

    out = {}
    for m in ("text", "image", "audio"):
        a, b = vectors(db_a, f"{m}_vec"), vectors(db_b, f"{m}_vec")
        common = sorted(set(a) & set(b))
        cos = [float(a[i] @ b[i] / (np.linalg.norm(a[i]) * np.linalg.norm(b[i]))) for i in common]
        out[m] = {"items": len(common), "mean": float(np.mean(cos)), "min": float(np.min(cos))} if cos else None
    return out


WHOLE_MODES = ("ingest-onnx", "bare-fp32", "ingest-torch")


def whole(catalog: str, repeats: int, modes: tuple[str, ...] = WHOLE_MODES, subset: int | None = None) -> dict:
    """The whole-process ingest against the bare fp32 models, interleaved; returns the runs and the ratios."""
    runs: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    bare_detail: list[dict] = []
    quality = None
    with tempfile.TemporaryDirectory() as tmp:
        if subset:
            catalog = str(subset_catalog(Path(catalog), subset, Path(tmp) / "subset"))
        for r in range(repeats):
            dbs = {}
            for mode in modes:
                if mode == "bare-fp32":
                    res = run_child("bare", catalog)
                    bare_detail.append(res)
                else:
                    dbs[mode] = os.path.join(tmp, f"{mode}-{r}")
                    res = ingest_process(catalog, dbs[mode], ONNX_FLAGS if mode == "ingest-onnx" else TORCH_FLAGS)
                runs[mode].append(res["seconds"])
                cpu[mode].append(res["cpu"])
                print(
                    f"  [{r + 1}/{repeats}] {mode:<12} {res['seconds']:7.1f} s wall, {res['cpu']:7.1f} s cpu,"
                    f" load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
            if r == repeats - 1 and {"ingest-torch", "ingest-onnx"} <= set(dbs):
                quality = stored_cosines(dbs["ingest-torch"], dbs["ingest-onnx"])
    med = {m: statistics.median(v) for m, v in runs.items()}
    med_cpu = {m: statistics.median(v) for m, v in cpu.items()}
    ingests = [m for m in modes if m != "bare-fp32"]
    return {
        "runs": runs,
        "cpu_runs": cpu,
        "median_seconds": med,
        "median_cpu": med_cpu,
        "ratio_to_bare": {m: med[m] / med["bare-fp32"] for m in ingests} if "bare-fp32" in med else {},
        "ratio_to_bare_cpu": {m: med_cpu[m] / med_cpu["bare-fp32"] for m in ingests} if "bare-fp32" in med else {},
        "bare_per_modality": bare_detail,
        "quality_onnx_vs_torch": quality,
    }


# --------------------------------------------------------------------------- compute limit


def matmul_gflops(n: int = 2048, repeats: int = 7) -> float:
    """fp32 matrix-product rate with torch's default (all-core) threads, median of ``repeats``."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        rates.append(2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return statistics.median(rates)


def flops_per_item(catalog: str, sample: int = 200) -> dict:
    """Model FLOPs for an average item of ``catalog``, per modality (multiply-add = 2 FLOPs)."""
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from encoders.registry import shared_encoder
    from mmrec.catalog.media import load_audio
    from mmrec.catalog.scan import scan_catalog

    encs = {m: shared_encoder(s, m) for m, s in TORCH_ENCODERS.items()}
    scan = scan_catalog(catalog)
    items = scan.items[:sample]
    out = {}

    img = encs["image"]
    img._load()
    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        x = torch.zeros(1, 3, 224, 224)
        feats = img._model.extract_features(x).mean(dim=(2, 3))
        img._model._fc(feats)
    out["image"] = fc.get_total_flops()

    txt = encs["text"]
    model = txt._load()
    texts = []
    for it in items:
        for rel in it.text_files[:1]:
            texts.append((scan.root / rel).read_text(errors="replace"))
    chunks = [c for t in texts for c in txt.prepare(t)]
    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        model.encode(chunks, batch_size=1, convert_to_numpy=True)  # batch 1: no padding FLOPs
    out["text"] = fc.get_total_flops() / max(len(texts), 1)
    out["text_tokens_per_item"] = (
        float(np.mean([len(model.tokenizer(c)["input_ids"]) for c in chunks])) * len(chunks) / max(len(texts), 1)
    )

    aud = encs["audio"]
    patches = []
    for it in items:
        if it.audio:
            patches.append(len(aud.prepare(load_audio(scan.root / it.audio))))
    per_patch = yamnet_flops_per_patch()
    out["audio_patches_per_item"] = float(np.mean(patches))
    out["audio"] = per_patch * float(np.mean(patches))
    out["audio_per_patch"] = per_patch
    return out


def yamnet_flops_per_patch() -> float:
    """Convolution and matrix-product FLOPs of one 96x64 patch through the YAMNet graph."""
    import numpy as np
    from onnx import numpy_helper, shape_inference

    from encoders.audio_yamnet import _default_path, _read_onnx_zip

    model = _read_onnx_zip(_default_path("YamNet_w8a8.onnx.zip"))
    model = shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input):
        dims = [d.dim_value or 1 for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    inits = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    flops = 0.0
    for node in model.graph.node:
        if node.op_type in ("Conv", "QLinearConv", "ConvInteger"):
            w_name = node.input[3] if node.op_type == "QLinearConv" else node.input[1]
            w = inits.get(w_name) or shapes.get(w_name)
            y = shapes.get(node.output[0])
            if w is None or y is None:
                continue
            cout, cin_g, kh, kw = w
            n, c, h, wd = y
            flops += 2.0 * n * c * h * wd * cin_g * kh * kw
        elif node.op_type in ("Gemm", "MatMul", "QLinearMatMul", "MatMulInteger"):
            b_name = node.input[3] if node.op_type == "QLinearMatMul" else node.input[1]
            b = inits.get(b_name) or shapes.get(b_name)
            y = shapes.get(node.output[0])
            if b is None or y is None:
                continue
            k = (
                b[0]
                if node.op_type != "Gemm"
                else (b[1] if any(a.name == "transB" and a.i for a in node.attribute) else b[0])
            )
            flops += 2.0 * float(np.prod(y)) * k
    return flops


# --------------------------------------------------------------------------- orchestration


def subset_catalog(catalog: Path, n: int, dest: Path) -> Path:
    """A folder of symlinks to the first ``n`` items of ``catalog`` (same files, fewer items)."""
    from mmrec.catalog.scan import scan_catalog

    scan = scan_catalog(catalog)
    for item in scan.items[:n]:
        for rel in item.files.values():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.symlink(scan.root / rel, target)
    return dest


def run_child(mode: str, catalog: str, twice: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--catalog", catalog] + (["--twice"] if twice else [])
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"child {mode} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--subset", type=int, help="items in the A/B comparison (default 300; --whole: all)")
    ap.add_argument("--repeats", type=int, default=2, help="A/B pairs (default 2)")
    ap.add_argument("--skip-full", action="store_true", help="skip the whole-catalog run")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--whole", action="store_true", help="whole-process ingest against the bare fp32 models")
    ap.add_argument("--modes", default=",".join(WHOLE_MODES), help="--whole: modes to run, comma-separated")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--twice", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        children = {
            "pipeline": lambda: child_pipeline(args.catalog, args.twice),
            "bare": lambda: child_bare(args.catalog),
        }
        res = children.get(args.child, lambda: child_naive(args.catalog))()
        print(json.dumps(res))
        return

    import platform

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}", flush=True)
    if args.whole:
        load_start = os.getloadavg()
        modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
        res = whole(args.catalog, args.repeats, modes, args.subset)
        res["machine"] = {
            "cores": os.cpu_count(),
            "arch": platform.machine(),
            "load_avg_start": load_start,
            "load_avg_end": os.getloadavg(),
        }
        med, cpu = res["median_seconds"], res["median_cpu"]
        print(f"\nwhole catalog, median of {args.repeats} interleaved runs:")
        for m, ratio in res["ratio_to_bare"].items():
            print(
                f"  mmrec ingest ({m[7:]:<5}) {med[m]:7.1f} s wall {ratio:.2f}x, {cpu[m]:7.1f} s cpu"
                f" {res['ratio_to_bare_cpu'][m]:.2f}x the bare fp32 models ({med['bare-fp32']:.1f} s, {cpu['bare-fp32']:.1f} s cpu)"
            )
        print(f"  stored vectors, ONNX vs torch ingest: {res['quality_onnx_vs_torch']}")
        if args.out:
            Path(args.out).write_text(json.dumps(res, indent=2))
        return
    results: dict = {"machine": {"cores": os.cpu_count(), "arch": platform.machine()}}
    gflops_before = matmul_gflops()
    flops = flops_per_item(args.catalog)
    results["flops_per_item"] = flops
    print(
        f"model GFLOPs per item: text {flops['text'] / 1e9:.3f} ({flops['text_tokens_per_item']:.0f} tokens), "
        f"image {flops['image'] / 1e9:.3f}, audio {flops['audio'] / 1e9:.3f} ({flops['audio_patches_per_item']:.1f} patches)",
        flush=True,
    )

    runs: dict[str, list[dict]] = {"pipeline": [], "naive": []}
    with tempfile.TemporaryDirectory() as tmp:
        sub = subset_catalog(Path(args.catalog), args.subset or 300, Path(tmp) / "subset")
        for r in range(args.repeats):
            for mode in ("pipeline", "naive"):
                res = run_child(mode, str(sub))
                runs[mode].append(res)
                print(
                    f"  [{r + 1}/{args.repeats}] {mode:<8} {res['items']} items in {res['seconds']:.1f} s = {res['items'] / res['seconds']:.2f} items/s, "
                    f"peak RSS {res['peak_rss_mib']:.0f} MiB",
                    flush=True,
                )
    full = None if args.skip_full else run_child("pipeline", args.catalog, twice=True)
    gflops_after = matmul_gflops()
    gflops = max(gflops_before, gflops_after)
    results.update({"gflops_measured": [gflops_before, gflops_after], "ab_runs": runs, "full": full})

    def rate(rs: list[dict]) -> float:
        return statistics.median(x["items"] / x["seconds"] for x in rs)

    def modality_rate(rs: list[dict], m: str) -> float:
        return statistics.median(x["encoded"][m] / x["encode_seconds"][m] for x in rs if x["encode_seconds"][m] > 0)

    print(f"\nfp32 matmul: {gflops_before:.0f} / {gflops_after:.0f} GFLOP/s (before / after); limit uses {gflops:.0f}")
    print(f"\nA/B on {args.subset or 300} items, median of {args.repeats} interleaved runs each:")
    p, n = rate(runs["pipeline"]), rate(runs["naive"])
    print(f"  overall   pipeline {p:7.2f} items/s   naive {n:7.2f} items/s   ratio {p / n:.2f}x")
    total_flops = sum(flops[m] for m in ("text", "image", "audio"))
    print("  model-only throughput per modality (items/s) and fraction of the compute limit:")
    for m in ("text", "image", "audio"):
        pm, nm = modality_rate(runs["pipeline"], m), modality_rate(runs["naive"], m)
        limit = gflops * 1e9 / flops[m]
        print(
            f"    {m:<6} pipeline {pm:8.1f}   naive {nm:8.1f}   ratio {pm / nm:5.2f}x   limit {limit:8.1f}   pipeline at {pm / limit:6.1%} of limit"
        )
    print(f"  compute limit for a full item (all three models): {gflops * 1e9 / total_flops:.1f} items/s")
    if full:
        print(
            f"\nwhole catalog ({full['items']} items): first run {full['seconds']:.1f} s = {full['items'] / full['seconds']:.2f} items/s, "
            f"second run {full['second_run_seconds']:.2f} s ({full['second_run_seconds'] / full['seconds']:.1%} of the first; "
            f"changed {full['second_run_changed']}, wrote {full['second_run_wrote']}), problems {full['problems']}"
        )
        print(f"  peak RSS {full['peak_rss_mib']:.0f} MiB, size on disk {full['size_bytes'] / 2**20:.1f} MiB")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
