"""Decoding media files into what the encoders take.

Every loader raises :class:`mmrec.errors.MediaError` with a short reason a
person can act on; nothing else escapes, so one bad file never stops a run.
"""

from __future__ import annotations

import logging
import os
import stat
import struct
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from encoders.base import Waveform
from mmrec.config import LimitsConfig
from mmrec.errors import MediaError, MediaForbiddenError, MediaUnavailableError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3"})
TEXT_EXTENSIONS = frozenset({".txt", ".md"})

#: Short side the image encoders need; JPEG decoding is asked to scale down to about this.
_DRAFT_SIDE = 320


def modality_of(path: Path) -> str | None:
    """The modality a file extension stands for, or ``None``."""
    ext = path.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in AUDIO_EXTENSIONS:
        return "audio"
    if ext in TEXT_EXTENSIONS:
        return "text"
    return None


def check_file(path: Path, max_bytes: int) -> int:
    """Check that ``path`` is a readable regular file of a sensible size; return its size."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise MediaError(f"cannot open: {e.strerror or e}") from e
    if not stat.S_ISREG(st.st_mode):
        raise MediaError("not a regular file")
    if st.st_size == 0:
        raise MediaError("empty file (0 bytes)")
    if st.st_size > max_bytes:
        raise MediaError(f"file too large ({st.st_size / 2**20:.1f} MiB > limit {max_bytes / 2**20:.0f} MiB)")
    return st.st_size


def load_image(path: Path, limits: LimitsConfig = LimitsConfig()):  # noqa: B008 - frozen dataclass
    """Decode an image file to an RGB PIL image.

    EXIF orientation is applied, transparency is composited on white, and only
    the first frame of an animation is used. JPEGs are decoded at a reduced
    scale when they are much larger than the encoders need.

    Raises
    ------
    MediaError
        Corrupt, truncated, empty or oversized files, decompression bombs,
        files that are not images whatever their extension says.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    check_file(path, limits.max_file_bytes)
    try:
        with warnings.catch_warnings():
            # Pillow only warns below its own hard limit; treat every bomb as an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > limits.max_image_pixels:
                    raise MediaError(
                        f"image too large: {w}x{h} = {w * h / 1e6:.0f} Mpixels > limit {limits.max_image_pixels / 1e6:.0f} M (decompression bomb?)"
                    )
                if w < 1 or h < 1:
                    raise MediaError(f"image has no pixels ({w}x{h})")
                if im.format == "JPEG":
                    im.draft("RGB", (_DRAFT_SIDE, _DRAFT_SIDE))
                im.seek(0)
                im.load()
                im = ImageOps.exif_transpose(im)
                return _to_rgb_on_white(im)
    except MediaError:
        raise
    except UnidentifiedImageError as e:
        raise MediaError("not a decodable image (unknown or corrupt format)") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise MediaError(f"decompression bomb: {e}") from e
    except OSError as e:
        raise MediaError(f"corrupt or truncated image: {e}") from e
    except (ValueError, SyntaxError, EOFError, IndexError, struct.error) as e:
        raise MediaError(f"corrupt image: {e}") from e


def _to_rgb_on_white(im):
    from PIL import Image

    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if im.mode != "RGB":
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            # 16/32-bit greyscale: scale to 8 bits instead of clipping to white.
            arr = np.asarray(im, dtype=np.float64)
            hi = arr.max() or 1.0
            im = Image.fromarray((arr / hi * 255.0).astype(np.uint8), "L")
        return im.convert("RGB")
    return im.copy()


