"""Small helpers shared by the torch-based encoders (torch is imported lazily)."""

from __future__ import annotations

import hashlib
from typing import Any


def state_dict_fingerprint(module: Any, length: int = 16) -> str:
    """SHA-256 over a module's parameters and buffers (names, dtypes, shapes, bytes).

    Identifies the weights whatever file format or location they came from, so a
    model loaded from a hub cache and the same model from a local folder agree.
    """
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:length]


def set_torch_threads(n: int) -> None:
    """Set torch's intra-op threads (no-op when ``n`` is not positive)."""
    if n and n > 0:
        import torch

        torch.set_num_threads(int(n))
