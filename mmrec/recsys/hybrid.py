"""The trained hybrid recommender: a sequence user tower over a content-plus-ID item tower.

Item tower (``HybridConfig.item_tower``)
    ``"residual"`` (default): ``e_i = W · content_i + r_i``, a learned projection of the
    item's frozen fused content vector plus a trainable item-ID residual ``r_i`` that starts
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
    full softmax over the catalog (sampled softmax over ``n_negatives`` random
    items beyond ``full_softmax_max_items``), Adam, dropout, early stopping on
    the validation split's NDCG@10, within ``time_budget_s`` of wall time.
    CPU-friendly; uses a GPU when there is one.

Speed (measured by ``benchmarks/movielens_hybrid.py``): attention runs through
``F.scaled_dot_product_attention`` with one ``(B, 1, L, L)`` mask (no per-head copy), the
training windows are sorted into length buckets so short histories do not pay for 50
padded positions, and validation ranks the users in one batch.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fusion.trainer import Trainer
from mmrec.recsys.data import InteractionData
from mmrec.recsys.metrics import rank_metrics


@dataclass(frozen=True)
class HybridConfig:
    dim: int = 64
    max_len: int = 50
    blocks: int = 2
    heads: int = 2
    dropout: float = 0.3
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 60
    #: Epochs without a better validation NDCG@10 before stopping (checked every ``eval_every``).
    patience: int = 3
    eval_every: int = 5
    full_softmax_max_items: int = 100_000
    n_negatives: int = 2048
    seed: int = 0
    device: str = "auto"
    #: ``"residual"`` (content projection + ID residual), ``"gated"`` (the previous tower) or ``"id"`` (SASRec).
    item_tower: str = "residual"
    #: Stop after the first epoch that ends past this many seconds of training (None: no limit).
    time_budget_s: float | None = None


ITEM_TOWERS = ("residual", "gated", "id")


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim * 2, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, L, d)``; ``allowed`` ``(B, 1, L, L)`` bool, True where a position may attend."""
        h = self.norm1(x)
        b, length, d = h.shape
        heads = self.attn.num_heads
        # The weights stay in nn.MultiheadAttention (so checkpoints keep their keys), but the product runs
        # in scaled_dot_product_attention: one mask broadcast over the heads instead of a copy per head.
        qkv = F.linear(h, self.attn.in_proj_weight, self.attn.in_proj_bias)
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
        self.blocks = nn.ModuleList(_Block(d, config.heads, config.dropout) for _ in range(config.blocks))
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(config.dropout)
        self.register_buffer("content_vectors", torch.zeros(n_items + 1, content_dim), persistent=True)
        self.register_buffer("log_counts", torch.zeros(n_items + 1), persistent=True)

    def item_table(self) -> torch.Tensor:
        """``(n_items + 1, d)`` item-tower vectors (row 0: padding)."""
        tower = self.config.item_tower
        if tower == "id":
            return self.ids.weight
        if tower == "gated":
            gate = torch.sigmoid(self.gate_a * self.log_counts + self.gate_b).unsqueeze(-1)
            return self.content(self.content_vectors) + gate * self.ids.weight
        return self.content(self.content_vectors) + self.ids.weight

    def content_rows(self, content: torch.Tensor) -> torch.Tensor:
        """Item-tower vectors of items the model never saw: ``(n, D)`` content → ``(n, d)``."""
        if self.config.item_tower == "id":
            # An ID-only model knows nothing about a new item: a zero vector scores 0 against every user.
            return torch.zeros(len(content), self.config.dim, device=content.device)
        return self.content(content)

    def user_vectors(self, seqs: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """``seqs`` ``(B, L)`` left-padded item rows → ``(B, L, d)`` hidden states (causal)."""
        b, length = seqs.shape
        pad = seqs == 0
        keep = (~pad).unsqueeze(-1)
        # Positions are counted from the newest item (right-aligned), so a batch trimmed to its longest
        # sequence gives the same result as one padded to max_len.
        start = self.config.max_len - length
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
        for block in self.blocks:
            x = block(x, allowed)
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
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        device = self._device()
        model = HybridModel(train.n_items, train.item_vectors.shape[1], cfg).to(device)
        model.content_vectors[1:] = torch.from_numpy(train.item_vectors.astype(np.float32)).to(device)
        model.log_counts[1:] = torch.from_numpy(np.log1p(train.counts_per_item()).astype(np.float32)).to(device)
        seqs = [s for s in train.sequences() if len(s) >= 2]
        # Every training sequence of length > max_len is cut into windows so no history is wasted.
        windows = []
        for s in seqs:
            for end in range(len(s), 1, -cfg.max_len):
                windows.append(s[max(0, end - cfg.max_len - 1) : end])
        inputs = np.stack([_left_pad(w[:-1], cfg.max_len) for w in windows])
        targets = np.stack([_left_pad(w[1:], cfg.max_len) for w in windows])
        lengths = np.array([len(w) - 1 for w in windows])
        x_all = torch.from_numpy(inputs).to(device)
        y_all = torch.from_numpy(targets).to(device)
        # fused: one kernel for the whole parameter list instead of a dozen small ops per tensor.
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        full = train.n_items <= cfg.full_softmax_max_items
        # Items nobody touched in training carry no signal as negatives; pushing them down would only
        # teach the content projection that "cold" means "bad". Leave them out of the softmax.
        cold = torch.from_numpy(train.counts_per_item() == 0).to(device)
        self.model = model

        def batches() -> list[np.ndarray]:
            # Windows of similar length share a batch, trimmed to its longest window: short histories
            # do not pay for max_len padded positions. Batches are shuffled, and so is the order
            # inside each length (a stable sort of a random permutation).
            perm = rng.permutation(len(windows))
            perm = perm[np.argsort(lengths[perm], kind="stable")]
            out = [perm[i : i + cfg.batch_size] for i in range(0, len(perm), cfg.batch_size)]
            return [out[i] for i in rng.permutation(len(out))]

        def train_epoch(epoch: int) -> float:
            model.train()
            total = 0.0
            for idx_np in batches():
                idx = torch.from_numpy(idx_np).to(device)
                width = int(lengths[idx_np].max())
                x, y = x_all[idx, -width:], y_all[idx, -width:]
                table = model.item_table()
                h = model.user_vectors(x, table)
                mask = y > 0
                hs, ys = h[mask], y[mask]
                if full:
                    logits = (hs @ table[1:].T).masked_fill(cold, float("-inf"))
                    loss = F.cross_entropy(logits, ys - 1)
                else:
                    neg = torch.randint(1, train.n_items + 1, (cfg.n_negatives,), device=device)
                    cand = torch.cat([ys, neg])
                    logits = hs @ table[cand].T
                    loss = F.cross_entropy(logits, torch.arange(len(ys), device=device))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            return total / len(windows)

        trainer = Trainer(
            epochs=cfg.epochs,
            patience=cfg.patience,
            validate_every=cfg.eval_every,
            loss_key="loss",
            score_key="valid_ndcg@10",
            log=log,
            message=lambda epoch, loss, score: f"epoch {epoch:3d}  loss {loss:.4f}  valid NDCG@10 {score:.4f}",
            max_seconds=cfg.time_budget_s,
        )
        # Without validation data every epoch runs and the last one is kept.
        validate = partial(self._validation_ndcg, train, valid) if valid is not None and len(valid) else None
        # Appends to self.history, which is never reset: a second fit adds its records after the first's.
        result = trainer.fit(model, train_epoch, validate, history=self.history)
        model.eval()
        self.seconds = result.seconds

    def _validation_ndcg(self, train: InteractionData, valid: InteractionData, k: int = 10) -> float:
        """NDCG@k of the held-out next items, ranked by the evaluation harness (all items, seen ones masked)."""
        return rank_metrics(self, train, valid, kmax=k, batch=1024, ties="index").at("ndcg", k)

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
            width = max(1, min(self.config.max_len, max(len(s) for s in part)))
            x = torch.from_numpy(np.stack([_left_pad(np.asarray(s, np.int64), width) for s in part])).to(device)
            h = model.user_vectors(x, table)[:, -1]
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

    # ----------------------------------------------------------------- persistence

    def to_bytes(self, item_ids: list[str]) -> bytes:
        assert self.model is not None
        buf = io.BytesIO()
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        torch.save({"config": asdict(self.config), "state": state, "item_ids": item_ids}, buf)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> tuple[HybridRecommender, list[str]]:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
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
