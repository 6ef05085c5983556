"""The named recommender models of ``mmrec evaluate`` and :func:`mmrec.recsys.evaluation.compare`.

Every name of :data:`mmrec.names.MODEL_NAMES` is registered in :data:`MODELS` (a generic
:class:`encoders.registries.Registry`) to a factory ``seed → (constructor, tuning grid)``::

    make, grid = model_spec("als", seed=0)
    model = make(factors=64, regularization=0.1, iterations=15)

The grids are small on purpose: :func:`mmrec.recsys.evaluation.tune` fits every point, and
they list the cheaper setting first because the first best point wins ties.

This module never imports the evaluator (:mod:`mmrec.recsys.evaluation` imports it); the
hybrid is imported only when it is asked for, because it needs torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from encoders.registries import Registry
from mmrec.errors import InvalidArgumentError
from mmrec.names import MODEL_NAMES
from mmrec.recsys import baselines as b
from mmrec.recsys.data import Recommender

#: ``(constructor, tuning grid)``: ``constructor(**point)`` for every point of the grid.
ModelSpec = tuple[Callable[..., Recommender], dict[str, list[Any]]]
#: ``seed → ModelSpec``; the seed goes to the models that draw random numbers.
ModelFactory = Callable[[int], ModelSpec]

#: Model name → factory. Unknown names raise :class:`~mmrec.errors.InvalidArgumentError`.
MODELS: Registry[ModelFactory] = Registry("model", error=InvalidArgumentError)

#: Model names accepted by ``mmrec evaluate --models`` and :func:`~mmrec.recsys.evaluation.compare`.
DEFAULT_MODELS = MODEL_NAMES


@MODELS.register("random")
def _random(seed: int) -> ModelSpec:
    return (lambda: b.Random(seed=seed)), {}


@MODELS.register("popular")
def _popular(seed: int) -> ModelSpec:
    return b.MostPopular, {}


@MODELS.register("itemknn")
def _itemknn(seed: int) -> ModelSpec:
    return b.ItemKNN, {"k": [50, 200], "shrinkage": [0.0, 10.0]}


@MODELS.register("als")
def _als(seed: int) -> ModelSpec:
    return (
        lambda **p: b.ALS(random_state=seed, **p),
        {"factors": [32, 64, 128], "regularization": [0.01, 0.1], "iterations": [15]},
    )


@MODELS.register("bpr")
def _bpr(seed: int) -> ModelSpec:
    return (lambda **p: b.BPR(random_state=seed, **p)), {"factors": [32, 64], "learning_rate": [0.01, 0.05]}


@MODELS.register("content")
def _content(seed: int) -> ModelSpec:
    return b.ContentKNN, {"half_life": [0.5, 1.0, 2.0, 5.0, None]}


@MODELS.register("hybrid")
def _hybrid(seed: int) -> ModelSpec:
    # Imported here, not at the top: the hybrid needs torch, and the baselines must work without it.
    try:
        from mmrec.recsys.hybrid_ensemble import HybridEnsemble
    except ImportError as e:
        raise InvalidArgumentError(f"model 'hybrid' is not available: cannot import mmrec.recsys.hybrid ({e})") from e
    from mmrec.recsys.hybrid import HybridConfig

    # The default config with the run's seed: the hybrid tunes itself (early stopping on validation); it is
    # the ensemble of HybridConfig.members fits, as mmrec train serves it.
    return (lambda: HybridEnsemble(config=HybridConfig(seed=seed))), {}


@MODELS.register("sasrec")
def _sasrec(seed: int) -> ModelSpec:
    # ID-only SASRec with full-softmax CE: the same tower and training as the hybrid, without content.
    try:
        from mmrec.recsys.hybrid import HybridConfig
        from mmrec.recsys.sasrec import SASRec
    except ImportError as e:
        raise InvalidArgumentError(f"model 'sasrec' is not available: cannot import torch ({e})") from e
    return (lambda: SASRec(config=HybridConfig(seed=seed))), {}


def model_spec(name: str, seed: int = 0) -> ModelSpec:
    """``(factory, tuning grid)`` of a named model; ``hybrid`` is imported only when asked for.

    Parameters
    ----------
    name : str
        One of :data:`mmrec.names.MODEL_NAMES`.
    seed : int
        Seed of the models that draw random numbers (Random, ALS, BPR).

    Returns
    -------
    factory : callable
        ``factory(**point)`` builds an unfitted model for a point of the grid.
    grid : dict
        Parameter name → values to try (empty: nothing to tune).

    Raises
    ------
    InvalidArgumentError
        For an unknown name (the message lists the valid ones), or ``hybrid`` when
        :mod:`mmrec.recsys.hybrid` cannot be imported.
    """
    # Checked here rather than by MODELS.get, whose message lists the names sorted: users see
    # them in MODEL_NAMES order, the same as in parse_models' message and the CLI help.
    if name not in MODELS:
        raise InvalidArgumentError(f"unknown model {name!r}; valid models: {', '.join(MODEL_NAMES)}")
    return MODELS.get(name)(seed)


def parse_models(text: str | Iterable[str]) -> list[str]:
    """``"popular, als"`` → ``["popular", "als"]``, checked against :data:`MODEL_NAMES`.

    Parameters
    ----------
    text : str or iterable of str
        Comma-separated names, or the names; case and surrounding spaces are ignored.

    Returns
    -------
    list of str
        The names in the order given, duplicates dropped.

    Raises
    ------
    InvalidArgumentError
        For unknown names or none at all (the message lists the valid ones).
    """
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    bad = [n for n in names if n not in MODEL_NAMES]
    if bad or not names:
        raise InvalidArgumentError(
            f"unknown model(s) {', '.join(repr(n) for n in bad) or '(none given)'}; valid models: {', '.join(MODEL_NAMES)}"
        )
    return list(dict.fromkeys(names))


def hybrid_available() -> bool:
    """Whether ``mmrec.recsys.hybrid`` imports (the trained hybrid is optional in a comparison)."""
    try:
        import mmrec.recsys.hybrid  # noqa: F401
    except ImportError:
        return False
    return True


#: Models that need torch (:mod:`mmrec.recsys.hybrid`).
TORCH_MODELS = ("hybrid", "sasrec")


def default_models() -> list[str]:
    """Every model name; ``hybrid``/``sasrec`` only when they import (asking by name gives a clear error instead)."""
    return [n for n in MODEL_NAMES if n not in TORCH_MODELS or hybrid_available()]
