"""Checking a built catalog: the files of every item, grouped by stem, and each file opened or
decoded in full.  One walk and one set of file checks serve both builders; each says what
an item must hold and what it accepts as audio and as a sidecar."""

from __future__ import annotations

import collections
import collections.abc
import json
import os
import time
from typing import Any

from .common import log, quiet_stderr

IMAGE_EXTS = (".png", ".jpg", ".jpeg")
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".oga", ".mp3")
#: The media catalog writes no ``.oga`` (it re-encodes): one there is an unexpected file.
MEDIA_AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3")

Items = dict[str, dict[str, list[str]]]
#: ``judge(path, samples (frames, channels) float32, sample rate)``: what is wrong with a decoded file, or None.
AudioJudge = collections.abc.Callable[[str, Any, int], "str | None"]
#: ``judge(path, parsed sidecar)``: the problems of one sidecar.
SidecarJudge = collections.abc.Callable[[str, dict], list[str]]


def scan_items(root: str, audio_exts: tuple[str, ...] = AUDIO_EXTS) -> Items:
    """``{"<category>/<stem>": {"image"|"audio"|"text"|"json"|"other": [paths]}}`` for ``root``
    (its own ``catalog_info.json`` left out)."""
    items: Items = collections.defaultdict(lambda: collections.defaultdict(list))
    for dp, _dn, fns in os.walk(root):
        for fn in fns:
            if dp == root and fn == "catalog_info.json":
                continue
            stem, ext = os.path.splitext(fn)
            ext = ext.lower()
            kind = {".txt": "text", ".json": "json"}.get(ext)
            kind = kind or ("image" if ext in IMAGE_EXTS else "audio" if ext in audio_exts else "other")
            items[os.path.relpath(os.path.join(dp, stem), root)][kind].append(os.path.join(dp, fn))
    return items


def check_texts(paths: list[str], problems: list[str]) -> None:
    """Append a problem for each text file that is empty or not UTF-8."""
    for p in paths:
        try:
            with open(p, encoding="utf-8", errors="strict") as f:
                if not f.read().strip():
                    problems.append(f"{p}: empty text")
        except UnicodeDecodeError as e:
            problems.append(f"{p}: not UTF-8: {e}")


def check_images(paths: list[str], problems: list[str]) -> None:
    """Append a problem for each image that Pillow cannot load or that is under 8 px."""
    from PIL import Image

    for p in paths:
        try:
            with Image.open(p) as im:
                im.load()
                if min(im.size) < 8:
                    problems.append(f"{p}: tiny image {im.size}")
        except Exception as e:  # noqa: BLE001
            problems.append(f"{p}: image does not open: {e}")


def check_audio(paths: list[str], problems: list[str], judge: AudioJudge) -> list[float]:
    """Decode each file in full with soundfile; ``judge(path, samples, rate)`` names what is
    wrong with a decoded one (or returns None).  Returns the decoded durations in seconds."""
    import soundfile as sf

    durations = []
    for p in paths:
        try:
            with quiet_stderr():
                x, sr = sf.read(p, dtype="float32", always_2d=True)
            durations.append(x.shape[0] / sr)
            problem = judge(p, x, sr)
            if problem:
                problems.append(problem)
        except Exception as e:  # noqa: BLE001
            problems.append(f"{p}: audio does not decode: {e}")
    return durations


def check_sidecars(paths: list[str], problems: list[str], judge: SidecarJudge) -> None:
    """Parse each sidecar; ``judge(path, meta)`` lists what is wrong with a parsed one."""
    for p in paths:
        try:
            with open(p, encoding="utf-8") as f:
                meta = json.load(f)
            problems.extend(judge(p, meta))
        except Exception as e:  # noqa: BLE001
            problems.append(f"{p}: bad sidecar: {e}")


