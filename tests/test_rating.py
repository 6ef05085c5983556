"""Rating prediction: metrics and biases by hand, models on planted structure, the CV harness, train → recommend."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmrec.errors import InvalidArgumentError
from mmrec.recsys.rating import (
    RATING_MODELS,
    BiasedMF,
    Biases,
    GlobalMean,
    HybridRating,
    RatingFactors,
    Ratings,
    SVDpp,
    make_rating_model,
)
from mmrec.recsys.rating_eval import _errors, cross_validate, kfold


def ratings(rows: list[tuple[int, int, float]], n_users: int, n_items: int, dim: int = 0) -> Ratings:
    arr = np.array(rows, np.float64).reshape(-1, 3)
    return Ratings(
        [f"u{i}" for i in range(n_users)],
        [f"i{i}" for i in range(n_items)],
        arr[:, 0].astype(np.int64),
        arr[:, 1].astype(np.int64),
        arr[:, 2].astype(np.float32),
        np.zeros((n_items, dim), np.float32),
    )


def planted(n_users: int = 60, n_items: int = 40, density: float = 0.5, seed: int = 0) -> Ratings:
    """Ratings from a rank-2 model plus small noise, on the 1–5 scale."""
    rng = np.random.default_rng(seed)
    U, V = rng.normal(size=(n_users, 2)), rng.normal(size=(n_items, 2))
    full = np.clip(3.0 + 0.8 * U @ V.T + 0.1 * rng.normal(size=(n_users, n_items)), 1, 5)
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    data = ratings([(a, b, full[a, b]) for a, b in zip(u, i, strict=True)], n_users, n_items)
    return Ratings(data.user_ids, data.item_ids, data.users, data.items, data.values, V.astype(np.float32))


def test_errors_by_hand():
    e = _errors(np.array([3.0, 4.0, 5.0]), np.array([4.0, 4.0, 2.0]))  # errors -1, 0, 3
    assert e["mae"] == pytest.approx(4 / 3)
    assert e["mse"] == pytest.approx(10 / 3)
    assert e["rmse"] == pytest.approx(np.sqrt(10 / 3))


def test_global_mean_and_biases_by_hand():
    # user 0 rates items 0, 1 with 5, 3; user 1 rates item 0 with 1. μ = 3.
    data = ratings([(0, 0, 5), (0, 1, 3), (1, 0, 1)], 2, 2)
    m = GlobalMean()
    m.fit(data)
    assert m.predict([0, 1], [1, 0]).tolist() == pytest.approx([3.0, 3.0])
    # no regularisation, one epoch from b = 0: b_u = mean(r − μ) per user = (1, −2);
    # then b_i = mean(r − μ − b_u) per item: item 0 (5−3−1, 1−3+2)/2 = 0.5, item 1 (3−3−1) = −1
    b = Biases(reg_u=0.0, reg_i=0.0, epochs=1)
    b.fit(data)
    f = b.factors
    assert f.bu.tolist() == pytest.approx([1.0, -2.0])
    assert f.bi.tolist() == pytest.approx([0.5, -1.0])
    assert b.predict([0], [0]).tolist() == pytest.approx([4.5])
    # regularised: b_u = Σ(r − μ) / (reg + n): user 1 → −2 / (1 + 1) = −1
    b = Biases(reg_u=1.0, reg_i=0.0, epochs=1)
    b.fit(data)
    assert b.factors.bu[1] == pytest.approx(-1.0)


def test_predictions_are_clipped_to_the_scale():
    data = ratings([(0, 0, 5), (0, 1, 5), (1, 0, 5)], 2, 2)
    b = Biases(reg_u=0.0, reg_i=0.0)
    b.fit(data)
    assert b.predict([1], [1])[0] <= 5.0


@pytest.mark.parametrize(
    "model", [BiasedMF(factors=8, epochs=40, lr=0.01, batch=128), SVDpp(factors=8, epochs=40, lr=0.01, batch=128)]
)
def test_factor_models_learn_planted_structure(model):
    data = planted()
    folds = kfold(len(data), 5, seed=0)
    test = folds[0]
    train = np.setdiff1d(np.arange(len(data)), test)
    base = Biases()
    base.fit(data.subset(train))
    model.fit(data.subset(train))
    rmse = lambda m: np.sqrt(np.mean((m.predict(data.users[test], data.items[test]) - data.values[test]) ** 2))  # noqa: E731
    assert rmse(model) < 0.8 * rmse(base)  # the rank-2 signal is there to find, and biases cannot


def test_hybrid_uses_the_content_vectors():
    # Ratings follow the items' content vectors (3 + 0.7 taste·c_i), 30 % of the pairs observed:
    # the content input must beat the same autoencoder without it (measured 0.91 vs 1.06).
    rng = np.random.default_rng(1)
    n_users, n_items = 60, 40
    C = rng.normal(size=(n_items, 4)).astype(np.float32)
    full = np.clip(3 + 0.7 * rng.normal(size=(n_users, 4)) @ C.T, 1, 5)
    u, i = np.nonzero(rng.random((n_users, n_items)) < 0.3)
    data = ratings([(a, b, full[a, b]) for a, b in zip(u, i, strict=True)], n_users, n_items)
    data = Ratings(data.user_ids, data.item_ids, data.users, data.items, data.values, C)
    test = kfold(len(data), 5)[0]
    train = np.setdiff1d(np.arange(len(data)), test)

    def rmse(content: bool) -> float:
        m = HybridRating(hidden=32, reg=1.0, lr=1e-2, max_epochs=150, valid_share=0.0, content=content)
        m.fit(data.subset(train))
        return float(np.sqrt(np.mean((m.predict(data.users[test], data.items[test]) - data.values[test]) ** 2)))

    assert rmse(True) < 0.9 * rmse(False)


def test_factors_round_trip_and_fallbacks():
    data = planted(20, 10)
    m = BiasedMF(factors=4, epochs=5)
    m.fit(data)
    f = RatingFactors.from_bytes(m.factors.to_bytes())
    assert f.predict_ids("u3", ["i1", "i2"]) == pytest.approx(m.predict([3, 3], [1, 2]))
    mu = f.fallback_mu
    # unknown user: μ + b_i; unknown item: μ + b_u; both: μ
    assert f.predict_ids("stranger", ["i1"])[0] == pytest.approx(np.clip(mu + f.fallback_bi[1], 1, 5))
    assert f.predict_ids("u3", ["new"])[0] == pytest.approx(np.clip(mu + f.fallback_bu[3], 1, 5))
    assert f.predict_ids("stranger", ["new"])[0] == pytest.approx(mu)


def test_kfold_partitions_and_names_are_checked():
    parts = kfold(103, 5, seed=3)
    assert sorted(np.concatenate(parts).tolist()) == list(range(103))
    assert {len(p) for p in parts} == {20, 21}
    assert [p.tolist() for p in kfold(103, 5, seed=3)] == [p.tolist() for p in parts]  # seeded
    with pytest.raises(InvalidArgumentError, match="folds"):
        kfold(10, 1)
    with pytest.raises(InvalidArgumentError, match="valid rating models: mean, biases, svd, svdpp, hybrid"):
        make_rating_model("svd+++")
    assert list(RATING_MODELS) == ["mean", "biases", "svd", "svdpp", "hybrid"]


def test_cross_validate_reports_every_figure():
    data = planted(40, 20)
    res = cross_validate(data, ["mean", "biases", "svd"], folds=3, seed=0, n_boot=200)
    assert res["ratings"] == len(data) and res["folds"] == 3
    names = list(res["models"])
    assert names == ["GlobalMean", "Biases", "BiasedMF"]
    for e in res["models"].values():
        assert e["rmse"] == pytest.approx(np.mean([p["rmse"] for p in e["per_fold"]]), abs=1e-4)
        assert e["rmse"] ** 2 == pytest.approx(e["mse"], rel=0.05)  # mean of sqrt vs sqrt of mean, close
        lo, hi = e["rmse_ci"]
        assert lo < e["rmse"] < hi
    assert all(len(e["per_fold"]) == 3 for e in res["models"].values())


@pytest.fixture(scope="module")
def rated_db(tmp_path_factory, real_encoders):
    """Six text items, 12 users with star ratings that follow two tastes (space vs romance)."""
    from mmrec import Engine

    root = tmp_path_factory.mktemp("ratingdb")
    titles = ["space opera", "galaxy war", "robot uprising", "love in paris", "wedding comedy", "summer romance"]
    manifest = "".join(
        json.dumps({"id": f"m/{i}", "title": t, "text": f"A film about {t}."}) + "\n" for i, t in enumerate(titles)
    )
    (root / "catalog").mkdir()
    (root / "catalog" / "catalog.jsonl").write_text(manifest)
    lines = ["user,item,rating,timestamp"]
    for u in range(12):
        for i in range(6):
            if (u + i) % 6 == 0:
                continue  # one item per user left unrated
            stars = 5 if (i < 3) == (u % 2 == 0) else 1
            lines.append(f"u{u},m/{i},{stars},{1000 + 10 * u + i}")
    engine = Engine(str(root / "db"))
    engine.ingest(root / "catalog")
    (root / "r.csv").write_text("\n".join(lines) + "\n")
    engine.import_interactions(root / "r.csv")
    return root / "db"


def test_engine_rating_task_train_and_predicted_rating(rated_db):
    from mmrec import Engine

    engine = Engine(str(rated_db))
    res = engine.evaluate(models=["mean", "biases"], task="rating")
    assert res["ratings"] == 60 and res["models"]["GlobalMean"]["rmse"] == pytest.approx(2.0, abs=0.15)
    with pytest.raises(InvalidArgumentError, match="valid tasks: ranking, rating"):
        engine.evaluate(task="stars")
    report = engine.train_rating()
    assert report["saved"] and report["version"] == 1
    rec = engine.recommend("u0", 3, include_seen=True)
    preds = {r.id: r.predicted_rating for r in rec.items}
    assert all(p is not None for p in preds.values())
    # u0 (even) loves space films m/0–m/2 and hates the romances
    for item, p in preds.items():
        assert (p > 3.0) == (int(item.split("/")[1]) < 3), (item, p)
    assert "predicted_rating" in rec.to_dict()["items"][0]


def test_cli_evaluate_rating_task(rated_db, capsys):
    from mmrec.cli.main import main

    assert main(["evaluate", "--db", str(rated_db), "--task", "rating", "--models", "mean,biases", "-q"]) == 0
    out = capsys.readouterr().out
    assert "random 5-fold cross-validation (seed 0)" in out and "| Biases |" in out
    assert main(["evaluate", "--db", str(rated_db), "--task", "rating", "--models", "nope"]) != 0
    assert "valid rating models" in capsys.readouterr().err


def test_forget_takes_the_user_out_of_every_rating_model(rated_db, tmp_path):
    import shutil

    from mmrec import Engine
    from mmrec.recsys.rating import RatingFactors

    db = tmp_path / "db"
    shutil.copytree(rated_db, db)
    engine = Engine(str(db))
    engine.train_rating()
    engine.train_rating()  # two versions: both hold u3
    before = [c["version"] for c in engine.store.checkpoints("rating")]
    assert len(before) >= 2
    known = engine.recommend("u3", 3, include_seen=True)
    report = engine.forget("u3")
    assert report.ratings_purged == before and "removed from rating model(s)" in report.format()
    after = engine.store.checkpoints("rating")
    # the newest is saved again without the user (a new version), every version that held them is gone
    assert [c["version"] for c in after] == [max(before) + 1] and after[0]["metrics"]["purged_users"] == 1
    factors = RatingFactors.from_bytes(engine.store.checkpoint_weights("rating", after[0]["version"]))
    assert "u3" not in factors.user_ids and len(factors.user_ids) == 11
    assert factors.P.shape[0] == factors.bu.shape[0] == factors.fallback_bu.shape[0] == 11
    # serving goes on: the others keep their predictions, u3 is now an unknown user
    assert all(r.predicted_rating is not None for r in engine.recommend("u0", 3, include_seen=True).items)
    assert factors.predict_ids("u3", [r.id for r in known.items]).tolist() == pytest.approx(
        [factors.fallback_mu + factors.fallback_bi[factors.item_ids.index(r.id)] for r in known.items], abs=1e-5
    )
    assert engine.forget("u3").ratings_purged == []  # idempotent
