"""The ``mmrec`` subcommands (all but ``demo``, in :mod:`mmrec.cli.demo`): parsed arguments in, exit code out.

Each command checks its arguments, calls :class:`mmrec.engine.Engine` and prints through
:mod:`mmrec.cli.render` (or JSON). Errors are raised, not printed: :func:`mmrec.cli.main.main` turns
them into one ``mmrec: error:`` line and the exit code. Heavy libraries (torch, lancedb, the models,
uvicorn) are imported inside the commands, so that importing this module for ``mmrec --help`` is cheap.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from mmrec.cli.render import (
    format_item,
    print_evaluation,
    print_info,
    print_item_table,
    print_matches,
    print_recommendations,
)
from mmrec.names import MODALITIES

if TYPE_CHECKING:
    from mmrec.config import EncoderConfig
    from mmrec.engine import Engine

__all__ = [
    "cmd_encoders",
    "cmd_evaluate",
    "cmd_import",
    "cmd_info",
    "cmd_ingest",
    "cmd_interact",
    "cmd_items",
    "cmd_recommend",
    "cmd_serve",
    "cmd_similar",
    "cmd_train",
    "open_engine",
]

#: Hosts that only this machine can reach: serving on them without an API key gives no warning.
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def open_engine(args: argparse.Namespace, encoders: EncoderConfig | None = None) -> Engine:
    """The engine over ``--db``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments; ``args.db`` is the database folder or LanceDB URI.
    encoders : EncoderConfig, optional
        Encoders for a new database (``mmrec ingest --text-encoder …``).

    Returns
    -------
    Engine
    """
    # Imported here: the engine pulls in lancedb and the encoders, which `mmrec --help` must not load.
    from mmrec.engine import Engine

    return Engine(args.db, encoders=encoders)


def cmd_ingest(args: argparse.Namespace) -> int:
    """``mmrec ingest``: encode a catalog folder into the database and print the report."""
    from dataclasses import replace

    from mmrec.config import EncoderConfig, IngestConfig

    chosen = {m: getattr(args, f"{m}_encoder") for m in MODALITIES}
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
    report = open_engine(args, encoders).ingest(
        args.catalog, prune=args.prune, strict=args.strict, progress=not args.quiet, config=config
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0


def cmd_items(args: argparse.Namespace) -> int:
    """``mmrec items``: list items (a page at a time), or show one item."""
    engine = open_engine(args)
    if args.id:
        item = engine.item(args.id)
        print(json.dumps(item, indent=2, ensure_ascii=False) if args.json else format_item(item))
        return 0
    rows = engine.items(limit=args.limit, offset=args.offset, where=args.where)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print("no items")
        return 0
    print_item_table(rows)
    total = engine.count(args.where)
    if total > args.offset + len(rows):
        print(f"… {total - args.offset - len(rows)} more (use --limit/--offset)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """``mmrec info``: counts, encoders, problems and size of a database."""
    info = open_engine(args).info()
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False, default=str))
        return 0
    print_info(info)
    return 0


def cmd_encoders(args: argparse.Namespace) -> int:
    """``mmrec encoders``: one line per registered encoder, marking each modality's default."""
    from encoders.registry import DEFAULT_ENCODERS, get_encoder_class, list_encoders

    for name in list_encoders():
        cls = get_encoder_class(name)
        default = " (default)" if DEFAULT_ENCODERS.get(cls.modality) == name else ""
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{cls.modality:<6} {name:<22} {doc}{default}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``mmrec train``: the fusion layer and, with interactions, the hybrid recommender (or one, ``--only``)."""
    from dataclasses import replace

    from fusion.train import TrainConfig

    config = TrainConfig(device=args.device)
    if args.epochs is not None:
        if args.epochs < 1:
            from mmrec.errors import InvalidArgumentError

            raise InvalidArgumentError(f"--epochs must be at least 1, got {args.epochs}")
        config = replace(config, epochs=args.epochs)
    log = None if (args.quiet or args.json) else (lambda line: print(line, flush=True))
    engine = open_engine(args)
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


def cmd_similar(args: argparse.Namespace) -> int:
    """``mmrec similar``: items near a sentence, an image, a sound or a stored item."""
    matches = open_engine(args).similar(
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
    print_matches(matches)
    return 0


def cmd_interact(args: argparse.Namespace) -> int:
    """``mmrec interact``: record one interaction and echo what was stored."""
    inter = open_engine(args).interact(args.user, args.item, args.event, weight=args.weight, at=args.at)
    print(f"recorded {inter.user} {inter.event} {inter.item} (weight {inter.weight:+g}) at {inter.ts.isoformat()}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """``mmrec import-interactions``: import a file of interactions and print the report."""
    report = open_engine(args).import_interactions(args.file, strict=args.strict)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    """``mmrec recommend``: recommendations for a user, optionally explained."""
    result = open_engine(args).recommend(
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
    print_recommendations(result)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``mmrec serve``: check the arguments, the port and the database, load the models, then run the HTTP API."""
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
    engine = open_engine(args)
    if not engine.has_items():
        raise StoreError(f"database {args.db!r} has no items yet; run `mmrec ingest CATALOG --db {args.db}` first")
    import uvicorn

    from mmrec.service import ServiceLimits, create_app, warm_engine

    print(f"mmrec: loading models for {args.db} …", file=sys.stderr, flush=True)
    warm_engine(engine)  # here, so a bad database is a one-line error and not a failed server start-up
    if key is None and args.host not in _LOCAL_HOSTS:
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``mmrec evaluate``: offline evaluation of recommenders on the stored interactions."""
    from mmrec.errors import InvalidArgumentError
    from mmrec.recsys.evaluation import to_json
    from mmrec.recsys.models import parse_models

    # Check the arguments before the database is opened: a typo fails at once, naming the valid models.
    models = parse_models(args.models) if args.models else None
    try:
        ks = tuple(int(k) for k in args.k.split(",") if k.strip())
    except ValueError:
        raise InvalidArgumentError(f"--k takes integers like 10 or 10,20, got {args.k!r}") from None
    if not ks or min(ks) < 1:
        raise InvalidArgumentError(f"--k values must be >= 1, got {args.k!r}")
    # Progress goes to stderr so that stdout stays the table (or the JSON) alone.
    log = None if (args.quiet or args.json) else (lambda line: print(line, file=sys.stderr, flush=True))
    results = open_engine(args).evaluate(
        args.protocol, models, ks=ks, seed=args.seed, implicit=args.implicit, tune=not args.no_tune, log=log
    )
    if args.json:
        print(to_json(results))
        return 0
    print_evaluation(results, ks)
    return 0
