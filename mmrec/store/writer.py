"""The single writer of a database: an exclusive, crash-safe write lock, and test hooks for crash injection.

Every write path (ingest, train, interactions, forget, rebuilds, optimise) runs inside
:meth:`Writer.hold`. On a local database the lock is ``fcntl.flock`` on ``.mmrec-write.lock`` in the
database folder: exclusive across processes and threads, released by the operating system when
the holder dies, so a crash never leaves a stale lock. A second writer waits (saying so once) or,
with ``wait=False``, fails at once with :class:`~mmrec.errors.WriterBusyError`. Readers never take it.

An object store has no folder to hold that file: the lock of an ``s3://``/``gs://``/``az://``
database is a file on this machine named after the URI (:func:`mmrec.store.location.lock_file`), so
the writers of one machine (the CLI, the service, a Ray ingest's driver) take turns exactly as they do
on a local database. Writers on *different* machines are not serialised by it; that is a documented
limitation: their writes are idempotent (merge on ``id``, deduplication keys on events) and LanceDB
commit conflicts are retried (:func:`retry_conflicts`), and ``mmrec`` repairs duplicate rows on the
next write. Run one writing host per bucket path (e.g. the ingest driver, with the service read-only
or on the same host) for the guarantees a local database has.

Crash injection: ``MMREC_CRASH_AT=step`` makes :func:`crash_point` exit the process at once (no
cleanup, no flush, like a power cut) when the named step is reached; the tests use it to check that
the next run repairs whatever a crash between two writes left.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from mmrec.errors import StoreError, WriterBusyError
from mmrec.store.location import LOCK_NAME, is_local, local_path, lock_file

__all__ = ["LOCK_NAME", "Writer", "crash_point", "describe_lock", "is_local", "local_path", "retry_conflicts"]

T = TypeVar("T")
#: Environment variable naming the write step at which :func:`crash_point` kills the process (tests only).
CRASH_ENV = "MMREC_CRASH_AT"
#: Exit status of an injected crash (what a SIGKILL gives a shell).
CRASH_STATUS = 137


def crash_point(step: str) -> None:
    """Exit the process immediately when ``MMREC_CRASH_AT`` names ``step`` (a test hook; a no-op otherwise)."""
    if os.environ.get(CRASH_ENV) == step:
        os._exit(CRASH_STATUS)


class Writer:
    """The write lock of one database, shared by every write of this process and exclusive across processes.

    Parameters
    ----------
    uri : str
        The database.
    wait : bool
        Wait for another writer to finish (default) or fail at once.
    on_wait : callable, optional
        Called once with a message when this writer has to wait.
    on_acquire : callable, optional
        Called each time the lock is taken (outermost hold only).
    on_release : callable, optional
        Called each time the lock is let go (outermost hold only), after the write's commits: what a
        reader of this process caches from before then may be stale.
    """

    def __init__(
        self,
        uri: str,
        *,
        wait: bool = True,
        on_wait: Callable[[str], None] | None = None,
        on_acquire: Callable[[], None] | None = None,
        on_release: Callable[[], None] | None = None,
    ) -> None:
        self.uri = uri
        self.wait = wait
        self.on_wait = on_wait
        self.on_acquire = on_acquire
        self.on_release = on_release
        # Re-entrant within one thread (an ingest's optimise runs inside the ingest's hold); other threads wait.
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextlib.contextmanager
    def hold(self, what: str) -> Iterator[None]:
        """Hold the database's write lock for ``what`` (re-entrant in the holding thread)."""
        if not self._thread_lock.acquire(blocking=self.wait):
            raise WriterBusyError(f"another write is running in this process; {what} not started (--no-wait)")
        try:
            if self._depth == 0:
                self._fd = self._acquire_file_lock(what)
                if self.on_acquire is not None:
                    self.on_acquire()  # e.g. re-open table handles: the write must start from the latest version
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fd, self._fd = self._fd, None
                    _release(fd)
                    if self.on_release is not None:
                        self.on_release()
        finally:
            self._thread_lock.release()

    def _acquire_file_lock(self, what: str) -> int:
        import fcntl

        path = lock_file(self.uri)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)  # a local database's first write makes its folder
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            where = (
                ""
                if is_local(self.uri)
                else " (its lock file on this machine cannot be made: set MMREC_LOCK_DIR to a writable folder)"
            )
            raise StoreError(f"cannot write to database {self.uri!r}{where}: {e.strerror or e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            if not self.wait:
                os.close(fd)
                raise WriterBusyError(
                    f"database {self.uri!r} is being written by another process ({holder}); not waiting (--no-wait)"
                ) from None
            if self.on_wait is not None:
                self.on_wait(f"waiting for another writer of {self.uri} to finish ({holder}) …")
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the holder finishes or dies
        # Who holds it, for the message a waiting writer prints (informative only: the lock is the flock).
        info = json.dumps({"pid": os.getpid(), "what": what, "since": round(time.time(), 3)}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        return fd


def _release(fd: int) -> None:
    import fcntl

    try:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 512, 0) or b"{}")
        return f"pid {info['pid']}, {info['what']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def is_conflict(e: BaseException) -> bool:
    """Whether a LanceDB error is a commit conflict (another writer committed first; retrying is safe)."""
    text = str(e).lower()
    return "conflict" in text or "retryable" in text or "commit" in text and "concurrent" in text


def retry_conflicts(fn: Callable[[], T], attempts: int = 5, base_delay: float = 0.05) -> T:
    """Run an idempotent write, retrying LanceDB commit conflicts with exponential back-off."""
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as e:  # lance raises RuntimeError/OSError/ValueError subclasses for conflicts
            if attempt == attempts - 1 or not is_conflict(e):
                raise
            time.sleep(base_delay * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def describe_lock(uri: str) -> dict[str, Any] | None:
    """Who holds the write lock of a database on this machine right now (``None`` when nobody does)."""
    path = lock_file(uri)
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
