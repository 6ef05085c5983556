"""Planning a media catalog (main process, deterministic for a seed): each item's voice,
formats and clip length, and the real recording that matches its words, if any."""

from __future__ import annotations

import collections
import glob
import os
import random

from .common import log, quiet_stderr
from .openclipart import Candidate, word_tokens
from .sources import SOURCE_INFO, freedesktop_license
from .speech import SPEECH_FORMATS, SPEECH_VOICES

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


def tokens_of(c: Candidate) -> tuple[set[str], set[str]]:
    """(title + file-name tokens, keyword tokens)."""
    name = os.path.splitext(os.path.basename(c.relpath))[0]
    return word_tokens(c.title + " " + name), word_tokens(" ".join(c.keywords))


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
        return freedesktop_license(key, SOURCE_INFO["freedesktop"]["license"])
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
