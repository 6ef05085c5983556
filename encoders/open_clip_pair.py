"""Image and text encoders that share one CLIP model, through open_clip.

``open-clip-image:SPEC`` and ``open-clip-text:SPEC`` are the two towers of one
CLIP model. CLIP was trained so that an image and a text about the same thing
land close together, so the vectors of the two towers are directly comparable:
both report the same :attr:`~encoders.base.Encoder.aligned_space`.

``SPEC`` is ``ARCH/PRETRAINED``, split at the *first* ``/``:

* ``ViT-B-32/laion2b_s34b_b79k``: an open_clip pretrained tag. The weights are
  downloaded on first use (this needs internet once) into open_clip's cache.
* ``ViT-B-32//path/to/checkpoint.pt``: a local checkpoint file (a state dict
  saved with ``torch.save``, or ``.safetensors``), absolute as here or relative
  (``ViT-B-32/models/checkpoint.pt``); ``~`` is expanded.

``ARCH`` is an open_clip architecture (``python -c "import open_clip;
print(open_clip.list_models())"``); ``open_clip.list_pretrained()`` lists the
``(ARCH, TAG)`` pairs that have published weights. ``hf-hub:`` and
``local-dir:`` model names are not supported.

Both towers of one (spec, device) share one loaded model in the process, so a
pair of encoders loads the weights once.
"""

from __future__ import annotations

import difflib
import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from encoders.base import EncoderIdentity, EncoderOutput, LoadedOnFirstUse, l2_normalise
from encoders.errors import EncoderLoadError, InputError

#: How to list the valid architectures; ``open_clip.list_models()`` is too long for an error message.
LIST_ARCHS_HINT = "list them with: python -c \"import open_clip; print('\\n'.join(open_clip.list_models()))\""


@dataclass(eq=False)
class _ClipModel:
    """One loaded CLIP model with what both towers need from it."""

    model: Any
    #: The eval-time image transform: PIL image -> float tensor ``(3, H, W)``.
    preprocess: Any
    tokenizer: Any
    arch: str
    #: The pretrained tag, or the checkpoint's file name.
    source: str
    fingerprint: str
    dim: int
    context_length: int
    # Hugging Face fast tokenizers (used by some open_clip models) fail with
    # "Already borrowed" when called from several threads at once.
    tokenizer_lock: threading.Lock = field(default_factory=threading.Lock)


