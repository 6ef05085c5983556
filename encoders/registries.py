"""One generic registry: name → object, filled by a decorator, with errors that list the valid names.

Used for encoders (:mod:`encoders.registry`), fusion layers (:mod:`fusion.layers`) and the
recommender models of the evaluation harness (:mod:`mmrec.recsys.models`)::

    FUSIONS = Registry("fusion layer", error=UnknownFusionError)

    @FUSIONS.register("mean")
    class MeanFusion(FusionLayer): ...

    FUSIONS.get("mean")      # the class
    FUSIONS.names()          # ["attention", "mean"]

It lives in ``encoders`` because that is the lowest package: ``fusion`` and ``mmrec`` may import it,
it imports nothing of theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

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
        Called once before the first lookup, to import the modules that register the built-ins
        (so importing the registry itself stays cheap).
    on_register : callable, optional
        ``(name, obj)`` hook run at registration (validation, setting ``registry_name``).
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

    def _load(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None  # before calling: the loaded modules register themselves
            loader()

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers its target under ``name`` (a second, different target is an error)."""

        def decorate(obj: T) -> T:
            existing = self._entries.get(name)
            if existing is not None and existing is not obj:
                raise ValueError(f"{self.kind} name {name!r} is already registered by {_label(existing)}")
            if self._on_register is not None:
                self._on_register(name, obj)
            self._entries[name] = obj
            return obj

        return decorate

    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` under ``name`` without a decorator."""
        return self.register(name)(obj)

    def get(self, name: str) -> T:
        """The object registered under ``name``; raises :attr:`error` listing the valid names."""
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise self.error(f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}") from None

    def names(self, where: Callable[[T], bool] | None = None) -> list[str]:
        """Registered names, sorted; ``where`` keeps only the entries it accepts."""
        self._load()
        return sorted(n for n, o in self._entries.items() if where is None or where(o))

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)


def _label(obj: object) -> str:
    return getattr(obj, "__name__", None) or repr(obj)
