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
    "cmd_forget",
    "cmd_rebuild_profiles",
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

    def waiting(message: str) -> None:
        print(f"mmrec: {message}", file=sys.stderr, flush=True)

    return Engine(
        args.db,
        encoders=encoders,
        wait=not getattr(args, "no_wait", False),
        on_wait=waiting,
        fusion=getattr(args, "fusion", "pretrained"),
        serving=getattr(args, "serving", None) or "auto",
        memory_budget_mb=getattr(args, "memory_budget_mb", None),
    )


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
    if args.engine != "local" or args.ray_address or args.ray_workers is not None:
        from mmrec.errors import InvalidArgumentError
        from mmrec.ingest.distributed import check_engine

        if args.engine != "ray":
            raise InvalidArgumentError("--ray-address and --ray-workers need --engine ray")
        config = replace(config, engine="ray", ray_address=args.ray_address, ray_workers=args.ray_workers)
        check_engine(config)  # before any model loads
    from mmrec.config import DEFAULT_CACHE
    from mmrec.ingest.unchanged import answer_unchanged

    # Nothing changed since a run that changed nothing: answered before the Engine is even imported.
    requested = encoders.by_modality() if encoders else None
    report = answer_unchanged(args.db, args.catalog, prune=args.prune, requested=requested, cache_dir=DEFAULT_CACHE)
    if report is None or (args.strict and report.problems):  # --strict with problems: the Engine raises
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
    if args.members < 1:
        from mmrec.errors import InvalidArgumentError

        raise InvalidArgumentError(f"--members must be at least 1, got {args.members}")
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

        hybrid = engine.train_hybrid(HybridConfig(device=args.device, members=args.members), log=log)
        out["hybrid"] = hybrid
        if not args.json:
            print(f"recommender: {hybrid['message']}")
            for name, m in hybrid.get("candidates", {}).items():
                mark = "*" if name == hybrid.get("served") else " "
                # the blend competes with its weight search's cross-fitted score; the in-sample one beside it
                in_sample = m.get("valid_ndcg@10_in_sample")
                note = f"  (cross-fitted; in sample {in_sample:.4f})" if in_sample is not None else ""
                print(
                    f"  {mark} {name:<8} valid NDCG@10 {m['valid_ndcg@10']:.4f}  Recall@10 {m['valid_recall@10']:.4f}"
                    f"  MRR@10 {m['valid_mrr@10']:.4f}  {m['fit_seconds']:.1f} s{note}"
                )
        rating = engine.train_rating(log=log)
        out["rating"] = rating
        if not args.json and rating["saved"]:  # silent for a database without star ratings
            print(f"ratings: {rating['message']}")
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
    if report.rows and not (report.added or report.duplicates):
        # Every row was rejected: nothing is stored, and a script must not take that for success.
        print(f"mmrec: error: no row of {args.file!r} was accepted ({len(report.bad)} rejected)", file=sys.stderr)
        return 1
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    """``mmrec forget``: delete a user's events and profile from every file of the database."""
    report = open_engine(args).forget(args.user)
    print(json.dumps({**report.to_dict(), "found": report.found}, indent=2) if args.json else report.format())
    return 0


