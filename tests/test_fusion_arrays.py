"""The NumPy fusion layers (fusion.arrays) equal the torch ones, read the files torch saved, and refuse others."""

from __future__ import annotations

import dataclasses
import io
import itertools
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from fusion.arrays import ArrayFusion, array_fusion, pretrained_arrays, read_torch_save
from fusion.layers import FusionConfig, create_fusion

REPO = Path(__file__).resolve().parent.parent
D = 32
RAW = (("text", 0), ("image", 48), ("audio", 40))
CONFIG = FusionConfig(dim=D, raw_dims=RAW, hidden=64, heads=4)
#: Every subset of the three modalities, the empty one included.
SUBSETS = [list(s) for r in (0, 1, 2, 3) for s in itertools.combinations(range(3), r)]


def _trained_like(name: str, seed: int = 0, config: FusionConfig = CONFIG):
    """A layer whose every weight is non-trivial (an untrained head is the identity and would hide bugs)."""
    layer = create_fusion(name, config).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return layer


def _inputs(n: int = 24, seed: int = 1):
    rng = np.random.default_rng(seed)
    bridged = rng.normal(size=(n, 3, D)).astype(np.float32)
    raw = {m: rng.normal(size=(n, d)).astype(np.float32) for m, d in RAW}
    mask = np.zeros((n, 3), bool)
    for i in range(n):
        mask[i, SUBSETS[i % len(SUBSETS)]] = True
    return bridged * mask[..., None], raw, mask


@pytest.mark.parametrize("name, skip", [("mean", False), ("attention", False), ("attention", True)])
def test_numpy_layer_equals_the_torch_layer(name, skip):
    layer = _trained_like(name, config=dataclasses.replace(CONFIG, skip=skip))
    arrays = array_fusion(layer.to_bytes(), layer.fingerprint())
    assert isinstance(arrays, ArrayFusion) and arrays.fingerprint() == layer.fingerprint()
    bridged, raw, mask = _inputs()
    with torch.inference_mode():
        out = layer(torch.from_numpy(bridged), {m: torch.from_numpy(r) for m, r in raw.items()}, torch.from_numpy(mask))
    fused, tokens, weights = arrays.run(bridged, raw, mask)
    np.testing.assert_allclose(fused, out.fused.numpy(), atol=2e-6)
    np.testing.assert_allclose(tokens, out.tokens.numpy(), atol=2e-6)
    np.testing.assert_allclose(weights, out.weights.numpy(), atol=2e-6)
    assert (fused[~mask.any(axis=1)] == 0).all() and (weights[~mask.any(axis=1)] == 0).all()
    # and back: the torch module made from the arrays is the same layer
    assert arrays.to_torch().fingerprint() == layer.fingerprint()


def test_the_shipped_pretrained_layer_reads_without_torch_with_its_recorded_fingerprint():
    from fusion.pretrained import DEFAULT_PRETRAINED, load_pretrained, provenance

    arrays = pretrained_arrays(DEFAULT_PRETRAINED)
    assert arrays is not None and arrays.fingerprint() == provenance(DEFAULT_PRETRAINED)["fingerprint"]
    torch_layer = load_pretrained(DEFAULT_PRETRAINED).layer
    rng = np.random.default_rng(0)
    cfg = dict(arrays.config["raw_dims"])
    bridged = rng.normal(size=(6, 3, arrays.config["dim"])).astype(np.float32)
    raw = {m: rng.normal(size=(6, int(cfg[m]))).astype(np.float32) for m in ("text", "image", "audio")}
    mask = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 1, 1]], bool)
    with torch.inference_mode():
        out = torch_layer(
            torch.from_numpy(bridged), {m: torch.from_numpy(r) for m, r in raw.items()}, torch.from_numpy(mask)
        )
    np.testing.assert_allclose(arrays.run(bridged, raw, mask)[0], out.fused.numpy(), atol=2e-6)
    code = (
        "import sys\nfrom fusion.arrays import pretrained_arrays\n"
        f"a = pretrained_arrays({DEFAULT_PRETRAINED!r})\nprint(a is not None, 'torch' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.stdout.split() == ["True", "False"], res.stderr[-1000:]


def test_other_weights_or_other_files_give_no_numpy_layer():
    layer = _trained_like("attention")
    data = layer.to_bytes()
    assert array_fusion(data, "0" * 16) is None  # not the recorded weights: the caller uses torch
    # a layer with weights or settings the NumPy version does not compute is refused, never run half
    state = {k: v.numpy() for k, v in layer.state_dict().items()}
    with pytest.raises(ValueError, match="do not match"):
        ArrayFusion("attention", dataclasses.asdict(CONFIG), {**state, "norm.weight": np.ones(D, np.float32)})
    with pytest.raises(ValueError, match="does not know"):
        ArrayFusion("attention", {**dataclasses.asdict(CONFIG), "norm": True}, state)
    assert array_fusion(b"not a zip") is None
    buf = io.BytesIO()
    torch.save({"name": "attention", "config": {}, "state": {}, "extra": torch.nn.Linear(2, 2)}, buf)
    with pytest.raises(ValueError, match="not a plain tensor file"):
        read_torch_save(buf.getvalue())  # a module in the file is refused, not built
    assert array_fusion(buf.getvalue()) is None
    # a file whose pickle would run code is refused before running it
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(print))
    with pytest.raises(ValueError, match="builtins.print"):
        read_torch_save(evil.getvalue())


def test_strided_and_half_tensors_read_as_torch_loads_them():
    t = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    buf = io.BytesIO()
    torch.save({"t": t.t(), "h": t.half()[1:], "i": torch.tensor([3, 4])}, buf)
    got = read_torch_save(buf.getvalue())
    np.testing.assert_array_equal(got["t"], t.t().numpy())
    np.testing.assert_array_equal(got["h"], t.half()[1:].numpy())
    np.testing.assert_array_equal(got["i"], np.array([3, 4]))
