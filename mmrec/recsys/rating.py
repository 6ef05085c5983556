"""Rating prediction: explicit 1–5 ratings → a predicted rating, for ``mmrec evaluate --task rating``.

Five models, from the floor to the one served:

* :class:`GlobalMean` — the mean training rating.
* :class:`Biases` — ``μ + b_u + b_i``, regularised, fitted by alternating least squares
  (closed form per bias, as Surprise's ``BaselineOnly``).
* :class:`BiasedMF` — ``μ + b_u + b_i + p_u·q_i`` by stochastic gradient descent with the
  per-rating updates and defaults of Surprise's ``SVD`` (100 factors, 20 epochs, lr 0.005,
  reg 0.02), in mini-batches.
* :class:`SVDpp` — adds the implicit-feedback term ``|N(u)|^-½ Σ_{j∈N(u)} y_j`` to the user
  factor (Surprise's ``SVDpp`` defaults: 20 factors, lr 0.007, reg 0.02).
* :class:`HybridRating` — an item-based autoencoder (I-AutoRec) whose encoder reads an item's
  ratings from every user (its ID side) *and* its fused content vector: ``h_i = σ(W [r_i; C c_i])``;
  the rating head is ``h_i · w_u + b_u`` (``w_u``, ``b_u`` a user's decoder row). Items with few
  ratings lean on their content. Early stopping on a seeded 5 % of the training ratings.

Every model reduces to one serving form, :class:`RatingFactors` (``bias + P[u]·Q[i]``, with
``μ + b_i`` / ``μ + b_u`` fallbacks for users / items unseen in training), which is what
``mmrec train`` saves (checkpoint kind ``"rating"``) and ``recommend`` reads.

Torch is imported inside the models that need it; ratings are held as numpy arrays.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mmrec.errors import InvalidArgumentError
from mmrec.recsys.results import RecommendResult

if TYPE_CHECKING:
    from mmrec.store.items import Store

__all__ = [
    "RATING_MODELS",
    "Biases",
    "RatingCache",
    "BiasedMF",
    "GlobalMean",
    "HybridRating",
    "RatingFactors",
    "Ratings",
    "SVDpp",
    "make_rating_model",
    "with_predicted_ratings",
]


@dataclass(frozen=True)
class Ratings:
    """Explicit ratings as parallel arrays, plus the items' content vectors.

    Attributes
    ----------
    user_ids, item_ids : list of str
        Index → id.
    users, items : np.ndarray
        ``(E,)`` int64 indices of each rating.
    values : np.ndarray
        ``(E,)`` float32 ratings.
    item_vectors : np.ndarray
        ``(n_items, D)`` float32 fused content vectors (zeros where an item has none).
    scale : (float, float)
        Lowest and highest possible rating; predictions are clipped to it.
    """

    user_ids: list[str]
    item_ids: list[str]
    users: np.ndarray
    items: np.ndarray
    values: np.ndarray
    item_vectors: np.ndarray
    scale: tuple[float, float] = (1.0, 5.0)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.values)

    def subset(self, index: np.ndarray) -> Ratings:
        """The ratings at ``index`` (a mask or positions), in the same index space."""
        return Ratings(
            self.user_ids,
            self.item_ids,
            self.users[index],
            self.items[index],
            self.values[index],
            self.item_vectors,
            self.scale,
        )


@dataclass
class RatingFactors:
    """The serving form of every rating model: ``pred(u, i) = bias + b_u[u] + b_i[i] + P[u] · Q[i]``.

    ``fallback_mu``, ``fallback_bu``, ``fallback_bi`` are regularised biases: a user unknown at
    training time gets ``μ + b_i``, an unknown item ``μ + b_u``, both unknown ``μ``.
    """

    user_ids: list[str]
    item_ids: list[str]
    bias: float
    bu: np.ndarray  # (n_users,)
    bi: np.ndarray  # (n_items,)
    P: np.ndarray  # (n_users, k)
    Q: np.ndarray  # (n_items, k)
    fallback_mu: float
    fallback_bu: np.ndarray
    fallback_bi: np.ndarray
    scale: tuple[float, float] = (1.0, 5.0)
    name: str = ""
    _uindex: dict[str, int] = field(default_factory=dict, repr=False)
    _iindex: dict[str, int] = field(default_factory=dict, repr=False)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``(E,)`` predictions for index pairs (all known), clipped to the scale."""
        p = self.bias + self.bu[users] + self.bi[items] + np.einsum("ek,ek->e", self.P[users], self.Q[items])
        return np.clip(p, *self.scale).astype(np.float32)

    def predict_ids(self, user: str, item_ids: list[str]) -> np.ndarray:
        """``(len(item_ids),)`` predicted ratings of ``user`` for items by id, with the fallbacks."""
        if not self._uindex:
            self._uindex = {u: n for n, u in enumerate(self.user_ids)}
            self._iindex = {i: n for n, i in enumerate(self.item_ids)}
        u = self._uindex.get(user, -1)
        idx = np.array([self._iindex.get(i, -1) for i in item_ids], np.int64)
        known = idx >= 0
        out = np.full(len(item_ids), self.fallback_mu, np.float64)
        if u >= 0:
            out[~known] += self.fallback_bu[u]
            out[known] = self.predict(np.full(int(known.sum()), u), idx[known])
        else:
            out[known] += self.fallback_bi[idx[known]]
        return np.clip(out, *self.scale).astype(np.float32)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            user_ids=np.array(self.user_ids, dtype=str),  # fixed-width text, so loading needs no pickle
            item_ids=np.array(self.item_ids, dtype=str),
            scalars=np.array([self.bias, self.fallback_mu, *self.scale], np.float64),
            name=np.array(self.name),
            bu=self.bu,
            bi=self.bi,
            P=self.P,
            Q=self.Q,
            fallback_bu=self.fallback_bu,
            fallback_bi=self.fallback_bi,
        )
        return buf.getvalue()

    def without_user(self, user: str) -> RatingFactors | None:
        """A copy with ``user``'s row (id, biases, factors) removed; None when the user is not in it.

        The item side keeps what it learnt from the user's ratings (an aggregate over every user,
        no longer linked to the id); the next ``mmrec train`` refits it without them.
        """
        keep = np.array([u != user for u in self.user_ids], bool)
        if keep.all():
            return None
        return RatingFactors(
            [u for u in self.user_ids if u != user],
            list(self.item_ids),
            self.bias,
            self.bu[keep],
            self.bi,
            self.P[keep],
            self.Q,
            self.fallback_mu,
            self.fallback_bu[keep],
            self.fallback_bi,
            self.scale,
            self.name,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> RatingFactors:
        z = np.load(io.BytesIO(data), allow_pickle=False)  # a database may come from elsewhere: never unpickle
        bias, mu, lo, hi = (float(x) for x in z["scalars"])
        return cls(
            [str(x) for x in z["user_ids"]],
            [str(x) for x in z["item_ids"]],
            bias,
            z["bu"],
            z["bi"],
            z["P"],
            z["Q"],
            mu,
            z["fallback_bu"],
            z["fallback_bi"],
            (lo, hi),
            str(z["name"]),
        )


# --------------------------------------------------------------------------- models


@contextmanager
def _one_thread() -> Iterator[None]:
    """Torch on one thread while a model trains: its kernels here are tiny (a batch of 512 ratings),
    and two OpenMP threads on shared cores spin-wait: measured 92 ms per SGD step on 2 threads
    against 6 ms on one, with the machine loaded."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _als_biases(train: Ratings, reg_u: float, reg_i: float, epochs: int) -> tuple[float, np.ndarray, np.ndarray]:
    """``(μ, b_u, b_i)`` minimising Σ(r − μ − b_u − b_i)² + reg_u Σb_u² + reg_i Σb_i² by alternating closed forms."""
    mu = float(train.values.mean())
    bu = np.zeros(train.n_users)
    bi = np.zeros(train.n_items)
    nu = np.bincount(train.users, minlength=train.n_users)
    ni = np.bincount(train.items, minlength=train.n_items)
    r = train.values.astype(np.float64) - mu
    for _ in range(epochs):
        bu = np.bincount(train.users, r - bi[train.items], minlength=train.n_users) / (reg_u + nu)
        bi = np.bincount(train.items, r - bu[train.users], minlength=train.n_items) / (reg_i + ni)
    return mu, bu, bi


class _Model:
    """What every rating model shares: ``fit`` sets :attr:`factors`, ``predict`` reads it."""

    name = "model"
    factors: RatingFactors | None = None

    def fit(self, train: Ratings) -> None:  # pragma: no cover - every model overrides it
        raise NotImplementedError

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``(E,)`` predicted ratings for index pairs of the training index space."""
        if self.factors is None:
            raise InvalidArgumentError(f"rating model {self.name!r} is not fitted; call fit first")
        return self.factors.predict(np.asarray(users, np.int64), np.asarray(items, np.int64))

    def _set(self, train: Ratings, bias: float, bu: np.ndarray, bi: np.ndarray, P: np.ndarray, Q: np.ndarray) -> None:
        mu, fbu, fbi = _als_biases(train, 15.0, 10.0, 10)
        f32 = np.float32
        self.factors = RatingFactors(
            train.user_ids,
            train.item_ids,
            float(bias),
            bu.astype(f32),
            bi.astype(f32),
            P.astype(f32),
            Q.astype(f32),
            mu,
            fbu.astype(f32),
            fbi.astype(f32),
            train.scale,
            self.name,
        )


class GlobalMean(_Model):
    """The mean training rating for everyone."""

    name = "GlobalMean"

    def fit(self, train: Ratings) -> None:
        z = np.zeros((train.n_users, 1)), np.zeros((train.n_items, 1))
        self._set(train, float(train.values.mean()), np.zeros(train.n_users), np.zeros(train.n_items), *z)


class Biases(_Model):
    """``μ + b_u + b_i``, by alternating least squares (Surprise ``BaselineOnly``: reg_u 15, reg_i 10, 10 epochs)."""

    name = "Biases"

    def __init__(self, reg_u: float = 15.0, reg_i: float = 10.0, epochs: int = 10) -> None:
        self.reg_u, self.reg_i, self.epochs = reg_u, reg_i, epochs

    def fit(self, train: Ratings) -> None:
        mu, bu, bi = _als_biases(train, self.reg_u, self.reg_i, self.epochs)
        self._set(train, mu, bu, bi, np.zeros((train.n_users, 1)), np.zeros((train.n_items, 1)))


def _batches(n: int, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    return np.array_split(rng.permutation(n), max(1, n // batch))


class BiasedMF(_Model):
    """Biased matrix factorisation (Surprise's ``SVD``) by mini-batch SGD.

    The loss of a mini-batch is the *sum* over its ratings of
    ``½ e² + ½ reg (b_u² + b_i² + |p_u|² + |q_i|²)``, so one step is the sum of Surprise's
    per-rating updates (batches of 512: an item appears in a batch a few times at most, so the
    summed step stays close to the sequential algorithm at a fraction of the Python overhead).
    """

    name = "BiasedMF"

    def __init__(
        self,
        factors: int = 100,
        epochs: int = 20,
        lr: float = 0.005,
        reg: float = 0.02,
        init_std: float = 0.1,
        batch: int = 512,
        seed: int = 0,
    ) -> None:
        self.k, self.epochs, self.lr, self.reg, self.init_std, self.batch, self.seed = (
            factors,
            epochs,
            lr,
            reg,
            init_std,
            batch,
            seed,
        )

    def _implicit(self, train: Ratings):  # noqa: ANN202 - torch types stay out of the module's imports
        return None

    def _batches(self, train: Ratings, rng: np.random.Generator) -> list[np.ndarray]:
        """Rating positions of each step of an epoch: a random order cut into ``batch``-sized parts."""
        return _batches(len(train), self.batch, rng)

    def fit(self, train: Ratings) -> None:
        with _one_thread():
            self._fit(train)

    def _fit(self, train: Ratings) -> None:
        import torch

        g = torch.Generator().manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        mu = float(train.values.mean())
        bu = torch.zeros(train.n_users, requires_grad=True)
        bi = torch.zeros(train.n_items, requires_grad=True)
        P = (torch.randn(train.n_users, self.k, generator=g) * self.init_std).requires_grad_()
        Q = (torch.randn(train.n_items, self.k, generator=g) * self.init_std).requires_grad_()
        implicit = self._implicit(train)
        params = [bu, bi, P, Q] + ([implicit[0]] if implicit is not None else [])
        opt = torch.optim.SGD(params, lr=self.lr)
        U = torch.from_numpy(train.users.astype(np.int64))
        Iv = torch.from_numpy(train.items.astype(np.int64))
        R = torch.from_numpy(train.values.astype(np.float32))
        for _ in range(self.epochs):
            for idx in self._batches(train, rng):
                t = torch.from_numpy(idx)
                u, i = U[t], Iv[t]
                pu = P[u]
                reg = bu[u] ** 2 + bi[i] ** 2 + (pu**2).sum(1) + (Q[i] ** 2).sum(1)
                if implicit is not None:
                    z, reg_y = self._user_term(implicit, u)
                    pu = pu + z
                    reg = reg + reg_y
                err = R[t] - (mu + bu[u] + bi[i] + (pu * Q[i]).sum(1))
                loss = 0.5 * (err**2).sum() + 0.5 * self.reg * reg.sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            Pf = P.clone()
            if implicit is not None:
                Pf += self._user_term(implicit, torch.arange(train.n_users))[0]
            self._set(train, mu, bu.numpy(), bi.numpy(), Pf.numpy(), Q.detach().numpy())


class SVDpp(BiasedMF):
    """SVD++: the user factor plus ``|N(u)|^-½ Σ_{j∈N(u)} y_j`` over the items ``N(u)`` the user rated.

    ``N(u)`` is the user's *training* ratings only (the test pairs are not known to have been
    rated). Each ``y_j`` is regularised once per rating of its user, as in Surprise.
    """

    name = "SVD++"

    def __init__(
        self, factors: int = 20, epochs: int = 20, lr: float = 0.007, reg: float = 0.02, batch: int = 2048, **kw: float
    ) -> None:
        # Batches of 2048: the implicit term is recomputed for every user once per step, so fewer steps are faster.
        super().__init__(factors=factors, epochs=epochs, lr=lr, reg=reg, batch=batch, **kw)  # type: ignore[arg-type]

    def _implicit(self, train: Ratings):  # noqa: ANN202
        import torch

        counts = np.bincount(train.users, minlength=train.n_users)
        norm = 1.0 / np.sqrt(np.maximum(counts, 1))
        idx = torch.from_numpy(np.stack([train.users, train.items]).astype(np.int64))
        shape = (train.n_users, train.n_items)
        # (n_users, n_items) sparse: |N(u)|^-½ at the rated pairs, and 1 at them (for the penalty)
        n_norm = torch.sparse_coo_tensor(idx, torch.from_numpy(norm[train.users].astype(np.float32)), shape).coalesce()
        n_one = torch.sparse_coo_tensor(idx, torch.ones(len(train)), shape).coalesce()
        g = torch.Generator().manual_seed(self.seed + 1)
        Y = (torch.randn(train.n_items, self.k, generator=g) * self.init_std).requires_grad_()
        return Y, n_norm, n_one

    def _user_term(self, implicit, users):  # noqa: ANN001, ANN202
        """``(B, k)`` implicit terms and ``(B,)`` Σ_{j∈N(u)} |y_j|² of the batch's users.

        Computed for every user with one sparse product (80k non-zeros on ML-100k): cheaper than
        gathering the bags of the few hundred users of a batch (measured 74 ms per step that way).
        """
        import torch

        Y, n_norm, n_one = implicit
        z = torch.sparse.mm(n_norm, Y)
        ysq = torch.sparse.mm(n_one, (Y**2).sum(1, keepdim=True))[:, 0]
        return z[users], ysq[users]


class HybridRating(_Model):
    """Item autoencoder over ratings + content (I-AutoRec with the fused vector as a second input).

    ``h_i = σ(W_r r_i + W_c c_i + b)`` with ``r_i`` the item's ``(n_users,)`` training ratings
    (0 = unknown) and ``c_i`` its ``(D,)`` content vector; the head predicts user ``u``'s rating as
    ``w_u · h_i + b_u``. Loss: squared error on the observed ratings plus ``½ λ (|W|² + |V|²)``.
    Trained with Adam; the epoch is chosen on a seeded ``valid_share`` of the training ratings,
    checked every ``check_every`` epochs (early stopping after ``patience`` checks without gain).
    """

    name = "Hybrid"

    def __init__(
        self,
        hidden: int = 500,
        reg: float = 30.0,
        lr: float = 2e-3,
        max_epochs: int = 120,
        batch: int = 256,
        valid_share: float = 0.05,
        check_every: int = 5,
        patience: int = 3,
        content: bool = True,
        seed: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.hidden, self.reg, self.lr, self.max_epochs, self.batch = hidden, reg, lr, max_epochs, batch
        self.valid_share, self.check_every, self.patience = valid_share, check_every, patience
        self.content, self.seed, self.log = content, seed, log
        self.best_epoch = 0

    def fit(self, train: Ratings) -> None:
        with _one_thread():
            self._fit(train)

    def _fit(self, train: Ratings) -> None:
        import torch

        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        n_val = int(len(train) * self.valid_share) if len(train) >= 200 else 0
        perm = rng.permutation(len(train))
        fit_idx, val_idx = perm[n_val:], perm[:n_val]
        nu, ni = train.n_users, train.n_items
        R = torch.zeros(ni, nu)
        M = torch.zeros(ni, nu)
        R[train.items[fit_idx], train.users[fit_idx]] = torch.from_numpy(train.values[fit_idx])
        M[train.items[fit_idx], train.users[fit_idx]] = 1.0
        C = torch.from_numpy(np.asarray(train.item_vectors, np.float32))
        use_c = self.content and C.shape[1] > 0 and bool(C.abs().sum() > 0)
        enc = torch.nn.Linear(nu, self.hidden)
        enc_c = torch.nn.Linear(C.shape[1], self.hidden, bias=False) if use_c else None
        dec = torch.nn.Linear(self.hidden, nu)
        params = [*enc.parameters(), *dec.parameters(), *(enc_c.parameters() if enc_c is not None else [])]
        opt = torch.optim.Adam(params, lr=self.lr)

        def hidden(rows: torch.Tensor) -> torch.Tensor:
            x = enc(R[rows])
            if enc_c is not None:
                x = x + enc_c(C[rows])
            return torch.sigmoid(x)

        vu = torch.from_numpy(train.users[val_idx].astype(np.int64))
        vi = torch.from_numpy(train.items[val_idx].astype(np.int64))
        vr = train.values[val_idx]
        lo, hi = train.scale
        best, best_state, bad = np.inf, None, 0
        for epoch in range(1, self.max_epochs + 1):
            for rows in torch.randperm(ni).split(self.batch):
                out = dec(hidden(rows))
                sq = (((out - R[rows]) * M[rows]) ** 2).sum()
                weights = enc.weight.pow(2).sum() + dec.weight.pow(2).sum()
                if enc_c is not None:
                    weights = weights + enc_c.weight.pow(2).sum()
                # the weight penalty is spread over the batches of an epoch: λ/2 |W|² per epoch
                loss = sq + 0.5 * self.reg * weights * len(rows) / ni
                opt.zero_grad()
                loss.backward()
                opt.step()
            if n_val == 0 or (epoch % self.check_every and epoch != self.max_epochs):
                continue
            with torch.no_grad():
                h = hidden(vi)
                pred = ((h * dec.weight[vu]).sum(1) + dec.bias[vu]).clamp(lo, hi).numpy()
            rmse = float(np.sqrt(np.mean((pred - vr) ** 2)))
            if self.log:
                self.log(f"  {self.name} epoch {epoch}: validation RMSE {rmse:.4f}")
            if rmse < best - 1e-4:
                best, bad, self.best_epoch = rmse, 0, epoch
                best_state = [p.detach().clone() for p in params]
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best_state is not None:
            with torch.no_grad():
                for p, s in zip(params, best_state, strict=True):
                    p.copy_(s)
        self.valid_rmse = best
        with torch.no_grad():
            H = hidden(torch.arange(ni)).numpy()
            V = dec.weight.detach().numpy()
            b = dec.bias.detach().numpy()
        self._set(train, 0.0, b, np.zeros(ni), V, H)


#: Name → constructor ``(seed) → model``, in table order (floor first, served model last).
RATING_MODELS: dict[str, Callable[[int], _Model]] = {
    "mean": lambda seed: GlobalMean(),
    "biases": lambda seed: Biases(),
    "svd": lambda seed: BiasedMF(seed=seed),
    "svdpp": lambda seed: SVDpp(seed=seed),
    "hybrid": lambda seed: HybridRating(seed=seed),
}


def make_rating_model(name: str, seed: int = 0) -> _Model:
    """A fresh rating model by name (:data:`RATING_MODELS`)."""
    try:
        return RATING_MODELS[name](seed)
    except KeyError:
        raise InvalidArgumentError(
            f"unknown rating model {name!r}; valid rating models: {', '.join(RATING_MODELS)}"
        ) from None


# --------------------------------------------------------------------------- serving


class RatingCache:
    """The newest saved rating model of a database, loaded once per checkpoint version (thread-safe enough:
    a race loads the same checkpoint twice)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._loaded: tuple[int, RatingFactors] | None = None

    def current(self) -> RatingFactors | None:
        """The newest rating model, or ``None`` when none was trained."""
        checkpoints = self.store.checkpoints("rating")
        if not checkpoints:
            return None
        version = checkpoints[-1]["version"]
        loaded = self._loaded
        if loaded is None or loaded[0] != version:
            loaded = self._loaded = (
                version,
                RatingFactors.from_bytes(self.store.checkpoint_weights("rating", version)),
            )
        return loaded[1]


def with_predicted_ratings(result: RecommendResult, model: RatingFactors | None) -> RecommendResult:
    """``result`` with each recommendation's ``predicted_rating`` from ``model`` (unchanged without one)."""
    if model is None or not result.items:
        return result
    from dataclasses import replace

    preds = model.predict_ids(result.user, [r.id for r in result.items])
    result.items = [replace(r, predicted_rating=round(float(p), 3)) for r, p in zip(result.items, preds, strict=True)]
    return result
