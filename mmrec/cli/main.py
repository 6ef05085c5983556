"""The ``mmrec`` command line: a thin layer over :class:`mmrec.engine.Engine`.

Heavy libraries (torch, lancedb, the models) are imported only by the
subcommands that need them, so ``mmrec --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEMO_DB = "mmrec-demo-db"


def _demo_catalog() -> Path:
    return Path(__file__).resolve().parent.parent / "assets" / "demo"


def build_parser() -> argparse.ArgumentParser:
    from mmrec.config import DEFAULT_DB
    from mmrec.names import DEFAULT_EVENT, EVENTS, MODEL_NAMES, PROTOCOLS, SEARCH_MODALITIES, TRAINABLE

    parser = argparse.ArgumentParser(
        prog="mmrec",
        description="Multimodal recommendation engine: ingest a media folder (text, images, audio) into LanceDB.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add_db(p: argparse.ArgumentParser, default: str = DEFAULT_DB) -> None:
        p.add_argument("--db", default=default, help=f"database folder or LanceDB URI (default: {default})")

    p = sub.add_parser("ingest", help="encode a catalog folder into the database (incremental)")
    p.add_argument("catalog", help="catalog folder (stems grouped into items, or catalog.jsonl/catalog.csv)")
    add_db(p)
    p.add_argument("--prune", action="store_true", help="remove stored items whose files are gone")
    p.add_argument("--strict", action="store_true", help="exit non-zero when any file has a problem")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--text-encoder", help="text encoder for a new database (see `mmrec encoders`)")
    p.add_argument("--image-encoder", help="image encoder for a new database")
    p.add_argument("--audio-encoder", help="audio encoder for a new database")
    p.add_argument(
        "--clip",
        metavar="ARCH/PRETRAINED",
        help="preset: CLIP image and text towers from open_clip (a pretrained tag, or ARCH//path/to/checkpoint.pt)",
    )
    p.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    p.add_argument("--workers", type=int, help="decoding threads (default: 2)")

    p = sub.add_parser("items", help="list items, or show one item")
    p.add_argument("id", nargs="?", help="show this item")
    add_db(p)
    p.add_argument("--limit", type=int, default=50, help="items to list (default 50)")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--where", help="SQL filter, e.g. \"has_audio AND title LIKE '%%owl%%'\"")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("info", help="counts, encoders, problems and size of a database")
    add_db(p)
    p.add_argument("--json", action="store_true", help="print JSON")

    sub.add_parser("encoders", help="list the registered encoders")

    p = sub.add_parser(
        "train", help="learn the fusion layer (cross-modal alignment) and, with interactions, the hybrid recommender"
    )
    add_db(p)
    p.add_argument(
        "--epochs", type=int, help="most fusion epochs (default 40; stops early when held-out loss stops improving)"
    )
    p.add_argument("--only", choices=TRAINABLE, help="train only one of the two models")
    p.add_argument("--device", default="auto", help="torch device: auto (GPU when there is one), cpu, cuda")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-epoch lines")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("similar", help="items similar to a sentence, an image, a sound or an item, across modalities")
    add_db(p)
    query = p.add_mutually_exclusive_group(required=True)
    query.add_argument("--text", help="a sentence")
    query.add_argument("--image", help="an image file")
    query.add_argument("--audio", help="an audio file")
    query.add_argument("--item", help="a stored item id (left out of the results)")
    p.add_argument("-k", type=int, default=10, help="results (default 10)")
    p.add_argument(
        "--modality",
        default="any",
        choices=SEARCH_MODALITIES,
        help="search fused item vectors (any) or one modality's vectors, e.g. --image owl.jpg --modality audio",
    )
    p.add_argument("--where", help="SQL filter on item columns, applied inside the search")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("interact", help="record one interaction (the profile updates at once)")
    p.add_argument("user")
    p.add_argument("item")
    add_db(p)
    p.add_argument(
        "--event",
        default=DEFAULT_EVENT,
        help=f"{', '.join(e for e in EVENTS if e != 'rating')} (default {DEFAULT_EVENT})",
    )
    p.add_argument("--weight", type=float, help="override the event's default weight")
    p.add_argument("--at", help="when: ISO 8601 or Unix seconds (default now)")

    p = sub.add_parser("import-interactions", help="import interactions from CSV, TSV, JSONL or Parquet")
    p.add_argument("file", help="columns: user, item, event and/or rating (1-5), timestamp; optional weight")
    add_db(p)
    p.add_argument("--strict", action="store_true", help="reject the whole file when any row is bad")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("recommend", help="recommendations for a user, with explanations and cold start")
    p.add_argument("user")
    add_db(p)
    p.add_argument("-k", type=int, default=10, help="results (default 10)")
    p.add_argument("--where", help="SQL filter on item columns, applied inside the search")
    p.add_argument(
        "--modality",
        default="any",
        choices=SEARCH_MODALITIES,
        help="rank by fused vectors or one modality",
    )
    p.add_argument("--diversity", type=float, default=0.0, help="0 (relevance only) to 1 (most varied)")
    p.add_argument("--explain", action="store_true", help="show which history items and modalities led to each item")
    p.add_argument("--include-seen", action="store_true", help="keep items the user already interacted with")
    p.add_argument("--query", help="onboarding text for a user without history")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("serve", help="HTTP API (OpenAPI docs at /docs) and web page over the database")
    add_db(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument(
        "--api-key",
        help="key required for writes (default: $MMREC_API_KEY; prefer the variable, arguments are visible in ps)",
    )
    p.add_argument("--private", action="store_true", help="require the API key for reads too")
    p.add_argument(
        "--threads", type=int, default=0, help="requests computed at once (default: twice the CPU cores); others wait"
    )
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])

    p = sub.add_parser(
        "evaluate", help="offline evaluation of recommenders on the stored interactions (full ranking, tuned baselines)"
    )
    add_db(p)
    p.add_argument(
        "--protocol",
        default="leave-last-out",
        choices=PROTOCOLS,
        help="how interactions are split (default leave-last-out: each user's last positive is the test)",
    )
    p.add_argument(
        "--models",
        help=f"comma-separated: {', '.join(MODEL_NAMES)} (default: all available)",
    )
    p.add_argument("--k", default="10", help="cut-off(s) of the metrics, e.g. 10 or 10,20 (default 10)")
    p.add_argument("--seed", type=int, default=0, help="split, model and tie-break seed (default 0)")
    p.add_argument("--implicit", action="store_true", help="count every interaction as a positive (e.g. all ratings)")
    p.add_argument("--no-tune", action="store_true", help="skip the baselines' validation grid search")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print every metric, split sizes and tuning trials as JSON")

    p = sub.add_parser("demo", help="ingest the bundled demo catalog and show what mmrec sees in it")
    add_db(p, DEMO_DB)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from encoders.errors import EncoderError
    from mmrec.errors import IngestProblemsError, MMRecError

    try:
        return _COMMANDS[args.command](args)
    except IngestProblemsError as e:
        report = getattr(e, "report", None)
        if report is not None:
            print(json.dumps(report.to_dict(), indent=2) if getattr(args, "json", False) else report.format())
        print(f"mmrec: error: {e}", file=sys.stderr)
        return 1
    except (MMRecError, EncoderError) as e:
        print(f"mmrec: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mmrec: interrupted", file=sys.stderr)
        return 130


def _engine(args: argparse.Namespace, encoders: Any = None) -> Any:
    from mmrec.engine import Engine

    return Engine(args.db, encoders=encoders)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from mmrec.config import EncoderConfig, IngestConfig

    chosen = {m: getattr(args, f"{m}_encoder") for m in ("text", "image", "audio")}
    if args.clip:
        if chosen["text"] or chosen["image"]:
            from mmrec.errors import InvalidArgumentError

            raise InvalidArgumentError(
                "--clip sets the text and image encoders; do not combine it with --text-encoder/--image-encoder"
            )
        chosen["text"], chosen["image"] = f"open-clip-text:{args.clip}", f"open-clip-image:{args.clip}"
    encoders = EncoderConfig(**{m: v for m, v in chosen.items() if v}) if any(chosen.values()) else None
    config = IngestConfig()
    if args.threads is not None:
        config = replace(config, threads=args.threads)
    if args.workers is not None:
        config = replace(config, decode_workers=args.workers)
    if config.threads < 1 or config.decode_workers < 1:
        from mmrec.errors import InvalidArgumentError

        raise InvalidArgumentError("--threads and --workers must be at least 1")
    report = _engine(args, encoders).ingest(
        args.catalog, prune=args.prune, strict=args.strict, progress=not args.quiet, config=config
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0


def _cmd_items(args: argparse.Namespace) -> int:
    engine = _engine(args)
    if args.id:
        item = engine.item(args.id)
        print(json.dumps(item, indent=2, ensure_ascii=False) if args.json else _format_item(item))
        return 0
    rows = engine.items(limit=args.limit, offset=args.offset, where=args.where)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print("no items")
        return 0
    width = min(max(len(r["id"]) for r in rows), 40)
    print(f"{'id':<{width}}  mods  title")
    for r in rows:
        mods = "".join(c if r[f"has_{m}"] else "-" for c, m in (("T", "text"), ("I", "image"), ("A", "audio")))
        flag = "  !" if r.get("problems") else ""
        print(f"{r['id'][:width]:<{width}}  {mods}   {(r.get('title') or '')[:60]}{flag}")
    total = engine.store.count(args.where)
    if total > args.offset + len(rows):
        print(f"… {total - args.offset - len(rows)} more (use --limit/--offset)")
    return 0


def _format_item(item: dict[str, Any]) -> str:
    lines = [f"id        {item['id']}", f"title     {item.get('title') or ''}"]
    mods = [m for m in ("text", "image", "audio") if item.get(f"has_{m}")]
    lines.append(f"modalities {', '.join(mods) or 'none'}")
    if item.get("tags"):
        lines.append(f"tags      {', '.join(item['tags'])}")
    if item.get("metadata"):
        lines.append(f"metadata  {json.dumps(item['metadata'], ensure_ascii=False)}")
    for f in item.get("files") or []:
        lines.append(f"file      {f['role']:<8} {f['path']}")
    for m, labels in (item.get("labels") or {}).items():
        lines.append(f"{m} labels " + ", ".join(f"{x['label']} {x['score']:.2f}" for x in labels))
    if item.get("text"):
        text = item["text"].replace("\n", " ")
        lines.append(f"text      {text[:300]}{'…' if len(text) > 300 else ''}")
    for p in item.get("problems") or []:
        lines.append(f"problem   {p['path']}: {p['reason']}")
    lines.append(f"updated   {item.get('updated_at')}")
    return "\n".join(lines)


def _cmd_info(args: argparse.Namespace) -> int:
    info = _engine(args).info()
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False, default=str))
        return 0
    print(f"database  {info['db']}")
    print(f"items     {info['items']}")
    if "modalities" in info:
        print("modality  " + ", ".join(f"{m} {n}" for m, n in info["modalities"].items()))
        for cat, n in info["catalogs"].items():
            print(f"catalog   {cat} ({n} items)")
        for m, e in info["encoders"].items():
            print(f"encoder   {m}: {e['spec']} = {e['model']}, {e['dim']}-d, weights {e['fingerprint']}")
        print(f"version   {info['version']}")
        fusion = info.get("fusion") or {}
        trained = f"trained v{fusion.get('version')}" if fusion.get("version") else "untrained (run `mmrec train`)"
        print(f"fusion    {fusion.get('name', '?')} {trained}, weights {fusion.get('fingerprint', '?')}")
        print(f"users     {info.get('users', 0)} with {info.get('interactions', 0)} interactions")
        hybrids = info.get("hybrid_checkpoints") or []
        if hybrids:
            h = hybrids[-1]
            print(f"hybrid    v{h['version']} trained {h['created_at'][:19]} on {h.get('interactions')} interactions")
    size = info.get("size_bytes")
    if size is not None:
        print(f"size      {size / 2**20:.1f} MiB")
    print(f"problems  {len(info['problems'])}")
    for p in info["problems"][:100]:
        print(f"  - {p['path']}: {p['reason']}")
    return 0


def _cmd_encoders(args: argparse.Namespace) -> int:
    from encoders.registry import DEFAULT_ENCODERS, get_encoder_class, list_encoders

    for name in list_encoders():
        cls = get_encoder_class(name)
        default = " (default)" if DEFAULT_ENCODERS.get(cls.modality) == name else ""
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{cls.modality:<6} {name:<22} {doc}{default}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from fusion.train import TrainConfig

    config = TrainConfig(device=args.device)
    if args.epochs is not None:
        if args.epochs < 1:
            from mmrec.errors import InvalidArgumentError

            raise InvalidArgumentError(f"--epochs must be at least 1, got {args.epochs}")
        config = replace(config, epochs=args.epochs)
    log = None if (args.quiet or args.json) else (lambda line: print(line, flush=True))
    engine = _engine(args)
    out: dict[str, Any] = {}
    if args.only != "hybrid":
        report = engine.train(config, log=log)
        out["fusion"] = report.to_dict()
        if not args.json:
            print(f"fusion: {report.message}", flush=True)
    if args.only != "fusion":
        from mmrec.recsys.hybrid import HybridConfig

        hybrid = engine.train_hybrid(HybridConfig(device=args.device), log=log)
        out["hybrid"] = hybrid
        if not args.json:
            print(f"hybrid: {hybrid['message']}")
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


def _cmd_similar(args: argparse.Namespace) -> int:
    matches = _engine(args).similar(
        text=args.text,
        image=args.image,
        audio=args.audio,
        item=args.item,
        k=args.k,
        modality=args.modality,
        where=args.where,
    )
    if args.json:
        print(json.dumps([m.to_dict() for m in matches], indent=2, ensure_ascii=False))
        return 0
    _print_matches(matches)
    return 0


def _print_matches(matches: list[Any], indent: str = "") -> None:
    if not matches:
        print(f"{indent}no matching items")
        return
    width = min(max(len(m.id) for m in matches), 36)
    for m in matches:
        print(f"{indent}{m.score:6.3f}  {m.id:<{width}}  via {m.matched:<5}  {m.title[:50]}")


def _cmd_interact(args: argparse.Namespace) -> int:
    inter = _engine(args).interact(args.user, args.item, args.event, weight=args.weight, at=args.at)
    print(f"recorded {inter.user} {inter.event} {inter.item} (weight {inter.weight:+g}) at {inter.ts.isoformat()}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    report = _engine(args).import_interactions(args.file, strict=args.strict)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0


def _cmd_recommend(args: argparse.Namespace) -> int:
    result = _engine(args).recommend(
        args.user,
        args.k,
        where=args.where,
        modality=args.modality,
        diversity=args.diversity,
        explain=args.explain,
        include_seen=args.include_seen,
        query=args.query,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str))
        return 0
    _print_recommendations(result)
    return 0


def _print_recommendations(result: Any, indent: str = "") -> None:
    if result.message:
        print(f"{indent}({result.message})")
    if not result.items:
        print(f"{indent}no items to recommend")
    width = min(max((len(r.id) for r in result.items), default=10), 36)
    for r in result.items:
        mods = ", ".join(f"{m} {w:.0%}" for m, w in sorted(r.modalities.items(), key=lambda x: -x[1]))
        via = f"  via {r.matched}" if r.matched else ""
        print(f"{indent}{r.score:6.3f}  {r.id:<{width}}  {r.title[:40]}{via}")
        if r.because:
            names = ", ".join(f"{b.item} ({b.event})" for b in r.because)
            print(f"{indent}        because you interacted with {names}; modalities: {mods}")


def _cmd_serve(args: argparse.Namespace) -> int:
    import os
    import socket

    from mmrec.errors import InvalidArgumentError, StoreError

    key = args.api_key or os.environ.get("MMREC_API_KEY") or None
    if args.private and not key:
        raise InvalidArgumentError("--private needs an API key (--api-key or MMREC_API_KEY)")
    if not 0 < args.port < 65536:
        raise InvalidArgumentError(f"--port must be 1-65535, got {args.port}")
    if args.threads < 0:
        raise InvalidArgumentError(f"--threads must be at least 1 (or 0 for the default), got {args.threads}")
    # Fail with one line now rather than a uvicorn traceback after the models have loaded.
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((args.host, args.port))
    except OSError as e:
        raise InvalidArgumentError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from e
    engine = _engine(args)
    if not engine.store.has_items():
        raise StoreError(f"database {args.db!r} has no items yet; run `mmrec ingest CATALOG --db {args.db}` first")
    import uvicorn

    from mmrec.service import ServiceLimits, create_app, warm_engine

    print(f"mmrec: loading models for {args.db} …", file=sys.stderr, flush=True)
    warm_engine(engine)  # here, so a bad database is a one-line error and not a failed server start-up
    if key is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"mmrec: warning: listening on {args.host} without an API key: anyone who can reach it can record "
            "interactions (set MMREC_API_KEY)",
            file=sys.stderr,
        )
    app = create_app(engine, api_key=key, private=args.private, limits=ServiceLimits(workers=args.threads))
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"mmrec: serving on http://{shown}:{args.port}/ (API docs at /docs; Ctrl-C stops)", file=sys.stderr, flush=True
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from mmrec.errors import InvalidArgumentError
    from mmrec.recsys.evaluation import format_markdown, parse_models, to_json

    # Check the arguments before the database is opened: a typo fails at once, naming the valid models.
    models = parse_models(args.models) if args.models else None
    try:
        ks = tuple(int(k) for k in args.k.split(",") if k.strip())
    except ValueError:
        raise InvalidArgumentError(f"--k takes integers like 10 or 10,20, got {args.k!r}") from None
    if not ks or min(ks) < 1:
        raise InvalidArgumentError(f"--k values must be >= 1, got {args.k!r}")
    log = None if (args.quiet or args.json) else (lambda line: print(line, file=sys.stderr, flush=True))
    results = _engine(args).evaluate(
        args.protocol, models, ks=ks, seed=args.seed, implicit=args.implicit, tune=not args.no_tune, log=log
    )
    if args.json:
        print(to_json(results))
        return 0
    split = results["split"]
    print(
        f"{split['protocol']}: train {split['train']['interactions']}, validation {split['valid']['interactions']}, "
        f"test {split['test']['interactions']} interactions"
    )
    some = next(iter(results["models"].values()), {})
    cands = split.get("test_candidates")
    print(f"{some.get('test', {}).get('users', 0)} test users; ranking {cands or 'all'} items, seen items masked\n")
    print(format_markdown(results, ks, metrics=("ndcg", "recall", "hit", "mrr", "coverage")))
    print()
    for name, entry in results["models"].items():
        params = ", ".join(f"{k}={v}" for k, v in (entry.get("params") or {}).items())
        print(f"{name}: fit {entry.get('fit_seconds', 0):.1f} s" + (f"; {params}" if params else ""))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from mmrec.errors import CatalogError

    catalog = _demo_catalog()
    if not catalog.is_dir():
        raise CatalogError(
            f"demo catalog not found at {catalog}; run `mmrec demo` from a source checkout (pip install -e .)"
        )
    engine = _engine(args)
    print(f"Ingesting the demo catalog {catalog} into {args.db} …")
    report = engine.ingest(catalog, prune=True, progress=not args.quiet)
    print(report.format())
    print("\nWhat the encoders see in a few items:")
    shown = 0
    for row in engine.items(limit=None):
        if not (row["has_image"] and row["has_audio"]):
            continue
        item = engine.item(row["id"], top_labels=2)
        labels = item["labels"]
        image = ", ".join(x["label"] for x in labels.get("image", []))
        audio = ", ".join(x["label"] for x in labels.get("audio", []))
        print(f"  {row['id']:<28} image: {image:<34} audio: {audio}")
        shown += 1
        if shown == 8:
            break
    demo_queries = [
        ("text", "an owl hooting in the dark forest", "any"),
        ("text", "a musical instrument with strings", "image"),
        ("image", str(catalog / "photos" / "chelsea_the_cat.jpg"), "audio"),
        ("image", str(catalog / "household" / "alarm_clock.png"), "audio"),
        ("audio", str(catalog / "animals" / "dog.mp3"), "any"),
        ("item", "music/piano", "any"),
    ]
    for kind, value, modality in demo_queries:
        shown_value = Path(value).relative_to(catalog) if kind in ("image", "audio") else value
        print(f"\nmmrec similar --{kind} {shown_value!s:<40} --modality {modality}")
        _print_matches(engine.similar(**{kind: value}, k=3, modality=modality), indent="  ")
    user = "demo-user"
    history = [
        ("animals/cow", "like"),
        ("animals/sheep", "like"),
        ("animals/horse", "view"),
        ("music/violin", "like"),
        ("music/cello", "view"),
        ("food/pizza", "skip"),
    ]
    print(f"\nA sample user, {user!r}, records: " + ", ".join(f"{e} {i}" for i, e in history))
    for i, (item, event) in enumerate(history):
        engine.interact(user, item, event, at=1_760_000_000 + 3600 * i)  # fixed times: the demo is repeatable
    print(f"mmrec recommend {user} -k 6 --explain")
    _print_recommendations(engine.recommend(user, 6, explain=True), indent="  ")
    print('\nA new user with an onboarding text: mmrec recommend newcomer --query "fresh fruit" -k 3')
    _print_recommendations(engine.recommend("newcomer", 3, query="fresh fruit"), indent="  ")
    print(
        f'\nNext: mmrec similar --db {args.db} --text "..."  |  mmrec recommend USER --db {args.db}  |  mmrec info --db {args.db}'
    )
    return 0


_COMMANDS = {
    "ingest": _cmd_ingest,
    "items": _cmd_items,
    "info": _cmd_info,
    "encoders": _cmd_encoders,
    "train": _cmd_train,
    "interact": _cmd_interact,
    "import-interactions": _cmd_import,
    "recommend": _cmd_recommend,
    "similar": _cmd_similar,
    "demo": _cmd_demo,
    "evaluate": _cmd_evaluate,
    "serve": _cmd_serve,
}


if __name__ == "__main__":
    sys.exit(main())
