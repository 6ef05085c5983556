"""Decoding real files, good and bad: every failure is a MediaError with a reason."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from media_factory import pattern_image, tone, write_audio, write_image, write_text
from PIL import Image

from mmrec.catalog.media import load_audio, load_image, read_text
from mmrec.config import LimitsConfig
from mmrec.errors import MediaError

# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".gif", ".bmp", ".tiff"])
def test_every_image_format_decodes_to_rgb(tmp_path, ext):
    path = write_image(tmp_path / f"x{ext}", "gradient", (120, 80))
    im = load_image(path)
    assert im.mode == "RGB" and im.size == (120, 80)


def test_exif_orientation_is_applied(tmp_path):
    img = pattern_image("gradient", (120, 80))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif.tobytes(), quality=95)
    assert load_image(path).size == (80, 120)


def test_transparency_is_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (50, 50), (255, 0, 0, 0))  # fully transparent red
    rgba.paste((0, 0, 255, 255), (10, 10, 20, 20))
    path = tmp_path / "t.png"
    rgba.save(path)
    arr = np.asarray(load_image(path))
    assert tuple(arr[0, 0]) == (255, 255, 255)
    assert tuple(arr[15, 15]) == (0, 0, 255)


def test_animation_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (40, 40), c) for c in ("red", "lime", "blue")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    r, g, b = np.asarray(load_image(path))[20, 20]
    assert r > 200 and g < 50 and b < 50


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path):
    arr = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(arr).save(path)
    out = np.asarray(load_image(path))
    assert out[0, 0, 0] < 10 and out[-1, -1, 0] > 245


def test_corrupt_image(tmp_path):
    path = tmp_path / "bad.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(300))
    with pytest.raises(MediaError):
        load_image(path)


def test_truncated_image(tmp_path):
    good = write_image(tmp_path / "good.png", "noise", (200, 200))
    path = tmp_path / "trunc.png"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(MediaError, match="truncated|corrupt"):
        load_image(path)


def test_zero_byte_image(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(MediaError, match="empty file"):
        load_image(path)


def test_extension_that_lies(tmp_path):
    # PNG bytes named .jpg decode by content; text named .png is refused.
    buf = io.BytesIO()
    pattern_image("checker", (60, 40)).save(buf, format="PNG")
    (tmp_path / "really_png.jpg").write_bytes(buf.getvalue())
    assert load_image(tmp_path / "really_png.jpg").size == (60, 40)
    write_text(tmp_path / "words.png", "this is not an image at all")
    with pytest.raises(MediaError, match="not a decodable image"):
        load_image(tmp_path / "words.png")


def test_decompression_bomb(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (12000, 12000)).save(path)  # 144 Mpixels, a few KB on disk
    assert path.stat().st_size < 200_000
    with pytest.raises(MediaError, match="decompression bomb"):
        load_image(path)


def test_oversized_file_is_refused_before_reading(tmp_path):
    path = write_image(tmp_path / "x.png", "noise", (100, 100))
    with pytest.raises(MediaError, match="too large"):
        load_image(path, LimitsConfig(max_file_bytes=1000))


def test_directory_named_like_an_image(tmp_path):
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(MediaError, match="not a regular file"):
        load_image(tmp_path / "dir.jpg")


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="cannot open"):
        load_image(tmp_path / "nope.png")


# ----------------------------------------------------------------------------- audio


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg", ".mp3"])
def test_every_audio_format_decodes_to_mono(tmp_path, ext):
    stereo = np.stack([tone(440, 1.0, 22050), tone(440, 1.0, 22050)], axis=1)
    path = write_audio(tmp_path / f"x{ext}", stereo, 22050)
    wav = load_audio(path)
    assert wav.sample_rate == 22050
    assert wav.samples.ndim == 1 and wav.samples.dtype == np.float32
    assert abs(wav.seconds - 1.0) < 0.1
    assert 0.1 < np.abs(wav.samples).max() <= 1.0


def test_long_audio_is_read_as_windows_over_the_whole_file(tmp_path):
    rate = 8000
    samples = np.concatenate([np.zeros(rate * 100, np.float32), tone(440, 20, rate)])  # sound only at the end
    path = write_audio(tmp_path / "long.wav", samples, rate)
    wav = load_audio(path, LimitsConfig(max_audio_decode_seconds=30))
    assert wav.seconds <= 30.0 + 1e-6
    assert np.abs(wav.samples[-rate:]).max() > 0.1  # the end of the file is heard


def test_truncated_audio(tmp_path):
    good = write_audio(tmp_path / "good.flac", tone(440, 2.0))
    path = tmp_path / "trunc.flac"
    path.write_bytes(good.read_bytes()[:60])
    with pytest.raises(MediaError):
        load_audio(path)


def test_corrupt_audio(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(b"RIFF" + os.urandom(500))
    with pytest.raises(MediaError, match="not a decodable audio file"):
        load_audio(path)


def test_zero_byte_audio(tmp_path):
    path = tmp_path / "e.ogg"
    path.touch()
    with pytest.raises(MediaError, match="empty file"):
        load_audio(path)


def test_image_named_as_audio(tmp_path):
    path = write_image(tmp_path / "pic.png", "checker")
    os.rename(path, tmp_path / "pic.wav")
    with pytest.raises(MediaError, match="not a decodable audio file"):
        load_audio(tmp_path / "pic.wav")


def test_audio_header_without_samples(tmp_path):
    path = write_audio(tmp_path / "nosamples.wav", np.zeros(0, np.float32))
    with pytest.raises(MediaError):
        load_audio(path)


# ----------------------------------------------------------------------------- text


def test_utf8_text(tmp_path):
    text, warning = read_text(write_text(tmp_path / "a.txt", "Crème brûlée 🍮"))
    assert text == "Crème brûlée 🍮" and warning is None


def test_non_utf8_text_is_kept_with_a_warning(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Crème brûlée à la française".encode("cp1252"))
    text, warning = read_text(path)
    assert text == "Crème brûlée à la française"
    assert "not valid UTF-8" in warning


def test_utf16_with_bom(tmp_path):
    path = tmp_path / "u16.txt"
    path.write_bytes("hello owl".encode("utf-16"))
    assert read_text(path)[0] == "hello owl"


def test_binary_named_txt(tmp_path):
    path = tmp_path / "bin.txt"
    path.write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(MediaError, match="binary"):
        read_text(path)


def test_whitespace_only_text(tmp_path):
    with pytest.raises(MediaError, match="no text"):
        read_text(write_text(tmp_path / "blank.md", "  \n\t\n"))


def test_oversized_text(tmp_path):
    path = write_text(tmp_path / "big.txt", "word " * 1000)
    with pytest.raises(MediaError, match="too large"):
        read_text(path, LimitsConfig(max_text_bytes=100))


def test_fifo_is_not_opened(tmp_path):
    path = tmp_path / "pipe.txt"
    os.mkfifo(path)
    with pytest.raises(MediaError, match="not a regular file"):
        read_text(Path(path))
