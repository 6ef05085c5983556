"""Fusion layers run by NumPy from their saved weights, so that a query needs no torch.

A text query in a fresh process has to run the fusion layer once; importing torch for that
cost ~5-14 s of CPU here, more than the query itself. The layers are small (a few matrix
products), so :class:`ArrayFusion` runs them in NumPy from the very bytes that torch saved
(the shipped ``<name>.pt`` and the checkpoints in a database), read by :func:`read_torch_save`
without torch, and checks them against the fingerprint that the database recorded: the same
weights, the same fingerprint (:meth:`fusion.layers.FusionLayer.fingerprint`), or no NumPy layer
(the caller then loads torch as before). Training still runs on the torch module
(:meth:`ArrayFusion.to_torch`). ``tests/test_fusion_arrays.py`` checks that both give the same
outputs.

Only what :func:`fusion.layers.FusionLayer.to_bytes` and :func:`fusion.pretrained.save_pretrained`
write is understood (a dict of plain values and CPU tensors); anything else in a file (another
global than a tensor rebuild or a storage type) is refused rather than executed.
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from encoders.base import MODALITIES

#: The layers :class:`ArrayFusion` can run (registry names of :mod:`fusion.layers`).
ARRAY_FUSIONS = ("mean", "attention")

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "DoubleStorage": np.float64,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any) -> Any:
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * item for s in stride), writeable=False
    )
    return np.array(view)  # a copy: contiguous, owns its memory


class _Unpickler(pickle.Unpickler):
    """Unpickles a ``torch.save`` archive's ``data.pkl`` into NumPy arrays, allowing nothing else."""

    def __init__(self, data: bytes, storage: Callable[[str, np.dtype], np.ndarray]) -> None:
        super().__init__(io.BytesIO(data))
        self._storage = storage

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        raise pickle.UnpicklingError(f"not a plain tensor file: it refers to {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        kind, storage_type, key, _location, _numel = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        return self._storage(str(key), storage_type.dtype)


def read_torch_save(data: bytes) -> Any:
    """What ``torch.load(BytesIO(data), weights_only=True)`` returns, with NumPy arrays for tensors.

    Raises
    ------
    ValueError
        Not a zip-format ``torch.save`` file of plain values and tensors (little-endian).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
            pkl = next((n for n in names if n.endswith("/data.pkl")), None)
            if pkl is None:
                raise ValueError("no data.pkl in the archive")
            root = pkl[: -len("data.pkl")]
            if f"{root}byteorder" in names and z.read(f"{root}byteorder").strip() != b"little":
                raise ValueError("big-endian tensors")
            storages: dict[str, np.ndarray] = {}

            def storage(key: str, dtype: np.dtype) -> np.ndarray:
                if key not in storages:
                    storages[key] = np.frombuffer(z.read(f"{root}data/{key}"), dtype=dtype)
                return storages[key]

            return _Unpickler(z.read(pkl), storage).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, KeyError, EOFError, TypeError) as e:
        raise ValueError(f"cannot read the torch file without torch: {e}") from e


def _normalise(x: np.ndarray) -> np.ndarray:
    # F.normalize: x / max(||x||, 1e-12)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below float32 resolution near 1); NumPy has no erf.
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return s * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    # torch.nn.GELU() (exact, erf-based)
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


#: The ``FusionConfig`` fields whose effect :class:`ArrayFusion` computes; a layer with others is refused.
_CONFIG_KEYS = {"dim", "raw_dims", "hidden", "heads", "seed", "skip"}


def _expected_keys(name: str, config: dict[str, Any]) -> set[str]:
    """The ``state_dict`` keys of the torch layer :class:`ArrayFusion` mirrors (any other weight: refused)."""
    if name == "mean":
        return set()
    keys = {"type_embedding", "query", "key.weight", "value.weight", "out.weight"}
    raw_dims = {str(m): int(n) for m, n in config["raw_dims"]}
    for m in MODALITIES:
        keys |= {f"heads.{m}.mlp.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")}
        if config.get("skip") and raw_dims.get(m, 0) > 0:
            keys |= {f"heads.{m}.skip.weight", f"heads.{m}.skip.bias"}
    return keys


class ArrayFusion:
    """A ``mean`` or ``attention`` fusion layer in NumPy (same contract as :class:`fusion.layers.FusionLayer`).

    Parameters
    ----------
    name : str
        Registry name (one of :data:`ARRAY_FUSIONS`).
    config : dict
        ``FusionConfig`` as a dict (``dim``, ``raw_dims``, ``hidden``, ``heads``, ``seed``).
    state : dict
        The module's ``state_dict`` as float32 arrays.
    """

    #: Tells :class:`mmrec.space.SharedSpace` to fuse with :meth:`run` rather than through torch.
    runs_on_numpy = True

    def __init__(self, name: str, config: dict[str, Any], state: dict[str, np.ndarray]) -> None:
        if name not in ARRAY_FUSIONS:
            raise ValueError(f"fusion layer {name!r} has no NumPy version; those that do: {', '.join(ARRAY_FUSIONS)}")
        unknown = set(config) - _CONFIG_KEYS
        if unknown:  # a newer layer: what those settings change is not computed here (the caller uses torch)
            raise ValueError(f"fusion config has settings the NumPy version does not know: {sorted(unknown)}")
        self.registry_name = name
        self.config = dict(config)
        self.state = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}
        expected = _expected_keys(name, self.config)
        if set(self.state) != expected:  # weights of a layer the NumPy version does not mirror: never run half of it
            raise ValueError(f"fusion weights {sorted(set(self.state) ^ expected)} do not match the {name} layer")
        self._fingerprint: str | None = None

    # ------------------------------------------------------------------ identity

    def fingerprint(self) -> str:
        """Equal to the torch module's :meth:`~fusion.layers.FusionLayer.fingerprint` for the same weights."""
        if self._fingerprint is None:
            h = hashlib.sha256(self.registry_name.encode())
            for name, arr in sorted(self.state.items()):
                h.update(name.encode())
                h.update(arr.tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def to_torch(self) -> Any:
        """The torch module with these weights (for training; imports torch)."""
        import torch

        from fusion.layers import FusionConfig, create_fusion

        layer = create_fusion(self.registry_name, FusionConfig.from_dict(self.config))
        layer.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.state.items()})
        return layer.eval()

    # ------------------------------------------------------------------ forward

    def _linear(self, prefix: str, x: np.ndarray) -> np.ndarray:
        y = x @ self.state[f"{prefix}.weight"].T
        bias = self.state.get(f"{prefix}.bias")
        return y if bias is None else y + bias

    def _tokens(self, bridged: np.ndarray, raw: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
        raw_dims = {str(m): int(n) for m, n in self.config["raw_dims"]}
        out = np.empty_like(bridged)
        for i, m in enumerate(MODALITIES):
            b = bridged[:, i]
            r = raw.get(m)
            x = b if raw_dims.get(m, 0) == 0 or r is None else np.concatenate([b, r], axis=-1)
            hidden = _gelu(self._linear(f"heads.{m}.mlp.0", x))
            y = b + self._linear(f"heads.{m}.mlp.2", hidden)
            if f"heads.{m}.skip.weight" in self.state and x is not b:  # FusionConfig.skip: raw → token
                y = y + self._linear(f"heads.{m}.skip", r)
            out[:, i] = _normalise(y)
        return out * mask[..., None]

    def run(
        self, bridged: np.ndarray, raw: dict[str, np.ndarray], mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``fused (N, D)``, ``tokens (N, M, D)``, ``weights (N, M)`` from ``bridged (N, M, D)``, raw, ``mask (N, M)``."""
        bridged = np.asarray(bridged, np.float32)
        mask = np.asarray(mask, bool)
        raw = {m: np.asarray(r, np.float32) for m, r in raw.items()}
        if self.registry_name == "mean":
            tokens = _normalise(bridged) * mask[..., None]
            w = mask.astype(np.float32)
            w = w / np.maximum(w.sum(axis=1, keepdims=True), 1.0)
            fused = _normalise(np.einsum("nm,nmd->nd", w, tokens))
            return fused.astype(np.float32), tokens.astype(np.float32), w
        n, m, d = bridged.shape
        h = int(self.config["heads"])
        e = d // h
        tokens = self._tokens(bridged, raw, mask)
        x = tokens + self.state["type_embedding"][None]
        keys = self._linear("key", x).reshape(n, m, h, e)
        values = self._linear("value", x).reshape(n, m, h, e)
        logits = np.einsum("nmhe,he->nhm", keys, self.state["query"]) / math.sqrt(e)
        logits = np.where(mask[:, None, :], logits, -np.inf)
        with np.errstate(invalid="ignore"):  # an all-masked row: nan, then 0 as torch's nan_to_num
            top = logits.max(axis=-1, keepdims=True)
            ex = np.exp(logits - top)
            attn = np.nan_to_num(ex / ex.sum(axis=-1, keepdims=True), nan=0.0)
        mixed = np.einsum("nhm,nmhe->nhe", attn, values).reshape(n, d)
        fused = _normalise(self._linear("out", mixed))
        return fused.astype(np.float32), tokens.astype(np.float32), attn.mean(axis=1).astype(np.float32)


def array_fusion(data: bytes, fingerprint: str | None = None) -> ArrayFusion | None:
    """The NumPy layer saved in ``data`` (``FusionLayer.to_bytes`` or a shipped ``.pt``), or ``None``.

    ``None`` when the file cannot be read without torch, holds a layer with no NumPy version, or
    (with ``fingerprint``) holds other weights: the caller then loads it with torch, as before.
    """
    try:
        blob = read_torch_save(data)
        layer = ArrayFusion(str(blob["name"]), dict(blob["config"]), dict(blob["state"]))
    except (ValueError, KeyError, TypeError):
        return None
    if fingerprint is not None and layer.fingerprint() != fingerprint:
        return None
    return layer


def pretrained_arrays(name: str, folder: Path | None = None) -> ArrayFusion | None:
    """The shipped pretrained layer ``name`` in NumPy, checked against its provenance; ``None`` if not possible."""
    from fusion.pretrained import PRETRAINED_DIR, PretrainedError, provenance

    folder = folder or PRETRAINED_DIR
    try:
        prov = provenance(name, folder)
        data = (folder / f"{name}.pt").read_bytes()
    except (PretrainedError, OSError):
        return None  # the torch loader reports it
    return array_fusion(data, str(prov["fingerprint"]))