def cmd_rebuild_profiles(args: argparse.Namespace) -> int:
    """``mmrec rebuild-profiles``: recompute profiles from the event log."""
    n = open_engine(args).rebuild_profiles(args.users or None)
    print(f"rebuilt {n} profile(s) from the event log")
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
    """``mmrec serve``: resolve the settings, check the port and the database, load the models, then serve.

    Settings come from the flags, ``MMREC_*`` variables and the ``--config`` file, in that order of
    precedence (:func:`mmrec.service.settings.load_settings`). Returns 0 after a stop by SIGTERM (the
    requests in progress finished, within ``shutdown_timeout``).
    """
    import dataclasses
    import logging
    import os
    import socket

    from mmrec.errors import InvalidArgumentError, StoreError
    from mmrec.service.settings import describe, load_settings, setting_keys

    flags = {key: getattr(args, key, None) for key in setting_keys()}
    settings = load_settings(flags, os.environ, args.config)
    # Fail with one line now rather than a uvicorn traceback after the models have loaded.
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((settings.host, settings.port))
    except OSError as e:
        raise InvalidArgumentError(f"cannot listen on {settings.host}:{settings.port}: {e.strerror or e}") from e
    args.db, args.serving, args.memory_budget_mb = settings.db, settings.serving, settings.memory_budget
    engine = open_engine(args)
    if not engine.has_items():
        raise StoreError(
            f"database {settings.db!r} has no items yet; run `mmrec ingest CATALOG --db {settings.db}` first"
        )
    from mmrec.service.app import app_from_settings
    from mmrec.service.logs import configure_logging
    from mmrec.service.server import SETTINGS_ENV, serve, serve_workers

    # From here on every line is a log record, in the chosen format (one JSON object per line with json).
    configure_logging(settings.log_format, settings.log_level, access_log=settings.access_log)
    log = logging.getLogger("mmrec.service")
    workers = settings.workers or os.cpu_count() or 1
    if settings.api_key is None and settings.host not in _LOCAL_HOSTS:
        log.warning(
            "listening on %s without an API key: anyone who can reach it can record interactions (set MMREC_API_KEY)",
            settings.host,
        )
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    # With workers, each process counts its own requests: a scrape sees one worker's.
    extra = ("; metrics at /metrics" + (", per worker" if workers > 1 else "")) if settings.metrics else ""
    if workers > 1:
        # Each worker (a spawned process) reads the resolved settings from the environment, never from a
        # command line where `ps` would show the API key, and opens and warms its own engine and snapshot.
        os.environ[SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
        log.info("starting %d workers for %s …", workers, settings.db, extra={"settings": describe(settings)})
        log.info("serving on http://%s:%d/ (API docs at /docs%s; Ctrl-C stops)", shown, settings.port, extra)
        serve_workers(
            host=settings.host,
            port=settings.port,
            workers=workers,
            header_timeout=settings.header_timeout,
            keep_alive_timeout=settings.keep_alive_timeout,
            shutdown_timeout=settings.shutdown_timeout,
        )
        log.info("stopped")
        return 0
    log.info("loading models for %s …", settings.db, extra={"settings": describe(settings)})
    # Warmed here, so a bad database is a one-line error and not a failed server start-up.
    app = app_from_settings(settings, engine, warm=True)
    log.info("serving on http://%s:%d/ (API docs at /docs%s; Ctrl-C stops)", shown, settings.port, extra)
    # The header-timeout counter is found in the app by the server's config, as in each worker.
    serve(
        app,
        host=settings.host,
        port=settings.port,
        header_timeout=settings.header_timeout,
        keep_alive_timeout=settings.keep_alive_timeout,
        shutdown_timeout=settings.shutdown_timeout,
    )
    log.info("stopped")
    return 0


def _evaluate_ratings(args: argparse.Namespace) -> int:
    """``mmrec evaluate --task rating``: 5-fold cross-validation of the rating models."""
    from mmrec.recsys.evaluation import to_json
    from mmrec.recsys.rating import make_rating_model
    from mmrec.recsys.rating_eval import format_rating_table

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    for name in models or []:
        make_rating_model(name)  # a typo fails before the database is opened, naming the valid models
    log = None if (args.quiet or args.json) else (lambda line: print(line, file=sys.stderr, flush=True))
    results = open_engine(args).evaluate(models=models, seed=args.seed, log=log, task="rating")
    if args.json:
        print(to_json(results))
        return 0
    print(f"{results['protocol']}: {results['ratings']} ratings, {results['users']} users, {results['items']} items")
    print(format_rating_table(results))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``mmrec evaluate``: offline evaluation of recommenders on the stored interactions."""
    from mmrec.errors import InvalidArgumentError
    from mmrec.recsys.evaluation import to_json
    from mmrec.recsys.models import parse_models

    if getattr(args, "task", "ranking") == "rating":
        return _evaluate_ratings(args)
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
