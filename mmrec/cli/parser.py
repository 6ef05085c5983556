"""The ``mmrec`` argument parser.

Only light modules are imported here (the configuration defaults and :mod:`mmrec.names`, which gives
the ``choices``), so ``mmrec --help`` answers at once.
"""

from __future__ import annotations

import argparse

from mmrec.cli.demo import DEMO_DB

__all__ = ["build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The ``mmrec`` argument parser: every subcommand, its options and their help.

    Returns
    -------
    argparse.ArgumentParser
        ``parse_args`` gives a namespace whose ``command`` names the subcommand.
    """
    from mmrec.config import DEFAULT_DB
    from mmrec.names import DEFAULT_EVENT, EVENTS, MODEL_NAMES, PROTOCOLS, SEARCH_MODALITIES, TRAINABLE

    parser = argparse.ArgumentParser(
        prog="mmrec",
        description="Multimodal recommendation engine: ingest a media folder (text, images, audio) into LanceDB.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add_db(p: argparse.ArgumentParser, default: str = DEFAULT_DB) -> None:
        """Add the ``--db`` option every database command shares."""
        p.add_argument("--db", default=default, help=f"database folder or LanceDB URI (default: {default})")
        p.add_argument(
            "--no-wait",
            action="store_true",
            help="fail at once instead of waiting when another process is writing the database",
        )

    def add_fusion(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--fusion",
            choices=("pretrained", "untrained"),
            default="pretrained",
            help="how a new database's fusion layer starts: the shipped pretrained layer (default; "
            "untrained when the encoders are not the ones it was trained on) or the untrained mean",
        )

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
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process; ray: decode and encode on Ray Data actors, one commit (needs mmrec[ray])",
    )
    p.add_argument(
        "--ray-address", metavar="ADDR", help="Ray cluster to join (ray://head:10001, auto); default: start a local Ray"
    )
    p.add_argument("--ray-workers", type=int, metavar="N", help="Ray actors, each loading the encoders once")
    add_fusion(p)

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
    p.add_argument(
        "--members",
        type=int,
        default=1,
        help="fits from different seeds the hybrid candidate averages (default 1; 2: side by side on 2+ cores, "
        "+3.8 %% test NDCG@10 on MovieLens-100k, mean over seed pairs, for 1.5x the fit time on 2 cores)",
    )
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
    add_serving(p, default="auto")
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

    p = sub.add_parser("forget", help="delete a user's events and profile from every file of the database")
    p.add_argument("user")
    add_db(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("rebuild-profiles", help="recompute user profiles from the event log")
    p.add_argument("users", nargs="*", metavar="USER", help="only these users (default: every user)")
    add_db(p)

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
    add_serving(p, default="auto")
    p.add_argument("--json", action="store_true", help="print JSON")

    _add_serve(sub)

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
    p.add_argument(
        "--task",
        default="ranking",
        choices=("ranking", "rating"),
        help="ranking (top-K metrics, default) or rating (5-fold MAE/MSE/RMSE on the star ratings; --models from "
        "mean, biases, svd, svdpp, hybrid)",
    )
    p.add_argument("--no-tune", action="store_true", help="skip the baselines' validation grid search")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print every metric, split sizes and tuning trials as JSON")

    p = sub.add_parser("demo", help="ingest the bundled demo catalog and show what mmrec sees in it")
    add_db(p, DEMO_DB)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_fusion(p)
    return parser


def add_serving(p: argparse.ArgumentParser, default: str | None) -> None:
    """``--serving MODE`` (``default`` None where a settings layer below the flag decides)."""
    p.add_argument(
        "--serving",
        default=default,
        metavar="MODE",
        help="where item vectors are read: memory, lancedb (its index: catalogs too large for memory) or "
        "auto (memory within the memory budget, by default a quarter of physical memory; the default)",
    )


def _add_serve(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``serve`` subcommand: one flag per key of :class:`mmrec.service.settings.ServeSettings`.

    Every flag defaults to ``None`` ("not given"), so that a value from ``MMREC_*`` or the config file is
    only overridden by a flag that is really on the command line (precedence flag > env > file > default).
    """
    from mmrec.service.settings import LOG_FORMATS, LOG_LEVELS, ServeSettings

    d = ServeSettings()
    p = sub.add_parser(
        "serve",
        help="HTTP API (OpenAPI docs at /docs) and web page over the database",
        description="Serve the database over HTTP. Every option can also be set as MMREC_<OPTION> (e.g. "
        "MMREC_PORT=8080) or as `option = value` in a TOML file (--config); a flag wins over the variable, "
        "which wins over the file.",
    )
    on_off = argparse.BooleanOptionalAction
    p.add_argument("--config", metavar="FILE", help="TOML file of settings (default: $MMREC_CONFIG; none)")
    p.add_argument("--db", help=f"database folder or LanceDB URI (default: {d.db})")
    p.add_argument("--host", help=f"interface to listen on (default {d.host}: this machine only)")
    p.add_argument("--port", type=int, help=f"TCP port (default {d.port})")
    p.add_argument(
        "--api-key",
        help="key required for writes (default: $MMREC_API_KEY; prefer the variable, arguments are visible in ps)",
    )
    p.add_argument("--private", action=on_off, help="require the API key for reads and /metrics too")
    p.add_argument("--threads", type=int, help="requests computed at once (default: twice the CPU cores); others wait")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help=f"server processes, each with its own engine and snapshot (0: one per CPU core; default {d.workers})",
    )
    p.add_argument("--log-level", choices=LOG_LEVELS, help=f"default {d.log_level} (one line per request)")
    p.add_argument(
        "--log-format", choices=LOG_FORMATS, help=f"text, or json: one object per line (default {d.log_format})"
    )
    p.add_argument("--access-log", action=on_off, help="one log line per request (default on)")
    p.add_argument("--metrics", action=on_off, help="Prometheus metrics at /metrics (default off)")
    p.add_argument(
        "--header-timeout",
        type=float,
        metavar="S",
        help=f"seconds a client has to send a request's headers; slower connections are closed (default {d.header_timeout:g})",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        metavar="S",
        help=f"seconds a request body may stall before a 408 (default {d.body_timeout:g})",
    )
    p.add_argument(
        "--keep-alive-timeout",
        type=float,
        metavar="S",
        help=f"seconds an idle connection is kept open (default {d.keep_alive_timeout:g})",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        metavar="S",
        help=f"on SIGTERM, seconds the requests in progress get to finish (default {d.shutdown_timeout:g})",
    )
    p.add_argument(
        "--max-upload-mib", type=float, metavar="MIB", help=f"largest uploaded file (default {d.max_upload_mib:g})"
    )
    p.add_argument("--max-json-mib", type=float, metavar="MIB", help=f"largest JSON body (default {d.max_json_mib:g})")
    p.add_argument(
        "--max-batch", type=int, metavar="N", help=f"most interactions per POST /interactions (default {d.max_batch})"
    )
    add_serving(p, default=None)  # None: the settings file, the environment or the settings' default decide
    p.add_argument(
        "--memory-budget-mb",
        type=float,
        metavar="MB",
        help="snapshot size up to which auto serves from memory, per worker (default: a quarter of physical memory)",
    )
