"""mmrec: a self-hosted multimodal recommendation engine.

The public API is :class:`Engine`; it is imported lazily so that
``import mmrec`` (and ``mmrec --help``) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Engine", "__version__"]

if TYPE_CHECKING:
    from mmrec.engine import Engine


def __getattr__(name: str) -> Any:
    if name == "Engine":
        from mmrec.engine import Engine

        return Engine
    raise AttributeError(f"module 'mmrec' has no attribute {name!r}")
