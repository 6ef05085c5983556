"""Errors raised by encoders.

``encoders`` does not import ``mmrec``; the application maps these into its own
error hierarchy (see ``mmrec.errors``).
"""

from __future__ import annotations

from encoders.registries import UnknownNameError


class EncoderError(Exception):
    """Base class of every error raised by the ``encoders`` package."""


class UnknownEncoderError(EncoderError, UnknownNameError):
    """An encoder name that is not in the registry (a :class:`KeyError`)."""


class EncoderLoadError(EncoderError):
    """The model behind an encoder could not be loaded (missing weights, bad checkpoint, ...)."""


class InputError(EncoderError, ValueError):
    """An input the encoder cannot use (wrong type, empty, unusable shape)."""
