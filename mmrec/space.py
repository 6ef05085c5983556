"""The shared embedding space of a database: bridges, the current fusion layer, and fusing rows.

The space is the text encoder's. A modality whose encoder already shares it
(a CLIP image tower beside a CLIP text tower) is used as is; the others are
bridged from their class scores (ConSE). The fusion layer then projects each
modality into the space and fuses the modalities an item has into one vector.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from encoders.base import Encoder
from mmrec.errors import InvalidArgumentError, StoreError
from mmrec.names import FUSED_COLUMN, MODALITIES, scores_column, vector_column
from mmrec.store.items import Store

#: The fusion layer used until ``mmrec train`` has produced a better one.
DEFAULT_FUSION = "attention"
#: How a new database's fusion layer starts: the layer pretrained on public media that ships with
#: the package (when the database's encoders are the ones it was trained on), or the untrained mean.
INITIAL_FUSIONS = ("pretrained", "untrained")


class SharedSpace:
    """Bridges plus a fusion layer, for one set of encoders.

    Parameters
    ----------
    encoders : dict
        Modality → encoder (the database's).
    layer : fusion.layers.FusionLayer
        The current fusion layer.
    version : int
        0 for the initial layer (untrained or pretrained), else the checkpoint version in the database.
    cache_dir : path, optional
        Where to keep the class-name embeddings of the bridges between runs.
    pretrained : str, optional
        Name of the shipped pretrained layer when ``layer`` is it (version 0 only).
    note : str, optional
        Why a database that asked for the pretrained layer starts untrained (recorded in its identity).
    """

    def __init__(
        self,
        encoders: dict[str, Encoder],
        layer: Any,
        version: int = 0,
        cache_dir: Path | None = None,
        *,
        pretrained: str | None = None,
        note: str | None = None,
    ) -> None:
        self.encoders = encoders
        self._layer = layer  # a torch FusionLayer, or its NumPy twin (fusion.arrays) until training needs the module
        self.version = version
        self.cache_dir = cache_dir
        self.pretrained = pretrained if version <= 0 else None
        self.note = note if version <= 0 else None
        self._bridges: dict[str, Any] = {}

    # ----------------------------------------------------------------- construction

    @staticmethod
    def fusion_config(encoders: dict[str, Encoder]) -> Any:
        from fusion.layers import FusionConfig

        dim = encoders["text"].dim
        raw = tuple((m, 0 if m == "text" else encoders[m].dim) for m in MODALITIES)
        return FusionConfig(dim=dim, raw_dims=raw)

    @classmethod
    def untrained(cls, encoders: dict[str, Encoder], cache_dir: Path | None = None) -> SharedSpace:
        from fusion.layers import create_fusion

        check_bridgeable(encoders)
        return cls(encoders, create_fusion(DEFAULT_FUSION, cls.fusion_config(encoders)).eval(), 0, cache_dir)

    @classmethod
    def initial(
        cls, encoders: dict[str, Encoder], fusion: str = "pretrained", cache_dir: Path | None = None
    ) -> SharedSpace:
        """The space a new database starts from.

        Parameters
        ----------
        encoders : dict
            Modality → encoder of the new database.
        fusion : {"pretrained", "untrained"}
            ``"pretrained"`` starts from the shipped layer when it was trained on these very
            encoders; otherwise (or with ``"untrained"``) the untrained mean. The returned space's
            ``note`` says why a pretrained start was not possible.

        Raises
        ------
        InvalidArgumentError
            ``fusion`` is not one of :data:`INITIAL_FUSIONS`.
        StoreError
            The shipped layer is corrupt (its weights do not match its recorded fingerprint).
        """
        if fusion not in INITIAL_FUSIONS:
            raise InvalidArgumentError(f"unknown initial fusion {fusion!r}; choose one of {', '.join(INITIAL_FUSIONS)}")
        if fusion == "untrained":
            return cls.untrained(encoders, cache_dir)
        from fusion.pretrained import DEFAULT_PRETRAINED, PretrainedError, encoder_mismatch, provenance

        check_bridgeable(encoders)
        try:
            prov = provenance(DEFAULT_PRETRAINED)
        except PretrainedError as e:
            space = cls.untrained(encoders, cache_dir)
            space.note = f"starting untrained: {e}"
            return space
        # The identities of the vectors: an fp32 ONNX export reproduces its torch model's (Encoder.same_vectors_as).
        why = encoder_mismatch(prov, {m: encoders[m].vector_identity().to_dict() for m in MODALITIES})
        config = cls.fusion_config(encoders)
        if why is None and prov.get("config", {}).get("raw_dims") is not None:
            if [list(x) for x in config.raw_dims] != [list(x) for x in prov["config"]["raw_dims"]]:
                why = f"the pretrained layer {DEFAULT_PRETRAINED!r} expects feature sizes {prov['config']['raw_dims']}"
        if why is not None:
            space = cls.untrained(encoders, cache_dir)
            space.note = f"starting untrained: {why}"
            return space
        layer = _pretrained_layer(DEFAULT_PRETRAINED)
        return cls(encoders, layer, 0, cache_dir, pretrained=DEFAULT_PRETRAINED)

    @classmethod
    def load(cls, store: Store, encoders: dict[str, Encoder], cache_dir: Path | None = None) -> SharedSpace:
        """The space that made ``store``'s fused vectors: its trained checkpoint, or the untrained layer.

        Raises
        ------
        StoreError
            When the checkpoint named by the fused vectors' metadata does not match their fingerprint.
        """
        ident = store.fusion_identity()
        if ident and int(ident.get("version", 0)) <= 0 and ident.get("pretrained"):
            name = str(ident["pretrained"])
            try:
                layer = _pretrained_layer(name)
            except (StoreError, ValueError) as e:  # fusion.pretrained.PretrainedError is a ValueError
                raise StoreError(
                    f"database {store.uri!r} was started from pretrained fusion {name!r}, which this installation "
                    f"cannot load ({e}); install the mmrec version that made the database, or re-ingest into a new --db"
                ) from e
            if layer.fingerprint() != ident["fingerprint"]:
                raise StoreError(
                    f"database {store.uri!r} was started from pretrained fusion {name!r} with weights "
                    f"{ident['fingerprint']}, but this installation ships weights {layer.fingerprint()} under that "
                    "name; install the mmrec version that made the database, or re-ingest into a new --db"
                )
            return cls(encoders, layer, 0, cache_dir, pretrained=name)
        if not ident or int(ident.get("version", 0)) <= 0:
            space = cls.untrained(encoders, cache_dir)
            space.note = (ident or {}).get("note")
            return space
        from fusion.arrays import array_fusion

        version = int(ident["version"])
        weights = store.checkpoint_weights("fusion", version)
        # Read without torch when possible (a query then never imports it); checked against the fingerprint below.
        layer = array_fusion(weights, str(ident["fingerprint"]))
        if layer is None:
            from fusion.layers import fusion_from_bytes

            layer, _ = fusion_from_bytes(weights)
        if layer.fingerprint() != ident["fingerprint"]:
            raise StoreError(
                f"fusion checkpoint v{version} in {store.uri!r} does not match the fused "
                f"vectors' fingerprint {ident['fingerprint']}; re-run `mmrec train`"
            )
        return cls(encoders, layer, version, cache_dir)

    def with_layer(self, layer: Any, version: int) -> SharedSpace:
        """A new space with another fusion layer (same encoders; the bridges built so far are shared)."""
        space = SharedSpace(self.encoders, layer, version, self.cache_dir, pretrained=self.pretrained, note=self.note)
        space._bridges = self._bridges
        return space

    @property
    def layer(self) -> Any:
        """The fusion layer as a torch module (a NumPy-loaded layer is converted at the first ask: training)."""
        if getattr(self._layer, "runs_on_numpy", False):
            self._layer = self._layer.to_torch()
        return self._layer

    @property
    def dim(self) -> int:
        return self.encoders["text"].dim

    def identity(self) -> dict[str, Any]:
        """What is recorded in the fused column's metadata: name, version, fingerprint (+ pretrained or note)."""
        ident: dict[str, Any] = {
            "name": self._layer.registry_name,
            "version": self.version,
            "fingerprint": self._layer.fingerprint(),
        }
        if self.pretrained:
            ident["pretrained"] = self.pretrained
        if self.note:
            ident["note"] = self.note
        return ident

    # ----------------------------------------------------------------- bridges

    def aligned(self, modality: str) -> bool:
        """Whether the modality's encoder already shares the text encoder's space."""
        space = getattr(self.encoders[modality], "aligned_space", None)
        return modality == "text" or (
            space is not None and space == getattr(self.encoders["text"], "aligned_space", None)
        )

    def bridge(self, modality: str) -> Any:
        """The ConSE bridge of a modality (built once, cached on disk when a cache folder is set)."""
        if modality not in self._bridges:
            from fusion.bridge import PROMPTS, ClassBridge, bridge_key, build_class_bridge

            enc, text = self.encoders[modality], self.encoders["text"]
            names = enc.class_names or ()
            key = bridge_key(text, names, PROMPTS[modality])
            path = self.cache_dir / f"bridge-{modality}-{key}.npy" if self.cache_dir else None
            if path is not None and path.is_file():
                self._bridges[modality] = ClassBridge(np.load(path), key=key)
            else:
                bridge = build_class_bridge(text, names, PROMPTS[modality])
                if path is not None:
                    try:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        tmp = path.with_suffix(".tmp.npy")
                        np.save(tmp, bridge.class_embeddings)
                        tmp.replace(path)  # atomic: a concurrent reader never sees half a file
                    except OSError:
                        pass  # the cache is an optimisation only
                self._bridges[modality] = bridge
        return self._bridges[modality]

    def bridged(self, modality: str, vectors: np.ndarray, scores: np.ndarray | None) -> np.ndarray:
        """Vectors of one modality in the shared space, before the fusion layer: ``(N, D)``."""
        if self.aligned(modality):
            return np.asarray(vectors, np.float32)
        if scores is None:
            raise StoreError(f"{modality} vectors need class scores to be bridged into the text space")
        return self.bridge(modality)(scores)

    # ----------------------------------------------------------------- fusing

    def inputs(self, columns: dict[str, tuple[np.ndarray | None, np.ndarray | None, np.ndarray]]) -> Any:
        """Fusion inputs from per-modality ``(vectors (N, d_m), scores (N, C) or None, present (N,))``."""
        from fusion.data import FusionData

        n = len(next(iter(columns.values()))[2])
        bridged = np.zeros((n, len(MODALITIES), self.dim), np.float32)
        raw: dict[str, np.ndarray] = {}
        mask = np.zeros((n, len(MODALITIES)), bool)
        for i, m in enumerate(MODALITIES):
            vecs, scores, present = columns.get(m, (None, None, np.zeros(n, bool)))
            present = np.asarray(present, bool)
            raw[m] = np.zeros((n, self.encoders[m].dim), np.float32)
            if vecs is None or not present.any():
                continue
            idx = np.flatnonzero(present)
            raw[m][idx] = vecs[idx]
            bridged[idx, i] = self.bridged(m, vecs[idx], None if scores is None else scores[idx])
            mask[idx, i] = True
        return FusionData(bridged, raw, mask)

    def inputs_from_rows(self, rows: Sequence[dict[str, Any]]) -> Any:
        """Fusion inputs from store rows (with vector and score columns)."""
        columns = {}
        for m in MODALITIES:
            present = np.array([r.get(vector_column(m)) is not None for r in rows], bool)
            vecs = _stack([r.get(vector_column(m)) for r in rows], self.encoders[m].dim)
            n_cls = len(self.encoders[m].class_names or ())
            scores = _stack([r.get(scores_column(m)) for r in rows], n_cls) if n_cls else None
            columns[m] = (vecs, scores, present)
        return self.inputs(columns)

    def fuse(self, data: Any, batch: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the fusion layer: ``fused (N, D)``, ``tokens (N, M, D)``, ``weights (N, M)``."""
        if getattr(self._layer, "runs_on_numpy", False):  # no torch import (fusion.arrays)
            parts = [
                self._layer.run(*_arrays(data.subset(np.arange(s, min(s + batch, len(data))))))
                for s in range(0, len(data), batch)
            ]
            return _concat(parts, self.dim)
        import torch

        outs = []
        with torch.inference_mode():
            for s in range(0, len(data), batch):
                part = data.subset(np.arange(s, min(s + batch, len(data))))
                b, r, mk = part.tensors(torch.device("cpu"))
                o = self.layer(b, r, mk)
                outs.append((o.fused.numpy(), o.tokens.numpy(), o.weights.numpy()))
        return _concat(outs, self.dim)

    def encode_query(self, modality: str, value: Any) -> tuple[np.ndarray, np.ndarray]:
        """Place one decoded query (a sentence, an image, a waveform) in the space like an item with only that modality.

        Returns
        -------
        (fused, token)
            ``(D,)`` the query's fused vector, and ``(D,)`` its vector in the modality's shared space.
        """
        out = self.encoders[modality].encode_batch([value])
        columns = {modality: (out.vectors, out.class_scores, np.ones(1, bool))}
        fused, tokens, _ = self.fuse(self.inputs(columns))
        return fused[0], tokens[0, MODALITIES.index(modality)]

    def fusion_values(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The fusion columns of each row (fused vector, per-modality shared vectors, weights)."""
        if not rows:
            return []
        data = self.inputs_from_rows(rows)
        fused, tokens, weights = self.fuse(data)
        out = []
        for k in range(len(rows)):
            has_any = bool(data.mask[k].any())
            values: dict[str, Any] = {
                FUSED_COLUMN: fused[k] if has_any else None,
                "fusion_weights": weights[k] if has_any else None,
            }
            for i, m in enumerate(MODALITIES):
                values[f"{m}_shared"] = tokens[k, i] if data.mask[k, i] else None
            out.append(values)
        return out


def check_bridgeable(encoders: dict[str, Encoder]) -> None:
    """Every modality must share the text space or have class scores to bridge from."""
    text_space = getattr(encoders["text"], "aligned_space", None)
    for m in ("image", "audio"):
        enc = encoders[m]
        aligned = text_space is not None and getattr(enc, "aligned_space", None) == text_space
        if not aligned and not enc.class_names:
            raise StoreError(
                f"the {m} encoder {enc.identity.name!r} neither shares the text encoder's space nor has class scores; "
                "mmrec cannot place its vectors in the shared space"
            )


@functools.lru_cache(maxsize=4)
def _pretrained_layer(name: str) -> Any:
    """The shipped layer ``name`` (loaded once per process; callers never modify it: training copies it)."""
    from fusion.arrays import pretrained_arrays
    from fusion.pretrained import PretrainedError, load_pretrained

    layer = pretrained_arrays(name)  # NumPy, checked against the provenance's fingerprint; None: use torch
    if layer is not None:
        return layer
    try:
        return load_pretrained(name).layer
    except PretrainedError as e:
        raise StoreError(str(e)) from e


def _arrays(data: Any) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    return data.bridged, data.raw, data.mask


def _concat(outs: Sequence[tuple[np.ndarray, ...]], dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fusion outputs of consecutive batches as one ``(fused, tokens, weights)``."""
    if not outs:
        m = len(MODALITIES)
        return np.zeros((0, dim), np.float32), np.zeros((0, m, dim), np.float32), np.zeros((0, m), np.float32)
    return tuple(np.concatenate([o[i] for o in outs]).astype(np.float32) for i in range(3))  # type: ignore[return-value]


def _stack(values: Sequence[Any], dim: int) -> np.ndarray:
    out = np.zeros((len(values), dim), np.float32)
    for i, v in enumerate(values):
        if v is not None:
            out[i] = v
    return out
