"""The hybrid candidate as an ensemble of fits: members, their average, persistence, fitting apart."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("torch")

from test_hybrid import SMALL, chains  # noqa: E402

from mmrec.errors import InvalidArgumentError, StoreError  # noqa: E402
from mmrec.recsys import hybrid_ensemble  # noqa: E402
from mmrec.recsys.hybrid import HybridRecommender  # noqa: E402
from mmrec.recsys.hybrid_ensemble import HybridEnsemble, load_hybrid, member_seed  # noqa: E402
from mmrec.recsys.served import standardise  # noqa: E402

FAST = replace(SMALL, epochs=10, patience=2)


def split(data):
    order = data.chronological()
    last = np.zeros(len(data), bool)
    last[order[np.r_[np.diff(data.users[order]) != 0, True]]] = True
    return data.subset(~last), data.subset(last)


@pytest.fixture(scope="module")
def ensemble():
    data = chains()
    train, valid = split(data)
    ens = HybridEnsemble(replace(FAST, seed=3, members=2))
    ens.fit(train, valid)
    return ens, data, train, valid


def test_members_have_their_own_seeds_and_member_0_the_runs():
    ens = HybridEnsemble(replace(FAST, seed=3, members=3))
    assert [m.config.seed for m in ens.member_models()] == [3, 1003, 2003] == [member_seed(3, k) for k in range(3)]
    assert all(m.config.members == 1 for m in ens.member_models())


def test_member_0_is_the_single_fit_of_the_seed(ensemble):
    ens, _, train, valid = ensemble
    single = HybridRecommender(replace(FAST, seed=3))
    single.fit(train, valid)
    seq = [np.array([4, 5, 6])]
    np.testing.assert_allclose(ens.members[0].score_sequences(seq), single.score_sequences(seq), atol=1e-5)


def test_the_score_is_the_mean_of_the_members_standardised_scores(ensemble):
    ens, _, train, _ = ensemble
    users = np.arange(6)
    want = (standardise(ens.members[0].score(users, train)) + standardise(ens.members[1].score(users, train))) / 2
    np.testing.assert_allclose(ens.score(users, train), want, atol=1e-5)
    # two different fits: the average is not either member's ranking scaled
    assert not np.allclose(standardise(ens.members[0].score(users, train)), want, atol=1e-3)
    seqs = [np.array([5, 6, 7]), np.array([28, 29])]
    # and it still learned the chains: the next item of each walk is the best one not yet seen
    scores = ens.score_sequences(seqs)[:, :30]
    for row, seq in zip(scores, seqs, strict=True):
        row[seq] = -np.inf
    assert [int(np.argmax(row)) for row in scores] == [8, 0]


def test_the_reports_name_every_members_epochs(ensemble):
    ens, *_ = ensemble
    rows = ens.member_epochs
    assert [r["seed"] for r in rows] == [3, 1003]
    assert all(r["epochs"] >= r["best_epoch"] >= 0 and r["valid_ndcg@10"] > 0.5 for r in rows)
    assert ens.history is ens.members[0].history and ens.seconds > 0


def test_checkpoint_round_trip_of_an_ensemble_and_of_one_fit(ensemble):
    ens, data, _, _ = ensemble
    seqs = [np.array([3, 4]), np.array([10, 11, 12])]
    restored, ids = load_hybrid(ens.to_bytes(data.item_ids))
    assert ids == data.item_ids and isinstance(restored, HybridEnsemble) and len(restored.members) == 2
    np.testing.assert_allclose(restored.score_sequences(seqs), ens.score_sequences(seqs), atol=1e-5)
    # an item table for a changed catalog: one per member, and the scores follow it
    known = np.r_[np.arange(len(data.item_ids)), -1]
    content = np.r_[data.item_vectors, data.item_vectors[8:9]]
    tables = restored.extended_table(known, content)
    assert len(tables) == 2 and tables[0].shape[0] == len(known) + 1
    assert restored.score_sequences(seqs, tables).shape == (2, len(known))
    # a one-fit checkpoint (and every checkpoint saved before ensembles) loads as one fit
    single, ids = load_hybrid(ens.members[1].to_bytes(data.item_ids))
    assert isinstance(single, HybridRecommender) and ids == data.item_ids
    np.testing.assert_allclose(single.score_sequences(seqs), ens.members[1].score_sequences(seqs), atol=1e-5)
    assert restored.content_dim == single.content_dim == data.item_vectors.shape[1]


def test_an_ensemble_checkpoint_without_members_is_refused():
    import io

    import torch

    buf = io.BytesIO()
    torch.save({"members": [], "item_ids": []}, buf)
    with pytest.raises(StoreError, match="without members"):
        load_hybrid(buf.getvalue())


@pytest.mark.parametrize("members", [0, -1, 1.5, "2"])
def test_a_bad_member_count_names_the_value(members):
    with pytest.raises(InvalidArgumentError, match="members must be an integer"):
        HybridEnsemble(replace(FAST, members=members))


def test_unfitted_ensemble_says_so():
    with pytest.raises(RuntimeError, match="before fit"):
        HybridEnsemble(FAST).score_sequences([np.array([1])])


def test_members_fitted_side_by_side_equal_those_fitted_here(ensemble, monkeypatch):
    import os

    if (os.cpu_count() or 1) < 2:
        pytest.skip("fitting apart needs two cores")
    ens, _, train, valid = ensemble
    monkeypatch.setattr(hybrid_ensemble, "PARALLEL_MIN_INTERACTIONS", 0)
    lines: list[str] = []
    apart = HybridEnsemble(replace(FAST, seed=3, members=2))
    apart.fit(train, valid, log=lines.append)
    assert "side by side" in lines[0] and sum(line.startswith("member ") for line in lines) == 2
    seqs = [np.array([4, 5, 6]), np.array([20, 21])]
    np.testing.assert_allclose(apart.score_sequences(seqs), ens.score_sequences(seqs), atol=1e-4)
    assert [r["best_epoch"] for r in apart.member_epochs] == [r["best_epoch"] for r in ens.member_epochs]


def test_a_one_fit_ensemble_saves_the_one_fit_checkpoint(ensemble):
    ens, data, _, _ = ensemble
    one = HybridEnsemble(replace(FAST, seed=3, members=1))
    one.adopt([ens.members[0]], 1.0)
    assert one.to_bytes(data.item_ids) == ens.members[0].to_bytes(data.item_ids)
    restored, _ = load_hybrid(one.to_bytes(data.item_ids))
    assert isinstance(restored, HybridRecommender)


def test_a_corrupt_truncated_or_wrongly_typed_checkpoint_is_a_store_error(ensemble):
    import io

    import torch

    ens, data, _, _ = ensemble
    good = ens.to_bytes(data.item_ids)
    buf = io.BytesIO()
    torch.save([1, 2, 3], buf)
    for bad in (b"", b"not a checkpoint", good[: len(good) // 2], buf.getvalue()):
        with pytest.raises(StoreError, match="unreadable hybrid checkpoint"):
            load_hybrid(bad)
