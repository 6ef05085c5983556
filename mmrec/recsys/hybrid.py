"""The trained hybrid recommender: a sequence user tower over a content-plus-ID item tower.

Item tower (``HybridConfig.item_tower``)
    ``"residual"`` (default): ``e_i = W · content_i + r_i``, a learned projection of the
    item's frozen content vector (fused, or the column chosen on validation:
    :mod:`mmrec.recsys.content_choice`) plus a trainable item-ID residual ``r_i`` that starts
    at zero (frozen content + small trainable delta beats both freezing and fine-tuning,
    arXiv 2507.19473). An item nobody has touched (new, or held out) keeps ``r_i = 0``
    and is scored by its content alone, which is what makes cold-start items
    recommendable. ``"gated"``: the previous tower, ``W · content_i + g_i · id_i`` with
    ``g_i = sigmoid(a · log(1 + n_i) + b)`` (kept so old checkpoints load and for the
    benchmark's before/after runs). ``"id"``: ID embeddings only, i.e. SASRec
    (:class:`mmrec.recsys.sasrec.SASRec`, the baseline the hybrid must beat).

User tower
    SASRec-like: the item-tower vectors of the user's latest ``max_len`` positive
    items plus learned position embeddings go through causal self-attention
    blocks; the output at the last position is the user vector. Order and
    recency matter, which doubles the best matrix factorisation on MovieLens
    (see ../shared/notes/anchors.md).

Training
    Next-item prediction at every position of every training sequence with a
    full softmax over the items seen in training (sampled softmax over ``n_negatives``
    random items beyond ``full_softmax_max_items``), Adam — the residual tower's ID table at 5x the
    learning rate of the rest (``id_lr_scale``: its rows start at zero and have to grow past the content
    projection; at 1x the hybrid lost to SASRec on rarely seen items) —, dropout, early stopping on
    the validation split's NDCG@10 (checked every epoch; ``patience`` epochs without a better one stop
    it), within ``time_budget_s`` of wall time; the weights kept are the average of the ``average_best``
    (5) best-validated epochs'.
    The window ``max_len`` is derived from the training histories (:func:`auto_max_len`) unless given.
    CPU-friendly; uses a GPU when there is one. What ``mmrec train`` and the evaluation harness fit as the
    hybrid is an ensemble of ``members`` such fits from different seeds (:mod:`mmrec.recsys.hybrid_ensemble`).

Speed (measured by ``benchmarks/movielens_hybrid_speed.py``, CPU time per epoch): attention
runs through ``F.scaled_dot_product_attention`` with one ``(B, 1, L, L)`` mask (no per-head
copy) and without dropout on the attention probabilities (``attn_dropout``: at 200 positions
those random numbers cost as much as the rest of the tower's forward pass); the training
windows are sorted by length and cut into batches of about ``batch_tokens`` positions, so
short histories do not pay for padding and every step costs about the same; the step only
projects and scores the items seen in training; validation ranks the users in one batch, and scoring
(validation, serving, explanations) runs the top block for the newest position only — the user
vector is all it needs — which halves a validation pass (4.6 → 2.3 CPU-s on ML-100k, 1 thread);
dropout masks come from ``rand_like`` instead of ``bernoulli_`` (:class:`_Dropout`: the same
distribution, half the cost forward + backward; it was 19 % of an epoch). The full softmax over ~1.6k warm
items — its matrix products, log-softmax and their backward, about half of an epoch on ML-100k
(``benchmarks/movielens_hybrid_profile.py``) — runs fused with its gradient in blocks of rows
(:mod:`mmrec.recsys.fused_softmax`): training epochs 1.42x faster on a 2-core AVX2 EPYC, 1.18x on an AVX-512
one, where the log-softmax was already cheaper (2 threads, ``movielens_hybrid_speed.py``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fusion.trainer import Trainer
from mmrec.recsys.data import InteractionData
from mmrec.recsys.fused_softmax import linear_cross_entropy
from mmrec.recsys.metrics import rank_metrics
from mmrec.recsys.seen_mask import SeenMask


@dataclass(frozen=True)
class HybridConfig:
    dim: int = 64
    #: Newest positives the user tower reads. None: derived from the training histories
    #: (their 90th-percentile length, clipped to 10…50, see :func:`auto_max_len`), so a data set
    #: with long histories gets a long window and one with short ones does not pay for padding.
    max_len: int | None = None
    blocks: int = 2
    heads: int = 2
    dropout: float = 0.3
    #: Dropout on the attention probabilities: ``(B, heads, L, L)`` random numbers per block, which at
    #: ``max_len`` 200 cost more than the rest of the tower's forward pass (measured, CPU); off by default.
    attn_dropout: float = 0.0
    lr: float = 2e-3
    weight_decay: float = 0.0
    #: Windows per step at most; ``batch_tokens`` (predicted positions per step) is the real bound.
    batch_size: int = 128
    #: Positions (window length x windows) per optimiser step: long windows make small batches,
    #: short ones large, so every step costs about the same and an epoch has enough steps.
    batch_tokens: int = 2048
    epochs: int = 60
    #: Validations without a better validation NDCG@10 before stopping (one every ``eval_every`` epochs).
    #: 12, not 4: validation NDCG@10 on a few hundred users jumps by ±5 % between epochs while the model still
    #: improves slowly, and 4 stopped seeds 0 and 2 at epochs 13 and 11 where 12 ran to 33 / 46. Decided one step
    #: back in time (``benchmarks/README.md``, issue 11 eighth pass): test NDCG@10 of seeds 0–2 rose 7 / 3 / 6 %
    #: (patience 8: 7 / 3 / −1 %). The cost is epochs: 60–90 s instead of 20–60 s per ML-100k fit (2 cores, AVX-512).
    patience: int = 12
    #: Judge the early stop on ``s = (1 - w) · NDCG@10 + w · s_previous`` with ``w`` this (0: off, the
    #: raw score; ``fusion.trainer.Trainer.smooth``). Measured, left off (``benchmarks/README.md``, issue 11
    #: fifth pass): 0.3 with patience 3 keeps the hybrid's epochs of seeds 0–2 (9 / 11 / 19, the same
    #: weights) one epoch sooner, but moves SASRec's (seed 1: validation 0.1095 → 0.1062).
    smooth_validation: float = 0.0
    eval_every: int = 1
    full_softmax_max_items: int = 100_000
    n_negatives: int = 2048
    seed: int = 0
    device: str = "auto"
    #: ``"residual"`` (content projection + ID residual), ``"gated"`` (the previous tower) or ``"id"`` (SASRec).
    item_tower: str = "residual"
    #: Stop after the first epoch that ends past this many seconds of training (None: no limit).
    time_budget_s: float | None = None
    #: Learning rate of the item-ID table relative to ``lr``; None: :data:`ID_LR_SCALE` of the item tower
    #: (5 for ``"residual"``, 1 for ``"id"`` and ``"gated"``). The residual tower's ID rows start at zero and
    #: must grow into what the content projection misses: at ``lr`` they stay small for the whole fit, and
    #: items whose content resembles more popular ones lose to them (``benchmarks/README.md``, issue 11
    #: sixth pass: ×5 raised validation NDCG@10 on seeds 0–2; for SASRec, whose IDs start random, ×5
    #: lowered it on two of three seeds and made its early stop erratic).
    id_lr_scale: float | None = None
    #: Keep the average of the weights of this many best-validated epochs (1: the best epoch's alone;
    #: ``fusion.trainer.Trainer.average_best``). Measured one step back in time (the protocol applied to the
    #: training part, so neither the validation nor the test split decides): the average of the 5 best
    #: epochs ranked the next item better than the best epoch on seeds 0–2, by 2–7 % (``benchmarks/README.md``,
    #: issue 11 seventh pass) — the best epoch is the luckiest of many noisy validations, the average a point
    #: of the same run that generalises better. No cost at scoring time.
    average_best: int = 5
    #: Fits from different seeds whose per-user standardised scores the hybrid candidate averages
    #: (:class:`~mmrec.recsys.hybrid_ensemble.HybridEnsemble`; 1: one fit). Measured (``benchmarks/README.md``,
    #: issue 11 eleventh pass): on ML-100k every pair of seeds 0–2 ranked the validation targets better than its
    #: two members' mean (+2.5 / +3.2 / +4.3 %), and 2 against 1 raised validation / test NDCG@10 by 1.6 % (means
    #: over seeds 0–2; over every pair of six seeds' fits, thirteenth pass: test +3.8 %, 0.1068 → 0.1109) — for
    #: 1.5–1.6x the fit time on 2 cores (members side by side on a core each; with the fused softmax, thirteenth
    #: pass, on an AVX-512 EPYC: 167.9 / 115.2 / 116.2 s against 60.3 / 87.5 / 78.7 s, before it on an AVX2 one
    #: median 189.5 s against 118.8 s): within the 120 s budget on two seeds of three on the first, past it on the
    #: second; one fit meets it on both.
    #: So 1 by default; ``mmrec train --members 2`` where quality is worth the time.
    #: :class:`~mmrec.recsys.hybrid.HybridRecommender` and SASRec are one fit whatever this says.
    members: int = 1
    #: Leave the items a position has already seen (earlier in the user's history) out of its softmax,
    #: as serving and the evaluation do (:mod:`mmrec.recsys.seen_mask`).
    mask_seen: bool = False


def auto_max_len(lengths: np.ndarray, low: int = 10, high: int = 50) -> int:
    """The user tower's window for histories of these ``lengths``: their 90th percentile, clipped.

    Parameters
    ----------
    lengths : np.ndarray
        ``(n_users,)`` positives per training user.
    low, high : int
        Bounds: below ``low`` the attention has nothing to learn from; above ``high`` a step
        costs more than the extra context is worth. Measured on MovieLens-100k (p90 above 200;
        validation only, seed 0, 1 thread, both validated with dropout still on, as the trainer
        did until then): a 50-position window reached valid NDCG@10 0.1016 (epoch 12, 121 CPU-s)
        against 0.0985 for 200 positions (epoch 13, 232 CPU-s) — the
        newest 50 items carry what the next one depends on, and the step and the validation
        pass cost about half.

    Returns
    -------
    int
        A multiple of 10 in ``[low, high]``.
    """
    if not len(lengths):
        return low
    p90 = float(np.percentile(lengths, 90))
    return int(min(high, max(low, 10 * math.ceil(p90 / 10))))


ITEM_TOWERS = ("residual", "gated", "id")
#: The ID table's learning-rate multiple per item tower when ``HybridConfig.id_lr_scale`` is None.
ID_LR_SCALE = {"residual": 5.0, "gated": 1.0, "id": 1.0}


class _Dropout(nn.Module):
    """Inverted dropout from ``torch.rand`` draws: the same distribution as :class:`nn.Dropout`, cheaper on CPU.

    ``nn.Dropout`` draws its mask with ``bernoulli_``, which on CPU costs about 3x ``rand_like``
    plus a comparison (measured: 5.6 vs 1.8 ms for a ``(2048, 128)`` float tensor, 2 threads); with
    seven dropouts a step it was 19 % of a training epoch (``benchmarks/movielens_hybrid_profile.py``).
    No parameters, so a checkpoint's keys are those of ``nn.Dropout``'s modules.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0.0:
            return x
        # One float mask carrying the 1 / (1 - p) scale: a single multiply forward and backward.
        return x * ((torch.rand_like(x) >= self.p).to(x.dtype) * (1.0 / (1.0 - self.p)))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=attn_dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(), _Dropout(dropout), nn.Linear(dim * 2, dim))
        self.drop = _Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """``x`` ``(B, L, d)``; ``allowed`` ``(B, 1, L, L)`` bool, True where a position may attend.

        ``last_only``: compute the output of the last position alone, ``(B, 1, d)`` (it still
        attends to every position): what scoring needs from the top block, at a fraction of the cost.
        """
        h = self.norm1(x)
        b, length, d = h.shape
        heads = self.attn.num_heads
        # The weights stay in nn.MultiheadAttention (so checkpoints keep their keys), but the product runs
        # in scaled_dot_product_attention: one mask broadcast over the heads instead of a copy per head.
        w, bias = self.attn.in_proj_weight, self.attn.in_proj_bias
        if last_only:
            q = F.linear(h[:, -1:], w[:d], bias[:d]).view(b, 1, heads, d // heads).transpose(1, 2)
            kv = F.linear(h, w[d:], bias[d:])
            k, v = kv.view(b, length, 2, heads, d // heads).permute(2, 0, 3, 1, 4)
            x, allowed, length = x[:, -1:], allowed[:, :, -1:], 1
        else:
            qkv = F.linear(h, w, bias)
            q, k, v = qkv.view(b, length, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        p = self.attn.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)
        a = self.attn.out_proj(a.transpose(1, 2).reshape(b, length, d))
        x = x + self.drop(a)
        return x + self.drop(self.ff(self.norm2(x)))


class HybridModel(nn.Module):
    """Both towers. Item index 0 is padding; catalog item ``i`` is row ``i + 1``."""

    def __init__(self, n_items: int, content_dim: int, config: HybridConfig) -> None:
        super().__init__()
        d = config.dim
        if config.max_len is None:
            raise ValueError("HybridModel needs a resolved max_len (HybridRecommender.fit derives it)")
        if config.item_tower not in ITEM_TOWERS:
            raise ValueError(f"unknown item_tower {config.item_tower!r}; valid: {', '.join(ITEM_TOWERS)}")
        self.config = config
        self.content = nn.Linear(content_dim, d)
        self.ids = nn.Embedding(n_items + 1, d, padding_idx=0)
        if config.item_tower == "residual":
            # The residual starts at zero: every item begins as its content, and an item that never
            # gets a gradient (cold) stays exactly its content projection.
            nn.init.zeros_(self.ids.weight)
        else:
            nn.init.normal_(self.ids.weight, std=0.02)
        if config.item_tower == "gated":
            self.gate_a = nn.Parameter(torch.tensor(1.0))
            self.gate_b = nn.Parameter(torch.tensor(-1.0))
        self.pos = nn.Embedding(config.max_len, d)
        self.blocks = nn.ModuleList(
            _Block(d, config.heads, config.dropout, config.attn_dropout) for _ in range(config.blocks)
        )
        self.norm = nn.LayerNorm(d)
        self.drop = _Dropout(config.dropout)
        self.register_buffer("content_vectors", torch.zeros(n_items + 1, content_dim), persistent=True)
        self.register_buffer("log_counts", torch.zeros(n_items + 1), persistent=True)

    def item_table(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """``(n_items + 1, d)`` item-tower vectors (row 0: padding), or only those of ``rows``."""
        tower = self.config.item_tower
        ids = self.ids.weight if rows is None else self.ids(rows)
        if tower == "id":
            return ids
        content = self.content_vectors if rows is None else self.content_vectors[rows]
        if tower == "gated":
            counts = self.log_counts if rows is None else self.log_counts[rows]
            gate = torch.sigmoid(self.gate_a * counts + self.gate_b).unsqueeze(-1)
            return self.content(content) + gate * ids
        return self.content(content) + ids

    def content_rows(self, content: torch.Tensor) -> torch.Tensor:
        """Item-tower vectors of items the model never saw: ``(n, D)`` content → ``(n, d)``."""
        if self.config.item_tower == "id":
            # An ID-only model knows nothing about a new item: a zero vector scores 0 against every user.
            return torch.zeros(len(content), self.config.dim, device=content.device)
        return self.content(content)

    def user_vectors(self, seqs: torch.Tensor, table: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """``seqs`` ``(B, L)`` left-padded item rows → ``(B, L, d)`` hidden states (causal).

        ``last_only``: only the newest position's state, ``(B, 1, d)`` — the user vector — with the
        top block run for that position alone (the same values; scoring and validation use it).
        """
        b, length = seqs.shape
        pad = seqs == 0
        keep = (~pad).unsqueeze(-1)
        # Positions are counted from the newest item (right-aligned), so a batch trimmed to its longest
        # sequence gives the same result as one padded to max_len.
        start = int(self.config.max_len) - length  # type: ignore[arg-type]
        x = table[seqs] * keep * math.sqrt(self.config.dim) + self.pos(
            torch.arange(start, start + length, device=seqs.device)
        ).unsqueeze(0)
        x = self.drop(x) * keep
        # No attending to the future or to padding; every position may attend to itself, so no
        # row of the mask is all blocked (that would give NaN for the padded prefix).
        causal = torch.tril(torch.ones(length, length, dtype=torch.bool, device=seqs.device))
        allowed = causal.unsqueeze(0) & ~pad.unsqueeze(1)
        diag = torch.arange(length, device=seqs.device)
        allowed[:, diag, diag] = True
        allowed = allowed.unsqueeze(1)
        # Real positions never attend to padding, so what the padded positions hold between blocks cannot
        # reach them: no re-masking per block (their outputs are ignored by the loss and by scoring).
        for n, block in enumerate(self.blocks):
            x = block(x, allowed, last_only=last_only and n == len(self.blocks) - 1)
        return self.norm(x)


def _left_pad(seq: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros(length, np.int64)
    tail = seq[-length:] + 1
    if len(tail):
        out[-len(tail) :] = tail
    return out


class HybridRecommender:
    """:class:`mmrec.recsys.Recommender` implementation of the hybrid (see the module docstring)."""

    name = "Hybrid"

    def __init__(self, config: HybridConfig | None = None) -> None:
        self.config = config or HybridConfig()
        self.model: HybridModel | None = None
        self.history: list[dict[str, float]] = []
        self.seconds = 0.0
        self.best_epoch = 0
        self.averaged_epochs: list[int] = []

    def _device(self) -> torch.device:
        if self.config.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.config.device)

    # ----------------------------------------------------------------- training

    def fit(
        self,
        train: InteractionData,
        valid: InteractionData | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        """Train both towers on ``train``'s sequences, early-stopping on ``valid``'s NDCG@10.

        Parameters
        ----------
        train : InteractionData
            Positive interactions in time order per user; users with fewer than 2 are skipped.
        valid : InteractionData, optional
            Held-out next interactions (validated every ``eval_every`` epochs and after the
            last); the best validated weights are kept. None or empty: all epochs run.
        log : callable, optional
            One line per validation.
        """
        cfg = self.config
        seqs = [s for s in train.sequences() if len(s) >= 2]
        if cfg.max_len is None:
            cfg = self.config = replace(cfg, max_len=auto_max_len(np.array([len(s) for s in seqs])))
        max_len = int(cfg.max_len)  # type: ignore[arg-type]
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        device = self._device()
        counts = train.counts_per_item()  # positives per item: warm rows, the gate's counts, untouched rows
        model = HybridModel(train.n_items, train.item_vectors.shape[1], cfg).to(device)
        model.content_vectors[1:] = torch.from_numpy(train.item_vectors.astype(np.float32)).to(device)
        model.log_counts[1:] = torch.from_numpy(np.log1p(counts).astype(np.float32)).to(device)
        with torch.no_grad():
            # Rows of items nobody touched never get a gradient (they are outside the softmax): zero them, so an
            # ID-only model scores such an item 0, as it does an item ingested after training (content_rows),
            # instead of by its random initial row.
            model.ids.weight[1:][torch.from_numpy(counts == 0).to(device)] = 0.0
        # Every training sequence of length > max_len is cut into windows so no history is wasted.
        windows, before = [], []
        for s in seqs:
            for end in range(len(s), 1, -max_len):
                windows.append(s[max(0, end - max_len - 1) : end])
                before.append(s[: max(0, end - max_len - 1)])
        # Training sees only items someone touched ("warm"); the step works in that compact index
        # space (0: padding, 1..W: warm rows). Items nobody touched carry no signal as negatives:
        # pushing them down would only teach the content projection that "cold" means "bad", so
        # they are out of the softmax, and the step does not pay for their projection either.
        warm = np.flatnonzero(counts > 0)
        compact = np.zeros(train.n_items + 1, np.int64)
        compact[warm + 1] = np.arange(1, len(warm) + 1)
        rows = torch.from_numpy(np.r_[0, warm + 1]).to(device)
        inputs = compact[np.stack([_left_pad(w[:-1], max_len) for w in windows])]
        targets = compact[np.stack([_left_pad(w[1:], max_len) for w in windows])]
        lengths = np.array([len(w) - 1 for w in windows])
        x_all = torch.from_numpy(inputs).to(device)
        y_all = torch.from_numpy(targets).to(device)
        # fused: one kernel for the whole parameter list instead of a dozen small ops per tensor.
        others = [p for name, p in model.named_parameters() if name != "ids.weight"]
        id_scale = ID_LR_SCALE[cfg.item_tower] if cfg.id_lr_scale is None else cfg.id_lr_scale
        groups = [{"params": others}, {"params": [model.ids.weight], "lr": cfg.lr * id_scale}]
        opt = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        full = len(warm) <= cfg.full_softmax_max_items
        seen_mask = SeenMask([compact[p + 1] for p in before], len(warm) + 1) if cfg.mask_seen else None
        self.model = model

        def batches() -> list[np.ndarray]:
            # Windows of similar length share a batch, trimmed to its longest window: short histories
            # do not pay for max_len padded positions. A batch holds about batch_tokens positions
            # (fewer long windows, more short ones), so every step costs about the same. Batches are
            # shuffled, and so is the order inside each length (a stable sort of a random permutation).
            perm = rng.permutation(len(windows))
            perm = perm[np.argsort(lengths[perm], kind="stable")]
            out, i = [], 0
            while i < len(perm):
                # Sorted by length, so the window at the batch's far end is its longest.
                n = max(1, min(cfg.batch_size, cfg.batch_tokens // int(lengths[perm[i]])))
                while n > 1 and n * int(lengths[perm[min(i + n, len(perm)) - 1]]) > cfg.batch_tokens:
                    n -= 1
                out.append(perm[i : i + n])
                i += n
            return [out[i] for i in rng.permutation(len(out))]

        def train_epoch(epoch: int) -> float:
            model.train()
            total, count = 0.0, 0
            for idx_np in batches():
                idx = torch.from_numpy(idx_np).to(device)
                width = int(lengths[idx_np].max())
                x, y = x_all[idx, -width:], y_all[idx, -width:]
                table = model.item_table(rows)
                h = model.user_vectors(x, table)
                mask = y > 0
                hs, ys = h[mask], y[mask]
                if full:
                    # The full softmax over the warm catalog, fused with its gradient (mmrec.recsys.fused_softmax).
                    excluded = None if seen_mask is None else seen_mask.excluded(idx_np, x, y)
                    loss = linear_cross_entropy(hs, table[1:], ys - 1, excluded=excluded)
                else:
                    neg = torch.randint(1, len(warm) + 1, (cfg.n_negatives,), device=device)
                    cand = torch.cat([ys, neg])
                    logits = hs @ table[cand].T
                    target = torch.arange(len(ys), device=device)
                    if seen_mask is not None:
                        seen = seen_mask.excluded_candidates(idx_np, x, y, cand)
                        logits = logits.masked_fill(seen, float("-inf"))
                    loss = F.cross_entropy(logits, target)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(ys)
                count += len(ys)
            return total / max(count, 1)

        trainer = Trainer(
            epochs=cfg.epochs,
            patience=cfg.patience,
            validate_every=cfg.eval_every,
            loss_key="loss",
            score_key="valid_ndcg@10",
            log=log,
            message=lambda epoch, loss, score: f"epoch {epoch:3d}  loss {loss:.4f}  valid NDCG@10 {score:.4f}",
            max_seconds=cfg.time_budget_s,
            smooth=cfg.smooth_validation,
            average_best=cfg.average_best,
        )
        # Without validation data every epoch runs and the last one is kept.
        validate = None
        if valid is not None and len(valid):
            # Validation targets nobody touched in training (the item cold-start protocol) are ranked
            # among the untouched items, as they will be at test time: among all items every warm item
            # outranks them, and the early stop would keep epoch 1 whatever the model learns.
            targets = valid.items[valid.weights > 0]
            cold = counts == 0
            cands = np.flatnonzero(cold) if len(targets) and cold[targets].all() else None
            validate = partial(self._validation_ndcg, train, valid, candidates=cands)
        # Appends to self.history, which is never reset: a second fit adds its records after the first's.
        result = trainer.fit(model, train_epoch, validate, history=self.history)
        model.eval()
        self.seconds = result.seconds
        self.best_epoch = result.best_epoch  # the best validated epoch (0: no validation improved or none ran)
        self.averaged_epochs = result.averaged_epochs  # the kept weights are their average (none: the best's)

    def _validation_ndcg(
        self, train: InteractionData, valid: InteractionData, k: int = 10, candidates: np.ndarray | None = None
    ) -> float:
        """NDCG@k of the held-out next items, ranked by the evaluation harness (all items, seen ones masked).

        In eval mode: the trainer validates between epochs, with the model still in train mode, and
        scores with dropout on are a noisy, lower estimate that makes the early stop pick at random.
        """
        assert self.model is not None
        was_training = self.model.training
        self.model.eval()
        try:
            return rank_metrics(self, train, valid, candidates, kmax=k, batch=1024, ties="index").at("ndcg", k)
        finally:
            self.model.train(was_training)

    # ----------------------------------------------------------------- scoring

    @torch.no_grad()
    def score(self, users: np.ndarray, history: InteractionData) -> np.ndarray:
        """``(B, n_items)`` scores from the users' latest positive items in ``history``."""
        if self.model is None:
            raise RuntimeError("HybridRecommender.score before fit")
        seqs = history.sequences()
        return self.score_sequences([seqs[int(u)] for u in users])

    @torch.no_grad()
    def score_sequences(self, sequences: list[np.ndarray], table: torch.Tensor | None = None) -> np.ndarray:
        """Scores for item-index sequences (newest last): ``(B, n_items)``.

        ``table`` ``(n + 1, d)`` replaces the model's item table, e.g. extended with items
        ingested after training (see :meth:`extended_table`); indices then refer to it.
        """
        model = self.model
        assert model is not None
        device = next(model.parameters()).device
        table = model.item_table() if table is None else table
        out = []
        for start in range(0, len(sequences), 1024):
            part = sequences[start : start + 1024]
            width = max(1, min(int(self.config.max_len or 1), max(len(s) for s in part)))
            x = torch.from_numpy(np.stack([_left_pad(np.asarray(s, np.int64), width) for s in part])).to(device)
            h = model.user_vectors(x, table, last_only=True)[:, -1]
            out.append((h @ table[1:].T).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, table.shape[0] - 1), np.float32)

    @torch.no_grad()
    def extended_table(self, known: np.ndarray, content: np.ndarray) -> torch.Tensor:
        """An item table for a catalog that may have changed since training.

        Parameters
        ----------
        known : np.ndarray
            ``(n,)`` int64: each current item's index in the trained model, or -1 for an item
            the model has never seen (ingested after training).
        content : np.ndarray
            ``(n, D)`` current fused vectors; unseen items get the content projection only
            (their ID embedding is untrained and their interaction count zero).

        Returns
        -------
        torch.Tensor
            ``(n + 1, d)``; row 0 is padding.
        """
        model = self.model
        assert model is not None
        trained = model.item_table()
        new = model.content_rows(torch.from_numpy(np.asarray(content, np.float32)))
        known_t = torch.from_numpy(np.asarray(known, np.int64))
        # Unseen items have no trained ID embedding: their row is the content projection alone.
        rows = torch.where((known_t >= 0).unsqueeze(-1), trained[known_t.clamp(min=-1) + 1], new)
        return torch.cat([trained[:1], rows])

    @property
    def content_dim(self) -> int:
        """Width ``D`` of the content vectors the item tower projects."""
        if self.model is None:
            raise RuntimeError("HybridRecommender.content_dim before fit")
        return int(self.model.content_vectors.shape[1])

    # ----------------------------------------------------------------- persistence

    def to_bytes(self, item_ids: list[str]) -> bytes:
        assert self.model is not None
        buf = io.BytesIO()
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        torch.save({"config": asdict(self.config), "state": state, "item_ids": item_ids}, buf)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> tuple[HybridRecommender, list[str]]:
        return cls.from_blob(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))

    @classmethod
    def from_blob(cls, blob: dict) -> tuple[HybridRecommender, list[str]]:
        """:meth:`from_bytes` of an already loaded checkpoint dict."""
        # Checkpoints from before item_tower existed hold the gated tower.
        config = {"item_tower": "gated", **blob["config"], "device": "cpu"}
        known = set(HybridConfig.__dataclass_fields__)
        rec = cls(HybridConfig(**{k: v for k, v in config.items() if k in known}))
        state = blob["state"]
        n_items = state["ids.weight"].shape[0] - 1
        rec.model = HybridModel(n_items, state["content_vectors"].shape[1], rec.config)
        rec.model.load_state_dict(state)
        rec.model.eval()
        return rec, list(blob["item_ids"])
