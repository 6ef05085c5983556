"""The Python API: :class:`Engine` over one database.

The CLI is a thin layer over this class::

    from mmrec import Engine

    engine = Engine("mmrec-db")
    report = engine.ingest("my_catalog/")
    print(report.format())
    engine.item("birds/owl")
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from encoders.base import MODALITIES, Encoder
from encoders.registry import create_encoder
from mmrec.config import DEFAULT_CACHE, DEFAULT_DB, EncoderConfig, IngestConfig
from mmrec.errors import EncoderMismatchError, IngestProblemsError, InvalidArgumentError, StoreError
from mmrec.ingest.pipeline import IngestReport, run_ingest
from mmrec.recsys.interactions import Interaction, make_interaction, parse_rows, read_rows
from mmrec.recsys.profiles import ProfileConfig
from mmrec.recsys.recommend import RecommendResult, recommend
from mmrec.recsys.search import Match, similar_items
from mmrec.space import SharedSpace, check_bridgeable
from mmrec.names import LISTING_COLUMNS, scores_column, vector_column
from mmrec.store.items import Store
from mmrec.ingest.refit import TrainReport, train_space
from mmrec.recsys.userbook import ImportReport, UserBook

if TYPE_CHECKING:
    from fusion.train import TrainConfig

_SHARED: dict[tuple[str, str, str], Encoder] = {}
_SHARED_LOCK = threading.Lock()


def shared_encoder(spec: str, modality: str, device: str = "cpu") -> Encoder:
    """One encoder instance per (spec, modality, device) in this process.

    Models are large and slow to load; every :class:`Engine` in a process (a
    service, a notebook, a test session) shares them.
    """
    key = (spec, modality, device)
    with _SHARED_LOCK:
        enc = _SHARED.get(key)
        if enc is None:
            enc = _SHARED[key] = create_encoder(spec, modality=modality, device=device)
    return enc


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
    """

    def __init__(
        self,
        db: str | os.PathLike[str] = DEFAULT_DB,
        *,
        encoders: EncoderConfig | None = None,
        cache_dir: str | os.PathLike[str] | None = DEFAULT_CACHE,
        profile_config: ProfileConfig | None = None,
    ) -> None:
        self.store = Store(db)
        self._requested = encoders
        self._encoders: dict[str, Encoder] | None = None
        self._space: SharedSpace | None = None
        self._users: UserBook | None = None
        self._hybrid: Any = None  # mmrec.recsys.hybrid_serving.HybridScorer, loaded on first use
        # Guards the lazy creation below: a service calls one Engine from many threads at once, and two threads
        # must not each build (and then disagree on) the encoders, the shared space or the user book.
        self._lock = threading.RLock()
        self.profile_config = profile_config or ProfileConfig()
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None

    # ----------------------------------------------------------------- encoders

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

    def encoders(self) -> dict[str, Encoder]:
        """The loaded encoders, checked against the identities stored in the database."""
        with self._lock:
            if self._encoders is None:
                device = (self._requested or EncoderConfig()).device
                encs = {m: shared_encoder(spec, m, device) for m, spec in self.encoder_specs().items()}
                self.store.check_encoders({m: e.identity for m, e in encs.items()})
                self._encoders = encs
            return self._encoders

    def space(self) -> SharedSpace:
        """The shared space: bridges and the fusion layer that made the stored fused vectors."""
        with self._lock:
            if self._space is None:
                encs = self.encoders()
                ident = self.store.fusion_identity()
                if ident and int(ident.get("version", 0)) > 0:
                    from fusion.layers import fusion_from_bytes

                    layer, _ = fusion_from_bytes(self.store.checkpoint_weights("fusion", int(ident["version"])))
                    space = SharedSpace(encs, layer, int(ident["version"]), self.cache_dir)
                    if layer.fingerprint() != ident["fingerprint"]:
                        raise StoreError(
                            f"fusion checkpoint v{ident['version']} in {self.store.uri!r} does not match the fused "
                            f"vectors' fingerprint {ident['fingerprint']}; re-run `mmrec train`"
                        )
                else:
                    space = SharedSpace.untrained(encs, self.cache_dir)
                self._space = space
            return self._space

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
        from mmrec.catalog.scan import catalog_root

        catalog_root(catalog_dir)  # fail fast on a bad path before loading models
        encs = self.encoders()
        if not self.store.has_items():
            check_bridgeable(encs)
            self.store.create_items(
                {m: e.identity for m, e in encs.items()},
                self.encoder_specs(),
                {m: len(e.class_names or ()) for m, e in encs.items()},
                SharedSpace.untrained(encs).identity(),
            )
        space = self.space()
        report = run_ingest(self.store, encs, space, catalog_dir, config=config, prune=prune, progress=progress)
        if strict and report.problems:
            err = IngestProblemsError(
                f"{len(report.problems)} problem(s) during ingest (--strict); first: {report.problems[0]}"
            )
            err.report = report  # type: ignore[attr-defined]
            raise err
        return report

    # ----------------------------------------------------------------- training and search

    def train(
        self, config: TrainConfig | None = None, *, log: Any = None, item_ids: list[str] | None = None
    ) -> TrainReport:
        """Learn the fusion layer from the catalog (see :func:`mmrec.ingest.refit.train_space`)."""
        report = train_space(self, config, log=log, item_ids=item_ids)
        if report.saved:
            self._space = None  # reload the new checkpoint
        return report

    def train_hybrid(self, config: Any = None, *, log: Any = None) -> dict[str, Any]:
        """Train the hybrid recommender on the stored interactions (see :mod:`mmrec.recsys.hybrid_serving`)."""
        from mmrec.recsys.hybrid_serving import train_hybrid

        return train_hybrid(self, config, log=log)

    def drop_hybrid_cache(self) -> None:
        self._hybrid = None

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
            Results wanted.
        modality : {"any", "text", "image", "audio"}
            Which item vectors are searched: the fused vector, or one modality's
            shared-space vector ("sounds like this photo" = ``image=…, modality="audio"``).
        where : str, optional
            SQL filter on item columns, applied inside the search.
        """
        return similar_items(self, text=text, image=image, audio=audio, item=item, k=k, modality=modality, where=where)

    # ----------------------------------------------------------------- users

    def users(self) -> UserBook:
        """Interactions and live profiles (no model is loaded for them)."""
        with self._lock:
            if self._users is None:
                specs = self.store.encoder_specs()
                if specs is None:
                    raise StoreError(f"database {self.store.uri!r} has no items yet; ingest a catalog first")
                self._users = UserBook(self.store, int(specs["text"]["dim"]), self.profile_config)
            return self._users

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
        row = self.store.get(inter.item, columns=["id", "fused_vec"])
        vec = None if row.get("fused_vec") is None else np.asarray(row["fused_vec"], np.float32)
        self.users().record([inter], {inter.item: vec})
        return inter

    def import_interactions(self, path: str | os.PathLike[str], *, strict: bool = False) -> ImportReport:
        """Import a CSV, TSV, JSONL or Parquet file of interactions (see :mod:`mmrec.recsys.interactions`).

        Bad rows are reported with their row numbers and skipped; with ``strict`` any bad row
        rejects the whole file (nothing is written). Rows already stored are not counted twice.
        """
        import time

        t0 = time.perf_counter()
        rows = read_rows(path)
        known = {r["id"] for r in self.store.list(limit=None, columns=["id"])}
        good, bad = parse_rows(rows, known)
        report = ImportReport(rows=len(rows), bad=bad)
        if strict and bad:
            raise InvalidArgumentError(
                f"{len(bad)} bad row(s) in {str(path)!r} (--strict: nothing imported); first: {bad[0]}"
            )
        if good:
            ids = sorted({g.item for g in good})
            vecs = self.store.rows(ids, columns=["id", "fused_vec"])
            vectors = {
                i: None if vecs[i].get("fused_vec") is None else np.asarray(vecs[i]["fused_vec"], np.float32)
                for i in ids
            }
            report.added, report.duplicates, report.users = self.users().record(good, vectors)
        report.seconds = time.perf_counter() - t0
        return report

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
        return recommend(
            self,
            user,
            k=k,
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
    ) -> dict[str, Any]:
        """Offline evaluation of recommenders on this database's interactions (see :mod:`mmrec.recsys.evaluation`).

        Parameters
        ----------
        protocol : {"leave-last-out", "global-temporal", "random", "item-cold-start"}
        models : str or list of str, optional
            Names from :data:`mmrec.recsys.evaluation.MODEL_NAMES` ("popular,als"); default every
            baseline, plus ``hybrid`` when :mod:`mmrec.recsys.hybrid` imports.
        ks : tuple of int
            K values of the metrics.
        seed : int
            Split, model and tie-break seed.
        implicit : bool
            Every interaction counts as a positive of weight 1 (e.g. all ratings, whatever the stars).
        tune : bool
            Tune the baselines' small grids on the validation part.
        curve : int
            Also report test NDCG@1…curve.
        log : callable, optional
            Progress lines.

        Returns
        -------
        dict
            Split sizes and, per model, validation and test metrics (see :func:`mmrec.recsys.evaluation.evaluate`).
        """
        from mmrec.recsys.evaluation import compare, default_models, interaction_data, parse_models

        names = parse_models(models) if models is not None else default_models()
        data = interaction_data(self, implicit=implicit)
        return compare(data, protocol, names, ks=ks, seed=seed, tune_models=tune, curve=curve, log=log)

    # ----------------------------------------------------------------- reads

    def items(self, limit: int | None = 50, offset: int = 0, where: str | None = None) -> list[dict[str, Any]]:
        """Items sorted by id (no vectors), optionally filtered by a SQL ``where`` clause."""
        return [_jsonable(r) for r in self.store.list(limit=limit, offset=offset, where=where, columns=LISTING_COLUMNS)]

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
        row = self.store.get(item_id)
        specs = self.store.encoder_specs() or {}
        labels: dict[str, list[dict[str, Any]]] = {}
        for m in MODALITIES:
            scores = row.get(scores_column(m))
            if scores is None or m not in specs:
                continue
            names = shared_encoder(specs[m]["spec"], m).class_names or ()
            arr = np.asarray(scores, np.float32)
            top = np.argsort(-arr)[:top_labels]
            labels[m] = [
                {"label": names[i] if i < len(names) else str(i), "score": round(float(arr[i]), 4)} for i in top
            ]
        hidden = ("_vec", "_scores", "_shared")
        out = _jsonable({k: v for k, v in row.items() if vectors or not k.endswith(hidden)})
        out["labels"] = labels
        weights = row.get("fusion_weights")
        out["fusion_weights"] = (
            None
            if weights is None
            else {m: round(float(w), 4) for m, w in zip(MODALITIES, weights, strict=True) if w > 0}
        )
        return out

    def info(self) -> dict[str, Any]:
        """Counts, encoders, problems and size on disk."""
        store = self.store
        out: dict[str, Any] = {"db": store.uri, "items": store.count()}
        if store.has_items():
            out["modalities"] = {m: store.count(f"has_{m}") for m in MODALITIES}
            catalogs: dict[str, int] = {}
            for r in store.list(limit=None, columns=["id", "catalog"]):
                catalogs[r["catalog"]] = catalogs.get(r["catalog"], 0) + 1
            out["catalogs"] = catalogs
            out["encoders"] = store.encoder_specs()
            out["vector_columns"] = {m: vector_column(m) for m in MODALITIES}
            out["version"] = store.version()
            out["fusion"] = store.fusion_identity()
            out["fusion_checkpoints"] = [
                {"version": c["version"], "created_at": c["created_at"].isoformat(), **c["metrics"]}
                for c in store.checkpoints("fusion")
            ]
            out["hybrid_checkpoints"] = [
                {"version": c["version"], "created_at": c["created_at"].isoformat(), **c["metrics"]}
                for c in store.checkpoints("hybrid")
            ]
        if store.has_items():
            book = self.users()
            inter, users = book.interactions(), book.users()
            out["interactions"] = inter.count_rows() if inter is not None else 0
            out["users"] = users.count_rows() if users is not None else 0
        out["problems"] = store.problems()
        out["size_bytes"] = store.size_on_disk()
        return out


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, datetime):
            v = v.isoformat()
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        elif k == "metadata" and isinstance(v, str):
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                pass
        out[k] = v
    return out
