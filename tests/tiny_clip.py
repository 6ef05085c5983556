"""A tiny, randomly initialised CLIP model for offline tests of the open_clip encoders.

The architecture is registered with open_clip under :data:`ARCH` from a config
file; its checkpoints are a few MB and load in well under a second, through the
same ``ARCH//path/to/checkpoint.pt`` spec users give for real weights.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

ARCH = "mmrec-tiny-clip-test"

# Small but a real CLIP: a ViT image tower and a transformer text tower. The text
# vocabulary stays at 49408 because open_clip's default tokenizer emits ids up to 49407.
CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}

_lock = threading.Lock()
_session: tuple[str, Any, Path] | None = None


def register_arch(folder: Path) -> str:
    """Write the config to ``folder`` and register it with open_clip; returns the architecture name."""
    import open_clip

    if open_clip.get_model_config(ARCH) is None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{ARCH}.json").write_text(json.dumps(CONFIG), encoding="utf-8")
        open_clip.add_model_config(folder / f"{ARCH}.json")
    return ARCH


def build_checkpoint(path: Path, seed: int = 0) -> Any:
    """Create a randomly initialised tiny CLIP (``seed``), save its state dict to ``path``, return the model.

    The returned model is in eval mode, for comparing against the encoders.
    """
    import open_clip
    import torch

    register_arch(path.parent)
    torch.manual_seed(seed)
    model = open_clip.create_model(ARCH, pretrained=None)
    # Perturb every parameter (biases and norms start as zeros and ones): two seeds then differ
    # everywhere, and an encoder that re-initialised the model with the same seed instead of
    # loading the checkpoint could not reproduce these weights by chance.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model


def session_checkpoint() -> tuple[str, Any, Path]:
    """The tiny checkpoint of this test process, built on first use in a temporary folder.

    Returns
    -------
    (str, torch.nn.Module, Path)
        The spec ``"ARCH//tmp/.../tiny-clip.pt"``, the saved model and the checkpoint path.
    """
    global _session
    with _lock:
        if _session is None:
            folder = Path(tempfile.mkdtemp(prefix="mmrec-tiny-clip-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            path = folder / "tiny-clip.pt"
            model = build_checkpoint(path, seed=0)
            _session = (f"{ARCH}/{path}", model, path)
        return _session


def spec_for(name: str) -> str:
    """Full encoder name with the session checkpoint, e.g. ``"open-clip-text:ARCH//tmp/.../tiny-clip.pt"``."""
    return f"{name}:{session_checkpoint()[0]}"
