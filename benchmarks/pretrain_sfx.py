"""More labelled sounds for pretraining (licences that allow shipping weights) and a validation sound source.

Training sources (``pretrain_space.py --train-sources``), both written as mmrec catalogs
``<category>/<stem>.{wav,txt,json}`` with the caption ``"<label> (<category>)"`` in the style of the
labelled sounds catalog:

* ``kenney_cc0``: the Kenney.nl game sound effects inside the PyPI ``arcade`` 3.3.3 wheel
  (``arcade/resources/assets/sounds``, whose ``License.txt`` says "Everything in this package is
  licensed CC0"): 61 clips, labelled by their file names (``coin3.wav`` → "coin pickup");
* ``freedoom_bsd``: the 103 sound effects of Debian ``freedoom`` 0.12.1 (``freedoom2.wad``; BSD-3-clause
  per its copyright file), read out of the WAD's DMX lumps; the lump names (``DSDOROPN``) are
  glossed by :data:`FREEDOOM` ("door opening", "shotgun shot" …).

Validation source (``sounds_val``; for choosing pretraining and fine-tuning settings; never trained on
for the shipped layer, and not the held-out test source ``sounds_heldout``): the event sounds of Debian
``oxygen-sounds`` (LGPL-3+), ``deepin-sound-theme`` (GPL-3) and the tool sounds of ``tuxpaint-data``
(GPL-2+), labelled by their file names. Their licences would not allow shipping weights trained on
them, which is why they can only validate.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import wave
import zipfile
from pathlib import Path

import numpy as np

ARCADE = "arcade==3.3.3"
ARCADE_SOUNDS = "arcade/resources/assets/sounds/"
KENNEY_LICENSE = "CC0-1.0 (Kenney.nl, per arcade/resources/assets/sounds/License.txt)"
FREEDOOM_DEB = "freedoom"
FREEDOOM_LICENSE = "BSD-3-Clause (Freedoom project, per Debian freedoom copyright)"
VAL_DEBS = {
    "oxygen-sounds": "LGPL-3.0-or-later",
    "deepin-sound-theme": "GPL-3",
    "tuxpaint-data": "GPL-2.0-or-later",
}

#: Kenney file stem (digits removed) → label.
KENNEY = {
    "coin": "coin pickup",
    "error": "error buzz",
    "explosion": "explosion",
    "fall": "falling",
    "gameover": "game over",
    "hit": "hit",
    "hurt": "hurt",
    "jump": "jump",
    "laser": "laser shot",
    "lose": "lose",
    "phaseJump": "phase jump",
    "rockHit": "rock hit",
    "secret": "secret found",
    "upgrade": "upgrade power up",
}

#: Freedoom sound lump → (category, label). Monster names stay generic: the audio is a growl or a scream.
FREEDOOM = {
    **{
        k: ("weapons", v)
        for k, v in {
            "DSPISTOL": "pistol shot",
            "DSSHOTGN": "shotgun shot",
            "DSSGCOCK": "shotgun cocking",
            "DSDSHTGN": "double barrel shotgun shot",
            "DSDBOPN": "shotgun opening",
            "DSDBCLS": "shotgun closing",
            "DSDBLOAD": "shotgun loading",
            "DSSAWUP": "chainsaw starting",
            "DSSAWIDL": "chainsaw idling",
            "DSSAWFUL": "chainsaw cutting",
            "DSSAWHIT": "chainsaw hitting",
            "DSRLAUNC": "rocket launch",
            "DSPLASMA": "plasma gun shot",
            "DSBFG": "energy cannon blast",
            "DSPUNCH": "punch",
            "DSFIRSHT": "fireball shot",
        }.items()
    },
    **{
        k: ("explosions", v)
        for k, v in {
            "DSRXPLOD": "rocket explosion",
            "DSFIRXPL": "fireball explosion",
            "DSBAREXP": "barrel explosion",
        }.items()
    },
    **{
        k: ("doors and machines", v)
        for k, v in {
            "DSPSTART": "lift starting",
            "DSPSTOP": "lift stopping",
            "DSDOROPN": "door opening",
            "DSDORCLS": "door closing",
            "DSBDOPN": "fast door opening",
            "DSBDCLS": "fast door closing",
            "DSSTNMOV": "stone grinding",
            "DSSWTCHN": "switch on",
            "DSSWTCHX": "switch off",
            "DSTELEPT": "teleport",
            "DSRADIO": "radio beep",
            "DSTINK": "tink",
            "DSMETAL": "metal footstep",
            "DSHOOF": "hoof footstep",
            "DSBOSCUB": "spawn cube",
        }.items()
    },
    **{
        k: ("pickups", v)
        for k, v in {
            "DSITEMUP": "item pickup",
            "DSWPNUP": "weapon pickup",
            "DSGETPOW": "power up pickup",
            "DSITMBK": "item respawn",
        }.items()
    },
    **{
        k: ("player voice", v)
        for k, v in {
            "DSPLPAIN": "man grunting in pain",
            "DSPLDETH": "man dying scream",
            "DSPDIEHI": "man dying scream",
            "DSOOF": "oof grunt",
            "DSNOWAY": "grunt",
            "DSSLOP": "squishy splat",
        }.items()
    },
}
_MONSTER = {
    "SIT": "monster growl",
    "ACT": "monster snarl",
    "PAIN": "monster pain howl",
    "PN": "monster pain howl",
    "DTH": "monster death scream",
    "DT": "monster death scream",
    "ATK": "monster attack",
    "PCH": "monster punch",
    "SWG": "monster swing",
    "CLAW": "claw scratch",
    "PIT": "monster spit",
}


def freedoom_label(lump: str) -> tuple[str, str]:
    """``(category, label)`` of a Freedoom sound lump (monster sounds by their suffix)."""
    if lump in FREEDOOM:
        return FREEDOOM[lump]
    stem = lump[2:]
    if stem == "CLAW":
        return "monsters", _MONSTER["CLAW"]
    for suffix in sorted(_MONSTER, key=len, reverse=True):
        if re.search(suffix + r"\d?$", stem):
            return "monsters", _MONSTER[suffix]
    return "monsters", "monster noise"


def _write_item(folder: Path, stem: str, pcm: np.ndarray, rate: int, label: str, category: str, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with wave.open(str(folder / f"{stem}.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    (folder / f"{stem}.txt").write_text(f"{label} ({category})\n", encoding="utf-8")
    side = {"title": label, "tags": [category], "category": category.replace(" ", "_"), "label": label, **meta}
    (folder / f"{stem}.json").write_text(json.dumps(side, ensure_ascii=False, indent=1), encoding="utf-8")


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return (np.clip(x.mean(axis=1), -1, 1) * 32767).astype(np.int16), rate


def build_kenney(out: Path, sources: Path) -> int:
    """The Kenney CC0 clips of the ``arcade`` wheel as a catalog; returns the item count."""
    if (out / "catalog_info.json").is_file():
        return json.loads((out / "catalog_info.json").read_text())["n_items"]
    pypi = sources / "pypi"
    pypi.mkdir(parents=True, exist_ok=True)
    wheels = sorted(pypi.glob("arcade-3.3.3-*.whl"))
    if not wheels:
        import sys

        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", ARCADE, "-d", str(pypi)]
        subprocess.run(cmd, check=True, capture_output=True)
        wheels = sorted(pypi.glob("arcade-3.3.3-*.whl"))
    stage = out.with_name(out.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    n = 0
    with zipfile.ZipFile(wheels[0]) as z:
        if "CC0" not in z.read(ARCADE_SOUNDS + "License.txt").decode("utf-8", "replace"):
            raise RuntimeError("arcade's sounds/License.txt no longer says CC0: check the licence before training")
        names = sorted(n for n in z.namelist() if n.startswith(ARCADE_SOUNDS) and n.endswith(".wav"))
        for name in names:
            stem = Path(name).stem
            base = re.sub(r"\d+$", "", stem)
            if base not in KENNEY:
                continue
            tmp = stage / "_tmp.wav"
            stage.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(z.read(name))
            pcm, rate = _read_wav(tmp)
            tmp.unlink()
            meta = {"source": "kenney", "source_file": f"{ARCADE}: {name}", "license": KENNEY_LICENSE}
            _write_item(stage / "game_sounds", stem, pcm, rate, KENNEY[base], "game sound effect", meta)
            n += 1
    (stage / "catalog_info.json").write_text(
        json.dumps({"name": "kenney_cc0", "n_items": n, "license": KENNEY_LICENSE})
    )
    shutil.rmtree(out, ignore_errors=True)
    stage.rename(out)
    return n


def _deb(name: str, sources: Path) -> Path:
    """The unpacked Debian package ``name`` (``apt-get download`` + ``dpkg-deb -x``, cached)."""
    debs = sources / "debs_u15"
    dest = debs / "x" / name
    if not dest.is_dir():
        debs.mkdir(parents=True, exist_ok=True)
        if not list(debs.glob(f"{name}_*.deb")):
            subprocess.run(["apt-get", "download", name], cwd=debs, check=True, capture_output=True)
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(next(debs.glob(f"{name}_*.deb"))), str(dest)], check=True)
    return dest


def wad_sounds(path: Path) -> dict[str, tuple[np.ndarray, int]]:
    """Every DMX sound lump of a WAD: name → (int16 PCM, sample rate)."""
    b = path.read_bytes()
    _, n, off = struct.unpack("<4sii", b[:12])
    out = {}
    for i in range(n):
        pos, size, raw = struct.unpack("<ii8s", b[off + 16 * i : off + 16 * i + 16])
        name = raw.rstrip(b"\0").decode("ascii", "replace")
        if not name.startswith("DS") or size <= 8:
            continue
        fmt, rate, count = struct.unpack("<HHI", b[pos : pos + 8])
        if fmt != 3:
            continue
        # DMX: 16 padding bytes on each side of unsigned 8-bit samples.
        u8 = np.frombuffer(b, np.uint8, count - 32, pos + 8 + 16)
        out[name] = (((u8.astype(np.int16) - 128) * 256).astype(np.int16), rate)
    return out


def build_freedoom(out: Path, sources: Path) -> int:
    if (out / "catalog_info.json").is_file():
        return json.loads((out / "catalog_info.json").read_text())["n_items"]
    root = _deb(FREEDOOM_DEB, sources)
    copyright_text = (root / "usr/share/doc/freedoom/copyright").read_text()
    if "Redistribution and use in source and binary forms" not in copyright_text:
        raise RuntimeError("freedoom's copyright file no longer reads as BSD: check the licence before training")
    stage = out.with_name(out.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    sounds = wad_sounds(root / "usr/share/games/doom/freedoom2.wad")
    for lump, (pcm, rate) in sorted(sounds.items()):
        category, label = freedoom_label(lump)
        meta = {"source": "freedoom", "source_file": f"freedoom2.wad: {lump}", "license": FREEDOOM_LICENSE}
        _write_item(stage / category.replace(" ", "_"), lump.lower(), pcm, rate, label, category, meta)
    (stage / "catalog_info.json").write_text(
        json.dumps({"name": "freedoom_bsd", "n_items": len(sounds), "license": FREEDOOM_LICENSE})
    )
    shutil.rmtree(out, ignore_errors=True)
    stage.rename(out)
    return len(sounds)


def _words(stem: str) -> str:
    s = re.sub(r"([a-z])([A-Z])", r"\1 \2", stem)
    s = re.sub(r"[-_]+", " ", s)
    s = re.sub(r"\d+$", "", s).strip().lower()
    return s.replace("im ", "instant messenger ").replace("sys ", "system ").replace("k3b ", "disc burning ")


def build_validation(out: Path, sources: Path) -> int:
    """The validation sound source (oxygen, deepin and tuxpaint sounds), categories by package and group."""
    if (out / "catalog_info.json").is_file():
        return json.loads((out / "catalog_info.json").read_text())["n_items"]
    stage = out.with_name(out.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    n = 0
    for pkg, lic in VAL_DEBS.items():
        root = _deb(pkg, sources)
        files = sorted(p for p in (root / "usr/share").rglob("*") if p.suffix in (".ogg", ".wav"))
        for f in files:
            stem = f.stem
            if pkg == "oxygen-sounds":
                group = stem.split("-")[1].lower()  # Im, Sys, Window, K3B
                label = _words("-".join(stem.split("-")[1:]))
                category = {"im": "messenger events", "sys": "system events", "window": "window events"}.get(
                    group, "disc burning events"
                )
            elif pkg == "deepin-sound-theme":
                if "stereo" not in f.parts:
                    continue
                label, category = _words(stem.replace("x-deepin-", "")), "desktop events"
            else:
                label, category = _words(stem), "paint program sounds"
            pcm, rate = _read_wav(f)
            meta = {"source": pkg, "source_file": f"{pkg}: {f.relative_to(root)}", "license": lic}
            _write_item(
                stage / category.replace(" ", "_"), f"{pkg.split('-')[0]}_{stem}", pcm, rate, label, category, meta
            )
            n += 1
    (stage / "catalog_info.json").write_text(json.dumps({"name": "sounds_val", "n_items": n, "licenses": VAL_DEBS}))
    shutil.rmtree(out, ignore_errors=True)
    stage.rename(out)
    return n


_DRUM_CATEGORIES = (
    ("kick drum", ("kick", "bass drum", "bassdrum", "bd")),
    ("hi-hat", ("hat", "hh")),
    ("snare drum", ("snare", "rim", "stick")),
    ("tom", ("tom",)),
    ("cymbal", ("crash", "ride", "cymbal", "china", "splash", "bell")),
    ("hand clap", ("clap", "snap")),
)


def _drum(name: str) -> tuple[str, str]:
    """``(label, category)`` of a Hydrogen instrument name (``'c#3 - stick'``, ``'Kick (Tama Superstar 22")'``)."""
    label = re.sub(r"\(.*?\)", "", name)
    label = re.sub(r"^[a-g]#?\d\s*-\s*", "", label.strip(), flags=re.I)
    label = re.sub(r"\b(pearl|sabian|varibreaks|zildjian|paiste|tama)\b", "", label, flags=re.I)
    label = " ".join(re.sub(r"[_\-]+", " ", label).lower().split()) or "drum"
    words = f" {label} "
    for category, keys in _DRUM_CATEGORIES:
        if any(re.search(rf"\b{k}", words) for k in keys):
            return label, category
    return label, "percussion"


def build_drums(out: Path, sources: Path) -> int:
    """Validation drums: one sample per instrument of every kit in Debian ``hydrogen-drumkits``.

    GPL-2 / CC-BY(-SA) per kit (Audiophob is CC0, too few to matter), so validation only.
    Labels are the kits' instrument names, categories by keyword (:func:`_drum`).
    """
    if (out / "catalog_info.json").is_file():
        return json.loads((out / "catalog_info.json").read_text())["n_items"]
    root = _deb("hydrogen-drumkits", sources) / "usr/share/hydrogen/data/drumkits"
    stage = out.with_name(out.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    n = 0
    for xml in sorted(root.glob("*/drumkit.xml")):
        text = xml.read_text(errors="replace")
        for k, inst in enumerate(re.findall(r"<instrument>(.*?)</instrument>", text, re.S)):
            name = re.search(r"<name>(.*?)</name>", inst)
            files = [xml.parent / f for f in re.findall(r"<filename>(.*?)</filename>", inst)]
            files = [f for f in files if f.is_file()]
            if not name or not files:
                continue
            label, category = _drum(name.group(1))
            pcm, rate = _read_wav(files[0])
            pcm = pcm[: 3 * rate]
            kit = re.sub(r"\W+", "_", xml.parent.name).strip("_").lower()
            meta = {"source": "hydrogen-drumkits", "source_file": f"{xml.parent.name}/{files[0].name}"}
            meta["license"] = "GPL-2 / CC-BY-3.0 / CC-BY-SA-3.0 / CC0 per kit (Debian hydrogen-drumkits copyright)"
            _write_item(stage / category.replace(" ", "_"), f"{kit}_{k:02d}", pcm, rate, label, category, meta)
            n += 1
    (stage / "catalog_info.json").write_text(json.dumps({"name": "drums_val", "n_items": n}))
    shutil.rmtree(out, ignore_errors=True)
    stage.rename(out)
    return n


#: Training sources, in the format of ``pretrain_space.TRAIN_SOURCES``.
TRAIN_SOURCES = {
    "kenney_cc0": {
        "package": f"PyPI {ARCADE} (arcade/resources/assets/sounds: Kenney.nl game sounds)",
        "license": "CC0-1.0 (Kenney.nl, per arcade/resources/assets/sounds/License.txt; the wheel's MIT code is not used)",
        "modalities": ["audio", "text"],
    },
    "freedoom_bsd": {
        "package": "Debian freedoom 0.12.1-2 (freedoom2.wad sound lumps)",
        "license": FREEDOOM_LICENSE,
        # BSD-3-Clause asks redistributions to keep the notice: it travels with the weights' provenance.
        "notice": "Copyright (c) 2001-2003 Contributors to the Freedoom project. All rights reserved. "
        "Redistribution and use in source and binary forms, with or without modification, are permitted "
        "under the BSD 3-clause licence (Debian freedoom copyright file).",
        "modalities": ["audio", "text"],
    },
}
#: Left out of the shipped layer (validation only).
LEFT_OUT = {
    "sounds_val (oxygen-sounds, deepin-sound-theme, tuxpaint-data)": (
        "LGPL-3+ / GPL-3 / GPL-2+: a validation sound source for choosing settings, never trained on"
    ),
    "drums_val (hydrogen-drumkits)": "GPL-2 / CC-BY(-SA) per kit: a validation sound source, never trained on",
    "arcade music (1918.mp3, funkyrobot.mp3)": "no licence statement beside them; not used",
}


#: Catalog name → builder ``(out, sources) -> n_items``.
BUILDERS = {
    "kenney_cc0": build_kenney,
    "freedoom_bsd": build_freedoom,
    "sounds_val": build_validation,
    "drums_val": build_drums,
}


if __name__ == "__main__":
    import sys

    data, src = (
        Path(sys.argv[1] if len(sys.argv) > 1 else "/work/bench_data/pretrain"),
        Path("/work/bench_data/_sources"),
    )
    for name, build in BUILDERS.items():
        print(name, build(data / name, src))
