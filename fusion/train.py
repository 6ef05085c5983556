"""Contrastive training of a fusion layer on a catalog's own stored vectors.

Two InfoNCE terms, both over the items of a batch (the other items are the
negatives):

* **pairs** — each pair of modalities of the same item is pulled together
  (the owl's photo token next to the owl's call token), which aligns the
  per-modality tokens used by modality-restricted search;
* **single → item** — the fused vector of an item seen through one modality
  only (what a query looks like) is pulled towards the item's fused vector
  computed from a random subset of its modalities (modality dropout), so a
  photo, a sentence or a sound finds its item;
* **structure** (weight ``structure_weight``) — keeps what the encoders know: within a batch,
  the neighbours of an item's image (or sound) token, and of its image-only fused vector,
  should be the neighbours of its raw encoder feature (a KL divergence between the two
  softmax-normalised similarity rows). Without it the contrastive terms alone pull the image
  tokens towards the captions and lose same-category structure the encoder had (image→image
  P@10 fell below the raw features'). With ``structure_fused`` the whole-item fused vector is
  held to them as well (the candidates of an image → item search).

Encoders stay frozen: inputs are the stored vectors and class scores
(:class:`fusion.data.FusionData`). A slice of the items is held out; training
stops when its loss stops improving, and the best epoch is kept (the loop is
:class:`fusion.trainer.Trainer`). The untrained layer's held-out loss is
measured first, so the result says whether training helped.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from encoders.base import MODALITIES
from fusion.data import FusionData
from fusion.layers import FusionLayer
from fusion.trainer import Trainer


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; the defaults train 5,000 items in a few minutes on 2 CPU cores."""

    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    temperature: float = 0.05
    #: Probability of hiding each modality of an item (at least one stays).
    modality_dropout: float = 0.5
    val_fraction: float = 0.15
    #: Epochs without held-out improvement before stopping.
    patience: int = 6
    seed: int = 0
    #: Below this many items a catalog is small: it fine-tunes with ``small_lr`` and holds out at
    #: least ``small_val_fraction`` (a tiny catalog over-fits at the full rate within an epoch or two,
    #: and two held-out items cannot tell an improvement from noise). Chosen by measurement:
    #: ``benchmarks/pretrain_space.py`` (fine-tuning section of its report).
    small_catalog: int = 200
    small_lr: float = 1e-4
    small_val_fraction: float = 0.3
    #: Fine-tuning a pretrained (or trained) layer on a catalog of ``small_catalog`` items or more:
    #: a third of the from-scratch rate and 30 % held out for early stopping (:meth:`for_finetuning`).
    #: On the validation drum kits (273 items) the from-scratch 1e-3 tied scratch on audio→text and
    #: lost text→audio; 3e-4 was the best of the rates tried, 1e-4 stays below ``small_catalog`` (best
    #: on the 83 validation event sounds): ``benchmarks/results/pretrain_v4_validation/README.md``.
    finetune_lr: float = 3e-4
    finetune_val_fraction: float = 0.3
    #: Weight of the same-modality structure term (0 disables it).
    structure_weight: float = 0.5
    #: Also hold the *whole-item* fused vector of an item that has an image (or a sound) to the
    #: neighbours of its raw feature: the candidates of an image → item search are whole-item
    #: vectors, and without this term their caption pulls them away from the image's neighbours.
    structure_fused: bool = False
    #: Parameters kept fixed: those whose name contains one of these (e.g. ``("skip",)`` keeps the
    #: heads' principal-subspace skip of :func:`init_skip_pca`, ``("skip", "heads")`` everything but
    #: the attention). Empty: everything trains.
    frozen: tuple[str, ...] = ()
    #: Weight of a modality pair's InfoNCE term, ``(("audio-text", 3.0),)`` (pairs named in
    #: :data:`encoders.base.MODALITIES` order joined by "-"; unnamed terms weigh 1): the loss is the
    #: weighted mean of the terms. Empty: every term weighs the same (the behaviour before it existed).
    pair_weights: tuple[tuple[str, float], ...] = ()
    #: Per-parameter optimiser settings ``((substring, lr scale, weight decay), ...)``: a parameter whose
    #: name contains the substring (first match) trains at ``lr * scale`` with that weight decay, e.g.
    #: ``(("heads.audio.mlp", 0.3, 1e-2),)`` keeps the audio head's residual near its bridge.
    param_groups: tuple[tuple[str, float, float], ...] = ()
    #: "auto" uses a GPU when there is one.
    device: str = "auto"

    def for_finetuning(self) -> TrainConfig:
        """This config for a start from a pretrained or trained layer (``mmrec train`` on a non-untrained space).

        Catalogs under ``small_catalog`` items keep the small-catalog rule of :func:`train_fusion`.
        """
        return replace(
            self, lr=min(self.lr, self.finetune_lr), val_fraction=max(self.val_fraction, self.finetune_val_fraction)
        )


