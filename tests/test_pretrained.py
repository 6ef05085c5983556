"""The pretrained shared space shipped with the package: loading, identity, new databases, fine-tuning."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from media_factory import write_text
from test_training import COLOURS, draw

from fusion.pretrained import (
    DEFAULT_PRETRAINED,
    PRETRAINED_DIR,
    PretrainedError,
    encoder_mismatch,
    load_pretrained,
    provenance,
)
from fusion.train import TrainConfig
from mmrec import Engine
from mmrec.errors import InvalidArgumentError, StoreError
from mmrec.space import SharedSpace

#: Licences whose terms allow distributing weights trained on the data (the issue's list).
REDISTRIBUTABLE = ("Public Domain", "CC0", "Apache-2.0", "MIT", "Unicode")


def test_shipped_weights_load_and_match_their_fingerprint():
    shipped = load_pretrained()
    prov = provenance()
    assert shipped.layer.fingerprint() == prov["fingerprint"]
    assert prov["fusion"] == "attention" and prov["seed"] == 0
    assert not shipped.layer.training
    size = (PRETRAINED_DIR / f"{DEFAULT_PRETRAINED}.pt").stat().st_size
    assert size < 10_000_000  # "a few MB": float16 weights
    assert prov["config"]["skip"]  # the heads' raw-feature skip (image structure kept), see fusion.train.init_skip_pca
    assert prov["settings"]["structure_fused"]  # and the whole-item structure term (TrainConfig.structure_fused)


def test_provenance_lists_only_redistributable_sources_and_held_out_results():
    prov = provenance()
    assert set(prov["sources"]) == {"openclipart", "noto", "animals_cc0", "soundfont"}
    for source in prov["sources"].values():
        parts = [p.strip() for p in re.sub(r"\(.*?\)", "", source["license"]).split(";")]
        assert all(p.startswith(REDISTRIBUTABLE) for p in parts), source["license"]
    assert "openmoji" in prov["left_out"]
    corpus = prov["corpus"]
    assert corpus["noto"] > 1500 and corpus["openclipart"] > 7000 and corpus["animals_cc0"] == 10  # every drawing
    assert corpus["soundfont"] > 400  # every GM program and percussion sound
    assert "sounds_heldout" in prov["held_out"] and "openmoji" in prov["held_out"]


def test_corrupt_or_swapped_weights_are_detected(tmp_path):
    for suffix in (".pt", ".json"):
        shutil.copy(PRETRAINED_DIR / f"{DEFAULT_PRETRAINED}{suffix}", tmp_path / f"x{suffix}")
    prov = json.loads((tmp_path / "x.json").read_text())
    prov["fingerprint"] = "0" * 16
    (tmp_path / "x.json").write_text(json.dumps(prov))
    with pytest.raises(PretrainedError, match="provenance records 0000000000000000"):
        load_pretrained("x", tmp_path)
    with pytest.raises(PretrainedError, match="no pretrained fusion layer 'nope'; shipped: x"):
        load_pretrained("nope", tmp_path)


def test_other_encoders_cannot_use_the_pretrained_layer():
    prov = provenance()
    same = {m: dict(ident) for m, ident in prov["encoders"].items()}
    assert encoder_mismatch(prov, same) is None
    other = {**same, "image": {**same["image"], "name": "efficientnet-lite0-int8", "fingerprint": "abc"}}
    why = encoder_mismatch(prov, other)
    assert "image encoder 'efficientnet-lite0'" in why and "'efficientnet-lite0-int8'" in why


def test_unknown_initial_fusion_is_refused(real_encoders):
    with pytest.raises(InvalidArgumentError, match="choose one of pretrained, untrained"):
        SharedSpace.initial(real_encoders, "clip")


def test_other_encoders_start_untrained_and_say_so(real_encoders):
    class Renamed:
        """The real image encoder under another identity (as int8 weights would be)."""

        def __init__(self, enc):
            self._enc = enc
            self.identity = type(enc.identity)(enc.identity.name + "-int8", enc.identity.model, "f" * 16, enc.dim)

        def vector_identity(self):  # an int8 model does not reproduce the fp32 vectors
            return self.identity

        def __getattr__(self, name):
            return getattr(self._enc, name)

    space = SharedSpace.initial({**real_encoders, "image": Renamed(real_encoders["image"])})
    assert space.pretrained is None and space.version == 0
    ident = space.identity()
    assert "starting untrained" in ident["note"] and real_encoders["image"].identity.name + "-int8" in ident["note"]
    assert ident["fingerprint"] == SharedSpace.untrained(real_encoders).identity()["fingerprint"]


def test_new_database_starts_from_the_pretrained_layer(catalog, tmp_path, real_encoders):
    engine = Engine(str(tmp_path / "db"))
    engine.ingest(catalog)
    ident = engine.store.fusion_identity()
    assert ident["pretrained"] == DEFAULT_PRETRAINED and ident["version"] == 0
    assert ident["fingerprint"] == provenance()["fingerprint"]
    fresh = Engine(str(tmp_path / "db"))
    space = fresh.space()
    assert space.pretrained == DEFAULT_PRETRAINED
    rows = fresh.store.list(
        limit=None,
        columns=[
            "id",
            "text_vec",
            "image_vec",
            "image_scores",
            "audio_vec",
            "audio_scores",
            "fused_vec",
            "fusion_weights",
        ],
    )
    for row, values in zip(rows, space.fusion_values(rows), strict=True):
        np.testing.assert_allclose(row["fused_vec"], values["fused_vec"], atol=1e-5)
    owl = next(r for r in rows if r["id"] == "birds/owl")
    weights = np.asarray(owl["fusion_weights"])
    # The weights come from the pretrained attention, not the untrained mean's exact thirds (the
    # shipped layer's attention is still close to uniform: 10 epochs on a small corpus, see the report).
    assert not np.allclose(weights, 1 / 3, atol=1e-4)

    untrained = Engine(str(tmp_path / "db2"), fusion="untrained")
    untrained.ingest(catalog)
    ident2 = untrained.store.fusion_identity()
    assert "pretrained" not in ident2
    assert ident2["fingerprint"] == SharedSpace.untrained(real_encoders).identity()["fingerprint"]


def test_identity_mismatch_between_pretrained_versions_is_detected(catalog, tmp_path, real_encoders):
    engine = Engine(str(tmp_path / "db"))
    engine.ingest(catalog)
    ident = engine.store.fusion_identity()
    # A database started from an older (or newer) release's layer of the same name.
    engine.store.set_fusion_identity({**ident, "fingerprint": "0123456789abcdef"})
    with pytest.raises(StoreError, match=f"pretrained fusion '{DEFAULT_PRETRAINED}' with weights 0123456789abcdef"):
        Engine(str(tmp_path / "db")).space()


def test_a_database_started_from_an_older_release_is_refused_in_one_line(catalog, tmp_path, real_encoders):
    """v1 and v2 are not shipped any more: their fused vectors cannot be reproduced, so a database
    started from one (and never fine-tuned) is refused with the layer it needs, not re-fused silently."""
    engine = Engine(str(tmp_path / "db"))
    engine.ingest(catalog)
    ident = engine.store.fusion_identity()
    for old in sorted({"mmrec-space-v1", "mmrec-space-v2"} - {DEFAULT_PRETRAINED}):
        engine.store.set_fusion_identity({**ident, "pretrained": old, "fingerprint": "5ca50d5be63b4448"})
        with pytest.raises(StoreError, match=f"started from pretrained fusion '{old}', which this installation") as e:
            Engine(str(tmp_path / "db")).space()
        assert "\n" not in str(e.value) and "re-ingest into a new --db" in str(e.value)


def test_fine_tuning_uses_a_gentler_rate_and_holds_out_more():
    base = TrainConfig()
    ft = base.for_finetuning()
    assert (ft.lr, ft.val_fraction) == (base.finetune_lr, base.finetune_val_fraction) == (3e-4, 0.3)
    assert base.lr == 1e-3 and base.val_fraction == 0.15  # training from scratch keeps its rate
    assert TrainConfig(lr=1e-4).for_finetuning().lr == 1e-4  # never raises a rate asked for


def test_a_ten_item_catalog_fine_tunes(tmp_path, real_encoders, monkeypatch):
    import fusion.train

    seen = []
    real_train = fusion.train.train_fusion
    monkeypatch.setattr(
        fusion.train,
        "train_fusion",
        lambda layer, data, cfg, **kw: seen.append(cfg) or real_train(layer, data, cfg, **kw),
    )
    root = tmp_path / "cat"
    shapes = [("red", "circle"), ("green", "square"), ("blue", "triangle"), ("yellow", "stripes"), ("black", "cross")]
    for colour, shape in shapes:
        for k in range(2):
            (root / colour).mkdir(parents=True, exist_ok=True)
            draw(shape, COLOURS[colour], 140 + 40 * k).save(root / colour / f"{shape}-{k}.png")
            write_text(root / colour / f"{shape}-{k}.txt", f"A {colour} {shape} drawn on a white background.")
    engine = Engine(str(tmp_path / "db"))
    engine.ingest(root)
    report = engine.train(TrainConfig(epochs=30, device="cpu"))
    assert report.items == 10 and report.multimodal_items == 10
    assert "too few" not in report.message
    assert report.metrics["started_from"] == f"pretrained {DEFAULT_PRETRAINED}"
    assert report.metrics["val_items"] == 3  # small catalog: 30 % held out
    assert seen and seen[0].lr == TrainConfig().finetune_lr  # mmrec train on a pretrained space fine-tunes
    assert report.saved, report.message
    assert report.metrics["val_loss_trained"] < report.metrics["val_loss_untrained"]
    assert engine.store.fusion_identity()["version"] == 1


def _benchmark_module(name):
    import importlib
    import sys
    from pathlib import Path

    folder = str(Path(__file__).resolve().parent.parent / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


def test_the_soundfont_score_is_a_valid_midi_file():
    ps = _benchmark_module("pretrain_sounds")
    notes = ps._notes()
    assert len(notes) == 128 * len(ps.PITCHES) + 47 * len(ps.VELOCITIES)
    data = ps.midi_file(notes[:2])
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk"
    (length,) = __import__("struct").unpack(">I", data[18:22])
    assert len(data) == 22 + length and data.endswith(b"\xff\x2f\x00")


def test_sounds_join_the_pictures_titled_like_their_label():
    from fusion.data import FusionData

    ps = _benchmark_module("pretrain_sounds")

    def source(ids, texts, present):
        n = len(ids)
        mask = np.zeros((n, 3), bool)
        mask[:, 0] = True
        mask[:, present] = True
        raw = {"text": np.zeros((n, 0), np.float32), "image": np.full((n, 4), 1.0, np.float32)}
        raw["audio"] = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
        data = FusionData(np.ones((n, 3, 8), np.float32), raw, mask)
        return [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)], data

    sounds = source(["s/cat", "s/organ", "s/trumpet"], ["cat meowing\n", "rock organ\n", "muted trumpet\n"], 2)
    pictures = source(["p/cat", "p/rock", "p/trumpet"], ["cat\n", "rock\n", "trumpet\n"], 1)
    joined, pairs = ps.join_by_label([sounds], [pictures])
    # "rock organ" is no rock: the words of _NOT_HEADS never match on their own.
    assert pairs == [("s/cat", "p/cat"), ("s/trumpet", "p/trumpet")]
    assert joined.mask.all() and len(joined) == 2
    np.testing.assert_array_equal(joined.raw["audio"], sounds[1].raw["audio"][[0, 2]])


def _paired_data(n=96, dim=16, raw_dim=24, seed=0):
    """Synthetic text+image items: the image feature is a fixed linear map of the caption's vector plus noise."""
    from fusion.data import FusionData

    rng = np.random.default_rng(seed)
    text = rng.normal(size=(n, dim)).astype(np.float32)
    image_raw = (text @ rng.normal(size=(dim, raw_dim)) + 0.1 * rng.normal(size=(n, raw_dim))).astype(np.float32)
    bridged = np.zeros((n, 3, dim), np.float32)
    bridged[:, 0] = text / np.linalg.norm(text, axis=1, keepdims=True)
    bridged[:, 1] = rng.normal(size=(n, dim))  # a bridge that knows nothing
    mask = np.zeros((n, 3), bool)
    mask[:, :2] = True
    raw = {"text": np.zeros((n, 0), np.float32), "image": image_raw, "audio": np.zeros((n, 8), np.float32)}
    return FusionData(bridged, raw, mask)


