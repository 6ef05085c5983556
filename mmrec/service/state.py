"""The service's state: one engine, its locks and limits, warming it up, recording interactions."""

from __future__ import annotations

import functools
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException

from encoders.errors import EncoderError
from mmrec.errors import (
    InvalidArgumentError,
    ItemNotFoundError,
    MMRecError,
)
from mmrec.catalog.media import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS
from mmrec.service.schemas import (
    InteractionIn,
)
from mmrec.service.uploads import ServiceLimits

if TYPE_CHECKING:
    from mmrec.engine import Engine
    from mmrec.recsys.interactions import Interaction


log = logging.getLogger("mmrec.service")


class BatchError(Exception):
    """Some entries of an interaction batch are bad; nothing was recorded."""

    def __init__(self, bad: list[tuple[int, str]]) -> None:
        self.bad = bad
        shown = "; ".join(f"[{i}] {reason}" for i, reason in bad[:10])
        more = f"; … and {len(bad) - 10} more" if len(bad) > 10 else ""
        super().__init__(f"{len(bad)} bad interaction(s), nothing recorded: {shown}{more}")


class Service:
    """What the routes share: the engine, the auth settings, the limits and the locks.

    Parameters
    ----------
    engine : Engine
    api_key : str, optional
        Key required for writes (and for reads when ``private``).
    private : bool
        Require the key for reads too.
    limits : ServiceLimits
    """

    def __init__(self, engine: Engine, api_key: str | None, private: bool, limits: ServiceLimits) -> None:
        if private and not api_key:
            raise InvalidArgumentError("private mode needs an API key")
        self.engine = engine
        self.api_key = api_key or None
        self.private = private
        self.limits = limits
        self.write_lock = threading.Lock()
        self.model_lock = threading.Lock()
        self.ready = False
        self._limiter: Any = None

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in a worker thread, at most ``limits.workers`` (default 2 × cores) at a time."""
        import anyio.to_thread

        if self._limiter is None:
            # Created in the running event loop (an anyio limiter belongs to one loop); reset at each start-up.
            self._limiter = anyio.CapacityLimiter(self.limits.workers or 2 * (os.cpu_count() or 1))
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self._limiter)

    def reset_limiter(self) -> None:
        """Forget the limiter (the next event loop makes its own)."""
        self._limiter = None

    # ----------------------------------------------------------------- auth

    def check_key(self, presented: str | None, *, write: bool) -> None:
        """Raise 401 unless ``presented`` is the key, where this kind of request needs one."""
        if self.api_key is None or (not write and not self.private):
            return
        if presented is None:
            raise HTTPException(
                401,
                "this request needs the API key (header X-API-Key or Authorization: Bearer)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        # Constant-time comparison: the time taken says nothing about how much of the key was right.
        if not hmac.compare_digest(presented.encode(), self.api_key.encode()):
            raise HTTPException(401, "wrong API key", headers={"WWW-Authenticate": "Bearer"})

    # ----------------------------------------------------------------- helpers run in the thread pool

    def media_flags(self, ids: list[str]) -> dict[str, tuple[bool, bool]]:
        """Item id → (has_image, has_audio), in one query."""
        rows = self.engine.store.rows(ids, columns=["id", "has_image", "has_audio"])
        return {i: (bool(r.get("has_image")), bool(r.get("has_audio"))) for i, r in rows.items()}

    def media_path(self, item_id: str, kind: str) -> Path:
        """The file of ``item_id`` for ``kind``, resolved inside its catalog root.

        Only a path recorded in the item's own ``files`` can be served, and only when it resolves
        (symlinks followed) to a regular file inside the catalog root with a media suffix of that kind.
        """
        row = self.engine.store.get(item_id, columns=["id", "catalog", "files"])
        entry = next((f for f in row.get("files") or [] if f.get("role") == kind), None)
        if entry is None or not row.get("catalog"):
            raise HTTPException(404, f"item {item_id!r} has no {kind} file")
        try:
            root = Path(row["catalog"]).resolve(strict=True)
            target = (root / entry["path"]).resolve()
        except (OSError, RuntimeError) as e:  # a vanished catalog, a symlink loop
            raise HTTPException(404, f"the {kind} file of {item_id!r} is not available") from e
        # resolve() follows every symlink, so a link that escapes the catalog lands outside the root here.
        if not target.is_relative_to(root):
            log.warning("refused %s of %r: %s is outside the catalog %s", kind, item_id, target, root)
            raise HTTPException(403, f"the {kind} file of {item_id!r} is outside the catalog; not served")
        allowed = IMAGE_EXTENSIONS if kind == "image" else AUDIO_EXTENSIONS
        if target.suffix.lower() not in allowed:
            raise HTTPException(403, f"the {kind} file of {item_id!r} is not a {kind} file; not served")
        if not target.is_file():
            raise HTTPException(404, f"the {kind} file of {item_id!r} is gone (re-run mmrec ingest)")
        return target

    def record(
        self, entries: list[tuple[int, InteractionIn]], bad: list[tuple[int, str]], *, single: bool = False
    ) -> tuple[list[Interaction], int, int, int]:
        """Check every entry, then record all of them or none: ``(interactions, added, duplicates, users)``.

        Parameters
        ----------
        entries : list of (index, InteractionIn)
            The entries that passed the schema, with their position in the request.
        bad : list of (index, reason)
            Entries that failed the schema; reported together with the ones found bad here.
        single : bool
            The request was one object, not a list: an unknown item is then a plain 404.

        Raises
        ------
        BatchError
            When any entry is bad (nothing is recorded).
        ItemNotFoundError
            For a single interaction with an unknown item.
        """
        import numpy as np

        from mmrec.recsys.interactions import make_interaction

        now = datetime.now(timezone.utc)
        parsed: list[tuple[int, Interaction]] = []
        bad = list(bad)
        for i, e in entries:
            try:
                parsed.append(
                    (i, make_interaction(e.user, e.item, e.event, weight=e.weight, rating=e.rating, ts=e.at, now=now))
                )
            except ValueError as err:
                bad.append((i, str(err)))
        ids = sorted({p.item for _, p in parsed})
        rows = self.engine.store.rows(ids, columns=["id", "fused_vec"])
        unknown = [(i, p.item) for i, p in parsed if p.item not in rows]
        if single and unknown and not bad:
            raise ItemNotFoundError(f"no item with id {unknown[0][1]!r}")
        bad += [(i, f"unknown item {item!r}") for i, item in unknown]
        if bad:
            raise BatchError(sorted(bad))
        vectors = {
            i: None if r.get("fused_vec") is None else np.asarray(r["fused_vec"], np.float32) for i, r in rows.items()
        }
        inters = [p for _, p in parsed]
        with self.write_lock:
            added, duplicates, users = self.engine.users().record(inters, vectors)
        return inters, added, duplicates, users


def warm_engine(engine: Engine) -> float:
    """Load everything a request needs, so that the first request is as fast as the next.

    Loads the encoders (checked against the database), the shared space and its bridges and the user book,
    and runs each model once (lazy sessions and kernels are built by the first forward pass).
    A database without items is left as it is (requests then answer 503).

    Parameters
    ----------
    engine : Engine

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
    if not engine.store.has_items():
        log.warning("database %s has no items yet; ingest a catalog first", engine.store.uri)
        return 0.0
    encoders = engine.encoders()
    space = engine.space()
    for m in ("image", "audio"):
        if not space.aligned(m):
            space.bridge(m)
    engine.users()
    _warm_hybrid(engine)
    import numpy as np
    from PIL import Image

    from encoders.base import Waveform

    samples: dict[str, Any] = {
        "text": "warm up",
        "image": Image.new("RGB", (224, 224), "white"),
        "audio": Waveform(np.zeros(16000, np.float32), 16000),
    }
    for m, enc in encoders.items():
        try:
            enc.encode_batch([samples[m]])
        except EncoderError as e:  # the model loaded; a failed warm-up pass is not worth refusing to start
            log.warning("warm-up of the %s encoder failed: %s", m, e)
    return time.perf_counter() - t0


def _warm_hybrid(engine: Engine) -> None:
    """Load the trained hybrid recommender now when the database has one (else the first request would)."""
    try:
        from mmrec.recsys.hybrid_serving import scorer_for
    except ImportError:  # an installation without the hybrid recommender's dependencies
        return
    try:
        scorer_for(engine)
    except (MMRecError, EncoderError) as e:  # recommendations fall back or report it per request
        log.warning("could not load the hybrid recommender: %s", e)