@dataclass
class TrainResult:
    layer: FusionLayer
    improved: bool
    epochs: int
    seconds: float
    train_items: int
    val_items: int
    val_loss_untrained: float
    val_loss_trained: float
    history: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | bool]:
        return {
            "improved": self.improved,
            "epochs": self.epochs,
            "seconds": round(self.seconds, 2),
            "train_items": self.train_items,
            "val_items": self.val_items,
            "val_loss_untrained": round(self.val_loss_untrained, 4),
            "val_loss_trained": round(self.val_loss_trained, 4),
        }


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between row-aligned unit vectors ``a`` and ``b`` of shape ``(K, D)``."""
    logits = a @ b.T / temperature
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _structure_kl(raw: torch.Tensor, out: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(neighbours by ``raw`` ‖ neighbours by ``out``) over the rows of a batch, self excluded.

    ``raw`` is ``(K, d)`` encoder features, ``out`` ``(K, D)`` unit vectors; 0 when ``out``
    ranks every row's neighbours with the same softmax weights as ``raw``.
    """
    eye = torch.eye(len(raw), dtype=torch.bool, device=raw.device)
    r = F.normalize(raw, dim=-1)
    target = torch.softmax((r @ r.T / temperature).masked_fill(eye, float("-inf")), dim=1)
    logq = torch.log_softmax((out @ out.T / temperature).masked_fill(eye, float("-inf")), dim=1)
    logp = torch.log(target.clamp(min=1e-12))
    return (target * (logp - logq)).masked_fill(eye, 0.0).sum(dim=1).mean()


def contrastive_loss(
    layer: FusionLayer,
    bridged: torch.Tensor,
    raw: dict[str, torch.Tensor],
    mask: torch.Tensor,
    temperature: float,
    dropout: float,
    generator: torch.Generator | None = None,
    structure_weight: float = 0.0,
    structure_fused: bool = False,
    pair_weights: tuple[tuple[str, float], ...] = (),
) -> torch.Tensor:
    """The training loss of one batch (see the module docstring)."""
    terms: list[torch.Tensor] = []
    term_weights: list[float] = []
    pw = dict(pair_weights)
    structure: list[torch.Tensor] = []
    full = layer(bridged, raw, mask)
    tokens = full.tokens
    m = len(MODALITIES)
    for i in range(m):
        for j in range(i + 1, m):
            both = mask[:, i] & mask[:, j]
            if int(both.sum()) >= 2:
                terms.append(_info_nce(tokens[both, i], tokens[both, j], temperature))
                term_weights.append(float(pw.get(f"{MODALITIES[i]}-{MODALITIES[j]}", 1.0)))

    # modality dropout: hide modalities at random, keeping at least one per item
    keep = torch.rand(mask.shape, generator=generator, device="cpu").to(mask.device) >= dropout
    keep &= mask
    empty = ~keep.any(dim=1)
    if bool(empty.any()):
        first = mask.float().argmax(dim=1)
        keep[empty, first[empty]] = True
    target = layer(bridged, raw, keep).fused
    multi = mask.sum(dim=1) >= 2
    for i in range(m):
        sel = mask[:, i] & multi
        if int(sel.sum()) < 2:
            continue
        only = torch.zeros_like(mask)
        only[:, i] = True
        single = layer(bridged[sel], {k: v[sel] for k, v in raw.items()}, only[sel]).fused
        terms.append(_info_nce(single, target[sel], temperature))
        term_weights.append(1.0)
        feat = raw.get(MODALITIES[i])
        if structure_weight > 0 and feat is not None and feat.shape[1] > 0 and int(sel.sum()) >= 3:
            structure.append(_structure_kl(feat[sel], single, temperature))
            structure.append(_structure_kl(feat[sel], tokens[sel, i], temperature))
            if structure_fused:
                structure.append(_structure_kl(feat[sel], full.fused[sel], temperature))
    if not terms:
        return torch.zeros((), device=bridged.device, requires_grad=True)
    if pw:
        w = torch.tensor(term_weights, device=bridged.device)
        loss = (torch.stack(terms) * w).sum() / w.sum()
    else:
        loss = torch.stack(terms).mean()
    if structure:
        loss = loss + structure_weight * torch.stack(structure).mean()
    return loss


