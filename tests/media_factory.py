"""Generated media for tests: real files in real formats, with known content."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def tone(freq: float = 440.0, seconds: float = 2.0, rate: int = 16000, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float = 2.0, rate: int = 16000, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    return (amp * np.random.default_rng(seed).uniform(-1, 1, int(seconds * rate))).astype(np.float32)


def write_audio(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".mp3": "MP3"}.get(path.suffix.lower())
    sf.write(str(path), samples, rate, format=fmt) if fmt else sf.write(str(path), samples, rate)
    return path


def pattern_image(kind: str = "stripes", size: tuple[int, int] = (320, 240), seed: int = 0):
    """A deterministic RGB image: 'stripes', 'checker', 'gradient', 'noise' or a solid colour name."""
    from PIL import Image

    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    if kind == "stripes":
        arr = np.stack([((x // 16) % 2) * 255, np.zeros_like(x), ((x // 16 + 1) % 2) * 255], -1)
    elif kind == "checker":
        arr = np.repeat((((x // 20) + (y // 20)) % 2 * 255)[..., None], 3, -1)
    elif kind == "gradient":
        arr = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 128)], -1)
    elif kind == "noise":
        arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3))
    else:
        return Image.new("RGB", size, kind)
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def write_image(path: Path, kind: str = "stripes", size: tuple[int, int] = (320, 240), **save_kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pattern_image(kind, size).save(path, **save_kwargs)
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def small_catalog(root: Path) -> Path:
    """Five items: full, partial and text-only, in two folders, with a sidecar."""
    write_image(root / "birds" / "owl.png", "stripes")
    write_audio(root / "birds" / "owl.wav", tone(440, 2.0))
    write_text(root / "birds" / "owl.txt", "A great horned owl hooting in the forest at night.")
    write_json(root / "birds" / "owl.json", {"title": "Great horned owl", "tags": ["bird", "night"], "license": "CC0"})
    write_image(root / "birds" / "duck.jpg", "gradient", quality=90)
    write_text(root / "birds" / "duck.txt", "A mallard duck swimming on a pond.")
    write_audio(root / "sounds" / "rain.flac", noise(3.0))
    write_text(root / "sounds" / "rain.md", "# Rain\nSteady rain falling on a roof.")
    write_text(
        root / "recipes" / "pasta.txt", "Boil the pasta for nine minutes, then toss it with tomato sauce and basil."
    )
    write_image(root / "recipes" / "board.png", "checker")
    return root
