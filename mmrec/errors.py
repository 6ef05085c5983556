"""The error hierarchy of the application.

Every error a user can cause derives from :class:`MMRecError`; the CLI prints
its message on one line and exits non-zero. Errors from the ``encoders`` package
(:class:`encoders.errors.EncoderError`) are treated the same way.
"""

from __future__ import annotations


class MMRecError(Exception):
    """Base class of mmrec's user-facing errors."""


class CatalogError(MMRecError):
    """A catalog folder or manifest that cannot be used at all."""


class MediaError(MMRecError):
    """One media file that cannot be decoded (the item keeps its other modalities)."""


class StoreError(MMRecError):
    """The database cannot be opened, read or written."""


class EncoderMismatchError(StoreError):
    """The database's vectors were made by other encoders than the ones requested."""


class ItemNotFoundError(MMRecError, KeyError):
    """An item id that is not in the database."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class IngestProblemsError(MMRecError):
    """``--strict`` ingest that met problems (the good items are still stored)."""


class InvalidArgumentError(MMRecError, ValueError):
    """A bad option value (negative limit, malformed filter, ...)."""


class MediaUnavailableError(MMRecError):
    """An item's media file that is not recorded, gone, or unreadable (HTTP 404)."""


class MediaForbiddenError(MMRecError):
    """An item's media file that resolves outside its catalog or is not of the asked kind (HTTP 403)."""


class UnknownItemsError(ItemNotFoundError):
    """Interactions that name items not in the database; nothing was recorded.

    Attributes
    ----------
    unknown : list of (int, str)
        Position in the batch and the unknown item id.
    """

    def __init__(self, message: str, unknown: list[tuple[int, str]]) -> None:
        super().__init__(message)
        self.unknown = unknown


class WriterBusyError(StoreError):
    """Another process (or thread) is writing the database and this write was asked not to wait."""
