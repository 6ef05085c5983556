"""Fusion layers: per-modality projection into the shared space, then one item vector.

Every layer takes, for a batch of ``N`` items and the ``M`` modalities in
:data:`encoders.base.MODALITIES` order:

* ``bridged`` ``(N, M, D)``: each modality's vector already in the shared
  (text encoder's) space — the text vector itself, a CLIP image vector, or the
  ConSE bridge of class scores (zeros where absent);
* ``raw`` ``{modality: (N, d_m)}``: the encoders' own features (zeros where absent);
* ``mask`` ``(N, M)`` bool: which modalities each item (or query) has.

and returns a :class:`FusionOutput`: L2-normalised per-modality ``tokens``
``(N, M, D)`` in the shared space, the fused ``(N, D)`` vector, and each
modality's attention ``weights`` ``(N, M)`` (zero where absent, rows sum to 1).
Any non-empty subset of modalities works: an item with only an image, a query
that is only a sound.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from encoders.base import MODALITIES
from encoders.registries import Registry, UnknownNameError, set_registry_name

L = TypeVar("L", bound="type[FusionLayer]")


class UnknownFusionError(UnknownNameError):
    """A fusion layer name that is not in the registry (a :class:`KeyError`)."""


#: Every fusion layer class by name; the layers below register themselves with :func:`register_fusion`.
FUSIONS: Registry[type[FusionLayer]] = Registry("fusion layer", error=UnknownFusionError, on_register=set_registry_name)


def register_fusion(name: str) -> Callable[[L], L]:
    """Class decorator that registers a fusion layer under ``name`` (set as its ``registry_name``).

    Raises
    ------
    ValueError
        ``name`` is already registered by another class.
    """

    def decorate(cls: L) -> L:
        FUSIONS.add(name, cls)
        return cls

    return decorate


def list_fusions() -> list[str]:
    """Registered fusion layer names, sorted."""
    return FUSIONS.names()


def get_fusion_class(name: str) -> type[FusionLayer]:
    """The class registered under ``name``; :class:`UnknownFusionError` lists the valid names."""
    return FUSIONS.get(name)


@dataclass(frozen=True)
class FusionConfig:
    """Shape of a fusion layer.

    Attributes
    ----------
    dim : int
        Shared space dimension ``D`` (the text encoder's).
    raw_dims : tuple of (modality, dim)
        Encoder feature dimension per modality; 0 when the raw feature adds
        nothing to the bridged vector (the text modality).
    hidden : int
        Hidden width of the projection heads.
    heads : int
        Attention heads (must divide ``dim``).
    seed : int
        Seed of the initial weights, so that an untrained layer has a stable identity.
    skip : bool
        Give each projection head a linear path from the raw encoder feature to its token
        (zero at initialisation, so the untrained layer is unchanged). The pretrained layer uses it,
        initialised to the features' principal subspace, so that a modality's tokens keep the
        neighbourhoods of its encoder features (see :func:`fusion.train.init_skip_pca`). Off by
        default so that layers saved before it existed load unchanged.
    """

    dim: int
    raw_dims: tuple[tuple[str, int], ...]
    hidden: int = 512
    heads: int = 4
    seed: int = 0
    skip: bool = False

    def raw_dim(self, modality: str) -> int:
        return dict(self.raw_dims).get(modality, 0)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FusionConfig:
        d = dict(d)
        d["raw_dims"] = tuple((str(m), int(n)) for m, n in d["raw_dims"])
        return cls(**d)


class FusionOutput(NamedTuple):
    fused: torch.Tensor  # (N, D)
    tokens: torch.Tensor  # (N, M, D)
    weights: torch.Tensor  # (N, M)


class FusionLayer(nn.Module):
    """Base class of fusion layers (see the module docstring for the contract)."""

    registry_name = ""

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config

    def forward(self, bridged: torch.Tensor, raw: dict[str, torch.Tensor], mask: torch.Tensor) -> FusionOutput:
        raise NotImplementedError

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    def to_bytes(self, extra: dict[str, Any] | None = None) -> bytes:
        """Serialise name, config and weights (plus ``extra`` metadata) with ``torch.save``."""
        buf = io.BytesIO()
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        torch.save(
            {"name": self.registry_name, "config": asdict(self.config), "state": state, "extra": extra or {}}, buf
        )
        return buf.getvalue()

    def fingerprint(self) -> str:
        """SHA-256 of the weights (names, shapes and values), 16 hex digits."""
        h = hashlib.sha256(self.registry_name.encode())
        for name, t in sorted(self.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


def create_fusion(name: str, config: FusionConfig) -> FusionLayer:
    """A new (untrained) fusion layer.

    Parameters
    ----------
    name : str
        Registry name (see :func:`list_fusions`).
    config : FusionConfig
        Its shape.

    Raises
    ------
    UnknownFusionError
        No such layer; the message lists the valid names.
    """
    return get_fusion_class(name)(config)


def fusion_from_bytes(data: bytes) -> tuple[FusionLayer, dict[str, Any]]:
    """Load a layer saved with :meth:`FusionLayer.to_bytes`; returns ``(layer, extra)``."""
    blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    layer = create_fusion(blob["name"], FusionConfig.from_dict(blob["config"]))
    layer.load_state_dict(blob["state"])
    layer.eval()
    return layer, blob.get("extra", {})


def _masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    w = mask.float()
    w = w / w.sum(dim=1, keepdim=True).clamp(min=1.0)
    return torch.einsum("nm,nmd->nd", w, tokens), w


@register_fusion("mean")
class MeanFusion(FusionLayer):
    """No parameters: tokens are the bridged vectors, the item vector is their normalised mean."""

    def forward(self, bridged: torch.Tensor, raw: dict[str, torch.Tensor], mask: torch.Tensor) -> FusionOutput:
        tokens = F.normalize(bridged, dim=-1) * mask.unsqueeze(-1)
        fused, weights = _masked_mean(tokens, mask)
        return FusionOutput(F.normalize(fused, dim=-1), tokens, weights)


class _ProjectionHead(nn.Module):
    """``token = normalise(bridged + MLP([bridged, raw]) [+ skip(raw)])``, the MLP's last layer zero-initialised.

    Starting at zero makes an untrained head the identity on the bridged
    vector, so training can only move away from a sensible starting point. The
    optional ``skip`` (a linear map of the raw feature, also zero at first) lets a
    trained head carry the encoder's own geometry into the token.
    """

    def __init__(self, dim: int, raw_dim: int, hidden: int, skip: bool = False) -> None:
        super().__init__()
        self.raw_dim = raw_dim
        self.mlp = nn.Sequential(nn.Linear(dim + raw_dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)
        self.skip = nn.Linear(raw_dim, dim) if skip and raw_dim > 0 else None
        if self.skip is not None:
            nn.init.zeros_(self.skip.weight)
            nn.init.zeros_(self.skip.bias)

    def forward(self, bridged: torch.Tensor, raw: torch.Tensor | None) -> torch.Tensor:
        if self.raw_dim == 0 or raw is None:
            return F.normalize(bridged + self.mlp(bridged), dim=-1)
        out = bridged + self.mlp(torch.cat([bridged, raw], dim=-1))
        if self.skip is not None:
            out = out + self.skip(raw)
        return F.normalize(out, dim=-1)


@register_fusion("attention")
class AttentionFusion(FusionLayer):
    """Projection heads, modality-type embeddings and multi-head attention from a learned query.

    Initialised so that an untrained layer returns the normalised mean of the
    bridged vectors: heads are the identity, keys are zero (uniform attention
    over the present modalities), values and output are the identity.
    """

    def __init__(self, config: FusionConfig) -> None:
        super().__init__(config)
        d, h = config.dim, config.heads
        if d % h:
            raise ValueError(f"heads={h} must divide dim={d}")
        gen = torch.Generator().manual_seed(config.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.heads = nn.ModuleDict(
                {m: _ProjectionHead(d, config.raw_dim(m), config.hidden, config.skip) for m in MODALITIES}
            )
        self.type_embedding = nn.Parameter(torch.zeros(len(MODALITIES), d))
        # A random query with zero keys gives uniform attention but a non-zero gradient for the keys.
        self.query = nn.Parameter(torch.randn(h, d // h, generator=gen) / math.sqrt(d // h))
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        nn.init.zeros_(self.key.weight)
        nn.init.eye_(self.value.weight)
        nn.init.eye_(self.out.weight)

    def project(self, bridged: torch.Tensor, raw: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """Per-modality tokens ``(N, M, D)`` in the shared space (zero where absent).

        Each head runs only on the rows that have its modality: a single-modality query (and the
        training loss's single-modality passes) costs one head, not three.
        """
        n, _, d = bridged.shape
        tokens = bridged.new_zeros((n, len(MODALITIES), d))
        for i, m in enumerate(MODALITIES):
            rows = mask[:, i]
            if bool(rows.all()):
                tokens[:, i] = self.heads[m](bridged[:, i], raw.get(m))
            elif bool(rows.any()):
                r = raw.get(m)
                tokens[rows, i] = self.heads[m](bridged[rows, i], None if r is None else r[rows])
        return tokens

    def forward(self, bridged: torch.Tensor, raw: dict[str, torch.Tensor], mask: torch.Tensor) -> FusionOutput:
        n, m, d = bridged.shape
        h = self.config.heads
        tokens = self.project(bridged, raw, mask)
        x = tokens + self.type_embedding.unsqueeze(0)
        keys = self.key(x).view(n, m, h, d // h)
        values = self.value(x).view(n, m, h, d // h)
        logits = torch.einsum("nmhe,he->nhm", keys, self.query) / math.sqrt(d // h)
        logits = logits.masked_fill(~mask.unsqueeze(1), float("-inf"))
        attn = torch.softmax(logits, dim=-1).nan_to_num(0.0)  # (N, H, M); all-masked rows → 0
        mixed = torch.einsum("nhm,nmhe->nhe", attn, values).reshape(n, d)
        fused = F.normalize(self.out(mixed), dim=-1)
        return FusionOutput(fused, tokens, attn.mean(dim=1))