def load_audio(path: Path, limits: LimitsConfig = LimitsConfig()) -> Waveform:  # noqa: B008 - frozen dataclass
    """Decode an audio file to mono float32 at its own sample rate (libsndfile).

    Files longer than ``limits.max_audio_decode_seconds`` are read as ten
    windows spread evenly over the whole file, so memory stays bounded and the
    encoders still hear the whole file, not only its start.

    Raises
    ------
    MediaError
        Corrupt, truncated, empty, silent-length or non-audio files.
    """
    import soundfile as sf

    check_file(path, limits.max_file_bytes)
    try:
        with sf.SoundFile(str(path)) as f:
            rate = int(f.samplerate)
            frames = int(f.frames)
            if rate <= 0:
                raise MediaError(f"invalid sample rate {rate}")
            max_frames = int(limits.max_audio_decode_seconds * rate)
            if 0 < frames <= max_frames or not f.seekable():
                data = f.read(
                    frames=max_frames if frames <= 0 or not f.seekable() else frames, dtype="float32", always_2d=True
                )
            else:
                n_windows = 10
                win = max_frames // n_windows
                starts = np.linspace(0, max(frames - win, 0), n_windows).astype(np.int64)
                parts = []
                for s in starts:
                    f.seek(int(s))
                    parts.append(f.read(frames=win, dtype="float32", always_2d=True))
                data = np.concatenate(parts, axis=0)
    except MediaError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise MediaError(f"not a decodable audio file: {_short(e)}") from e
    except OSError as e:
        raise MediaError(f"cannot read audio: {e.strerror or e}") from e
    if data.size == 0:
        raise MediaError("audio has no samples")
    mono = data.mean(axis=1, dtype=np.float32)
    if not np.isfinite(mono).all():
        raise MediaError("audio contains NaN or infinite samples")
    return Waveform(np.ascontiguousarray(mono, dtype=np.float32), rate)


def read_text(path: Path, limits: LimitsConfig = LimitsConfig()) -> tuple[str, str | None]:  # noqa: B008
    """Read a text file; returns ``(text, warning)``.

    UTF-8 (with or without BOM) and UTF-16 with BOM are read as such. Other
    bytes are decoded as Windows-1252 with replacement characters and a
    warning, so the item keeps its text and the user learns about it.

    Raises
    ------
    MediaError
        Empty, oversized, binary or whitespace-only files.
    """
    check_file(path, limits.max_text_bytes)
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise MediaError(f"cannot read text: {e.strerror or e}") from e
    warning = None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16", errors="replace")
    else:
        if b"\x00" in raw[:8192]:
            raise MediaError("binary data, not text")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            text = raw.decode("cp1252", errors="replace")
            warning = f"not valid UTF-8 (byte {e.start}); decoded as Windows-1252"
    if not text.strip():
        raise MediaError("text file has no text")
    return text.strip(), warning


def _short(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg[:200]


_log = logging.getLogger("mmrec.media")


def resolve_media(item_id: str, catalog: str | None, files: Sequence[dict[str, Any]], kind: str) -> Path:
    """The ``kind`` file recorded for an item, resolved inside its catalog folder.

    Only a path recorded in the item's own ``files`` can be resolved, and only when it leads
    (symlinks followed) to a regular file inside the catalog root with a suffix of that kind.

    Parameters
    ----------
    item_id : str
        For messages.
    catalog : str or None
        The item's catalog root folder.
    files : sequence of dict
        The item's ``files`` entries (``role``, ``path`` relative to the root).
    kind : {"image", "audio"}

    Raises
    ------
    MediaUnavailableError
        No such file recorded, the catalog vanished, or the file is gone.
    MediaForbiddenError
        The file resolves outside the catalog, or does not have a ``kind`` suffix.
    """
    entry = next((f for f in files if f.get("role") == kind), None)
    if entry is None or not catalog:
        raise MediaUnavailableError(f"item {item_id!r} has no {kind} file")
    try:
        root = Path(catalog).resolve(strict=True)
        target = (root / entry["path"]).resolve()
    except (OSError, RuntimeError) as e:  # a vanished catalog, a symlink loop
        raise MediaUnavailableError(f"the {kind} file of {item_id!r} is not available") from e
    # resolve() follows every symlink, so a link that escapes the catalog lands outside the root here.
    if not target.is_relative_to(root):
        _log.warning("refused %s of %r: %s is outside the catalog %s", kind, item_id, target, root)
        raise MediaForbiddenError(f"the {kind} file of {item_id!r} is outside the catalog; not served")
    allowed = IMAGE_EXTENSIONS if kind == "image" else AUDIO_EXTENSIONS
    if target.suffix.lower() not in allowed:
        raise MediaForbiddenError(f"the {kind} file of {item_id!r} is not a {kind} file; not served")
    if not target.is_file():
        raise MediaUnavailableError(f"the {kind} file of {item_id!r} is gone (re-run mmrec ingest)")
    return target