@torch.no_grad()
def init_skip_pca(layer: FusionLayer, data: FusionData, scale: float = 1.0) -> FusionLayer:
    """Set each head's raw-feature ``skip`` to the projection onto the features' principal subspace.

    For modality ``m`` with features ``X`` ``(N_m, d_m)`` (the items that have it), the skip becomes
    ``x ↦ scale · P (x − μ) / s`` with ``P`` ``(D, d_m)`` the top ``D`` principal directions and ``s`` the
    mean norm of the centred features, so a token starts as the bridged vector plus a unit-sized
    copy of the encoder feature's principal components: cosine neighbourhoods of the encoder
    features survive the projection into the ``D``-dimensional space (what the structure term
    then keeps), instead of having to be learnt from zero. Returns ``layer`` (changed in place);
    heads without a skip are left alone.
    """
    heads = getattr(layer, "heads", None)
    for i, m in enumerate(MODALITIES):
        skip = getattr(heads[m], "skip", None) if heads is not None and m in heads else None
        if skip is None:
            continue
        x = data.raw[m][data.mask[:, i]].astype(np.float64)
        if len(x) < 2:
            continue
        mu = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - mu, full_matrices=False)
        p = np.zeros((skip.out_features, x.shape[1]))
        k = min(len(vt), skip.out_features)
        p[:k] = vt[:k]
        s = float(np.linalg.norm(x - mu, axis=1).mean()) or 1.0
        w = scale * p / s
        skip.weight.copy_(torch.from_numpy(w).to(skip.weight))
        skip.bias.copy_(torch.from_numpy(-w @ mu).to(skip.bias))
    return layer


@torch.no_grad()
def evaluate_loss(layer: FusionLayer, data: FusionData, config: TrainConfig, device: torch.device) -> float:
    """Held-out loss with a fixed dropout pattern (same seed every call), averaged over batches."""
    layer.eval()
    gen = torch.Generator().manual_seed(config.seed + 1)
    losses, weights = [], []
    for start in range(0, len(data), config.batch_size):
        part = data.subset(np.arange(start, min(start + config.batch_size, len(data))))
        b, r, mk = part.tensors(device)
        losses.append(
            float(
                contrastive_loss(
                    layer,
                    b,
                    r,
                    mk,
                    config.temperature,
                    config.modality_dropout,
                    gen,
                    config.structure_weight,
                    config.structure_fused,
                    config.pair_weights,
                )
            )
        )
        weights.append(len(part))
    return float(np.average(losses, weights=weights)) if losses else float("nan")


def _param_groups(model: FusionLayer, config: TrainConfig) -> list[dict]:
    """AdamW groups: the parameters matched by ``config.param_groups`` (first match), then the rest."""
    groups: list[dict] = [
        {"params": [], "lr": config.lr * scale, "weight_decay": decay} for _, scale, decay in config.param_groups
    ]
    rest: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        hit = next((g for g, (sub, _, _) in zip(groups, config.param_groups, strict=True) if sub in name), None)
        (hit["params"] if hit is not None else rest).append(p)
    return [g for g in groups if g["params"]] + ([{"params": rest}] if rest else [])


