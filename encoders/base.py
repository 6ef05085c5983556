"""The encoder contract.

An encoder turns a batch of decoded inputs of one modality into float32,
L2-normalised vectors of a fixed dimension. It carries an identity (model name
plus a fingerprint of its weights) that is stored with the vectors so that a
database always knows what made them.

Encoding is split in two steps so that an ingest pipeline can overlap them:

* :meth:`Encoder.prepare` turns one decoded input into model-ready data
  (resize and normalise an image, compute log-mel patches of a sound, ...).
  It is pure CPU work on one item and is safe to call from worker threads.
* :meth:`Encoder.encode_prepared` runs the model once over a whole batch of
  prepared inputs.

:meth:`Encoder.encode` chains both for callers that do not care.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from encoders.errors import EncoderLoadError

# numpy is imported where it is used: `mmrec --help` imports this module (for MODALITIES) and must
# not pay ~0.1-1 s for numpy before printing a line.
if TYPE_CHECKING:
    import numpy as np

MODALITIES: tuple[str, ...] = ("text", "image", "audio")


@dataclass(frozen=True)
class Waveform:
    """Decoded mono audio.

    Attributes
    ----------
    samples : np.ndarray
        Shape ``(n_samples,)``, float32 in [-1, 1].
    sample_rate : int
        Samples per second.
    """

    samples: np.ndarray
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / float(self.sample_rate)


@dataclass(frozen=True)
class EncoderIdentity:
    """What made a set of vectors: stored in the database beside them.

    Two identities are equal only when the registry name, the model, the
    weights fingerprint and the dimension all match.
    """

    name: str
    model: str
    fingerprint: str
    dim: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "fingerprint": self.fingerprint, "dim": self.dim}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EncoderIdentity:
        return cls(name=str(d["name"]), model=str(d["model"]), fingerprint=str(d["fingerprint"]), dim=int(d["dim"]))

    def __str__(self) -> str:
        return f"{self.name} ({self.model}, {self.dim}-d, weights {self.fingerprint})"


@dataclass(frozen=True)
class EncoderOutput:
    """The result of encoding one batch.

    Attributes
    ----------
    vectors : np.ndarray
        Shape ``(N, dim)``, float32, each row L2-normalised.
    class_scores : np.ndarray or None
        Shape ``(N, n_classes)``, float32, for encoders trained as classifiers
        (probabilities or per-class scores in [0, 1]); ``None`` otherwise.
    """

    vectors: np.ndarray
    class_scores: np.ndarray | None = None


class Encoder(ABC):
    """Base class of every encoder.

    Subclasses set ``modality`` and implement :attr:`dim`, :attr:`identity`,
    :meth:`prepare` and :meth:`encode_prepared`. Heavy libraries are imported
    inside methods so that importing the class is cheap.
    """

    modality: ClassVar[str]
    #: Registry name: set by :func:`encoders.registry.register_encoder`; the built-ins
    #: declare it in their class body (:mod:`encoders.registry` registers them under it).
    registry_name: ClassVar[str] = ""
    #: Names of the classes behind ``class_scores``; ``None`` when the encoder has none.
    class_names: tuple[str, ...] | None = None
    #: Names the embedding space the vectors live in when it is shared with encoders of
    #: other modalities (the two towers of one CLIP model); ``None`` for a space of its
    #: own. Vectors of two encoders with equal, non-``None`` values are directly comparable.
    aligned_space: str | None = None
    #: A sensible number of items per forward pass on a CPU.
    default_batch_size: ClassVar[int] = 32
    #: Registry name of the encoder whose vectors this one reproduces by construction (the same
    #: weights and arithmetic in another runtime: an fp32 ONNX export of a torch model), or ``None``
    #: for vectors of its own. A quantised model never sets it: its vectors differ.
    same_vectors_as: ClassVar[str | None] = None

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of the output vectors."""

    @property
    @abstractmethod
    def identity(self) -> EncoderIdentity:
        """Model name and weights fingerprint."""

    @abstractmethod
    def prepare(self, item: Any) -> Any:
        """Turn one decoded input into model-ready data (thread-safe CPU work).

        Raises
        ------
        encoders.errors.InputError
            When the input cannot be used (wrong type, empty, ...).
        """

    @abstractmethod
    def encode_prepared(self, batch: Sequence[Any]) -> EncoderOutput:
        """Run the model once over prepared inputs.

        Parameters
        ----------
        batch : sequence
            ``N`` results of :meth:`prepare`.

        Returns
        -------
        EncoderOutput
            ``vectors`` of shape ``(N, dim)``.
        """

    def encode_batch(self, items: Sequence[Any]) -> EncoderOutput:
        """Prepare and encode ``items`` in one forward pass."""
        return self.encode_prepared([self.prepare(x) for x in items])

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        """Encode ``items``; returns float32 array of shape ``(N, dim)``, rows L2-normalised."""
        return self.encode_batch(items).vectors

    def set_threads(self, n: int) -> None:  # noqa: B027 - optional hook
        """Limit the threads the model runtime uses (default: nothing to do)."""

    def vector_identity(self) -> EncoderIdentity:
        """The identity of the vectors rather than of the program that makes them.

        The :attr:`same_vectors_as` encoder's identity when this one reproduces its vectors, else
        :attr:`identity`. What was trained on vectors (a pretrained fusion layer) asks for this: an fp32
        ONNX export serves a layer trained on the torch model's vectors, an int8 one does not. A
        database's own identity check stays on :attr:`identity` (one runtime per database).
        """
        return self.identity

    def identity_without_loading(self) -> EncoderIdentity | None:
        """The identity when it can be known without loading the model, else ``None`` (the default).

        An encoder whose fingerprint is a hash of its weights *file* (not of the loaded tensors) can
        answer from the file alone, so that a database's stored identity is checked without paying
        for the model (:class:`encoders.lazy.LazyEncoders`). Must equal :attr:`identity` when not ``None``.
        """
        return None


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-normalise ``x`` of shape ``(N, D)`` to unit L2 norm, as float32."""
    import numpy as np

    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32, copy=False)


def fingerprint_files(paths: Sequence[Path], length: int = 16) -> str:
    """SHA-256 over the contents of ``paths`` (in the given order), truncated to ``length`` hex digits."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:length]


def warm_up_input(modality: str) -> Any:
    """A small valid input of ``modality`` (a sentence, a white image, a second of silence) for a warm-up pass."""
    if modality == "text":
        return "warm up"
    if modality == "image":
        from PIL import Image

        return Image.new("RGB", (224, 224), "white")
    if modality == "audio":
        import numpy as np

        return Waveform(np.zeros(16000, np.float32), 16000)
    raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")


class LoadedOnFirstUse(Encoder):
    """An encoder whose model is loaded on first use by :meth:`_load`, which also sets ``_identity``.

    Gives the :attr:`identity` (and, unless a subclass knows it as a constant, the :attr:`dim`) that
    every such encoder computes the same way: load the model once, then read what loading recorded.
    """

    _identity: EncoderIdentity | None = None

    @abstractmethod
    def _load(self) -> Any:
        """Load the model once (thread-safe) and set ``self._identity``; returns the model."""

    @property
    def dim(self) -> int:
        return self.identity.dim

    @property
    def identity(self) -> EncoderIdentity:
        self._load()
        if self._identity is None:  # a subclass bug, not bad input: say which one
            raise EncoderLoadError(f"{type(self).__name__}._load() loaded a model but recorded no identity")
        return self._identity