_RAW_DIMS = (("text", 0), ("image", 24), ("audio", 8))


def _small_layer():
    """An untrained attention layer sized for :func:`_paired_data` (16-d space, 24-d image features)."""
    from fusion.layers import FusionConfig, create_fusion

    return create_fusion("attention", FusionConfig(dim=16, raw_dims=_RAW_DIMS, hidden=32, heads=2))


def test_frozen_parameters_stay_fixed_while_the_rest_trains():
    import torch

    from fusion.layers import FusionConfig, create_fusion
    from fusion.train import init_skip_pca, train_fusion

    data = _paired_data()
    config = FusionConfig(dim=16, raw_dims=(("text", 0), ("image", 24), ("audio", 8)), hidden=32, heads=2, skip=True)
    start = init_skip_pca(create_fusion("attention", config), data)
    cfg = TrainConfig(epochs=4, batch_size=32, device="cpu", structure_fused=True, frozen=("skip",))
    result = train_fusion(start, data, cfg)
    assert result.improved and result.val_loss_trained < result.val_loss_untrained
    before, after = start.state_dict(), result.layer.state_dict()
    skip = [k for k in before if ".skip." in k]
    assert skip and all(torch.equal(before[k], after[k]) for k in skip)
    assert not torch.equal(before["heads.image.mlp.0.weight"], after["heads.image.mlp.0.weight"])
    assert all(p.requires_grad for p in result.layer.parameters())  # frozen for that run only


