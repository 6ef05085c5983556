"""The audio of a media-catalog item: a real recording (copied, trimmed, repeated or looped
after a spoken description) or the item's title and keywords spoken by ``espeak-ng``."""

from __future__ import annotations

import math
import os
import random
import re
import shutil
import subprocess
import tempfile

import numpy as np

from .common import quiet_stderr
from .openclipart import Candidate

SPEECH_VOICES = [
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-029",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-us+f2",
    "en-gb+f3",
    "en-us+m3",
    "en-us+f4",
    "en+klatt",
]
SPEECH_FORMATS = [("wav", 0.55), ("ogg", 0.20), ("flac", 0.15), ("mp3", 0.10)]
SF_FORMAT = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}


def speech_text(c: Candidate, long: bool) -> str:
    kws = [k for k in c.keywords if k.lower() not in c.title.lower()][:4]
    if not long:
        t = c.title + "."
        if kws:
            t += " " + ", ".join(kws) + "."
        if len(t) < 18:
            t += f" A {c.category.replace('_', ' ')} picture."
        return t
    where = c.category.replace("_", " ")
    if c.subcategory:
        where += ", " + c.subcategory.replace("_", " ").replace("/", ", ")
    parts = [c.title + "."]
    if c.description and c.description.lower() != c.title.lower():
        parts.append(c.description.rstrip(".") + ".")
    parts.append(f"This is a clip art image from the {where} collection.")
    if c.keywords:
        parts.append("Keywords: " + ", ".join(c.keywords[:10]) + ".")
    if c.creator:
        parts.append(f"Drawn by {c.creator}.")
    return " ".join(parts)


