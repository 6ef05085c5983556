"""Pretrained encoders for text, images and audio behind one small contract.

See :mod:`encoders.base` for the contract, :mod:`encoders.registry` for the
registry and the process-wide shared instances, and :mod:`encoders.registries`
for the generic registry it is built on. This package never imports ``mmrec``
or ``fusion``.
"""

from encoders.base import MODALITIES, Encoder, EncoderIdentity, EncoderOutput, Waveform, l2_normalise
from encoders.errors import EncoderError, EncoderLoadError, InputError, UnknownEncoderError
from encoders.registry import (
    DEFAULT_ENCODERS,
    create_encoder,
    get_encoder_class,
    list_encoders,
    register_encoder,
    shared_encoder,
)

__all__ = [
    "DEFAULT_ENCODERS",
    "MODALITIES",
    "Encoder",
    "EncoderError",
    "EncoderIdentity",
    "EncoderLoadError",
    "EncoderOutput",
    "InputError",
    "UnknownEncoderError",
    "Waveform",
    "create_encoder",
    "get_encoder_class",
    "l2_normalise",
    "list_encoders",
    "register_encoder",
    "shared_encoder",
]
