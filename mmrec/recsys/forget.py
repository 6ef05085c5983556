"""Forgetting a user (GDPR Art. 17): their events and profile leave every file of the database.

The user's rows are removed by rewriting the ``interactions`` and ``users`` tables without them
(:meth:`mmrec.store.users.UserTables.rewrite_without`), then every old version of those tables is
removed with files no version uses, so the id is in no data file, deletion file, manifest or
transaction. Items are never touched. Trained hybrid checkpoints were fitted on the user's events:
they are marked as needing a retrain (by version number only — the id itself is stored nowhere),
and the next ``mmrec train`` drops them once it has saved a new one. Saved rating models do store
user ids: every version holding the user is deleted and the newest saved again without the user's
row (:func:`mmrec.recsys.rating_eval.purge_user`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from mmrec.recsys.rating_eval import purge_user
from mmrec.recsys.userbook import UserBook
from mmrec.store.items import Store
from mmrec.store.writer import crash_point

#: Sync key: hybrid checkpoint versions trained on data of a user who has since been forgotten.
HYBRID_NEEDS_RETRAIN = "hybrid_checkpoints_needing_retrain"


@dataclass
class ForgetReport:
    """What forgetting a user removed."""

    user: str
    events: int
    profiles: int
    checkpoints_marked: list[int]
    versions_removed: int
    seconds: float
    #: Rating checkpoint versions that held the user (deleted; the newest re-saved without them).
    ratings_purged: list[int] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """Whether the database held anything of the user."""
        return bool(self.events or self.profiles or self.ratings_purged)

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "events": self.events,
            "profiles": self.profiles,
            "checkpoints_marked": self.checkpoints_marked,
            "versions_removed": self.versions_removed,
            "seconds": round(self.seconds, 3),
            "ratings_purged": self.ratings_purged,
        }

    def format(self) -> str:
        if not self.found:
            return f"user {self.user!r}: nothing stored (no events, no profile); nothing removed"
        marked = (
            f"; hybrid checkpoint(s) {', '.join(f'v{v}' for v in self.checkpoints_marked)} need a retrain "
            "(the next `mmrec train` drops them)"
            if self.checkpoints_marked
            else ""
        )
        if self.ratings_purged:
            marked += f"; removed from rating model(s) {', '.join(f'v{v}' for v in self.ratings_purged)}"
        return (
            f"forgot user {self.user!r}: {self.events} event(s) and {self.profiles} profile removed, "
            f"{self.versions_removed} old table version(s) deleted in {self.seconds:.2f} s{marked}"
        )


def forget_user(store: Store, book: UserBook, user: str) -> ForgetReport:
    """Remove ``user`` from the database (see the module docstring); idempotent."""
    t0 = time.perf_counter()
    with store.writer.hold("forgetting a user"):
        events, profiles = book.forget(user)
        marked: list[int] = []
        if events or profiles:
            marked = [int(c["version"]) for c in store.checkpoints("hybrid")]
            if marked:
                stale = set(book.tables.sync_get(HYBRID_NEEDS_RETRAIN) or []) | set(marked)
                book.tables.sync_set(HYBRID_NEEDS_RETRAIN, sorted(stale))
        # Always, not only when events were found: a forget interrupted after the events went must
        # still take the user out of the rating models when it is run again.
        purged = purge_user(store, user)
        crash_point("forget:before-cleanup")
        removed = book.tables.cleanup_all_versions()
    return ForgetReport(user, events, profiles, marked, removed, time.perf_counter() - t0, purged)


def drop_stale_hybrids(store: Store, book: UserBook, keep: int) -> list[int]:
    """After a new hybrid checkpoint ``keep`` is saved: delete the ones marked by :func:`forget_user`."""
    stale = [int(v) for v in book.tables.sync_get(HYBRID_NEEDS_RETRAIN) or [] if int(v) != keep]
    if stale:
        store.delete_checkpoints("hybrid", stale)
        book.tables.sync_set(HYBRID_NEEDS_RETRAIN, [])
    return stale