def test_the_whole_item_structure_term_is_part_of_the_loss():
    import torch

    from fusion.train import _structure_kl, contrastive_loss

    data = _paired_data(n=32)
    layer = _small_layer()
    b, r, m = data.tensors(torch.device("cpu"))
    with torch.no_grad():
        losses = [
            float(contrastive_loss(layer, b, r, m, 0.05, 0.0, torch.Generator().manual_seed(0), 1.0, fused))
            for fused in (False, True)
        ]
        # By hand: the image structure terms (image-only fused vector, image token), then the whole-item vector.
        full = layer(b, r, m)
        only = torch.zeros_like(m)
        only[:, 1] = True
        single = layer(b, r, only).fused
        kl = [_structure_kl(r["image"], v, 0.05) for v in (single, full.tokens[:, 1], full.fused)]
    expected = float(torch.stack(kl).mean() - torch.stack(kl[:2]).mean())
    assert float(kl[2]) > 0  # the untrained whole-item vector (caption + a bridge that knows nothing) loses them
    assert losses[1] - losses[0] == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_freedoom_sound_lumps_are_read_out_of_a_wad(tmp_path):
    import struct

    sfx = _benchmark_module("pretrain_sfx")
    samples = bytes([128, 255, 0, 128])
    lump = struct.pack("<HHI", 3, 11025, len(samples) + 32) + bytes(16) + samples + bytes(16)
    other = b"not a sound"
    body = lump + other
    directory = struct.pack("<ii8s", 12, len(lump), b"DSDOROPN") + struct.pack("<ii8s", 12 + len(lump), 11, b"MAP01")
    (tmp_path / "x.wad").write_bytes(b"PWAD" + struct.pack("<ii", 2, 12 + len(body)) + body + directory)
    sounds = sfx.wad_sounds(tmp_path / "x.wad")
    assert list(sounds) == ["DSDOROPN"]
    pcm, rate = sounds["DSDOROPN"]
    assert rate == 11025 and pcm.tolist() == [0, 127 * 256, -128 * 256, 0]  # unsigned 8-bit, centred
    assert sfx.freedoom_label("DSDOROPN") == ("doors and machines", "door opening")
    assert sfx.freedoom_label("DSCACDTH") == ("monsters", "monster death scream")
    assert sfx.freedoom_label("DSPOSIT2") == ("monsters", "monster growl")


