"""Converting the demo catalog's pictures: an openclipart SVG to a PNG on white, a photo to a
small JPEG.  Deterministic for the same Pillow and cairosvg versions."""

from __future__ import annotations

import io
from pathlib import Path

PNG_SIDE = 256
JPEG_SIDE = 320
JPEG_QUALITY = 85


def render_svg(path: Path) -> bytes:
    import cairosvg
    from PIL import Image

    first = Image.open(io.BytesIO(cairosvg.svg2png(url=str(path))))
    scale = 4 * PNG_SIDE / max(first.size)
    im = Image.open(io.BytesIO(cairosvg.svg2png(url=str(path), scale=scale))).convert("RGBA")
    bbox = im.getchannel("A").point(lambda a: 255 if a > 16 else 0).getbbox()
    if bbox is None:
        raise SystemExit(f"{path}: renders empty")
    im = im.crop(bbox)
    margin = max(im.size) // 20
    side_w, side_h = im.size[0] + 2 * margin, im.size[1] + 2 * margin
    canvas = Image.new("RGBA", (side_w, side_h), (255, 255, 255, 255))
    canvas.alpha_composite(im, (margin, margin))
    rgb = canvas.convert("RGB")
    f = PNG_SIDE / max(rgb.size)
    rgb = rgb.resize((max(1, round(rgb.size[0] * f)), max(1, round(rgb.size[1] * f))), Image.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, "PNG", optimize=True)
    return out.getvalue()


def convert_photo(path: Path) -> bytes:
    from PIL import Image

    im = Image.open(path)
    im = im.convert("L" if im.mode in ("L", "1") else "RGB")
    im.thumbnail((JPEG_SIDE, JPEG_SIDE), Image.LANCZOS)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()
