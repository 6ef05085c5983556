"""The Python API: :class:`Engine` over one database — the composition root of mmrec.

The Engine owns the long-lived objects of one database (the store, the encoders, the shared
space, the user book, the hybrid model cache, the write lock) and hands each layer exactly what
it needs; nothing below this module imports it. The CLI and the HTTP service are faces over it::

    from mmrec import Engine

    engine = Engine("mmrec-db")
    report = engine.ingest("my_catalog/")
    print(report.format())
    engine.item("birds/owl")
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from encoders.base import EncoderIdentity, warm_up_input
from encoders.errors import EncoderError
from encoders.lazy import LazyEncoders
from encoders.registry import shared_encoder
from mmrec.catalog.media import resolve_media
from mmrec.catalog.scan import catalog_root
from mmrec.config import DEFAULT_CACHE, DEFAULT_DB, EncoderConfig, IngestConfig, ProfileConfig
from mmrec.errors import (
    EncoderMismatchError,
    IngestProblemsError,
    InvalidArgumentError,
    MMRecError,
    StoreError,
    UnknownItemsError,
)
from mmrec.ingest.pipeline import run_ingest
from mmrec.ingest.refit import TrainReport, train_space
from mmrec.ingest.report import IngestReport
from mmrec.ingest.unchanged import UnchangedMemo
from mmrec.names import MODALITIES
from mmrec.recsys import maintenance
from mmrec.recsys.data import interaction_data
from mmrec.recsys.forget import ForgetReport, drop_stale_hybrids, forget_user
from mmrec.recsys.hybrid_serving import HybridCache
from mmrec.recsys.interactions import Interaction, make_interaction
from mmrec.recsys.recommend import UserRecommender
from mmrec.recsys.results import RecommendResult
from mmrec.recsys.search import Match, Query, check_search, similar_items, text_search
from mmrec.recsys.serving import ServingConfig
from mmrec.recsys.snapshot import Snapshot, SnapshotCache, count_items
from mmrec.recsys.userbook import ImportReport, UserBook
from mmrec.space import SharedSpace, check_bridgeable
from mmrec.store.describe import describe_database, describe_item
from mmrec.store.items import READ_CONSISTENCY, Store, jsonable_row

if TYPE_CHECKING:
    from fusion.train import TrainConfig
    from mmrec.recsys.hybrid import HybridConfig

__all__ = ["Engine"]

log = logging.getLogger("mmrec.engine")


class Engine:
    """A multimodal catalog index in one LanceDB database.

    Parameters
    ----------
    db : str or path
        Database folder or LanceDB URI; created on first ingest.
    encoders : EncoderConfig, optional
        Encoders for a new database. A database that already holds vectors
        uses the encoders recorded in it; asking for others is an
        :class:`~mmrec.errors.EncoderMismatchError`.
    cache_dir : str or path, optional
        Where slow derived data (the bridges' class-name embeddings) is kept between runs.
    profile_config : ProfileConfig, optional
        How interactions aggregate into profiles.
    wait : bool
        When another process is writing the database, wait for it (default) or fail at once
        with :class:`~mmrec.errors.WriterBusyError`.
    on_wait : callable, optional
        Receives the one-line message when a write has to wait (default: a logged warning).
    fusion : {"pretrained", "untrained"}
        How a new database's fusion layer starts (see :meth:`SharedSpace.initial`).
    serving, memory_budget_mb : str, float
        Where recommend and similar read item vectors: ``"memory"``, ``"lancedb"`` (its index: catalogs too
        large for memory) or ``"auto"``, memory within the budget in MB (:mod:`mmrec.recsys.serving`).
    """

    def __init__(
        self,
        db: str | os.PathLike[str] = DEFAULT_DB,
        *,
        encoders: EncoderConfig | None = None,
        cache_dir: str | os.PathLike[str] | None = DEFAULT_CACHE,
        profile_config: ProfileConfig | None = None,
        wait: bool = True,
        on_wait: Callable[[str], None] | None = None,
        fusion: str = "pretrained",
        serving: str = "auto",
        memory_budget_mb: float | None = None,
    ) -> None:
        self.serving = ServingConfig(serving, memory_budget_mb)  # a bad value fails here, naming the valid ones
        self.store = Store(db, wait=wait, on_wait=on_wait or log.warning)
        self.initial_fusion = fusion
        self._requested = encoders
        self._encoders: LazyEncoders | None = None
        self._space: SharedSpace | None = None
        self._users: UserBook | None = None
        self._hybrid: HybridCache | None = None
        self._snapshots: SnapshotCache | None = None
        self._recommender: UserRecommender | None = None
        # Guards the lazy creation below: a service calls one Engine from many threads at once, and two threads
        # must not each build (and then disagree on) the encoders, the shared space or the user book.
        self._lock = threading.RLock()
        self._space_checked = 0.0
        self.profile_config = profile_config or ProfileConfig()
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None

    # ----------------------------------------------------------------- the composed parts

    def encoder_specs(self) -> dict[str, str]:
        """Modality → encoder spec this database uses (or will use)."""
        stored = self.store.encoder_specs()
        requested = (self._requested or EncoderConfig()).by_modality()
        if stored is None:
            return requested
        specs = {m: stored[m]["spec"] for m in MODALITIES}
        if self._requested is not None:
            for m in MODALITIES:
                if requested[m] != specs[m]:
                    raise EncoderMismatchError(
                        f"database {self.store.uri!r} was built with {m} encoder {specs[m]!r}, not {requested[m]!r}; "
                        "use a new --db for other encoders"
                    )
        return specs

    def encoders(self) -> LazyEncoders:
        """Modality → encoder; each model loads at its first use and is checked then against the stored identity."""
        with self._lock:
            if self._encoders is None:
                device = (self._requested or EncoderConfig()).device
                stored = self.store.encoder_specs() or {}
                self._encoders = LazyEncoders(
                    self.encoder_specs(),
                    lambda spec, m: shared_encoder(spec, m, device),
                    {m: EncoderIdentity.from_dict(s) for m, s in stored.items()},
                    lambda m, ident: self.store.check_encoders({m: ident}),
                )
            return self._encoders

    def space(self) -> SharedSpace:
        """The shared space: bridges and the fusion layer that made the stored fused vectors.

        Another process may train a new layer: its identity is checked again at most every
        :data:`~mmrec.store.items.READ_CONSISTENCY`, and a new one is loaded when it changed.
        """
        with self._lock:
            now = time.monotonic()
            if self._space is not None and now - self._space_checked >= READ_CONSISTENCY.total_seconds():
                self._space_checked = now
                current = self._space.identity()["fingerprint"]
                if (self.store.fusion_identity() or {}).get("fingerprint", current) != current:
                    self._space = None
            if self._space is None:
                self._space = SharedSpace.load(self.store, self.encoders(), self.cache_dir)
                self._space_checked = now
            return self._space

    def users(self) -> UserBook:
        """Interactions and live profiles (no model is loaded for them)."""
        with self._lock:
            if self._users is None:
                self._users = UserBook(self.store, self._shared_dim(), self.profile_config)
            return self._users

    def hybrid(self) -> HybridCache:
        """The cache of the trained hybrid recommender (loaded on first use, reloaded when it changes)."""
        with self._lock:
            if self._hybrid is None:
                self._hybrid = HybridCache(self.store, self._shared_dim())
            return self._hybrid

    def snapshot(self) -> Snapshot:
        """The serving snapshot (items, vectors, profiles in memory; see :mod:`mmrec.recsys.snapshot`)."""
        cache = self._snapshots  # the hot path takes no lock: space() holds it while models load
        if cache is None:
            with self._lock:
                cache = self._snapshots = self._snapshots or SnapshotCache(self.store, self.users, serving=self.serving)
        return cache.current()

    def recommender(self) -> UserRecommender:
        """The object that answers :meth:`recommend` (profiles, the hybrid, cold start)."""
        if self._recommender is not None:  # the hot path: no lock, no closure
            return self._recommender
        search_text = text_search(self.store, lambda: self.snapshot().items, self.space)
        with self._lock:  # one per Engine: its model caches (the rating model) outlive a snapshot
            if self._recommender is None:
                self._recommender = UserRecommender(self.store, self.snapshot, self.users(), self.hybrid(), search_text)
            return self._recommender

    def _shared_dim(self) -> int:
        specs = self.store.encoder_specs()
        if specs is None:
            raise StoreError(f"database {self.store.uri!r} has no items yet; ingest a catalog first")
        return int(specs["text"]["dim"])

    # ----------------------------------------------------------------- ingest

    def ingest(
        self,
        catalog_dir: str | os.PathLike[str],
        *,
        prune: bool = False,
        strict: bool = False,
        progress: bool = False,
        config: IngestConfig | None = None,
    ) -> IngestReport:
        """Encode new and changed items of ``catalog_dir`` into the database.

        Raises
        ------
        CatalogError
            The folder does not exist or its manifest is unusable.
        IngestProblemsError
            With ``strict=True``, when any file had a problem (good items are stored all the same;
            the report is the error's ``report`` attribute).
        """
        # A bad path fails fast; an unchanged catalog over an unchanged database is answered without opening it.
        memo = UnchangedMemo(self.cache_dir, self.store.uri, catalog_root(catalog_dir), prune)
        report = memo.report(self._requested.by_modality() if self._requested else None)
        if report is None:
            encs = self.encoders()
            if self.store.has_items():
                encs.check_without_loading()  # the other identities are checked when their model first runs
            else:
                with self.store.writer.hold("creating the database"):
                    if not self.store.has_items():  # checked again under the writer: two first ingests create it once
                        check_bridgeable(encs)
                        self.store.create_items(
                            encs.identities(),
                            self.encoder_specs(),
                            {m: len(e.class_names or ()) for m, e in encs.items()},
                            SharedSpace.initial(encs, self.initial_fusion).identity(),
                        )
            self.repair()
            # The space (and with it torch and the fusion layer) is loaded only when something is encoded.
            report = run_ingest(
                self.store, encs, self.space, catalog_dir, config=config, prune=prune, progress=progress, memo=memo
            )
        if strict and report.problems:
            err = IngestProblemsError(
                f"{len(report.problems)} problem(s) during ingest (--strict); first: {report.problems[0]}"
            )
            err.report = report  # type: ignore[attr-defined]
            raise err
        return report

    # ----------------------------------------------------------------- training

    def train(
        self, config: TrainConfig | None = None, *, log: Any = None, item_ids: list[str] | None = None
    ) -> TrainReport:
        """Learn the fusion layer from the catalog (see :func:`mmrec.ingest.refit.train_space`)."""
        self.repair()
        report, space = train_space(self.store, self.space(), config, log=log, item_ids=item_ids)
        with self._lock:
            self._space = space
        return report

    def train_hybrid(
        self, config: HybridConfig | None = None, *, log: Any = None, candidates: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """Fit the hybrid and baselines; serve the validation winner (:func:`mmrec.recsys.selection.train_and_select`)."""
        from mmrec.recsys.selection import CANDIDATES, train_and_select

        try:
            data = interaction_data(self.store, self.users(), content_choices=True)
        except InvalidArgumentError:  # no interactions yet: the report says so
            data = None
        report = train_and_select(self.store, data, config, candidates=candidates or CANDIDATES, log=log)
        if report.saved:
            dropped = drop_stale_hybrids(self.store, self.users(), report.version)
            if dropped:
                report.message += (
                    f"; dropped checkpoint(s) {', '.join(f'v{v}' for v in dropped)} trained on forgotten users"
                )
            self.hybrid().drop()
        return report.to_dict()

    def train_rating(self, *, log: Any = None) -> dict[str, Any]:
        """Fit the rating model on the stored star ratings (see :func:`mmrec.recsys.rating_eval.train_rating`)."""
        from mmrec.recsys.rating_eval import train_rating

        return train_rating(self.store, self.users(), log=log)

    # ----------------------------------------------------------------- search

    def similar(
        self,
        *,
        text: str | None = None,
        image: str | os.PathLike[str] | None = None,
        audio: str | os.PathLike[str] | None = None,
        item: str | None = None,
        k: int = 10,
        modality: str = "any",
        where: str | None = None,
    ) -> list[Match]:
        """Items similar to a sentence, an image file, a sound file or a stored item, across modalities.

        Parameters
        ----------
        text, image, audio, item :
            Exactly one query: a sentence, an image path, an audio path, or an item id
            (the item itself is left out of the results).
        k : int
            Results wanted (1…1000).
        modality : {"any", "text", "image", "audio"}
            Which item vectors are searched: the fused vector, or one modality's
            shared-space vector ("sounds like this photo" = ``image=…, modality="audio"``).
        where : str, optional
            SQL filter on item columns, applied inside the search.
        """
        check_search(k, modality)
        items = self.snapshot().items
        query = Query.build(self.store, items, self.space, text=text, image=image, audio=audio, item=item)
        return similar_items(self.store, items, query, k=k, modality=modality, where=where)

    # ----------------------------------------------------------------- users

    def interact(
        self, user: str, item: str, event: str = "view", *, weight: float | None = None, at: Any = None
    ) -> Interaction:
        """Record one interaction and update the user's profile at once.

        Raises
        ------
        ItemNotFoundError
            For an item id that is not in the database.
        InvalidArgumentError
            For a missing user, an unknown event, a bad weight or timestamp.
        """
        try:
            inter = make_interaction(user, item, event, weight=weight, ts=at, now=datetime.now(timezone.utc))
        except ValueError as e:
            raise InvalidArgumentError(str(e)) from e
        try:
            self.record_interactions([inter])
        except UnknownItemsError as e:
            self.store.get(inter.item)  # the store's own not-found message names the database
            raise e
        return inter

    def record_interactions(self, interactions: Sequence[Interaction]) -> tuple[int, int, int]:
        """Record parsed interactions, all or nothing, and update the profiles at once.

        Returns ``(added, duplicates, users)``; raises ``UnknownItemsError`` naming any item not in the
        database, with nothing written (see :meth:`~mmrec.recsys.userbook.UserBook.record_known`).
        """
        return self.users().record_known(list(interactions))

    def import_interactions(self, path: str | os.PathLike[str], *, strict: bool = False) -> ImportReport:
        """Import a CSV, TSV, JSONL or Parquet file of interactions (see :meth:`UserBook.import_file`)."""
        return self.users().import_file(path, strict=strict)

    def recommend(
        self,
        user: str,
        k: int = 10,
        *,
        where: str | None = None,
        modality: str = "any",
        diversity: float = 0.0,
        explain: bool = False,
        include_seen: bool = False,
        query: str | None = None,
    ) -> RecommendResult:
        """Recommendations for ``user`` (see :mod:`mmrec.recsys.recommend`).

        Parameters
        ----------
        user : str
            An unknown user gets the cold-start answer, with a message saying so.
        k : int
        where : str, optional
            SQL filter on item columns, applied inside the search.
        modality : {"any", "text", "image", "audio"}
            Rank by fused vectors, or by one modality's vectors (items without it are left out).
        diversity : float
            0 = pure relevance; up to 1 = MMR re-ranking towards varied results.
        explain : bool
            Name the history items behind each recommendation.
        include_seen : bool
            Keep items the user already interacted with.
        query : str, optional
            Onboarding text for a user without history.
        """
        return self.recommender().recommend(
            user,
            k,
            where=where,
            modality=modality,
            diversity=diversity,
            explain=explain,
            include_seen=include_seen,
            query=query,
        )

    def evaluate(
        self,
        protocol: str = "leave-last-out",
        models: str | list[str] | tuple[str, ...] | None = None,
        *,
        ks: tuple[int, ...] = (10,),
        seed: int = 0,
        implicit: bool = False,
        tune: bool = True,
        curve: int = 0,
        log: Any = None,
        task: str = "ranking",
    ) -> dict[str, Any]:
        """Offline evaluation of recommenders on this database's interactions (see :mod:`mmrec.recsys.evaluation`).

        ``task="rating"`` cross-validates the rating models on the star ratings instead (5 folds, :mod:`mmrec.recsys.rating_eval`).

        ``protocol`` is one of :data:`mmrec.names.PROTOCOLS`; ``models`` names from
        :data:`mmrec.names.MODEL_NAMES` ("popular,als"), by default every baseline plus ``hybrid``
        when torch imports; ``ks`` the metrics' cut-offs; ``seed`` the split, model and tie-break seed;
        ``implicit`` counts every interaction as a positive of weight 1; ``tune`` tunes the baselines'
        grids on validation; ``curve`` also reports test NDCG@1…curve; ``log`` receives progress lines.
        Returns the split sizes and, per model, validation and test metrics.
        """
        from mmrec.recsys.evaluation import compare
        from mmrec.recsys.models import default_models, parse_models
        from mmrec.recsys.rating_eval import rating_task

        if task != "ranking":
            return rating_task(self.store, self.users(), task, models, seed=seed, log=log)

        names = parse_models(models) if models is not None else default_models()
        data = interaction_data(self.store, self.users(), implicit=implicit, content_choices=True)
        return compare(data, protocol, names, ks=ks, seed=seed, tune_models=tune, curve=curve, log=log)

    # ----------------------------------------------------------------- serving

    def warm(self) -> float:
        """Load everything a request needs, so that the first request is as fast as the next.

        Loads the encoders (checked against the database), the shared space and its bridges, the user
        book and the hybrid model, and runs each encoder once (lazy sessions and kernels are built by the
        first forward pass). A database without items is left as it is.

        Returns
        -------
        float
            Seconds taken.

        Raises
        ------
        EncoderMismatchError, StoreError, EncoderError
            When the database cannot be served (other encoders, unreadable fusion checkpoint, missing weights).
        """
        t0 = time.perf_counter()
        if not self.store.has_items():
            log.warning("database %s has no items yet; ingest a catalog first", self.store.uri)
            return 0.0
        encoders = self.encoders()
        space = self.space()
        for m in MODALITIES:
            if not space.aligned(m):
                space.bridge(m)
        self.users()
        try:
            self.hybrid().current()
        except (MMRecError, EncoderError) as e:  # recommendations fall back or report it per request
            log.warning("could not load the hybrid recommender: %s", e)
        for m, enc in encoders.items():
            try:
                enc.encode_batch([warm_up_input(m)])
            except EncoderError as e:  # the model loaded; a failed warm-up pass is not worth refusing to start
                log.warning("warm-up of the %s encoder failed: %s", m, e)
        return time.perf_counter() - t0

    def forget(self, user: str) -> ForgetReport:
        """Delete every event and the profile of ``user`` from every file of the database (see :mod:`mmrec.recsys.forget`)."""
        if not isinstance(user, str) or not user.strip():
            raise InvalidArgumentError("forget needs a user id")
        report = forget_user(self.store, self.users(), user.strip())
        self.hybrid().drop()
        return report

    def rebuild_profiles(self, users: Sequence[str] | None = None) -> int:
        """Recompute profiles from the event log (every user's, or ``users``'); returns how many were written."""
        return self.users().rebuild_profiles(None if users is None else list(users))

    def repair(self) -> dict[str, int]:
        """Finish what an interrupted write left (see :func:`mmrec.recsys.maintenance.repair`).

        Every write command runs it first; ``mmrec info`` reports what it would do (:meth:`consistency`).
        """
        done = maintenance.repair(self.store, self.users, self.space)
        if done["refit"]:
            with self._lock:
                self._space = None  # reload: the label names the applied layer now
        return done

    def consistency(self) -> dict[str, Any]:
        """What is out of step in the database (after a crash), without changing anything."""
        return maintenance.consistency(self.store, self.users)

    def health_problem(self) -> str | None:
        """``None`` when the database can be read (an empty one included), else a one-line reason without paths."""
        return maintenance.health_problem(self.store)

    def table_versions(self) -> dict[str, int | None]:
        """The current version of each table (``None`` for an absent one): what a serving cache is keyed on."""
        return maintenance.table_versions(self.store, self.users)

    # ----------------------------------------------------------------- reads

    @property
    def uri(self) -> str:
        """The database URI."""
        return self.store.uri

    def has_items(self) -> bool:
        """Whether the database holds an items table yet."""
        return self.store.has_items()

    def count(self, where: str | None = None) -> int:
        """Number of items (matching the SQL ``where`` filter)."""
        return count_items(self.snapshot, self.store, where)

    def known_items(self, ids: Sequence[str]) -> set[str]:
        """The ids among ``ids`` that are items of the database."""
        return set(self.media_flags(list(ids)))

    def media_flags(self, ids: list[str]) -> dict[str, tuple[bool, bool]]:
        """Item id → ``(has_image, has_audio)``, from the serving snapshot."""
        return self.snapshot().items.media_flags(ids)

    def media_path(self, item_id: str, kind: str) -> Path:
        """The ``kind`` ("image" or "audio") file of ``item_id``, resolved inside its catalog folder.

        Raises
        ------
        ItemNotFoundError
            Unknown item id.
        MediaUnavailableError
            The item has no such file, or it is gone.
        MediaForbiddenError
            The recorded file resolves outside the catalog, or is not a file of that kind.
        """
        row = self.store.get(item_id, columns=["id", "catalog", "files"])
        return resolve_media(item_id, row.get("catalog"), row.get("files") or [], kind)

    def items(self, limit: int | None = 50, offset: int = 0, where: str | None = None) -> list[dict[str, Any]]:
        """Items sorted by id (no vectors), optionally filtered by a SQL ``where`` clause."""
        return [jsonable_row(r) for r in self.snapshot().items.page(self.store, limit, offset, where)]

    def item(self, item_id: str, *, vectors: bool = False, top_labels: int = 5) -> dict[str, Any]:
        """One item with its text, metadata, problems and top predicted class labels per modality.

        Parameters
        ----------
        item_id : str
        vectors : bool
            Include the raw per-modality vectors and class scores.
        top_labels : int
            How many class labels (image: ImageNet, audio: AudioSet) to show.
        """
        key = (item_id, vectors, top_labels)  # read once per items version, then from the snapshot
        make = lambda: describe_item(self.store, item_id, vectors=vectors, top_labels=top_labels)  # noqa: E731
        return dict(self.snapshot().items.detail(key, make))

    def info(self) -> dict[str, Any]:
        """Counts, encoders, problems and size on disk."""
        out = describe_database(self.store)
        if self.store.has_items():
            book = self.users()
            out["interactions"] = book.tables.count_interactions()
            out["users"] = book.tables.count_users()
            out["consistency"] = self.consistency()
        out["problems"] = self.store.problems()
        out["size_bytes"] = self.store.size_on_disk()
        return out
