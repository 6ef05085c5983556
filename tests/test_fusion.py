"""Fusion layers (contract over the registry), the ConSE bridge and contrastive training."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from fusion.bridge import ClassBridge, build_class_bridge
from fusion.data import FusionData
from fusion.layers import FusionConfig, UnknownFusionError, create_fusion, fusion_from_bytes, list_fusions
from fusion.train import TrainConfig, train_fusion

D = 32
RAW = (("text", 0), ("image", 48), ("audio", 40))
CONFIG = FusionConfig(dim=D, raw_dims=RAW, hidden=64, heads=4)
SUBSETS = [s for r in (1, 2, 3) for s in itertools.combinations(range(3), r)]


def random_inputs(n: int, mask: np.ndarray | None = None, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    bridged = torch.nn.functional.normalize(torch.randn(n, 3, D, generator=g), dim=-1)
    raw = {m: torch.randn(n, d, generator=g) if d else torch.zeros(n, 0) for m, d in RAW}
    mask_t = torch.ones(n, 3, dtype=torch.bool) if mask is None else torch.from_numpy(mask)
    return bridged * mask_t.unsqueeze(-1), raw, mask_t


@pytest.fixture(params=list_fusions())
def layer(request):
    return create_fusion(request.param, CONFIG).eval()


@pytest.mark.parametrize("subset", SUBSETS)
def test_any_subset_of_modalities(layer, subset):
    mask = np.zeros((5, 3), bool)
    mask[:, list(subset)] = True
    bridged, raw, mk = random_inputs(5, mask)
    out = layer(bridged, raw, mk)
    assert out.fused.shape == (5, D) and out.tokens.shape == (5, 3, D) and out.weights.shape == (5, 3)
    np.testing.assert_allclose(out.fused.norm(dim=-1).detach().numpy(), 1.0, atol=1e-5)
    w = out.weights.detach().numpy()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
    assert (w[:, [i for i in range(3) if i not in subset]] == 0).all()
    absent = [i for i in range(3) if i not in subset]
    assert (out.tokens[:, absent] == 0).all()


def test_mixed_masks_in_one_batch(layer):
    mask = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 1], [0, 0, 1]], bool)
    bridged, raw, mk = random_inputs(4, mask)
    batch = layer(bridged, raw, mk).fused
    for i in range(4):
        single = layer(bridged[i : i + 1], {m: r[i : i + 1] for m, r in raw.items()}, mk[i : i + 1]).fused
        torch.testing.assert_close(batch[i : i + 1], single, atol=1e-5, rtol=0)


def test_untrained_layer_is_the_normalised_mean_of_bridged_vectors(layer):
    mask = np.random.default_rng(1).random((20, 3)) > 0.4
    mask[~mask.any(axis=1), 0] = True
    bridged, raw, mk = random_inputs(20, mask, seed=3)
    expected = torch.nn.functional.normalize((bridged * mk.unsqueeze(-1)).sum(1), dim=-1)
    torch.testing.assert_close(layer(bridged, raw, mk).fused, expected, atol=1e-5, rtol=0)


def test_serialisation_round_trip(layer):
    bridged, raw, mk = random_inputs(6)
    restored, extra = fusion_from_bytes(layer.to_bytes({"note": "x"}))
    assert extra == {"note": "x"} and restored.fingerprint() == layer.fingerprint()
    torch.testing.assert_close(restored(bridged, raw, mk).fused, layer(bridged, raw, mk).fused)


def test_untrained_identity_is_stable():
    assert create_fusion("attention", CONFIG).fingerprint() == create_fusion("attention", CONFIG).fingerprint()
    other = FusionConfig(dim=D, raw_dims=RAW, hidden=64, heads=4, seed=1)
    assert create_fusion("attention", other).fingerprint() != create_fusion("attention", CONFIG).fingerprint()


def test_unknown_fusion_lists_valid_names():
    with pytest.raises(UnknownFusionError) as e:
        create_fusion("nope", CONFIG)
    assert "attention" in str(e.value) and "mean" in str(e.value)


# ----------------------------------------------------------------------------- bridge


def test_bridge_mixes_the_top_classes():
    emb = np.eye(4, 3, dtype=np.float32)
    emb[3] = [0.6, 0.8, 0]
    bridge = ClassBridge(emb, top_k=2)
    out = bridge(np.array([[0.0, 1.0, 0, 0], [0.5, 0.3, 0.2, 0.0]], np.float32))
    np.testing.assert_allclose(out[0], [0, 1, 0], atol=1e-6)  # one-hot → that class's embedding
    expected = np.array([0.5, 0.3, 0]) / np.linalg.norm([0.5, 0.3, 0])  # top-2 only, renormalised
    np.testing.assert_allclose(out[1], expected, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        bridge(np.zeros((1, 5), np.float32))


def test_bridge_with_the_real_text_encoder():
    from encoders.registry import shared_encoder

    text = shared_encoder("minilm-l6", "text")
    names = ["tabby cat", "sports car", "espresso"]
    bridge = build_class_bridge(text, names, "a picture of {}.")
    cat_like = bridge(np.array([[0.9, 0.05, 0.05]], np.float32))[0]
    q = text.encode(["a cat sleeping on a sofa", "a fast red car"])
    assert cat_like @ q[0] > cat_like @ q[1]


# ----------------------------------------------------------------------------- training


def synthetic_catalog(n: int, sample_seed: int = 0) -> FusionData:
    """Items with a latent topic; each modality sees it through its own fixed random map plus noise."""
    world = np.random.default_rng(1234)  # the same modality maps for every call
    rotations = [np.eye(D, dtype=np.float32)] + [
        np.linalg.qr(world.normal(size=(D, D)))[0].astype(np.float32) for _ in range(2)
    ]
    raw_maps = {m: world.normal(size=(D, d)).astype(np.float32) for m, d in RAW if d}
    rng = np.random.default_rng(sample_seed)
    z = rng.normal(size=(n, D)).astype(np.float32)
    bridged = np.zeros((n, 3, D), np.float32)
    raw = {}
    for i, (m, d) in enumerate(RAW):
        # the bridged view is only weakly aligned (mostly noise); the raw feature carries the rest
        view = 0.3 * z @ rotations[i] + rng.normal(size=(n, D)).astype(np.float32)
        bridged[:, i] = view / np.linalg.norm(view, axis=1, keepdims=True)
        raw[m] = (
            (z @ raw_maps[m] + 0.1 * rng.normal(size=(n, d))).astype(np.float32) if d else np.zeros((n, 0), np.float32)
        )
    mask = rng.random((n, 3)) > 0.2
    mask[mask.sum(1) < 2] = True
    return FusionData(bridged, raw, mask)


def test_training_beats_the_untrained_layer_on_held_out_items():
    data = synthetic_catalog(600)
    layer = create_fusion("attention", CONFIG)
    result = train_fusion(layer, data, TrainConfig(epochs=15, batch_size=128, device="cpu"))
    assert result.improved
    assert result.val_loss_trained < 0.8 * result.val_loss_untrained
    # cross-modal retrieval on fresh items from the same distribution: audio → image tokens
    test = synthetic_catalog(200, sample_seed=99)  # new items, same modality maps
    test.mask[:] = True

    def recall_at_1(model) -> float:
        with torch.no_grad():
            b, r, mk = test.tensors(torch.device("cpu"))
            tokens = model(b, r, mk).tokens
        sims = tokens[:, 2] @ tokens[:, 1].T
        return float((sims.argmax(1) == torch.arange(len(sims))).float().mean())

    assert recall_at_1(result.layer) > recall_at_1(layer) + 0.2
    assert layer.fingerprint() != result.layer.fingerprint()  # the input layer is not modified in place


def test_a_layer_without_parameters_is_returned_unchanged():
    data = synthetic_catalog(100)
    result = train_fusion(create_fusion("mean", CONFIG), data, TrainConfig(epochs=2, device="cpu"))
    assert not result.improved and result.epochs == 0


def _clustered_inputs(n_clusters: int = 6, per: int = 8, seed: int = 1):
    """Image features in tight clusters (the category), bridged vectors that know nothing of them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, 48)) * 3
    feats = np.concatenate([c + rng.normal(size=(per, 48)) for c in centres]).astype(np.float32)
    n = len(feats)
    bridged = rng.normal(size=(n, 3, D)).astype(np.float32)
    bridged /= np.linalg.norm(bridged, axis=-1, keepdims=True)
    mask = np.zeros((n, 3), bool)
    mask[:, 1] = True
    raw = {"text": np.zeros((n, 0), np.float32), "image": feats, "audio": np.zeros((n, 40), np.float32)}
    return FusionData(bridged * mask[:, :, None], raw, mask), np.repeat(np.arange(n_clusters), per)