def train_fusion(
    layer: FusionLayer,
    data: FusionData,
    config: TrainConfig | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``layer`` (a copy; the input is not modified) on ``data``.

    Parameters
    ----------
    layer : FusionLayer
    data : FusionData
        ``N`` items; ``config.val_fraction`` of them (seeded draw) are held out.
    config : TrainConfig, optional
    log : callable, optional
        One line per epoch.

    Returns
    -------
    TrainResult
        ``layer`` is the best epoch's layer, or an untrained copy when
        training never beat it on the held-out items (``improved`` False).
    """
    config = config or TrainConfig()
    if len(data) < config.small_catalog:
        config = replace(config, lr=config.small_lr, val_fraction=max(config.val_fraction, config.small_val_fraction))
    device = resolve_device(config.device)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(data))
    n_val = max(1, int(round(len(data) * config.val_fraction)))
    val, train = data.subset(np.sort(order[:n_val])), data.subset(np.sort(order[n_val:]))

    untrained = copy.deepcopy(layer).to(device)
    model = copy.deepcopy(layer).to(device)
    for name, p in model.named_parameters():
        if any(f in name for f in config.frozen):
            p.requires_grad_(False)
    t0 = time.perf_counter()
    best_loss = evaluate_loss(untrained, val, config, device)
    untrained_loss = best_loss
    history = [{"epoch": 0, "val_loss": best_loss}]
    if not model.trainable:
        return TrainResult(
            untrained.cpu().eval(), False, 0, 0.0, len(train), len(val), untrained_loss, untrained_loss, history
        )

    opt = torch.optim.AdamW(_param_groups(model, config), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    tb, tr, tm = train.tensors(device)

    def train_epoch(epoch: int) -> float:
        model.train()
        perm = torch.randperm(len(train), generator=gen)
        total = 0.0
        for start in range(0, len(train), config.batch_size):
            idx = perm[start : start + config.batch_size].to(device)
            if len(idx) < 2:
                continue
            loss = contrastive_loss(
                model,
                tb[idx],
                {k: v[idx] for k, v in tr.items()},
                tm[idx],
                config.temperature,
                config.modality_dropout,
                gen,
                config.structure_weight,
                config.structure_fused,
                config.pair_weights,
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        return total / max(len(train), 1)

    trainer = Trainer(
        epochs=config.epochs,
        patience=config.patience,
        lower_is_better=True,
        # Noise-level gains on the held-out loss do not count as improvements.
        min_delta=1e-4,
        loss_key="train_loss",
        score_key="val_loss",
        log=log,
        message=lambda epoch, loss, score: f"epoch {epoch:3d}  train {loss:.4f}  held-out {score:.4f}",
    )
    # The untrained loss is the score to beat: a layer that never beats it is not returned.
    fit = trainer.fit(
        model, train_epoch, lambda: evaluate_loss(model, val, config, device), baseline=best_loss, history=history
    )
    improved, epochs, best_loss = fit.improved, fit.epochs, fit.best_score
    final = model if improved else untrained
    for p in final.parameters():  # frozen for this run only: a later fine-tuning decides for itself
        p.requires_grad_(True)
    return TrainResult(
        final.cpu().eval(),
        improved,
        epochs,
        time.perf_counter() - t0,
        len(train),
        len(val),
        untrained_loss,
        best_loss,
        history,
    )


@torch.no_grad()
def average_layers(layers: list[FusionLayer]) -> FusionLayer:
    """The uniform weight average of layers trained from the same start (a "model soup").

    Wortsman et al., "Model soups" (ICML 2022): layers fine-tuned from one initialisation with
    different seeds (batch order, dropout) lie in one basin, and their mean weights generalise
    at least as well as one of them, at the cost of a single layer. Only meaningful for layers
    of one class and config that started from the same weights.

    Raises
    ------
    ValueError
        No layers, or layers of different classes or parameter names/shapes.
    """
    if not layers:
        raise ValueError("average_layers needs at least one layer")
    states = [layer.state_dict() for layer in layers]
    first = states[0]
    for layer, state in zip(layers[1:], states[1:], strict=True):
        if type(layer) is not type(layers[0]) or {k: v.shape for k, v in state.items()} != {
            k: v.shape for k, v in first.items()
        }:
            raise ValueError(
                f"cannot average a {type(layer).__name__} with a {type(layers[0]).__name__} of another shape"
            )
    out = copy.deepcopy(layers[0])
    out.load_state_dict(
        {k: torch.stack([s[k].float() for s in states]).mean(dim=0).to(v.dtype) for k, v in first.items()}
    )
    return out.eval()
