"""Encoders that load when they are first used, checked then against the identities a database stored.

A command should pay for the models its work needs and no others: a text query needs the text
encoder only, an ingest that finds nothing changed needs none. :class:`LazyEncoders` is the mapping
``modality → encoder`` that the Engine hands to the shared space and the ingest pipeline; looking a
modality up creates its encoder (cheap: weights load at first use) wrapped in a :class:`CheckedEncoder`.

The wrapper answers what the space asks of an encoder without running it (its dimension and
identity come from the database's stored identity; class names and the shared-space name from the
encoder, which never needs the weights for them) and verifies the loaded model's identity against
the stored one at its first forward pass, before any of its vectors can reach the database.
:meth:`LazyEncoders.check_without_loading` checks at once every identity that can be computed from
the weights files without building the model (:meth:`~encoders.base.Encoder.identity_without_loading`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from encoders.base import Encoder, EncoderIdentity, EncoderOutput
from encoders.errors import EncoderError

#: ``check(modality, identity)`` raises when ``identity`` is not the one the database stored.
Check = Callable[[str, EncoderIdentity], None]


class CheckedEncoder(Encoder):
    """An encoder whose model is checked against the stored identity at its first use.

    Parameters
    ----------
    inner : Encoder
        The real encoder (a process-wide shared instance; its model loads lazily).
    stored : EncoderIdentity, optional
        The identity the database recorded for this modality; ``None`` for a new database.
    check : callable, optional
        ``check(modality, identity)``, run once with the loaded model's identity.
    """

    def __init__(self, inner: Encoder, stored: EncoderIdentity | None = None, check: Check | None = None) -> None:
        self.inner = inner
        self.modality = inner.modality  # type: ignore[misc]  # an instance value of the class attribute
        self.registry_name = inner.registry_name  # type: ignore[misc]
        self.default_batch_size = inner.default_batch_size  # type: ignore[misc]
        self._stored = stored
        self._check = check
        self._verified = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ answered without the model

    @property
    def dim(self) -> int:
        return self._stored.dim if self._stored is not None else self.inner.dim

    @property
    def identity(self) -> EncoderIdentity:
        """The stored identity (the model is checked against it when it loads); the model's for a new database."""
        if self._stored is not None:
            return self._stored
        return self.verified_identity()

    @property  # type: ignore[override]  # the base declares plain attributes
    def class_names(self) -> tuple[str, ...] | None:
        return self.inner.class_names

    @property  # type: ignore[override]
    def aligned_space(self) -> str | None:
        return self.inner.aligned_space

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded (and checked) through this wrapper."""
        return self._verified

    @property  # type: ignore[override]
    def same_vectors_as(self) -> str | None:
        return self.inner.same_vectors_as

    def identity_without_loading(self) -> EncoderIdentity | None:
        return self.inner.identity_without_loading()

    def vector_identity(self) -> EncoderIdentity:
        """The real encoder's (:meth:`encoders.base.Encoder.vector_identity`): what made its vectors."""
        if self.inner.same_vectors_as is None:
            return self.identity  # the vectors' identity is the encoder's (the stored one, checked at first use)
        return self.inner.vector_identity()

    # ------------------------------------------------------------------ the model

    def verified_identity(self) -> EncoderIdentity:
        """Load the model (once) and check its identity; returns it."""
        ident = self.inner.identity  # loads the weights for most encoders
        if not self._verified:
            with self._lock:
                if not self._verified:
                    if self._check is not None:
                        self._check(self.modality, ident)
                    self._verified = True
        return ident

    def prepare(self, item: Any) -> Any:
        return self.inner.prepare(item)  # CPU preprocessing: needs no weights, so no check yet

    def encode_prepared(self, batch: Sequence[Any]) -> EncoderOutput:
        self.verified_identity()
        return self.inner.encode_prepared(batch)

    def encode_batch(self, items: Sequence[Any]) -> EncoderOutput:
        self.verified_identity()
        return self.inner.encode_batch(items)

    def set_threads(self, n: int) -> None:
        self.inner.set_threads(n)

    def __getattr__(self, name: str) -> Any:
        # Anything else (model_path, spec, a benchmark's look at _model) is the real encoder's.
        if name == "inner":  # not set yet (during unpickling): avoid recursing
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"CheckedEncoder({self.inner!r}, loaded={self._verified})"


class LazyEncoders(Mapping[str, Encoder]):
    """``modality → encoder`` for one database, each created at its first lookup and loaded at its first use.

    Parameters
    ----------
    specs : dict
        Modality → registry spec (``"minilm-l6"``, ``"open-clip-image:ViT-B-32/…"``).
    make : callable
        ``make(spec, modality)`` → the real encoder (e.g. :func:`encoders.registry.shared_encoder`).
    stored : dict, optional
        Modality → the identity the database stored; ``None`` (or a missing modality) for a new one.
    check : callable, optional
        ``check(modality, identity)`` raises when a loaded model is not the stored one.
    """

    def __init__(
        self,
        specs: Mapping[str, str],
        make: Callable[[str, str], Encoder],
        stored: Mapping[str, EncoderIdentity] | None = None,
        check: Check | None = None,
    ) -> None:
        self.specs = dict(specs)
        self._make = make
        self._stored = dict(stored or {})
        self._check = check
        self._made: dict[str, CheckedEncoder] = {}
        self._lock = threading.Lock()

    def __getitem__(self, modality: str) -> CheckedEncoder:
        enc = self._made.get(modality)
        if enc is not None:
            return enc
        if modality not in self.specs:
            raise KeyError(modality)
        with self._lock:  # two threads asking at once get one wrapper (and one check)
            enc = self._made.get(modality)
            if enc is None:
                inner = self._make(self.specs[modality], modality)
                enc = self._made[modality] = CheckedEncoder(inner, self._stored.get(modality), self._check)
        return enc

    def __iter__(self) -> Iterator[str]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def created(self) -> set[str]:
        """Modalities whose encoder object exists (looked up), loaded or not."""
        return set(self._made)

    def loaded(self) -> set[str]:
        """Modalities whose model has been loaded and checked."""
        return {m for m, e in self._made.items() if e.loaded}

    def identities(self) -> dict[str, EncoderIdentity]:
        """Every modality's identity (for a new database this loads every model)."""
        return {m: self[m].identity for m in self.specs}

    def check_without_loading(self) -> set[str]:
        """Check each stored identity that can be computed from the weights files alone; returns those modalities.

        The others are checked when their model first runs. An encoder that cannot tell without
        loading (or whose files are missing: that is reported when it loads) is skipped here.
        """
        done = set()
        for m in self.specs:
            if m not in self._stored:
                continue
            try:
                ident = self[m].identity_without_loading()
            except EncoderError:
                continue
            if ident is not None:
                if self._check is not None:
                    self._check(m, ident)
                done.add(m)
        return done