# Weak values: a model lives as long as an encoder uses it, and the image and
# text encoders of one spec find the same object while either is alive.
_LOADED: weakref.WeakValueDictionary[tuple[str, str, str], _ClipModel] = weakref.WeakValueDictionary()
# One lock for all loads: a second tower waiting for the same spec must get the
# model the first one is loading, not load it again; loading two different CLIP
# models at the same moment is rare enough not to need finer locks.
_LOAD_LOCK = threading.Lock()


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``"ARCH/PRETRAINED"`` at the first ``/``.

    Returns
    -------
    (str, str)
        The architecture and the pretrained tag or checkpoint path (which may
        itself start with ``/``).

    Raises
    ------
    EncoderLoadError
        When either part is missing.
    """
    arch, sep, pretrained = spec.partition("/")
    if not sep or not arch.strip() or not pretrained.strip():
        # A CLIP model without trained weights gives meaningless vectors: refuse it.
        raise EncoderLoadError(
            f"open_clip spec {spec!r} should be ARCH/PRETRAINED: a pretrained tag as in "
            "'ViT-B-32/laion2b_s34b_b79k' or a checkpoint file as in 'ViT-B-32//path/to/checkpoint.pt'"
        )
    return arch.strip(), pretrained.strip()


def _looks_like_path(pretrained: str) -> bool:
    """Whether ``pretrained`` was meant as a file rather than a tag (tags have no '/', '.' or '~')."""
    return any(c in pretrained for c in ("/", os.sep, ".", "~"))


def _load_clip(spec: str, device: str, cache_dir: str | None) -> _ClipModel:
    """Load (or find already loaded) the CLIP model of ``spec`` on ``device``."""
    arch, pretrained = parse_spec(spec)
    import open_clip

    if open_clip.get_model_config(arch) is None:
        close = difflib.get_close_matches(arch, open_clip.list_models(), n=5, cutoff=0.5)
        hint = f"closest: {', '.join(close)}; " if close else ""
        raise EncoderLoadError(
            f"cannot load open_clip model {spec!r}: unknown architecture {arch!r} ({hint}{LIST_ARCHS_HINT})"
        )
    tag_cfg = open_clip.get_pretrained_cfg(arch, pretrained)
    if tag_cfg:
        weights, source = pretrained, pretrained
    else:
        path = os.path.abspath(os.path.expanduser(pretrained))
        if not os.path.isfile(path):
            if _looks_like_path(pretrained):  # the tags would only bury the path in the message
                raise EncoderLoadError(f"cannot load open_clip model {spec!r}: checkpoint file {path} not found")
            tags = open_clip.list_pretrained_tags_by_model(arch)
            raise EncoderLoadError(
                f"cannot load open_clip model {spec!r}: {pretrained!r} is neither a pretrained tag of {arch} "
                f"(tags: {', '.join(tags) or 'none'}) nor an existing checkpoint file ({path} not found)"
            )
        weights, source = path, Path(path).name

    # The key uses the absolute path so that two spellings of one file share the model.
    key = (arch, weights, str(device))
    with _LOAD_LOCK:
        clip = _LOADED.get(key)
        if clip is not None:
            return clip
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch,
                pretrained=weights,
                device=device,
                cache_dir=cache_dir,
                # OpenAI's weights were trained with QuickGELU; open_clip only warns when the
                # architecture lacks it, and the vectors would then be subtly wrong.
                force_quick_gelu=bool(tag_cfg and tag_cfg.get("quick_gelu", False)),
            )
            tokenizer = open_clip.get_tokenizer(arch)
        except Exception as e:  # open_clip raises RuntimeError, OSError, HTTP errors, torch load errors, ...
            if tag_cfg:
                raise EncoderLoadError(
                    f"cannot load open_clip model {spec!r}: the weights of pretrained tag {pretrained!r} could not "
                    f"be downloaded or loaded (they are downloaded on first use, which needs internet; on an "
                    f"offline machine save a checkpoint elsewhere and use '{arch}//path/to/checkpoint.pt'): {e}"
                ) from e
            raise EncoderLoadError(f"cannot load open_clip model {spec!r} from checkpoint {weights!r}: {e}") from e
        model.eval()
        from encoders.torch_utils import state_dict_fingerprint

        clip = _ClipModel(
            model=model,
            preprocess=preprocess,
            tokenizer=tokenizer,
            arch=arch,
            source=source,
            fingerprint=state_dict_fingerprint(model),
            # The checkpoint was loaded strictly into this config, so its embed_dim is the model's.
            dim=int(open_clip.get_model_config(arch)["embed_dim"]),
            context_length=int(tokenizer.context_length),
        )
        _LOADED[key] = clip
        return clip


class _OpenClipTower(LoadedOnFirstUse):
    """What both towers share: spec parsing, lazy loading, identity.

    Parameters
    ----------
    spec : str
        ``ARCH/PRETRAINED``: see the module docstring.
    device : str
        Torch device, ``"cpu"`` by default.
    cache_dir : str, optional
        Where downloaded weights go; open_clip's default (the Hugging Face
        cache) when ``None``.
    """

    modality: ClassVar[str]

    def __init__(self, spec: str = "", device: str = "cpu", cache_dir: str | None = None) -> None:
        if not spec:
            raise EncoderLoadError(
                f"{self.registry_name} needs ARCH/PRETRAINED, e.g. '{self.registry_name}:ViT-B-32/laion2b_s34b_b79k' "
                f"or '{self.registry_name}:ViT-B-32//path/to/checkpoint.pt'"
            )
        self.arch, self.pretrained = parse_spec(spec)  # syntax errors now, not at the first batch
        self.spec = spec
        self.device = device
        self.cache_dir = cache_dir
        self._clip: _ClipModel | None = None
        self._identity: EncoderIdentity | None = None
        self._lock = threading.Lock()

    def _load(self) -> _ClipModel:
        with self._lock:
            if self._clip is None:
                clip = _load_clip(self.spec, self.device, self.cache_dir)
                self._identity = EncoderIdentity(
                    name=self.registry_name,
                    model=f"open_clip {clip.arch} ({clip.source})",
                    fingerprint=clip.fingerprint,
                    dim=clip.dim,
                )
                self._clip = clip
        return self._clip

    @property
    def dim(self) -> int:
        return self._load().dim

    @property
    def aligned_space(self) -> str:  # type: ignore[override]
        """``"open-clip:ARCH:FINGERPRINT"``: equal for the image and text towers of one model."""
        clip = self._load()
        return f"open-clip:{clip.arch}:{clip.fingerprint}"

    def _empty(self) -> EncoderOutput:
        return EncoderOutput(np.zeros((0, self.dim), np.float32))

    def set_threads(self, n: int) -> None:
        from encoders.torch_utils import set_torch_threads

        set_torch_threads(n)


class OpenClipImageEncoder(_OpenClipTower):
    """CLIP image tower through open_clip (ARCH/PRETRAINED), in the space of open-clip-text.

    Parameters
    ----------
    spec : str
        ``ARCH/PRETRAINED``: ``ViT-B-32/laion2b_s34b_b79k`` or ``ViT-B-32//path/to/checkpoint.pt``.
    device : str
        Torch device, ``"cpu"`` by default.
    cache_dir : str, optional
        Where downloaded weights go; open_clip's default when ``None``.
    """

    registry_name = "open-clip-image"
    modality = "image"
    default_batch_size = 32

    def prepare(self, item: Any) -> np.ndarray:
        """Apply the model's own eval transform (resize, centre-crop, normalise) to one PIL image.

        Returns
        -------
        np.ndarray
            Shape ``(3, H, W)`` with ``H, W`` the model's input size, float32.
        """
        from PIL import Image

        if not isinstance(item, Image.Image):
            raise InputError(f"image encoder expects a PIL image, got {type(item).__name__}")
        if item.width < 1 or item.height < 1:
            raise InputError(f"image has no pixels ({item.width}x{item.height})")
        # The transform converts to RGB itself (palette, RGBA, greyscale ...).
        x = self._load().preprocess(item)
        return np.ascontiguousarray(x.numpy(), dtype=np.float32)

    def encode_prepared(self, batch: Sequence[np.ndarray]) -> EncoderOutput:
        """Run ``model.encode_image`` once over ``N`` prepared images.

        Returns
        -------
        EncoderOutput
            ``vectors`` of shape ``(N, dim)``, float32, L2-normalised; no class scores.
        """
        if not batch:
            return self._empty()
        clip = self._load()
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.stack(batch)).to(self.device)
            feats = clip.model.encode_image(x)
        return EncoderOutput(l2_normalise(feats.float().cpu().numpy()))


class OpenClipTextEncoder(_OpenClipTower):
    """CLIP text tower through open_clip (ARCH/PRETRAINED), in the space of open-clip-image.

    CLIP reads a short window (77 tokens for most models, about 50-60 English
    words): longer texts are truncated, so this suits titles, captions and
    queries rather than whole documents.

    Parameters
    ----------
    spec : str
        ``ARCH/PRETRAINED``: ``ViT-B-32/laion2b_s34b_b79k`` or ``ViT-B-32//path/to/checkpoint.pt``.
    device : str
        Torch device, ``"cpu"`` by default.
    cache_dir : str, optional
        Where downloaded weights go; open_clip's default when ``None``.
    """

    registry_name = "open-clip-text"
    modality = "text"
    default_batch_size = 128

    def prepare(self, item: Any) -> np.ndarray:
        """Tokenise one text with the model's tokenizer (truncated to its context length).

        Returns
        -------
        np.ndarray
            Shape ``(context_length,)``, int64 token ids, zero-padded.
        """
        if not isinstance(item, str):
            raise InputError(f"text encoder expects str, got {type(item).__name__}")
        if not item.strip():
            raise InputError("text is empty")
        clip = self._load()
        with clip.tokenizer_lock:
            ids = clip.tokenizer([item])  # (1, context_length)
        return np.ascontiguousarray(ids[0].numpy(), dtype=np.int64)

    def encode_prepared(self, batch: Sequence[np.ndarray]) -> EncoderOutput:
        """Run ``model.encode_text`` once over ``N`` tokenised texts.

        Returns
        -------
        EncoderOutput
            ``vectors`` of shape ``(N, dim)``, float32, L2-normalised.
        """
        if not batch:
            return self._empty()
        clip = self._load()
        import torch

        with torch.inference_mode():
            ids = torch.from_numpy(np.stack(batch)).to(self.device)
            feats = clip.model.encode_text(ids)
        return EncoderOutput(l2_normalise(feats.float().cpu().numpy()))
