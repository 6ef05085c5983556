"""One generic registry: name → object, filled by a decorator, with errors that list the valid names.

Used for encoders (:mod:`encoders.registry`), fusion layers (:mod:`fusion.layers`) and the
recommender models of the evaluation harness (:mod:`mmrec.recsys.models`)::

    FUSIONS = Registry("fusion layer", error=UnknownFusionError)

    @FUSIONS.register("mean")
    class MeanFusion(FusionLayer): ...

    FUSIONS.get("mean")      # the class
    FUSIONS.names()          # ["attention", "mean"]

It lives in ``encoders`` because that is the lowest package: ``fusion`` and ``mmrec`` may import it,
it imports nothing of theirs (nor anything else of ``encoders``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that is not in a registry (the message lists the valid names)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Name → registered object.

    Parameters
    ----------
    kind : str
        What is registered, for messages ("encoder", "fusion layer", "model").
    error : type of Exception
        Raised by :meth:`get` for an unknown name; its message lists the valid names.
    loader : callable, optional
        Called once, at the first lookup (:meth:`get`, :meth:`names`, ``in``, ``len``), to
        register the built-ins, so that creating the registry stays cheap. Registering does
        not run it (see :meth:`load`).
    on_register : callable, optional
        ``(name, obj)`` hook run at registration (validation, setting ``registry_name``);
        an exception it raises rejects the registration.

    Notes
    -----
    The loader runs under a lock: a thread that looks a name up while another thread is
    loading waits for the whole set of built-ins instead of seeing part of it. A lookup made
    by the loader itself (same thread) sees what is registered so far. The loader is not
    retried if it raises: a half-imported module would only fail again.

    :meth:`register` neither runs the loader nor waits for it: when the loaded modules register
    themselves at import time, a registration from another thread's import of one of them
    would otherwise wait on the loader while the loader waits on that import (a deadlock). A registry whose built-ins do
    not self-register can call :meth:`load` before registering, to refuse a name taken by a
    built-in at once.
    """

    def __init__(
        self,
        kind: str,
        *,
        error: type[Exception] = UnknownNameError,
        loader: Callable[[], None] | None = None,
        on_register: Callable[[str, T], None] | None = None,
    ) -> None:
        self.kind = kind
        self.error = error
        self._entries: dict[str, T] = {}
        self._loader = loader
        self._on_register = on_register
        self._loaded = loader is None
        self._loading = False
        # Re-entrant: the loader's own lookups come from the thread holding it.
        self._lock = threading.RLock()
        # Registration never takes the loader's lock (see the Notes), only this one, and only
        # around the dict update: no call out (on_register, the loader) is made while holding it.
        self._entries_lock = threading.Lock()

    def load(self) -> None:
        """Run the loader now, if it has not run yet (lookups do this themselves)."""
        self._load()

    def _load(self) -> None:
        if self._loaded:  # the common case: no lock once loaded
            return
        with self._lock:
            if self._loaded or self._loading:
                return
            self._loading = True
            try:
                if self._loader is not None:
                    self._loader()
            finally:
                self._loading = False
                self._loaded = True

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers its target under ``name``.

        Registering the same object twice under one name is allowed (``on_register`` runs
        again); a different object under a taken name is a :class:`ValueError`.
        """

        def decorate(obj: T) -> T:
            self._check_free(name, obj)
            if self._on_register is not None:
                self._on_register(name, obj)
            with self._entries_lock:
                self._check_free(name, obj)  # again: another thread may have taken it meanwhile
                self._entries[name] = obj
            return obj

        return decorate

    def _check_free(self, name: str, obj: T) -> None:
        existing = self._entries.get(name)
        if existing is not None and existing is not obj:
            raise ValueError(f"{self.kind} name {name!r} is already registered by {_label(existing)}")

    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` under ``name`` without a decorator."""
        return self.register(name)(obj)

    def get(self, name: str) -> T:
        """The object registered under ``name``; raises :attr:`error` listing the valid names."""
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise self.unknown(name) from None

    def unknown(self, name: str) -> Exception:
        """The :attr:`error` for ``name`` not being registered (for callers that look up a part of it)."""
        return self.error(f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}")

    def names(self, where: Callable[[T], bool] | None = None) -> list[str]:
        """Registered names, sorted; ``where`` keeps only the entries it accepts."""
        self._load()
        return sorted(n for n, o in list(self._entries.items()) if where is None or where(o))

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)


def set_registry_name(name: str, cls: Any) -> None:
    """``on_register`` hook that records the name on the registered class (``cls.registry_name``)."""
    cls.registry_name = name


def _label(obj: object) -> str:
    return getattr(obj, "__name__", None) or repr(obj)