def espeak(text: str, voice: str, speed: int, pitch: int, tmpdir: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    text = re.sub(r"[<>\[\]{}\\|`]", " ", text)
    fd, wav = tempfile.mkstemp(suffix=".wav", dir=tmpdir)
    os.close(fd)
    try:
        r = subprocess.run(
            ["espeak-ng", "--stdin", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", wav],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=60,
        )
        if r.returncode != 0:
            raise RuntimeError(f"espeak-ng failed: {r.stderr.decode(errors='replace')[:200]}")
        x, sr = sf.read(wav, dtype="float32", always_2d=False)
    finally:
        os.unlink(wav)
    if x.ndim > 1:
        x = x.mean(axis=1)
    # trim leading/trailing silence a little, keep 80 ms
    nz = np.flatnonzero(np.abs(x) > 1e-3)
    if nz.size:
        pad = int(0.08 * sr)
        x = x[max(0, nz[0] - pad) : nz[-1] + pad]
    return x.astype(np.float32), sr


def load_audio(path: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with quiet_stderr():
        x, sr = sf.read(path, dtype="float32", always_2d=True)
    return x.mean(axis=1).astype(np.float32), sr


def resample(x: np.ndarray, sr: int, target: int) -> np.ndarray:
    if sr == target:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(sr, target)
    return resample_poly(x, target // g, sr // g).astype(np.float32)


def fade(x: np.ndarray, sr: int, seconds: float = 0.3) -> np.ndarray:
    n = min(len(x) // 4, int(seconds * sr))
    if n > 0:
        x = x.copy()
        x[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return x


def silence(sr: int, seconds: float) -> np.ndarray:
    return np.zeros(int(sr * seconds), dtype=np.float32)


def write_audio(path_no_ext: str, fmt: str, x: np.ndarray, sr: int) -> str:
    import soundfile as sf

    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0.99:
        x = x * (0.99 / peak)
    if fmt == "mp3" and sr not in (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000):
        x, sr = resample(x, sr, 44100), 44100
    container, subtype = SF_FORMAT[fmt]
    path = f"{path_no_ext}.{fmt}"
    sf.write(path, x, sr, format=container, subtype=subtype)
    return path


def make_audio(c: Candidate, base: str, tmpdir: str) -> dict:
    """Create the item's audio next to ``base`` (path without extension); return its metadata."""
    import soundfile as sf

    rng = random.Random(f"audio|{c.relpath}")
    info: dict = {"long": c.long_audio}
    fmt = c.speech_format
    if c.sample is not None:
        s = c.sample
        info.update(
            kind="sample",
            sample_source=s["source"],
            sample_file=s["relpath"],
            sample_license=s["license"],
            matched_word=s["matched"],
        )
        with quiet_stderr():
            sinfo = sf.info(s["path"])
        ext = os.path.splitext(s["path"])[1].lower().lstrip(".")
        ext = {"oga": "ogg"}.get(ext, ext)
        if not c.long_audio and 1.0 <= sinfo.duration <= 10.0:
            out = f"{base}.{ext}"
            shutil.copyfile(s["path"], out)  # the original recording, untouched
            info.update(
                file=os.path.basename(out),
                duration_s=round(sinfo.duration, 3),
                sample_rate=sinfo.samplerate,
                channels=sinfo.channels,
                processing="copy",
            )
            return info
        x, sr = load_audio(s["path"])
        if not c.long_audio:
            if len(x) / sr > 10.0:
                x = fade(x[: int(sr * rng.uniform(6.0, 10.0))], sr, 0.5)
                info["processing"] = "trimmed"
            else:  # short hit: repeat as a simple pattern of 2-4 s
                target = rng.uniform(2.0, 4.0)
                beat = max(0.3, len(x) / sr + 0.12)
                reps = max(2, int(target / beat))
                hit = np.concatenate([x, silence(sr, beat - len(x) / sr)])
                x = np.tile(hit, reps)
                info["processing"] = f"repeated x{reps}"
            fmt = ext if ext in SF_FORMAT else "wav"
        else:
            # long: spoken description, then the recording, repeated up to the target length
            sp, ssr = espeak(speech_text(c, True), c.voice, c.speed, c.pitch, tmpdir)
            sp = resample(sp, ssr, sr)
            seq = [sp, silence(sr, 0.5)]
            total = sum(len(a) for a in seq)
            while total < c.long_target_s * sr:
                seq += [x, silence(sr, 0.6)]
                total += len(x) + int(0.6 * sr)
            x = fade(np.concatenate(seq)[: int(c.long_target_s * sr)], sr, 1.0)
            info.update(kind="speech+sample", voice=c.voice, processing="speech + looped sample")
        out = write_audio(base, fmt, x, sr)
        info.update(file=os.path.basename(out), duration_s=round(len(x) / sr, 3), sample_rate=sr, channels=1)
        return info

    # spoken word
    sp, sr = espeak(speech_text(c, c.long_audio), c.voice, c.speed, c.pitch, tmpdir)
    info.update(kind="speech", voice=c.voice, speed_wpm=c.speed, pitch=c.pitch)
    if c.long_audio:
        seq = [sp]
        total = len(sp)
        k = 0
        while total < c.long_target_s * sr:
            k += 1
            v = SPEECH_VOICES[(SPEECH_VOICES.index(c.voice) + k) % len(SPEECH_VOICES)]
            more, msr = espeak(speech_text(c, True), v, c.speed, c.pitch, tmpdir)
            more = resample(more, msr, sr)
            seq += [silence(sr, 0.7), more]
            total += len(more) + int(0.7 * sr)
        x = fade(np.concatenate(seq)[: int(c.long_target_s * sr)], sr, 1.0)
        info["processing"] = f"{k + 1} readings"
    else:
        x = sp
        if len(x) < sr:
            x = np.concatenate([x, silence(sr, 1.0 - len(x) / sr)])
        if len(x) > 10 * sr:
            x = fade(x[: 10 * sr], sr, 0.5)
    out = write_audio(base, fmt, x, sr)
    info.update(file=os.path.basename(out), duration_s=round(len(x) / sr, 3), sample_rate=sr, channels=1)
    return info