def _precision_at(vecs: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :k]
    return float(np.mean(labels[top] == labels[:, None]))


def test_skip_is_zero_until_initialised_and_then_keeps_the_feature_neighbourhoods():
    from dataclasses import replace

    from fusion.train import init_skip_pca

    data, labels = _clustered_inputs()
    skip = create_fusion("attention", replace(CONFIG, skip=True)).eval()
    plain = create_fusion("attention", CONFIG).eval()
    b, r, mk = data.tensors(torch.device("cpu"))
    with torch.no_grad():
        before = skip(b, r, mk).fused.numpy()
        torch.testing.assert_close(skip(b, r, mk).fused, plain(b, r, mk).fused)  # zero skip: the untrained layer
        init_skip_pca(skip, data, scale=4.0)
        after = skip(b, r, mk).fused.numpy()
    # Random bridged vectors: no structure before; the principal-subspace skip carries the clusters over.
    assert _precision_at(before, labels) < 0.5
    assert _precision_at(after, labels) >= _precision_at(data.raw["image"], labels) - 0.05 > 0.9


def test_a_layer_with_skip_runs_the_same_in_numpy():
    from dataclasses import replace

    from fusion.arrays import array_fusion
    from fusion.train import init_skip_pca

    data, _ = _clustered_inputs()
    layer = init_skip_pca(create_fusion("attention", replace(CONFIG, skip=True)).eval(), data)
    arrays = array_fusion(layer.to_bytes(), layer.fingerprint())
    assert arrays is not None and arrays.fingerprint() == layer.fingerprint()
    with torch.no_grad():
        want = layer(*data.tensors(torch.device("cpu")))
    fused, tokens, weights = arrays.run(data.bridged, data.raw, data.mask)
    np.testing.assert_allclose(fused, want.fused.numpy(), atol=1e-5)
    np.testing.assert_allclose(tokens, want.tokens.numpy(), atol=1e-5)