def check_catalog(
    root: str,
    need: dict[str, int],
    *,
    audio_judge: AudioJudge,
    sidecar_judge: SidecarJudge,
    audio_exts: tuple[str, ...] = AUDIO_EXTS,
) -> tuple[Items, list[str], list[float]]:
    """Every item of ``root`` has exactly ``need[kind]`` files of each kind and nothing else, and
    each file opens (images), decodes (audio), reads as UTF-8 (text) or parses (sidecars).

    Returns (items, problems, audio durations in seconds).
    """
    items = scan_items(root, audio_exts)
    problems: list[str] = []
    durations: list[float] = []
    for key in sorted(items):
        it = items[key]
        for kind, k in need.items():
            if len(it.get(kind, [])) != k:
                problems.append(f"{key}: {len(it.get(kind, []))} {kind} file(s), expected {k}")
        if it.get("other"):
            problems.append(f"{key}: unexpected files {it['other']}")
        check_images(it.get("image", []), problems)
        durations += check_audio(it.get("audio", []), problems, audio_judge)
        check_texts(it.get("text", []), problems)
        check_sidecars(it.get("json", []), problems, sidecar_judge)
    return items, problems, durations


# --------------------------------------------------------------------------------------
# The two kinds of catalog
# --------------------------------------------------------------------------------------


def _media_audio(p: str, x, sr: int) -> str | None:
    import numpy as np

    d = x.shape[0] / sr
    if not (0.9 <= d <= 41.0) or not np.isfinite(x).all() or float(np.abs(x).max()) == 0.0:
        return f"{p}: suspicious audio (duration {d:.2f} s)"
    return None


def _media_sidecar(p: str, meta: dict) -> list[str]:
    return [] if meta.get("title") and meta.get("category") else [f"{p}: sidecar without title/category"]


def verify_catalog(root: str) -> int:
    """Check a media catalog (build_catalog.py): every item has one image, text, audio and sidecar;
    every image opens with Pillow, every audio file decodes fully with soundfile (0.9-41 s, not
    silent), every text is UTF-8.  Logs a summary and the first problems; returns the exit code."""
    t0 = time.time()
    need = {"image": 1, "text": 1, "audio": 1, "json": 1}
    items, problems, durs = check_catalog(
        root, need, audio_judge=_media_audio, sidecar_judge=_media_sidecar, audio_exts=MEDIA_AUDIO_EXTS
    )
    n_long = sum(1 for d in durs if d >= 20)
    log(
        f"verify {root}: {len(items)} items, {len(durs)} audio files decoded "
        f"({min(durs) if durs else 0:.2f}-{max(durs) if durs else 0:.2f} s, {n_long} >= 20 s), "
        f"{len(problems)} problem(s), {time.time() - t0:.1f} s"
    )
    for p in problems[:30]:
        log("  ! " + p)
    return 1 if problems else 0


def _labelled_audio(p: str, x, sr: int) -> str | None:
    import numpy as np

    return f"{p}: empty or non-finite audio" if x.shape[0] == 0 or not np.isfinite(x).all() else None


def validate_catalog(root: str, modalities: list[str] | None = None) -> list[str]:
    """Check a labelled catalog (build_eval_catalogs.py): open every image, decode every audio file
    fully with soundfile, read every .txt as strict UTF-8, parse every sidecar (title, category =
    its folder, and a tags list required; a keywords list for image items), and check every item
    has exactly one file of each of its catalog's modalities. Returns the problems found."""
    if modalities is None:
        with open(os.path.join(root, "catalog_info.json"), encoding="utf-8") as f:
            modalities = json.load(f).get("modalities", [])
    need = {"image": int("image" in modalities), "audio": int("audio" in modalities), "text": 1, "json": 1}

    def sidecar(p: str, meta: dict) -> list[str]:
        found = []
        if not meta.get("title") or not meta.get("category") or not isinstance(meta.get("tags"), list):
            found.append(f"{p}: sidecar without title/category/tags list")
        elif meta["category"] != os.path.relpath(p, root).split(os.sep)[0]:
            found.append(f"{p}: category {meta['category']!r} is not its folder")
        if "image" in modalities and not isinstance(meta.get("keywords"), list):
            found.append(f"{p}: image item without keywords list")
        return found

    return check_catalog(root, need, audio_judge=_labelled_audio, sidecar_judge=sidecar)[1]
