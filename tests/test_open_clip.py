"""The open_clip image/text pair, on a tiny random CLIP checkpoint (offline, fast).

The contract shared by every encoder is in ``test_encoder_contract.py``; this
file checks what is particular to CLIP: the checkpoint really is loaded, both
towers share one model and one embedding space, and load errors are clear.
"""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import tiny_clip
from media_factory import pattern_image

from encoders import EncoderLoadError, InputError, create_encoder, get_encoder_class, list_encoders

TEXTS = ["an owl hooting at night", "boil pasta with tomato sauce", "a red bicycle"]


def _images():
    return [pattern_image("stripes"), pattern_image("checker", (500, 200)), pattern_image("noise", (64, 90))]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny model is far too small to gain from threads, and on a busy machine the
    synchronisation of torch's thread pool costs ~10 ms per layer; restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    """``(spec, in-memory model, checkpoint path)`` of the session's tiny checkpoint."""
    return tiny_clip.session_checkpoint()


@pytest.fixture(scope="module")
def pair(tiny):
    spec = tiny[0]
    return create_encoder(f"open-clip-image:{spec}", modality="image"), create_encoder(
        f"open-clip-text:{spec}", modality="text"
    )


@pytest.fixture(scope="module")
def other_checkpoint(tmp_path_factory):
    """A second tiny checkpoint with other random weights."""
    path = tmp_path_factory.mktemp("other-clip") / "other.pt"
    tiny_clip.build_checkpoint(path, seed=1)
    return f"{tiny_clip.ARCH}/{path}"


def test_registered_with_their_modalities():
    assert "open-clip-image" in list_encoders("image")
    assert "open-clip-text" in list_encoders("text")


def test_unit_float32_vectors_of_embed_dim(pair):
    image, text = pair
    for enc, items in ((image, _images()), (text, TEXTS)):
        out = enc.encode_batch(items)
        assert enc.dim == tiny_clip.CONFIG["embed_dim"]
        assert out.vectors.shape == (len(items), enc.dim)
        assert out.vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)
        assert out.class_scores is None
        assert enc.class_names is None


def test_prepare_shapes(pair):
    image, text = pair
    size = tiny_clip.CONFIG["vision_cfg"]["image_size"]
    x = image.prepare(pattern_image("gradient", (300, 120)))
    assert x.shape == (3, size, size) and x.dtype == np.float32
    ids = text.prepare("a red bicycle")
    assert ids.shape == (tiny_clip.CONFIG["text_cfg"]["context_length"],) and ids.dtype == np.int64
    # Longer texts are truncated to the context window, not refused.
    assert text.prepare("word " * 500).shape == ids.shape


def test_towers_share_one_loaded_model(tiny, pair):
    image, text = pair
    assert image._load() is text._load()
    # Another spelling of the same file finds the same model.
    spec, _, path = tiny
    again = create_encoder(f"open-clip-text:{tiny_clip.ARCH}/{path.parent}/./{path.name}")
    assert again._load() is image._load()


def test_vectors_are_those_of_the_saved_model(tiny, pair):
    """The checkpoint was loaded (not a random re-init): compare with the model that was saved."""
    import open_clip
    import torch
    from open_clip.transform import PreprocessCfg, image_transform_v2

    _, model, _ = tiny
    image, text = pair
    # The model's own eval transform and tokenizer, built independently of the encoder.
    preprocess = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)
    tokenizer = open_clip.get_tokenizer(tiny_clip.ARCH)
    with torch.inference_mode():
        want_img = model.encode_image(torch.stack([preprocess(im) for im in _images()]), normalize=True)
        want_txt = model.encode_text(tokenizer(TEXTS), normalize=True)
    np.testing.assert_allclose(image.encode(_images()), want_img.numpy(), atol=1e-5)
    np.testing.assert_allclose(text.encode(TEXTS), want_txt.numpy(), atol=1e-5)


def test_batch_equals_one_by_one(pair):
    image, text = pair
    for enc, items in ((image, _images()), (text, TEXTS)):
        batch = enc.encode(items)
        single = np.concatenate([enc.encode([x]) for x in items])
        np.testing.assert_allclose(batch, single, atol=2e-5)


def test_identity(tiny, pair, tmp_path):
    from encoders.torch_utils import state_dict_fingerprint

    _, model, path = tiny
    image, text = pair
    assert image.identity.name == "open-clip-image" and text.identity.name == "open-clip-text"
    assert image.identity.model == text.identity.model == f"open_clip {tiny_clip.ARCH} ({path.name})"
    assert image.identity.fingerprint == text.identity.fingerprint == state_dict_fingerprint(model)
    assert image.identity.dim == text.identity.dim == 32
    # Stable: the same weights in another file (a fresh load) give the same fingerprint.
    copy = tmp_path / "copy.pt"
    shutil.copy(path, copy)
    fresh = create_encoder(f"open-clip-image:{tiny_clip.ARCH}/{copy}")
    assert fresh._load() is not image._load()
    assert fresh.identity.fingerprint == image.identity.fingerprint
    assert fresh.identity.model == f"open_clip {tiny_clip.ARCH} (copy.pt)"


def test_other_checkpoint_other_fingerprint_and_space(pair, other_checkpoint):
    image, text = pair
    other_image = create_encoder(f"open-clip-image:{other_checkpoint}")
    other_text = create_encoder(f"open-clip-text:{other_checkpoint}")
    assert other_image.identity.fingerprint != image.identity.fingerprint
    assert other_image.aligned_space == other_text.aligned_space != image.aligned_space
    assert not np.allclose(other_text.encode(TEXTS[:1]), text.encode(TEXTS[:1]), atol=1e-3)


def test_aligned_space(pair):
    image, text = pair
    assert image.aligned_space == text.aligned_space
    assert image.aligned_space == f"open-clip:{tiny_clip.ARCH}:{image.identity.fingerprint}"
    for name in list_encoders():
        if not name.startswith("open-clip-"):
            assert get_encoder_class(name).aligned_space is None, name
    # An instance of another encoder reports None without loading its model.
    assert create_encoder("minilm-l6").aligned_space is None


@pytest.mark.parametrize("bad", ["", "   \n\t"])
def test_empty_text_is_an_input_error(pair, bad):
    with pytest.raises(InputError, match="empty"):
        pair[1].prepare(bad)


def test_image_without_pixels_is_an_input_error(pair):
    from PIL import Image

    with pytest.raises(InputError, match="no pixels"):
        pair[0].prepare(Image.new("RGB", (0, 0)))


@pytest.mark.parametrize("spec", ["", "ViT-B-32", "ViT-B-32/", "/laion2b_s34b_b79k"])
def test_malformed_spec_fails_at_creation(spec):
    name = f"open-clip-image:{spec}" if spec else "open-clip-image"
    with pytest.raises(EncoderLoadError, match="ARCH/PRETRAINED"):
        create_encoder(name)


def test_missing_checkpoint_names_the_path(tmp_path):
    missing = tmp_path / "nope.pt"
    enc = create_encoder(f"open-clip-image:{tiny_clip.ARCH}/{missing}")
    with pytest.raises(EncoderLoadError) as e:
        enc.encode([pattern_image()])
    assert str(missing) in str(e.value)


def test_unreadable_checkpoint_is_a_load_error(tmp_path):
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint")
    enc = create_encoder(f"open-clip-text:{tiny_clip.ARCH}/{bad}")
    with pytest.raises(EncoderLoadError, match="garbage.pt"):
        enc.encode(["hello"])


def test_unknown_arch_suggests_close_names():
    enc = create_encoder("open-clip-text:ViT-B-23/laion2b_s34b_b79k")
    with pytest.raises(EncoderLoadError) as e:
        enc.encode(["hello"])
    msg = str(e.value)
    assert "ViT-B-23" in msg and "ViT-B-32" in msg and "list_models" in msg


def test_unknown_tag_lists_the_tags_of_the_arch():
    enc = create_encoder("open-clip-text:ViT-B-32/no_such_tag")
    with pytest.raises(EncoderLoadError) as e:
        enc.encode(["hello"])
    assert "no_such_tag" in str(e.value) and "laion2b_s34b_b79k" in str(e.value)


def test_tag_that_needs_a_download_fails_clearly_offline(monkeypatch, tmp_path):
    # Without this, huggingface_hub retries an unreachable host for about 45 s before giving up.
    # It reads HF_HUB_OFFLINE once at import, so the constant is patched as well as the variable.
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    # An empty cache: weights cached on this machine must not turn the test into a real load.
    enc = create_encoder("open-clip-image:ViT-B-32/laion2b_s34b_b79k", cache_dir=str(tmp_path))
    start = time.monotonic()
    with pytest.raises(EncoderLoadError) as e:
        enc.encode([pattern_image()])
    assert time.monotonic() - start < 30
    msg = str(e.value)
    assert "ViT-B-32/laion2b_s34b_b79k" in msg and "downloaded" in msg


def test_towers_loading_at_once_share_one_model(tiny, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    copy = tmp_path / "concurrent.pt"  # a file no other test has loaded
    shutil.copy(tiny[2], copy)
    encs = [create_encoder(f"open-clip-{m}:{tiny_clip.ARCH}/{copy}") for m in ("image", "text") * 2]
    with ThreadPoolExecutor(4) as pool:
        loaded = list(pool.map(lambda e: e._load(), encs))
    assert all(c is loaded[0] for c in loaded)