def test_drum_kit_instrument_names_become_labels_and_categories():
    sfx = _benchmark_module("pretrain_sfx")
    assert sfx._drum("c#3 - stick") == ("stick", "snare drum")
    assert sfx._drum('Kick (Tama Superstar 22")') == ("kick", "kick drum")
    assert sfx._drum("Sabian Hat Semi-Open") == ("hat semi open", "hi-hat")
    assert sfx._drum("Djembe1 Slap") == ("djembe1 slap", "percussion")


def test_a_pair_weight_reweights_its_infonce_term_in_the_mean():
    import torch

    from fusion.train import _info_nce, contrastive_loss

    data = _paired_data(n=32)
    layer = _small_layer()
    b, r, m = data.tensors(torch.device("cpu"))
    with torch.no_grad():
        plain, weighted = (
            float(contrastive_loss(layer, b, r, m, 0.05, 0.0, torch.Generator().manual_seed(0), pair_weights=pw))
            for pw in ((), (("text-image", 3.0),))
        )
        tokens = layer(b, r, m).tokens
        pair = float(_info_nce(tokens[:, 0], tokens[:, 1], 0.05))
    # Three terms (the text-image pair, text -> item, image -> item): (3 pair + rest) / 5, rest = 3 plain - pair.
    assert weighted == pytest.approx((2 * pair + 3 * plain) / 5, rel=1e-5)
    assert weighted != pytest.approx(plain, rel=1e-3)


def test_a_parameter_group_with_no_rate_keeps_its_weights():
    import torch

    from fusion.train import train_fusion

    data = _paired_data()
    start = _small_layer()
    cfg = TrainConfig(epochs=3, batch_size=32, device="cpu", param_groups=(("heads.image.mlp", 0.0, 0.0),))
    result = train_fusion(start, data, cfg)
    assert result.improved
    before, after = start.state_dict(), result.layer.state_dict()
    image_mlp = [k for k in before if k.startswith("heads.image.mlp.")]
    assert image_mlp and all(torch.equal(before[k], after[k]) for k in image_mlp)
    assert not torch.equal(before["heads.text.mlp.0.weight"], after["heads.text.mlp.0.weight"])


def test_a_weight_soup_is_the_mean_of_its_members():
    import torch

    from fusion.layers import FusionConfig, create_fusion
    from fusion.train import average_layers

    a, b = _small_layer(), _small_layer()
    with torch.no_grad():
        for p in b.parameters():
            p.add_(1.0)
    soup = average_layers([a, b])
    sa, sb, ss = a.state_dict(), b.state_dict(), soup.state_dict()
    assert all(torch.allclose(ss[k], (sa[k] + sb[k]) / 2) for k in sa)
    assert average_layers([a]).fingerprint() == a.fingerprint()
    other = create_fusion("attention", FusionConfig(dim=16, raw_dims=_RAW_DIMS, hidden=8, heads=2))
    with pytest.raises(ValueError, match="another shape"):
        average_layers([a, other])
